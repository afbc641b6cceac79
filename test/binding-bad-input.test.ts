// Bad input through the public binding: every failure is D1-shaped, leaves the database exactly
// as it was (checked by reading everything back, and for file databases after reopening), and
// the database keeps working afterwards.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { type D1Database, open } from '../src/index.ts';
import { assertWorks, rejectsWith, snapshot, tempDir } from './helpers/binding.ts';
import { root } from './helpers/paths.ts';

interface Fixture {
  db: D1Database;
  file: string;
  dir: string;
}

/** A file database holding t (2 rows), and parent/child tables p and c (1 row each). */
async function fixture(): Promise<Fixture> {
  const dir = tempDir();
  const file = path.join(dir, 'bad-input.db');
  const db = open(file);
  await db.exec(
    [
      'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)',
      "INSERT INTO t (v) VALUES ('a'), ('b')",
      'CREATE TABLE p (id INTEGER PRIMARY KEY)',
      'CREATE TABLE c (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p (id))',
      'INSERT INTO p VALUES (1)',
      'INSERT INTO c VALUES (1, 1)',
    ].join('\n'),
  );
  return { db, file, dir };
}

/** `call` rejects with `message`; the content is unchanged and the database still works. */
async function refused(db: D1Database, call: () => unknown, message: RegExp): Promise<Error> {
  const before = await snapshot(db);
  const error = await rejectsWith(call, message);
  assert.deepEqual(await snapshot(db), before, 'the failed call changed the database');
  await assertWorks(db);
  assert.deepEqual(await snapshot(db), before);
  return error;
}

/** Closes `f.db`, reopens the file and checks its content is `expected`. */
async function reopenedEquals(f: Fixture, expected: Awaited<ReturnType<typeof snapshot>>): Promise<void> {
  f.db.close();
  const again = open(f.file);
  try {
    assert.deepEqual(await snapshot(again), expected, 'content after reopening the file');
    await assertWorks(again);
  } finally {
    again.close();
  }
}

const filesIn = (dir: string) => readdirSync(dir).sort();

describe('bind() with unsupported values throws synchronously', () => {
  const cases: [string, unknown, RegExp][] = [
    ['undefined', undefined, /^D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined'$/],
    ['a plain object', { a: 1 }, /^D1_TYPE_ERROR: Type 'object' not supported for value '\[object Object\]'$/],
    ['a function', function f() {}, /^D1_TYPE_ERROR: Type 'function' not supported for value 'function f\(\)/],
    ['a bigint (default intMode)', 12n, /^D1_TYPE_ERROR: Type 'bigint' not supported for value '12'$/],
    ['a Date', new Date(0), /^D1_TYPE_ERROR: Type 'object' not supported for value 'Thu Jan 01 1970 00:00:00 GMT\+0000 \(Coordinated Universal Time\)'$/],
    ['a Map', new Map(), /^D1_TYPE_ERROR: Type 'object' not supported for value '\[object Map\]'$/],
    ['an array with a non-byte', [1, 300], /^D1_TYPE_ERROR: Type 'object' not supported for value '1,300'$/],
    ['an array with a string', ['x'], /^D1_TYPE_ERROR: Type 'object' not supported for value 'x'$/],
  ];
  for (const [name, value, message] of cases) {
    test(name, async () => {
      const f = await fixture();
      try {
        const before = await snapshot(f.db);
        const insert = f.db.prepare('INSERT INTO t (v) VALUES (?)');
        assert.throws(() => insert.bind(value), { message });
        // In any position, and in a batch being built: the batch never runs.
        assert.throws(() => f.db.prepare('INSERT INTO t (id, v) VALUES (?, ?)').bind(10, value), { message });
        assert.throws(() => f.db.batch([insert.bind('first'), insert.bind(value)]), { message });
        assert.throws(() => f.db.withSession().prepare('SELECT ?').bind(value), { message });
        // The unbound statement is untouched and still usable.
        assert.deepEqual(insert.params, []);
        assert.deepEqual(await snapshot(f.db), before);
        await insert.bind('after').run();
        assert.equal(await f.db.prepare('SELECT v FROM t ORDER BY id DESC').first('v'), 'after');
      } finally {
        f.db.close();
      }
    });
  }

  test("a Date's text is as D1 shows it (workerd runs in UTC), whatever the host's time zone", async () => {
    const f = await fixture();
    const zone = process.env.TZ;
    process.env.TZ = 'Asia/Kolkata';
    try {
      assert.match(String(new Date(0)), /GMT\+0530/, 'the host time zone took effect');
      for (const [date, text] of [
        [new Date(0), 'Thu Jan 01 1970 00:00:00 GMT+0000 (Coordinated Universal Time)'],
        [new Date(Date.UTC(2026, 11, 31, 23, 59, 7)), 'Thu Dec 31 2026 23:59:07 GMT+0000 (Coordinated Universal Time)'],
        [new Date(Date.UTC(-41, 7, 1, 3, 21, 36)), 'Sat Aug 01 -0041 03:21:36 GMT+0000 (Coordinated Universal Time)'],
        [new Date(Number.NaN), 'Invalid Date'],
      ] as const) {
        assert.throws(() => f.db.prepare('SELECT ?').bind(date), { message: `D1_TYPE_ERROR: Type 'object' not supported for value '${text}'` });
      }
    } finally {
      if (zone === undefined) delete process.env.TZ;
      else process.env.TZ = zone;
      f.db.close();
    }
  });

  test('a Symbol (building the message throws, as in D1)', async () => {
    const f = await fixture();
    try {
      const before = await snapshot(f.db);
      assert.throws(() => f.db.prepare('SELECT ?').bind(Symbol('s')), TypeError);
      assert.throws(() => f.db.prepare('INSERT INTO t (v) VALUES (?)').bind(Symbol.iterator));
      assert.deepEqual(await snapshot(f.db), before);
      await assertWorks(f.db);
    } finally {
      f.db.close();
    }
  });
});

describe('bad input leaves the database unchanged', () => {
  test('too many or too few parameters', async () => {
    const f = await fixture();
    const { db } = f;
    try {
      const wrong = /^D1_ERROR: Wrong number of parameter bindings for SQL query\.$/;
      await refused(db, () => db.prepare('INSERT INTO t (v) VALUES (?)').run(), wrong);
      await refused(db, () => db.prepare('INSERT INTO t (v) VALUES (?)').bind('x', 'y').run(), wrong);
      await refused(db, () => db.prepare('INSERT INTO t (id, v) VALUES (?1, ?2)').bind(5).all(), wrong);
      await refused(db, () => db.prepare('UPDATE t SET v = ?').bind('x', 'y').first(), wrong);
      await refused(db, () => db.batch([db.prepare("INSERT INTO t (v) VALUES ('ok')"), db.prepare('INSERT INTO t (v) VALUES (?)')]), wrong);
      const values = Array.from({ length: 101 }, (_, i) => i);
      await refused(
        db,
        () => db.prepare(`INSERT INTO t (v) VALUES (coalesce(${values.map(() => '?').join(', ')}))`).bind(...values).run(),
        /^D1_ERROR: too many SQL variables at offset \d+: SQLITE_ERROR$/,
      );
      await refused(db, () => db.prepare('INSERT INTO t (v) VALUES (?101)').bind(1).run(), /^D1_ERROR: variable number must be between \?1 and \?100/);
    } finally {
      db.close();
    }
  });

  test('SQL over 100,000 bytes (ASCII and multi-byte), alone and in a batch', async () => {
    const f = await fixture();
    const { db } = f;
    try {
      // Exactly 100,000 bytes is accepted...
      const head = "INSERT INTO t (v) VALUES ('limit') /*";
      const exact = head + ' '.repeat(100_000 - head.length - 2) + '*/';
      assert.equal(Buffer.byteLength(exact), 100_000);
      await db.prepare(exact).run();
      assert.equal(await db.prepare("SELECT count(*) AS n FROM t WHERE v = 'limit'").first('n'), 1);
      // ...one byte more is not.
      const over = `${exact};`;
      const tooLong = /^D1_ERROR: statement too long: SQLITE_TOOBIG$/;
      await refused(db, () => db.prepare(over).run(), tooLong);
      const multibyte = `${head}${'é'.repeat(50_000)}*/`;
      assert.ok(multibyte.length < 100_000 && Buffer.byteLength(multibyte) > 100_000);
      await refused(db, () => db.prepare(multibyte).run(), tooLong);
      await refused(db, () => db.batch([db.prepare("INSERT INTO t (v) VALUES ('first')"), db.prepare(over)]), tooLong);
      await refused(db, () => db.exec(`INSERT INTO t (v) VALUES ('first')\n${over}\nSELECT 1`), /^D1_EXEC_ERROR: .*statement too long: SQLITE_TOOBIG$/);
    } finally {
      db.close();
    }
  });

  test('strings and BLOBs over 2,200,000 bytes', async () => {
    const f = await fixture();
    const { db } = f;
    try {
      // A large value below the limit round-trips.
      const big = 'x'.repeat(2_100_000);
      await db.prepare('INSERT INTO t (v) VALUES (?)').bind(big).run();
      assert.equal(await db.prepare('SELECT length(v) AS n FROM t WHERE id = 3').first('n'), 2_100_000);
      await db.prepare('DELETE FROM t WHERE id = 3').run();

      const tooBig = /^D1_ERROR: string or blob too big: SQLITE_TOOBIG$/;
      const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
      await refused(db, () => insert.bind('s'.repeat(2_200_001)).run(), tooBig);
      // Bytes, not characters: 1,100,001 two-byte characters.
      await refused(db, () => insert.bind('é'.repeat(1_100_001)).run(), tooBig);
      await refused(db, () => insert.bind(new Uint8Array(2_200_001)).run(), tooBig);
      await refused(db, () => insert.bind(new ArrayBuffer(2_200_001)).run(), tooBig);
      await refused(db, () => db.prepare('INSERT INTO t (v) VALUES (zeroblob(2200001))').run(), tooBig);
      await refused(db, () => db.prepare('INSERT INTO t (v) VALUES (? || ?)').bind('a'.repeat(1_100_001), 'b'.repeat(1_100_000)).run(), tooBig);
      await refused(db, () => db.prepare('SELECT length(?) AS n').bind('s'.repeat(2_200_001)).first(), tooBig);
      // An UPDATE that would grow a stored row past the limit leaves the row as it was.
      await refused(db, () => db.prepare("UPDATE t SET v = v || ? WHERE v = 'a'").bind('y'.repeat(2_199_999)).run(), tooBig);
      await refused(db, () => db.batch([insert.bind('first'), insert.bind('s'.repeat(2_200_001))]), tooBig);
    } finally {
      db.close();
    }
  });

  test('more than 100 columns', async () => {
    const f = await fixture();
    const { db } = f;
    try {
      const names = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join(', ');
      await db.prepare(`CREATE TABLE wide (${names(100)})`).run();
      await refused(db, () => db.prepare(`CREATE TABLE wider (${names(101)})`).run(), /^D1_ERROR: too many columns on wider: SQLITE_ERROR$/);
      await refused(db, () => db.prepare('ALTER TABLE wide ADD COLUMN c100').run(), /^D1_ERROR: too many columns on /);
      assert.equal(await db.prepare("SELECT count(*) AS n FROM pragma_table_info('wide')").first('n'), 100);
      const select101 = `SELECT ${Array.from({ length: 101 }, (_, i) => `${i} AS k${i}`).join(', ')}`;
      await refused(db, () => db.prepare(select101).all(), /^D1_ERROR: too many columns in result set: SQLITE_ERROR$/);
      await refused(db, () => db.prepare('SELECT * FROM wide, t').all(), /^D1_ERROR: too many columns in result set/);
      await refused(
        db,
        () => db.batch([db.prepare("INSERT INTO t (v) VALUES ('first')"), db.prepare(`CREATE TABLE wider (${names(101)})`)]),
        /^D1_ERROR: too many columns on wider/,
      );
    } finally {
      db.close();
    }
  });

  test('ATTACH and VACUUM INTO with real paths are refused and create no file', async () => {
    const f = await fixture();
    const { db, dir } = f;
    try {
      const files = filesIn(dir);
      const target = (name: string) => path.join(dir, name);
      const auth = /not authorized: SQLITE_AUTH$/;
      await refused(db, () => db.prepare(`ATTACH DATABASE '${target('attached.db')}' AS other`).run(), auth);
      await refused(db, () => db.prepare('attach ? as other').bind(target('attached2.db')).run(), auth);
      await refused(db, () => db.batch([db.prepare("INSERT INTO t (v) VALUES ('x')"), db.prepare(`ATTACH '${target('attached3.db')}' AS o`)]), auth);
      await refused(db, () => db.prepare(`VACUUM INTO '${target('copy.db')}'`).run(), auth);
      await refused(db, () => db.prepare(`vacuum main into '${target('copy2.db')}'`).run(), auth);
      await refused(db, () => db.prepare('VACUUM INTO ?').bind(target('copy3.db')).run(), auth);
      await refused(db, () => db.exec(`INSERT INTO t (v) VALUES ('x')\nVACUUM INTO '${target('copy4.db')}'`), /^D1_EXEC_ERROR: .*not authorized: SQLITE_AUTH$/);
      assert.deepEqual(filesIn(dir), files, 'no new file next to the database');
      for (const name of ['attached.db', 'attached2.db', 'attached3.db', 'copy.db', 'copy2.db', 'copy3.db', 'copy4.db']) {
        assert.equal(existsSync(target(name)), false, name);
      }
    } finally {
      db.close();
    }
  });

  test('load_extension() is refused, even for a real extension file', async () => {
    const f = await fixture();
    const { db } = f;
    try {
      const extension = path.join(root, 'build', process.platform === 'darwin' ? 'dione_guard.dylib' : 'dione_guard.so');
      assert.ok(existsSync(extension), 'the guard extension exists to try loading');
      const refusedLoad = /^D1_ERROR: not authorized: SQLITE_ERROR$/;
      await refused(db, () => db.prepare('SELECT load_extension(?)').bind(extension).all(), refusedLoad);
      await refused(db, () => db.prepare(`SELECT LOAD_EXTENSION('${extension}')`).first(), refusedLoad);
      await refused(db, () => db.prepare("INSERT INTO t (v) VALUES (load_extension('/nonexistent/lib.so'))").run(), refusedLoad);
    } finally {
      db.close();
    }
  });

  test('PRAGMA journal_mode and writable_schema are refused; the file stays in WAL mode', async () => {
    const f = await fixture();
    const { db, file } = f;
    try {
      const auth = /^D1_ERROR: not authorized: SQLITE_AUTH$/;
      await refused(db, () => db.prepare('PRAGMA journal_mode=DELETE').run(), auth);
      await refused(db, () => db.prepare("PRAGMA main.journal_mode = 'delete'").all(), auth);
      await refused(db, () => db.prepare('PRAGMA journal_mode').first(), auth);
      await refused(db, () => db.batch([db.prepare("INSERT INTO t (v) VALUES ('x')"), db.prepare('PRAGMA journal_mode = OFF')]), auth);
      await refused(db, () => db.prepare('PRAGMA writable_schema=ON').run(), auth);
      await refused(db, () => db.prepare('PRAGMA writable_schema = 1').run(), auth);
      await refused(db, () => db.prepare('SELECT * FROM pragma_writable_schema').all(), auth);
      await refused(
        db,
        () => db.batch([db.prepare('PRAGMA writable_schema = ON'), db.prepare("UPDATE sqlite_master SET sql = 'CREATE TABLE t (x)' WHERE name = 't'")]),
        auth,
      );
      await refused(db, () => db.prepare("UPDATE sqlite_master SET sql = 'CREATE TABLE t (x)' WHERE name = 't'").run(), /may not be modified/);
      const header = readFileSync(file).subarray(18, 20);
      assert.deepEqual([...header], [2, 2], 'the file header still says WAL');
      assert.ok(existsSync(`${file}-wal`));
    } finally {
      db.close();
    }
  });

  test('BEGIN, COMMIT, ROLLBACK, SAVEPOINT and RELEASE are refused and leave no transaction open', async () => {
    const f = await fixture();
    const { db, file } = f;
    const other = open(file);
    try {
      const txn = /^D1_ERROR: To execute a transaction, please use the state\.storage\.transaction\(\)/;
      for (const sql of ['BEGIN', 'BEGIN IMMEDIATE', 'begin exclusive transaction', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT s', 'RELEASE s']) {
        await refused(db, () => db.prepare(sql).run(), txn);
      }
      await refused(db, () => db.prepare("INSERT INTO t (v) VALUES ('x'); BEGIN; INSERT INTO t (v) VALUES ('y')").run(), txn);
      await refused(db, () => db.batch([db.prepare("INSERT INTO t (v) VALUES ('x')"), db.prepare('BEGIN')]), txn);
      await refused(db, () => db.exec("INSERT INTO t (v) VALUES ('x')\nBEGIN TRANSACTION\nINSERT INTO t (v) VALUES ('y')"), /^D1_EXEC_ERROR: .*To execute a transaction/);
      // No transaction was left open: another handle can write, and this one sees it at once.
      await other.prepare("INSERT INTO t (v) VALUES ('from other')").run();
      assert.equal(await db.prepare("SELECT count(*) AS n FROM t WHERE v = 'from other'").first('n'), 1);
      await db.prepare("DELETE FROM t WHERE v = 'from other'").run();
      assert.equal(await other.prepare('SELECT count(*) AS n FROM t').first('n'), 2);
    } finally {
      other.close();
      db.close();
    }
  });

  test('an empty batch', async () => {
    const f = await fixture();
    try {
      await refused(f.db, () => f.db.batch([]), /^D1_ERROR: No SQL statements detected\.$/);
      await refused(f.db, () => f.db.withSession().batch([]), /^D1_ERROR: No SQL statements detected\.$/);
    } finally {
      f.db.close();
    }
  });

  test('a batch whose 3rd statement fails after DDL and inserts: nothing persists, also after reopening', async () => {
    const f = await fixture();
    const { db } = f;
    const before = await snapshot(db);
    await refused(
      db,
      () =>
        db.batch([
          db.prepare('CREATE TABLE n (id INTEGER PRIMARY KEY, v TEXT)'),
          db.prepare("INSERT INTO n (v) VALUES ('one'), ('two')"),
          db.prepare('INSERT INTO missing_table VALUES (1)'),
          db.prepare("INSERT INTO t (v) VALUES ('never')"),
        ]),
      /^D1_ERROR: no such table: missing_table/,
    );
    await refused(
      db,
      () =>
        db.batch([
          db.prepare("INSERT INTO t (v) VALUES ('x')"),
          db.prepare("UPDATE t SET v = 'changed' WHERE id = 1"),
          db.prepare("INSERT INTO t (id, v) VALUES (2, 'duplicate')"),
        ]),
      /^D1_ERROR: UNIQUE constraint failed: t\.id: SQLITE_CONSTRAINT/,
    );
    await refused(
      db,
      () => db.batch([db.prepare('DROP TABLE c'), db.prepare('ALTER TABLE t ADD COLUMN w'), db.prepare('SELEC 1')]),
      /^D1_ERROR: near "SELEC": syntax error/,
    );
    assert.equal(await db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'n'").first('n'), 0);
    await reopenedEquals(f, before);
  });

  test('exec() failing on line 3 of 5: nothing persists, also after reopening', async () => {
    const f = await fixture();
    const { db } = f;
    const before = await snapshot(db);
    const lines = (third: string) =>
      ['CREATE TABLE e (x)', 'INSERT INTO e VALUES (1)', third, 'INSERT INTO e VALUES (2)', "INSERT INTO t (v) VALUES ('five')"].join('\n');
    await refused(db, () => db.exec(lines('INSERT INTO nope VALUES (1)')), /^D1_EXEC_ERROR: Error in line 1: CREATE TABLE e \(x\): no such table: nope/);
    await refused(db, () => db.exec(lines('INSERT INTO e VALUES (')), /^D1_EXEC_ERROR: Error in line 1: .*incomplete input/);
    await refused(db, () => db.exec(lines("INSERT INTO t (id, v) VALUES (1, 'dup')")), /^D1_EXEC_ERROR: .*UNIQUE constraint failed: t\.id/);
    await refused(db, () => db.exec(lines('PRAGMA user_version = 3')), /^D1_EXEC_ERROR: .*not authorized: SQLITE_AUTH$/);
    await reopenedEquals(f, before);
  });

  test('a deferred foreign-key violation fails the whole batch and leaves the last committed state', async () => {
    const f = await fixture();
    const { db } = f;
    const before = await snapshot(db);
    const error = await refused(
      db,
      () =>
        db.batch([
          db.prepare('PRAGMA defer_foreign_keys = ON'),
          db.prepare('INSERT INTO p VALUES (2)'),
          db.prepare('INSERT INTO c VALUES (2, 99)'),
          db.prepare("UPDATE t SET v = 'changed'"),
        ]),
      /constraints were violated: FOREIGN KEY constraint failed/,
    );
    assert.doesNotMatch(error.message, /^D1_/, 'D1 reports this as a reset, not a D1_ERROR');
    // The deferral did not outlive the batch: an orphan is refused at once.
    await refused(db, () => db.prepare('INSERT INTO c VALUES (3, 99)').run(), /^D1_ERROR: FOREIGN KEY constraint failed/);
    assert.equal(await db.prepare('PRAGMA defer_foreign_keys').first('defer_foreign_keys'), 0);
    // A deferred violation repaired before the batch ends commits.
    await db.batch([db.prepare('PRAGMA defer_foreign_keys = ON'), db.prepare('INSERT INTO c VALUES (4, 4)'), db.prepare('INSERT INTO p VALUES (4)')]);
    assert.deepEqual(await db.prepare('SELECT id, pid FROM c ORDER BY id').raw(), [
      [1, 1],
      [4, 4],
    ]);
    await db.batch([db.prepare('DELETE FROM c WHERE id = 4'), db.prepare('DELETE FROM p WHERE id = 4')]);
    await reopenedEquals(f, before);
  });
});

describe('a closed database', () => {
  test('every method rejects with a clear error; only bind type errors throw synchronously', async () => {
    const f = await fixture();
    const { db } = f;
    const before = await snapshot(db);
    const prepared = db.prepare('SELECT * FROM t WHERE id = ?').bind(1);
    const session = db.withSession();
    db.close();

    const closed = /^D1_ERROR: .*not open/;
    await rejectsWith(() => db.prepare('SELECT 1 AS c').run(), closed);
    await rejectsWith(() => db.prepare('SELECT 1 AS c').all(), closed);
    await rejectsWith(() => db.prepare('SELECT 1 AS c').first(), closed);
    await rejectsWith(() => db.prepare('SELECT 1 AS c').first('c'), closed);
    await rejectsWith(() => db.prepare('SELECT 1 AS c').raw(), closed);
    await rejectsWith(() => db.prepare('SELECT 1 AS c').raw({ columnNames: true }), closed);
    await rejectsWith(() => db.prepare("INSERT INTO t (v) VALUES ('late')").run(), closed);
    await rejectsWith(() => prepared.all(), closed);
    await rejectsWith(() => db.batch([db.prepare('SELECT 1'), prepared]), closed);
    await rejectsWith(() => db.batch([]), /^D1_ERROR: /);
    await rejectsWith(() => db.exec("INSERT INTO t (v) VALUES ('late')"), /^D1_EXEC_ERROR: .*not open/);
    await rejectsWith(() => db.dump(), /^D1_DUMP_ERROR: .*not open/);
    await rejectsWith(() => session.prepare('SELECT 1').all(), closed);
    await rejectsWith(() => session.batch([session.prepare('SELECT 1')]), closed);
    await rejectsWith(() => db.withSession('first-primary').prepare('SELECT 1').first(), closed);
    assert.equal(session.getBookmark(), null);

    // Building statements is synchronous and still works; bind type errors still throw.
    assert.doesNotThrow(() => db.prepare('SELECT ?').bind(1, 'two'));
    assert.throws(() => db.prepare('SELECT ?').bind(undefined), { message: /^D1_TYPE_ERROR: / });
    assert.doesNotThrow(() => db.close(), 'closing twice is harmless');

    const again = open(f.file);
    try {
      assert.deepEqual(await snapshot(again), before);
      await assertWorks(again);
    } finally {
      again.close();
    }
  });
});

test("statement methods called detached from their statement reject, as D1's async methods do", async () => {
  const db = open(':memory:');
  const statement = db.prepare('SELECT 1');
  for (const method of [statement.run, statement.all, statement.first, statement.raw]) {
    await rejectsWith(() => (method as () => Promise<unknown>)(), /Cannot read properties of undefined/);
  }
  await db.close();
});
