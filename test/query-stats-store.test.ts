// Query statistics at the unit level: normalized statement texts, the store's retention (31 days,
// measured with a clock the test moves) and its per-hour cap (the most run statements kept, the
// rest folded into one row with nothing lost from the totals), and the recorder's flush.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { StatementResult } from '../src/api/executor.ts';
import { compileFilter } from '../src/server/stats/filter.ts';
import { groupRows } from '../src/server/stats/groups.ts';
import { describeStatement, normalizeStatement } from '../src/server/stats/normalize.ts';
import { QueryStatsStore } from '../src/server/stats/query-stats-store.ts';
import { QueryStatsRecorder } from '../src/server/stats/recorder.ts';
import { HOUR_MS, hourOf, OTHER_QUERIES, type StatRow } from '../src/server/stats/stat-row.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'dione-query-stats-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const file = () => path.join(dir, `stats-${++files}.sqlite`);

const DAY = 24 * HOUR_MS;
const START = Date.parse('2026-11-01T10:30:00Z');

function row(query: string, hour: number, count: number, database = 'db-1'): StatRow {
  return { database, hour, query, readQueries: count, writeQueries: 0, durationMs: count * 0.5, rowsRead: count * 10, rowsWritten: 0, rowsReturned: count };
}

function result(rowsReturned: number, meta: { duration: number; rows_read: number; rows_written: number }): StatementResult {
  return {
    columns: ['x'],
    rows: Array.from({ length: rowsReturned }, (_, i) => [i]),
    meta: { ...meta, size_after: 0, last_row_id: 0, changed_db: meta.rows_written > 0, changes: meta.rows_written },
  };
}

test('statement texts are normalized: literals and parameters become ?, comments go, whitespace collapses', () => {
  assert.equal(normalizeStatement("SELECT * FROM t WHERE id = 7 AND name = 'x'"), 'SELECT * FROM t WHERE id = ? AND name = ?');
  assert.equal(normalizeStatement('SELECT  *\n FROM t -- why\n WHERE id = ?1 /* c */ AND b = x\'00\''), 'SELECT * FROM t WHERE id = ? AND b = ?');
  assert.equal(normalizeStatement('  INSERT INTO t (a, b) VALUES (:a, 2.5e3) ; '), 'INSERT INTO t (a, b) VALUES (:a, ?) ;'.replace(':a', '?'));
  assert.equal(normalizeStatement('SELECT "quoted id", [other] FROM t'), 'SELECT "quoted id", [other] FROM t', 'identifiers stay');
  assert.equal(describeStatement('UPDATE t SET a = 1').writes, true);
  assert.equal(describeStatement('SELECT 1').writes, false);
});

test('the store keeps 31 days: older hours are dropped as the clock moves on, newer ones stay', () => {
  let now = START;
  const store = new QueryStatsStore(file(), { now: () => now });
  try {
    store.add([row('SELECT ?', hourOf(START), 3), row('SELECT ?', hourOf(START) + 5 * DAY, 2)]);
    assert.equal(store.rows().length, 2);
    now = START + 31 * DAY; // the first hour is exactly 31 days old: kept
    store.add([row('SELECT ?', hourOf(now), 1)]);
    assert.deepEqual(store.rows().map((r) => r.hour), [hourOf(START), hourOf(START) + 5 * DAY, hourOf(now)]);
    now = START + 31 * DAY + HOUR_MS; // now it is older than 31 days
    store.add([row('SELECT ?', hourOf(now), 1)]);
    assert.deepEqual(store.rows().map((r) => r.hour), [hourOf(START) + 5 * DAY, hourOf(START + 31 * DAY), hourOf(now)]);
    assert.equal(store.rows({ fromHour: hourOf(START) }).length, 3, 'a reader asking further back gets only what is kept');
    store.add([row('SELECT ?', hourOf(START), 9)]);
    assert.ok(!store.rows().some((r) => r.hour === hourOf(START)), 'a row older than the retention is not stored at all');
  } finally {
    store.close();
  }
  // Reopened later, the retention applies at once.
  now = START + 40 * DAY;
  const later = new QueryStatsStore(path.join(dir, `stats-${files}.sqlite`), { now: () => now });
  try {
    assert.deepEqual(later.rows().map((r) => r.hour), [hourOf(START + 31 * DAY), hourOf(START + 31 * DAY + HOUR_MS)]);
  } finally {
    later.close();
  }
});

test('an hour of one database keeps at most maxQueriesPerHour statements; the least run are folded into one row, totals unchanged', () => {
  const store = new QueryStatsStore(file(), { maxQueriesPerHour: 3, now: () => START });
  const hour = hourOf(START);
  try {
    store.add([5, 4, 3, 2, 1].map((n) => row(`SELECT ${n}`, hour, n)));
    store.add([row('SELECT 9', hour, 7, 'db-2')]); // another database's hour has its own cap
    const rows = store.rows({ databases: ['db-1'] });
    assert.deepEqual(
      rows.map((r) => [r.query, r.readQueries, r.rowsRead]).sort(),
      [
        [OTHER_QUERIES, 3, 30],
        ['SELECT 3', 3, 30],
        ['SELECT 4', 4, 40],
        ['SELECT 5', 5, 50],
      ],
      'the three most run stay; the two others are one row with their sums',
    );
    assert.deepEqual(store.rows({ databases: ['db-2'] }).map((r) => r.query), ['SELECT 9']);
  } finally {
    store.close();
  }
});

test('adding to a capped hour folds again: the most run stay, every run is still counted', () => {
  const store = new QueryStatsStore(file(), { maxQueriesPerHour: 2, now: () => START });
  const hour = hourOf(START);
  try {
    store.add([row('A', hour, 10), row('B', hour, 8), row('C', hour, 1)]);
    store.add([row('D', hour, 2), row('C', hour, 1)]);
    const rows = store.rows();
    const total = rows.reduce((n, r) => n + r.readQueries, 0);
    assert.equal(total, 22, 'every run is still counted');
    assert.deepEqual(rows.filter((r) => r.query !== OTHER_QUERIES).map((r) => r.query).sort(), ['A', 'B']);
    assert.equal(rows.find((r) => r.query === OTHER_QUERIES)?.readQueries, 4);
    assert.equal(rows.find((r) => r.query === OTHER_QUERIES)?.rowsRead, 40);
  } finally {
    store.close();
  }
});

test('the recorder adds statements up in memory and writes them at flush; readers see everything recorded', () => {
  const now = START;
  const store = new QueryStatsStore(file(), { now: () => now });
  const recorder = new QueryStatsRecorder(store, { now: () => now, flushMs: 3_600_000 });
  try {
    const queries = [
      { sql: 'SELECT * FROM t WHERE id = ?', params: [1] },
      { sql: 'INSERT INTO t (a) VALUES (1)', params: [] },
    ];
    recorder.record('db-1', queries, [result(1, { duration: 0.25, rows_read: 1, rows_written: 0 }), result(0, { duration: 1.5, rows_read: 0, rows_written: 2 })]);
    recorder.record('db-1', [{ sql: 'SELECT *  FROM t WHERE id = 9', params: [] }], [result(1, { duration: 0.75, rows_read: 1, rows_written: 0 })]);
    assert.equal(store.rows().length, 0, 'nothing is on disk before a flush');
    const rows = recorder.rows({});
    assert.equal(rows.length, 2);
    const select = rows.find((r) => r.query.startsWith('SELECT'))!;
    assert.deepEqual(
      { q: select.query, read: select.readQueries, write: select.writeQueries, ms: select.durationMs, rowsRead: select.rowsRead, returned: select.rowsReturned },
      { q: 'SELECT * FROM t WHERE id = ?', read: 2, write: 0, ms: 1, rowsRead: 2, returned: 2 },
    );
    const insert = rows.find((r) => r.query.startsWith('INSERT'))!;
    assert.deepEqual({ write: insert.writeQueries, rowsWritten: insert.rowsWritten }, { write: 1, rowsWritten: 2 });
    // Filters and groups over the rows, as the GraphQL answers use them.
    const filter = compileFilter({ AND: [{ datetimeHour_geq: hourOf(now), datetimeHour_leq: now, databaseId: 'db-1' }] });
    assert.deepEqual(filter.bounds, { fromHour: hourOf(now), toHour: now, databases: ['db-1'] });
    const groups = groupRows(rows.filter(filter.test), ['datetimeHour']);
    assert.equal(groups.length, 1);
    assert.equal(groups[0]!.totals.readQueries + groups[0]!.totals.writeQueries, 3);
    assert.equal(rows.filter(compileFilter({ datetimeHour_geq: hourOf(now) + HOUR_MS }).test).length, 0, 'a later window has nothing');
    assert.equal(rows.filter(compileFilter({ databaseId: 'db-2' }).test).length, 0);
    assert.throws(() => compileFilter({ nonsense: 1 }), /unknown filter field filter\.nonsense/);
  } finally {
    recorder.close();
  }
});

test('the recorder bounds memory too: past ten times the cap, new texts of an hour go straight to the folded row', () => {
  const store = new QueryStatsStore(file(), { maxQueriesPerHour: 2, now: () => START });
  const recorder = new QueryStatsRecorder(store, { now: () => START, flushMs: 3_600_000 });
  try {
    for (let i = 0; i < 25; i++) {
      const sql = `SELECT ${'x, '.repeat(i)}1`;
      for (let k = 0; k <= (i < 2 ? 5 : 0); k++) recorder.record('db-1', [{ sql, params: [] }], [result(1, { duration: 1, rows_read: 1, rows_written: 0 })]);
    }
    const rows = recorder.rows({});
    assert.equal(rows.reduce((n, r) => n + r.readQueries, 0), 25 + 10, 'every run is counted');
    assert.deepEqual(rows.map((r) => [r.query, r.readQueries]).sort(), [
      [OTHER_QUERIES, 23],
      ['SELECT ?', 6],
      ['SELECT x, ?', 6],
    ]);
  } finally {
    recorder.close();
  }
});
