// File databases through open(): creation, persistence, WAL, several handles on one file,
// read-only handles and dump(). Real SQLite files in fresh temp directories.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { openSqlite } from '../src/engine/sqlite.ts';
import { open } from '../src/index.ts';
import { assertWorks, rejectsWith, snapshot, tempDir } from './helpers/binding.ts';

/** SQLite file header: bytes 18 and 19 are the write/read format versions, 2 in WAL mode. */
function headerJournalVersions(file: string): [number, number] {
  const header = readFileSync(file).subarray(0, 100);
  assert.equal(header.subarray(0, 16).toString('latin1'), 'SQLite format 3\0');
  return [header[18]!, header[19]!];
}

describe('open() on files', () => {
  test('creates the file and every missing parent directory', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'a', 'b', 'c', 'data.db');
    assert.equal(existsSync(path.join(dir, 'a')), false);
    const db = open(file);
    try {
      await db.prepare('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)').run();
      await db.prepare('INSERT INTO t (v) VALUES (?)').bind('hello').run();
      assert.ok(statSync(file).isFile());
      assert.equal(await db.prepare('SELECT v FROM t').first('v'), 'hello');
    } finally {
      db.close();
    }
    assert.deepEqual(openSqlite(file, { readonly: true }).prepare('SELECT id, v FROM t').all(), [{ id: 1, v: 'hello' }]);
  });

  for (const durability of ['full', 'normal'] as const) {
    test(`data persists across close and reopen (durability '${durability}')`, async () => {
      const file = path.join(tempDir(), 'persist.db');
      const first = open(file, { durability });
      await first.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)\nCREATE INDEX t_v ON t (v)');
      await first.batch([
        first.prepare('INSERT INTO t (v, b) VALUES (?, ?)').bind('one', new Uint8Array([1, 2, 3])),
        first.prepare('INSERT INTO t (v, b) VALUES (?, ?)').bind('two', null),
      ]);
      await first.prepare("UPDATE t SET v = 'uno' WHERE id = 1").run();
      const before = await snapshot(first);
      first.close();

      const second = open(file, { durability });
      try {
        assert.deepEqual(await snapshot(second), before);
        assert.deepEqual(await second.prepare('SELECT id, v, b FROM t ORDER BY id').all().then((r) => r.results), [
          { id: 1, v: 'uno', b: [1, 2, 3] },
          { id: 2, v: 'two', b: null },
        ]);
        await second.prepare("INSERT INTO t (v) VALUES ('three')").run();
      } finally {
        second.close();
      }
      const third = open(file);
      try {
        assert.equal(await third.prepare('SELECT count(*) AS n FROM t').first('n'), 3);
      } finally {
        third.close();
      }
    });
  }

  test('file databases are in WAL mode, and an existing rollback-journal file is switched to WAL', async () => {
    const dir = tempDir();
    const fresh = path.join(dir, 'fresh.db');
    const db = open(fresh);
    try {
      await db.exec('CREATE TABLE t (v)\nINSERT INTO t VALUES (1)');
      assert.ok(existsSync(`${fresh}-wal`), 'a WAL file exists while the database is open');
      assert.deepEqual(headerJournalVersions(fresh), [2, 2]);
    } finally {
      db.close();
    }
    const check = openSqlite(fresh, { readonly: true });
    assert.equal(check.pragma('journal_mode', { simple: true }), 'wal');
    check.close();

    // A database written by plain SQLite in the default rollback-journal mode.
    const legacy = path.join(dir, 'legacy.db');
    const plain = openSqlite(legacy);
    plain.exec("CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('from sqlite')");
    assert.equal(plain.pragma('journal_mode', { simple: true }), 'delete');
    plain.close();
    assert.deepEqual(headerJournalVersions(legacy), [1, 1]);
    const opened = open(legacy);
    try {
      assert.equal(await opened.prepare('SELECT v FROM t').first('v'), 'from sqlite');
      await opened.prepare("INSERT INTO t VALUES ('from dione')").run();
    } finally {
      opened.close();
    }
    assert.deepEqual(headerJournalVersions(legacy), [2, 2]);
    const after = openSqlite(legacy, { readonly: true });
    assert.deepEqual(after.prepare('SELECT v FROM t ORDER BY rowid').pluck().all(), ['from sqlite', 'from dione']);
    after.close();
  });

  test("two handles on one file see each other's committed writes", async () => {
    const file = path.join(tempDir(), 'shared.db');
    const a = open(file);
    const b = open(file);
    try {
      await a.prepare('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)').run();
      assert.deepEqual(await b.prepare('SELECT * FROM t').all().then((r) => r.results), []);
      await a.prepare("INSERT INTO t (v) VALUES ('from a')").run();
      assert.deepEqual(await b.prepare('SELECT v FROM t ORDER BY id').raw(), [['from a']]);
      await b.batch([b.prepare("INSERT INTO t (v) VALUES ('from b 1')"), b.prepare("INSERT INTO t (v) VALUES ('from b 2')")]);
      assert.deepEqual(await a.prepare('SELECT v FROM t ORDER BY id').raw(), [['from a'], ['from b 1'], ['from b 2']]);
      await b.exec("DELETE FROM t WHERE v = 'from a'");
      assert.equal(await a.prepare('SELECT count(*) AS n FROM t').first('n'), 2);
      // A failed batch on one handle is invisible to the other.
      await rejectsWith(() => a.batch([a.prepare("INSERT INTO t (v) VALUES ('lost')"), a.prepare('INSERT INTO nope VALUES (1)')]), /^D1_ERROR: no such table: nope/);
      assert.equal(await b.prepare("SELECT count(*) AS n FROM t WHERE v = 'lost'").first('n'), 0);
    } finally {
      a.close();
      b.close();
    }
  });

  test('a handle sees schema changes committed by another handle (column names of SELECT *)', async () => {
    const file = path.join(tempDir(), 'schema.db');
    const a = open(file);
    const b = open(file);
    try {
      await a.exec('CREATE TABLE t (a INTEGER, b INTEGER)\nINSERT INTO t VALUES (1, 2)');
      assert.deepEqual(await b.prepare('SELECT * FROM t').first(), { a: 1, b: 2 });
      // Same number of columns, new names: the other handle must not reuse the old names.
      await a.exec('DROP TABLE t\nCREATE TABLE t (x INTEGER, y INTEGER)\nINSERT INTO t VALUES (3, 4)');
      assert.deepEqual(await b.prepare('SELECT * FROM t').first(), { x: 3, y: 4 });
      assert.deepEqual(await b.prepare('SELECT * FROM t').raw({ columnNames: true }), [['x', 'y'], [3, 4]]);
      await a.prepare('ALTER TABLE t RENAME COLUMN x TO z').run();
      assert.deepEqual(await b.prepare('SELECT * FROM t').all().then((r) => r.results), [{ z: 3, y: 4 }]);
    } finally {
      a.close();
      b.close();
    }
  });

  test("meta on one handle reflects the other handle's committed writes (size_after, changed_db)", async () => {
    const file = path.join(tempDir(), 'meta.db');
    const a = open(file);
    const b = open(file);
    try {
      await a.prepare('CREATE TABLE t (v TEXT)').run();
      await b.prepare('SELECT 1').run();
      for (let i = 0; i < 5; i++) await a.prepare('INSERT INTO t VALUES (?)').bind('x'.repeat(50_000)).run();
      const seenByA = (await a.prepare('SELECT count(*) FROM t').run()).meta.size_after;
      const seenByB = (await b.prepare('SELECT count(*) FROM t').run()).meta.size_after;
      assert.ok(seenByA > 250_000, `size_after on the writing handle: ${seenByA}`);
      assert.equal(seenByB, seenByA, 'both handles describe the same file');
      const noop = await b.prepare("UPDATE t SET v = 'y' WHERE 0").run();
      assert.equal(noop.meta.changes, 0);
      assert.equal(noop.meta.changed_db, false, 'an UPDATE that matched nothing did not change the database');
    } finally {
      a.close();
      b.close();
    }
  });

  test('readonly: true reads, refuses every write with a D1 error, and leaves the file unchanged', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'ro.db');
    const writer = open(file);
    await writer.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)\nINSERT INTO t (v) VALUES ('kept')");
    writer.close();
    const bytes = readFileSync(file);

    const ro = open(file, { readonly: true });
    try {
      const before = await snapshot(ro);
      assert.deepEqual(before.tables.t, [[1, 'kept']]);
      await rejectsWith(() => ro.prepare("INSERT INTO t (v) VALUES ('no')").run(), /^D1_ERROR: attempt to write a readonly database: SQLITE_READONLY/);
      await rejectsWith(() => ro.prepare("UPDATE t SET v = 'no'").all(), /^D1_ERROR: .*readonly database/);
      await rejectsWith(() => ro.prepare('DELETE FROM t RETURNING *').first(), /^D1_ERROR: .*readonly database/);
      await rejectsWith(() => ro.prepare('CREATE TABLE u (x)').run(), /^D1_ERROR: .*readonly database/);
      await rejectsWith(() => ro.batch([ro.prepare('SELECT 1'), ro.prepare('DROP TABLE t')]), /^D1_ERROR: .*readonly database/);
      await rejectsWith(() => ro.exec("INSERT INTO t (v) VALUES ('no')"), /^D1_EXEC_ERROR: .*readonly database/);
      await rejectsWith(() => ro.withSession().prepare("INSERT INTO t (v) VALUES ('no')").run(), /^D1_ERROR: .*readonly database/);
      assert.deepEqual(await snapshot(ro), before);
      // Still readable after the refusals.
      assert.equal(await ro.prepare('SELECT v FROM t WHERE id = ?').bind(1).first('v'), 'kept');
    } finally {
      ro.close();
    }
    assert.ok(readFileSync(file).equals(bytes), 'the database file is byte-for-byte unchanged');
    if (existsSync(`${file}-wal`)) assert.equal(statSync(`${file}-wal`).size, 0, 'no WAL frames were written');
    const check = openSqlite(file, { readonly: true });
    assert.deepEqual(check.prepare('SELECT id, v FROM t').all(), [{ id: 1, v: 'kept' }]);
    check.close();
  });

  test('readonly: true works on read-only media, where SQLite can create no -shm', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to make a read-only bind mount');
    const source = tempDir();
    const file = path.join(source, 'media.db');
    const writer = open(file);
    await writer.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)\nINSERT INTO t (v) VALUES ('on the disc')");
    writer.close();
    assert.equal(existsSync(`${file}-shm`), false, 'a clean close leaves no -shm');
    const media = tempDir();
    execFileSync('mount', ['--bind', source, media]);
    try {
      execFileSync('mount', ['-o', 'remount,bind,ro', media]);
      const ro = open(path.join(media, 'media.db'), { readonly: true });
      try {
        assert.equal(await ro.prepare('SELECT v FROM t WHERE id = ?').bind(1).first('v'), 'on the disc');
        await rejectsWith(() => ro.prepare("INSERT INTO t (v) VALUES ('no')").run(), /^D1_ERROR: attempt to write a readonly database: SQLITE_READONLY/);
      } finally {
        ro.close();
      }
    } finally {
      execFileSync('umount', [media]);
    }
  });

  test('readonly: true sees writes committed by a writable handle', async () => {
    const file = path.join(tempDir(), 'ro-live.db');
    const writer = open(file);
    const ro = open(file, { readonly: true });
    try {
      await writer.prepare('CREATE TABLE t (v)').run();
      await writer.prepare('INSERT INTO t VALUES (?)').bind('new').run();
      assert.deepEqual(await ro.prepare('SELECT v FROM t').raw(), [['new']]);
    } finally {
      ro.close();
      writer.close();
    }
  });

  test('readonly: true on a missing file fails at open() and creates nothing', () => {
    const dir = tempDir();
    const file = path.join(dir, 'missing', 'none.db');
    assert.throws(() => open(file, { readonly: true }));
    assert.equal(existsSync(path.join(dir, 'missing')), false);
    const inDir = path.join(dir, 'none.db');
    assert.throws(() => open(inDir, { readonly: true }));
    assert.equal(existsSync(inDir), false);
  });
});

describe('dump()', () => {
  async function checkDump(buffer: ArrayBuffer, dir: string, expected: unknown[]) {
    assert.ok(buffer instanceof ArrayBuffer, 'dump() resolves to an ArrayBuffer');
    const copy = path.join(dir, `dump-${Math.random().toString(36).slice(2)}.db`);
    writeFileSync(copy, new Uint8Array(buffer));
    const db = openSqlite(copy, { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
      assert.deepEqual(db.prepare('SELECT id, v, b FROM t ORDER BY id').raw().all(), expected);
    } finally {
      db.close();
    }
  }

  const rows = [
    [1, 'alpha', Buffer.from([0, 1, 2])],
    [2, 'beta', null],
  ];

  test('of a file database: a valid SQLite file holding the data (including the WAL)', async () => {
    const dir = tempDir();
    const db = open(path.join(dir, 'src.db'));
    try {
      await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)');
      await db.batch([
        db.prepare('INSERT INTO t (v, b) VALUES (?, ?)').bind('alpha', new Uint8Array([0, 1, 2])),
        db.prepare('INSERT INTO t (v, b) VALUES (?, ?)').bind('beta', null),
      ]);
      const before = await snapshot(db);
      await checkDump(await db.dump(), dir, rows);
      assert.deepEqual(await snapshot(db), before, 'dump() does not change the database');
      await assertWorks(db);
    } finally {
      db.close();
    }
  });

  test("of ':memory:': a valid SQLite file holding the data", async () => {
    const dir = tempDir();
    const db = open(':memory:');
    try {
      await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, b BLOB)');
      await db.prepare('INSERT INTO t (v, b) VALUES (?, ?), (?, ?)').bind('alpha', [0, 1, 2], 'beta', null).run();
      await checkDump(await db.dump(), dir, rows);
    } finally {
      db.close();
    }
  });
});
