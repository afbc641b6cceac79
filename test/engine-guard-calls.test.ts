// The guard's per-commit calls (native/dione_guard.c over scripts/sqlite-guard-calls.mjs): the commit
// sequence advanced by Dione's SQLite in one file control, or by PRAGMA on any other SQLite, with the
// same header; D1's size_after from a kept PRAGMA page_count and a page size read once per schema.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openSqlite } from '../src/engine/sqlite.ts';
import { open } from '../src/index.ts';
import { tempDir } from './helpers/binding.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const EXTENSION = path.join(root, 'build', process.platform === 'darwin' ? 'dione_guard.dylib' : 'dione_guard.so');

/** user_version (low half) and application_id (high half), read by a plain connection. */
function header(file: string): { low: number; high: number } {
  const db = openSqlite(file, { readonly: true });
  try {
    const low = Number(db.pragma('user_version', { simple: true })) >>> 0;
    const high = Number(db.pragma('application_id', { simple: true })) >>> 0;
    return { low, high };
  } finally {
    db.close();
  }
}

/** A database whose commit sequence stands at 2^32 - 1: the next commit carries into the high half. */
function atCarry(file: string): void {
  const db = openSqlite(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (x)');
  db.pragma('user_version = -1');
  db.close();
}

const sequenceOf = (bookmark: string) => Number.parseInt(bookmark.slice(0, 8), 16) * 2 ** 32 + Number.parseInt(bookmark.slice(9, 17), 16);

describe('the commit sequence in the header', () => {
  test("Dione's SQLite: commits carry from user_version into application_id", async () => {
    const file = path.join(tempDir(), 'carry.sqlite');
    atCarry(file);
    assert.deepEqual(header(file), { low: 0xffffffff, high: 0 });
    const db = open(file);
    const session = db.withSession('first-primary');
    await session.prepare('INSERT INTO t VALUES (1)').run();
    const first = session.getBookmark()!;
    await session.prepare('INSERT INTO t VALUES (2)').run();
    const second = session.getBookmark()!;
    await db.close();
    // The first write also creates workerd's _cf_METADATA in the same commit.
    assert.equal(sequenceOf(first), 2 ** 32);
    assert.equal(sequenceOf(second), 2 ** 32 + 1);
    assert.deepEqual(header(file), { low: 1, high: 1 });
  });

  // CI's runs on other Node versions build Dione's SQLite for them, but not better-sqlite3's own addon.
  const stockLoads = (() => {
    try {
      new Database(':memory:').close();
      return true;
    } catch {
      return false;
    }
  })();
  const stockSkip = stockLoads ? false : "better-sqlite3's own addon is built for another Node version here";
  test('another SQLite (stock better-sqlite3) seals through PRAGMA, with the same header', { skip: stockSkip }, () => {
    const sealOnce = (db: Database.Database, token: bigint, sql: string) => {
      db.exec(`BEGIN IMMEDIATE; ${sql}`);
      const value = db.prepare('SELECT dione_seal(?)').pluck().safeIntegers(true).get(token) as bigint;
      db.exec('COMMIT');
      return value;
    };
    const files = [path.join(tempDir(), 'stock.sqlite'), path.join(tempDir(), 'dione.sqlite')];
    const values = files.map((file, k) => {
      atCarry(file);
      const db = k === 0 ? new Database(file) : openSqlite(file);
      db.loadExtension(EXTENSION);
      const token = db.prepare('SELECT dione_claim()').pluck().safeIntegers(true).get() as bigint;
      const got = [sealOnce(db, token, 'INSERT INTO t VALUES (1)'), sealOnce(db, token, 'INSERT INTO t VALUES (2)')];
      // A transaction that wrote nothing is not numbered.
      db.exec('BEGIN');
      assert.equal(db.prepare('SELECT dione_seal(?)').pluck().get(token), null);
      db.exec('ROLLBACK');
      db.prepare('SELECT dione_release(?)').get(token);
      db.close();
      return got;
    });
    assert.deepEqual(values[0], [2n ** 32n, 2n ** 32n + 1n]);
    assert.deepEqual(values[1], values[0]);
    assert.deepEqual(header(files[0]!), { low: 1, high: 1 });
    assert.deepEqual(header(files[1]!), header(files[0]!));
  });

  test('a sealed transaction rolled back leaves the sequence where it was', () => {
    const file = path.join(tempDir(), 'rollback.sqlite');
    atCarry(file);
    const db = openSqlite(file);
    db.loadExtension(EXTENSION);
    const token = db.prepare('SELECT dione_claim()').pluck().safeIntegers(true).get() as bigint;
    db.exec('BEGIN IMMEDIATE; INSERT INTO t VALUES (1)');
    assert.equal(db.prepare('SELECT dione_seal(?)').pluck().safeIntegers(true).get(token), 2n ** 32n);
    db.exec('ROLLBACK');
    db.prepare('SELECT dione_release(?)').get(token);
    db.close();
    assert.deepEqual(header(file), { low: 0xffffffff, high: 0 });
  });
});

describe("size_after: (page_count - freelist_count) * page_size of the database's own pages", () => {
  for (const pageSize of [1024, 8192]) {
    test(`pages of ${pageSize} bytes, through growth, frees and a schema change`, async () => {
      const file = path.join(tempDir(), `pages-${pageSize}.sqlite`);
      const made = openSqlite(file);
      made.pragma(`page_size = ${pageSize}`);
      made.pragma('journal_mode = WAL');
      made.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)');
      made.close();
      const db = open(file);
      // Rows of 0.6 pages: each takes at least one new page.
      const insert = db.prepare(`INSERT INTO t (body) VALUES (printf('%.*c', ${Math.floor(pageSize * 0.6)}, 'x'))`);
      const sizes: number[] = [];
      for (let i = 0; i < 20; i++) sizes.push((await insert.run()).meta.size_after);
      const deleted = (await db.prepare('DELETE FROM t WHERE id > 5').run()).meta.size_after;
      await db.close();
      const check = openSqlite(file, { readonly: true });
      const expected = () =>
        (Number(check.pragma('page_count', { simple: true })) - Number(check.pragma('freelist_count', { simple: true }))) * Number(check.pragma('page_size', { simple: true }));
      assert.equal(Number(check.pragma('page_size', { simple: true })), pageSize);
      assert.equal(deleted, expected(), 'after the DELETE (its pages on the freelist)');
      check.close();
      // Each size is a multiple of the page size.
      for (let i = 1; i < sizes.length; i++) assert.ok(sizes[i]! > sizes[i - 1]!, `size ${i} grew: ${sizes}`);
      for (const size of sizes) assert.equal(size % pageSize, 0);
      assert.ok(deleted < sizes.at(-1)!);

      // After a schema change (the page size is read again), the next write counts the same way.
      const again = open(file);
      await again.exec('CREATE TABLE u (x)');
      const after = (await again.prepare("INSERT INTO u VALUES ('y')").run()).meta.size_after;
      await again.close();
      const reopened = openSqlite(file, { readonly: true });
      const pages = Number(reopened.pragma('page_count', { simple: true })) - Number(reopened.pragma('freelist_count', { simple: true }));
      assert.equal(after, pages * pageSize);
      reopened.close();
    });
  }
});
