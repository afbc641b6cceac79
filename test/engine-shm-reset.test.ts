// The first connection to a database resets its -shm file so that SQLite rebuilds the wal-index
// from the WAL as it is (scripts/sqlite-shm-reset.mjs zeroes the header of a -shm that keeps its
// size, where stock SQLite truncates it). A wal-index left by an earlier connection must never be
// trusted: here the WAL is put back as it was before later commits, while nothing has the database
// open, and the next connection must read exactly what that WAL holds.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Engine } from '../src/engine/engine.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-shm-reset-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(engine: Engine, sql: string, params: unknown[] = []) {
  const response = engine.execute({ queries: [{ sql, params: params as never[] }] });
  assert.ok(response.success, JSON.stringify(response));
  return response.results![0]!.rows;
}

test('a connection opening a database rebuilds the wal-index from the WAL it finds, not from a stale -shm', () => {
  const file = path.join(dir, 'db.sqlite');
  const first = new Engine(file, { keepWalFiles: true });
  run(first, 'CREATE TABLE t (v INTEGER)');
  run(first, 'INSERT INTO t VALUES (1)');
  // Not checkpointed: the commits stay in the WAL, and the -shm describes them.
  first.close({ keepWal: true });
  const earlierWal = readFileSync(`${file}-wal`);

  const second = new Engine(file, { keepWalFiles: true });
  for (let i = 2; i <= 40; i++) run(second, 'INSERT INTO t VALUES (?)', [i]);
  assert.deepEqual(run(second, 'SELECT count(*) AS n FROM t'), [[40]]);
  second.close({ keepWal: true });
  // The -shm keeps its size (the reset zeroes its header rather than truncating it)…
  assert.ok(statSync(`${file}-shm`).size >= 32768);
  // …and now describes 39 commits the WAL will not hold.
  writeFileSync(`${file}-wal`, earlierWal);

  const third = new Engine(file, { keepWalFiles: true });
  assert.deepEqual(run(third, 'SELECT count(*) AS n, max(v) AS top FROM t'), [[1, 1]]);
  run(third, 'INSERT INTO t VALUES (2)');
  assert.deepEqual(run(third, 'SELECT v FROM t ORDER BY v'), [[1], [2]]);
  assert.deepEqual(run(third, 'PRAGMA quick_check'), [['ok']]);
  third.close();
});
