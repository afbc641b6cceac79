// rows_read and rows_written come from counters inside SQLite (scripts/build-sqlite.mjs), the way
// D1 counts them. The conformance suite compares them with D1 scenario by scenario; these tests
// pin the shapes D1 users read them for (a missing index, index writes) and the cases the counters'
// bookkeeping could get wrong: a cached statement that failed, several statements in one prepare.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { open } from '../src/index.ts';

async function fresh() {
  const db = open(':memory:');
  await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, a, b)');
  await db.batch(Array.from({ length: 100 }, (_, i) => db.prepare('INSERT INTO t (a, b) VALUES (?, ?)').bind(i, `b${i}`)));
  return db;
}

test('a full scan reads every row; a primary-key or indexed lookup reads one', async () => {
  const db = await fresh();
  try {
    const scan = await db.prepare('SELECT * FROM t WHERE a = ?').bind(42).all();
    assert.equal(scan.results.length, 1);
    assert.equal(scan.meta.rows_read, 100, 'an unindexed filter visits the whole table');
    const byKey = await db.prepare('SELECT * FROM t WHERE id = ?').bind(42).all();
    assert.equal(byKey.meta.rows_read, 1);
    await db.exec('CREATE INDEX t_a ON t (a)');
    const indexed = await db.prepare('SELECT * FROM t WHERE a = ?').bind(42).all();
    assert.equal(indexed.results.length, 1);
    // The index entry, then the table row it points at (D1 counts the seek into the index).
    assert.ok(indexed.meta.rows_read >= 1 && indexed.meta.rows_read <= 2, `indexed lookup read ${indexed.meta.rows_read}`);
    const count = await db.prepare('SELECT count(*) AS n FROM t').first<{ n: number }>();
    assert.equal(count?.n, 100);
  } finally {
    db.close();
  }
});

test('an insert writes the row and one entry per index', async () => {
  const db = await fresh();
  try {
    await db.exec('CREATE INDEX t_a ON t (a)');
    await db.exec('CREATE INDEX t_b ON t (b)');
    const insert = await db.prepare('INSERT INTO t (a, b) VALUES (1, 2)').run();
    assert.equal(insert.meta.rows_written, 3);
    assert.equal(insert.meta.changes, 1);
    const update = await db.prepare('UPDATE t SET b = ? WHERE id = ?').bind('new', 5).run();
    // The table row and the changed index's new entry: like D1's, the counters count index
    // inserts, not the deletes of old index entries.
    assert.equal(update.meta.rows_written, 2);
    const del = await db.prepare('DELETE FROM t WHERE a < 10').run();
    assert.equal(del.meta.changes, 11);
    assert.equal(del.meta.rows_written, 11);
  } finally {
    db.close();
  }
});

test('a statement that failed does not add its counts to the next run of the same SQL', async () => {
  const db = await fresh();
  try {
    const sql = 'SELECT id, json(b) AS j FROM t WHERE id <= ?';
    await db.exec(`UPDATE t SET b = '[1]' WHERE id <= 50`);
    // Row 51's b is not JSON: the scan fails after visiting 51 rows.
    await assert.rejects(db.prepare(sql).bind(60).all(), /malformed JSON/);
    const ok = await db.prepare(sql).bind(5).all();
    assert.equal(ok.results.length, 5);
    const again = await db.prepare(sql).bind(5).all();
    assert.equal(ok.meta.rows_read, again.meta.rows_read);
    assert.ok(ok.meta.rows_read <= 6, `a 5-row range read ${ok.meta.rows_read}`);
  } finally {
    db.close();
  }
});

test('several statements in one prepare report the last statement, as D1 does', async () => {
  const db = await fresh();
  try {
    const two = await db.prepare('INSERT INTO t (a) VALUES (1); INSERT INTO t (a) VALUES (2)').run();
    assert.equal(two.meta.rows_written, 1);
    const mixed = await db.prepare('INSERT INTO t (a) VALUES (3); SELECT * FROM t').all();
    assert.equal(mixed.results.length, 103);
    assert.equal(mixed.meta.rows_read, 103);
    assert.equal(mixed.meta.rows_written, 0);
  } finally {
    db.close();
  }
});

test('every database gets workerd’s _cf_METADATA at its first write, out of the user’s reach', async () => {
  const db = open(':memory:');
  try {
    await db.exec('CREATE TABLE x (v)');
    const names = await db.prepare('SELECT name FROM sqlite_master ORDER BY name').raw();
    assert.deepEqual(names, [['_cf_METADATA'], ['x']]);
    await assert.rejects(db.prepare('SELECT * FROM _cf_METADATA').all(), /SQLITE_AUTH/);
    await assert.rejects(db.prepare('DROP TABLE _cf_METADATA').run(), /SQLITE_AUTH/);
  } finally {
    db.close();
  }
});
