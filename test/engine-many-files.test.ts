// Dione's SQLite finds the record it keeps per open file (locks, shared memory) through a hash
// table (scripts/sqlite-inode-hash.mjs) instead of a walk over every open file. Two connections
// to one file in one process must still find the same record: POSIX locks do not exclude each
// other within a process, so that record is what keeps a second writer out. These tests hold
// hundreds of files open, close some, and check that the exclusion and the reuse of a file
// descriptor (another lookup by file id) still work.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type Database from 'better-sqlite3';
import { openSqlite } from '../src/engine/sqlite.ts';

let dir: string;
const held = new Map<string, Database.Database>();
const fileOf = (i: number) => path.join(dir, `db-${i}.sqlite`);

before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'dione-many-files-'));
  for (let i = 0; i < 400; i++) {
    const db = openSqlite(fileOf(i));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (v INTEGER)');
    held.set(fileOf(i), db);
  }
  // Records leave the table as files close: every third one.
  for (let i = 0; i < 400; i += 3) {
    held.get(fileOf(i))!.close();
    held.delete(fileOf(i));
  }
});

after(() => {
  for (const db of held.values()) db.close();
  rmSync(dir, { recursive: true, force: true });
});

function assertWritersExclude(file: string): void {
  const a = openSqlite(file, { timeout: 0 });
  const b = openSqlite(file, { timeout: 0 });
  try {
    a.exec('BEGIN IMMEDIATE');
    a.prepare('INSERT INTO t VALUES (1)').run();
    assert.throws(
      () => b.exec('BEGIN IMMEDIATE'),
      (e: Error & { code?: string }) => e.code === 'SQLITE_BUSY',
      `a second connection to ${path.basename(file)} began writing while the first was`,
    );
    a.exec('COMMIT');
    b.exec('BEGIN IMMEDIATE');
    b.prepare('INSERT INTO t VALUES (2)').run();
    b.exec('COMMIT');
    assert.deepEqual(a.prepare('SELECT v FROM t ORDER BY rowid DESC LIMIT 2').pluck().all(), [2, 1]);
  } finally {
    a.close();
    b.close();
  }
}

test('with hundreds of files open and some closed, two connections to one file still exclude each other as writers', () => {
  // A file held open, one whose record was freed and is made again, and a new one.
  for (const i of [1, 2, 200, 398, 0, 3, 399]) assertWritersExclude(fileOf(i));
  const fresh = path.join(dir, 'fresh.sqlite');
  const setup = openSqlite(fresh);
  setup.pragma('journal_mode = WAL');
  setup.exec('CREATE TABLE t (v INTEGER)');
  setup.close();
  assertWritersExclude(fresh);
});

test('a connection closed while another holds a lock on its file leaves its descriptor to the next connection to that file', { skip: process.platform !== 'linux' && 'reads /proc/self/fd' }, () => {
  const file = path.join(dir, 'journal.sqlite');
  const setup = openSqlite(file);
  setup.exec('CREATE TABLE t (v INTEGER)');
  setup.close();
  const fds = () => readdirSync('/proc/self/fd').length;
  const reader = openSqlite(file);
  try {
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM t').get(); // a shared lock on the file
    const before = fds();
    const closing = openSqlite(file);
    closing.prepare('SELECT count(*) FROM t').get();
    closing.close();
    // SQLite cannot close that descriptor while the reader's lock lives (closing it would drop the lock).
    assert.equal(fds(), before + 1, 'the closed connection\'s descriptor was not kept');
    const next = openSqlite(file);
    try {
      assert.equal(fds(), before + 1, 'the next connection opened a new descriptor instead of taking the kept one');
      assert.equal(next.prepare('SELECT count(*) AS n FROM t').pluck().get(), 0);
    } finally {
      next.close();
    }
  } finally {
    reader.exec('COMMIT');
    reader.close();
  }
});
