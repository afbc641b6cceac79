// intMode: 'bigint' returns INTEGER values as exact bigints and accepts bigint parameters; the
// default mode behaves as D1 (numbers, lossy past 2^53, bigint parameters refused).
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { open } from '../src/index.ts';
import { assertWorks, rejectsWith, snapshot, tempDir } from './helpers/binding.ts';

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;
const BEYOND_2_53 = 9007199254740993n; // 2^53 + 1: not representable as a double

describe("intMode: 'bigint'", () => {
  test('integers beyond 2^53 come back exact from all(), first(), first(col), raw() and batch()', async () => {
    const db = open(':memory:', { intMode: 'bigint' });
    try {
      const sql = `SELECT ${BEYOND_2_53} AS a, ${INT64_MAX} AS b, ${INT64_MIN} AS c, -${BEYOND_2_53} AS d, 1 AS e, 1.5 AS f, 'text' AS g, NULL AS h`;
      const expected = { a: BEYOND_2_53, b: INT64_MAX, c: INT64_MIN, d: -BEYOND_2_53, e: 1n, f: 1.5, g: 'text', h: null };
      const all = await db.prepare(sql).all();
      assert.deepEqual(all.results, [expected]);
      assert.equal(typeof all.meta.duration, 'number');
      assert.deepEqual(await db.prepare(sql).first(), expected);
      assert.equal(await db.prepare(sql).first('b'), INT64_MAX);
      assert.equal(await db.prepare(sql).first('c'), INT64_MIN);
      assert.deepEqual(await db.prepare(sql).raw(), [Object.values(expected)]);
      assert.deepEqual(await db.prepare(sql).raw({ columnNames: true }), [Object.keys(expected), Object.values(expected)]);
      const [batched] = await db.batch([db.prepare(sql)]);
      assert.deepEqual(batched!.results, [expected]);
      // Arithmetic in SQL stays exact.
      assert.equal(await db.prepare(`SELECT ${INT64_MAX} - 1 AS v`).first('v'), INT64_MAX - 1n);
    } finally {
      db.close();
    }
  });

  test('bigint parameters are stored as exact INTEGERs and survive a reopen', async () => {
    const file = path.join(tempDir(), 'bigint.db');
    const db = open(file, { intMode: 'bigint' });
    try {
      await db.prepare('CREATE TABLE t (id INTEGER PRIMARY KEY, v, label TEXT)').run();
      const values = [BEYOND_2_53, INT64_MAX, INT64_MIN, 0n, -1n];
      for (const [i, v] of values.entries()) {
        await db.prepare('INSERT INTO t (id, v, label) VALUES (?, ?, ?)').bind(BigInt(i + 1), v, String(v)).run();
      }
      // Exact comparisons made by SQLite itself, against the decimal text.
      const rows = await db.prepare('SELECT typeof(v) AS type, v = CAST(label AS INTEGER) AS exact, v FROM t ORDER BY id').all();
      assert.deepEqual(
        rows.results,
        values.map((v) => ({ type: 'integer', exact: 1n, v })),
      );
      // A bigint key finds its row.
      assert.equal(await db.prepare('SELECT label FROM t WHERE v = ?').bind(BEYOND_2_53).first('label'), String(BEYOND_2_53));
      assert.equal(await db.prepare('SELECT count(*) AS n FROM t WHERE v = ?').bind(BEYOND_2_53 - 1n).first('n'), 0n);
      // A bigint row id.
      await db.prepare('INSERT INTO t (id, v) VALUES (?, 0)').bind(INT64_MAX).run();
      assert.equal(await db.prepare('SELECT max(id) AS m FROM t').first('m'), INT64_MAX);
    } finally {
      db.close();
    }
    const again = open(file, { intMode: 'bigint' });
    try {
      assert.equal(await again.prepare('SELECT v FROM t WHERE id = 2').first('v'), INT64_MAX);
    } finally {
      again.close();
    }
    // The same file read in the default mode gives (lossy) numbers.
    const lossy = open(file);
    try {
      assert.equal(await lossy.prepare('SELECT v FROM t WHERE id = 1').first('v'), 9007199254740992);
    } finally {
      lossy.close();
    }
  });

  test('numbers still bind as D1 binds them (REAL); other types are unchanged', async () => {
    const db = open(':memory:', { intMode: 'bigint' });
    try {
      assert.deepEqual(await db.prepare('SELECT typeof(?) AS a, typeof(?) AS b, typeof(?) AS c, ? AS d').bind(7, 7n, 'x', [1, 2]).first(), {
        a: 'real',
        b: 'integer',
        c: 'text',
        d: [1, 2],
      });
      assert.throws(() => db.prepare('SELECT ?').bind(undefined), { message: /^D1_TYPE_ERROR: / });
      assert.throws(() => db.prepare('SELECT ?').bind({}), { message: /^D1_TYPE_ERROR: / });
    } finally {
      db.close();
    }
  });

  test('a bigint outside the 64-bit range is refused by bind() and nothing is written', async () => {
    const db = open(':memory:', { intMode: 'bigint' });
    try {
      await db.prepare('CREATE TABLE t (v)').run();
      const before = await snapshot(db);
      for (const v of [INT64_MAX + 1n, INT64_MIN - 1n, 2n ** 100n]) {
        assert.throws(() => db.prepare('INSERT INTO t VALUES (?)').bind(v), {
          message: `D1_TYPE_ERROR: Type 'bigint' not supported for value '${v}'`,
        });
      }
      assert.deepEqual(await snapshot(db), before);
      await assertWorks(db);
    } finally {
      db.close();
    }
  });
});

describe("default intMode ('number', as D1)", () => {
  test('integers come back as numbers, lossy beyond 2^53', async () => {
    const db = open(':memory:');
    try {
      const row = await db.prepare(`SELECT ${BEYOND_2_53} AS a, ${INT64_MAX} AS b, ${INT64_MIN} AS c, 42 AS d`).first();
      assert.deepEqual(row, { a: 9007199254740992, b: Number(INT64_MAX), c: Number(INT64_MIN), d: 42 });
      assert.equal(typeof (await db.prepare('SELECT 1 AS v').first('v')), 'number');
      assert.deepEqual(await db.prepare(`SELECT ${INT64_MAX} AS v`).raw(), [[2 ** 63]]);
    } finally {
      db.close();
    }
  });

  test('bigint parameters are refused synchronously with D1_TYPE_ERROR', async () => {
    const db = open(':memory:');
    try {
      await db.prepare('CREATE TABLE t (v)').run();
      const before = await snapshot(db);
      assert.throws(() => db.prepare('INSERT INTO t VALUES (?)').bind(1n), { message: "D1_TYPE_ERROR: Type 'bigint' not supported for value '1'" });
      assert.throws(() => db.prepare('INSERT INTO t VALUES (?)').bind(BEYOND_2_53), {
        message: `D1_TYPE_ERROR: Type 'bigint' not supported for value '${BEYOND_2_53}'`,
      });
      assert.throws(() => db.withSession().prepare('SELECT ?').bind(0n), { message: /^D1_TYPE_ERROR: Type 'bigint'/ });
      assert.deepEqual(await snapshot(db), before);
    } finally {
      db.close();
    }
  });

  test("a bigint-mode handle and a default handle on one file each keep their own mode", async () => {
    const file = path.join(tempDir(), 'modes.db');
    const big = open(file, { intMode: 'bigint' });
    const plain = open(file);
    try {
      await big.prepare('CREATE TABLE t (v INTEGER)').run();
      await big.prepare('INSERT INTO t VALUES (?)').bind(BEYOND_2_53).run();
      assert.equal(await big.prepare('SELECT v FROM t').first('v'), BEYOND_2_53);
      assert.equal(await plain.prepare('SELECT v FROM t').first('v'), 9007199254740992);
      assert.throws(() => plain.prepare('SELECT ?').bind(1n), { message: /^D1_TYPE_ERROR: / });
      await rejectsWith(() => plain.prepare('SELECT v FROM nope').all(), /^D1_ERROR: no such table/);
    } finally {
      big.close();
      plain.close();
    }
  });
});
