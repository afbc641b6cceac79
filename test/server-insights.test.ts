// Query insights end to end: a known workload through every protocol (REST /query and /raw,
// workerd's binding protocol /query, dione/client's calls and batches) against a real server, then
// the real wrangler 4.86.0 `d1 info` and `d1 insights --sort-by reads|time|writes|count` against
// it. Every number wrangler prints must equal the sum of the meta values the workload's own
// responses carried (and the rows they returned); nothing is hard-coded.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { D1Meta } from '../src/api/types.ts';
import { connect } from '../src/client.ts';
import { normalizeStatement } from '../src/server/stats/normalize.ts';
import { dione, failed, ok } from './helpers/cli-d1.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { jsonOf, show, type WranglerRun, type WranglerRunner, wranglerFor } from './helpers/wrangler.ts';

const ROWS = 200;
const SCAN = 'SELECT * FROM items WHERE price = ?'; // price has no index: every row is read
const LOOKUP = 'SELECT * FROM items WHERE sku = ?'; // through items_sku: one row

interface Expected {
  count: number;
  reads: number;
  writes: number;
  durationMs: number;
  rowsRead: number;
  rowsWritten: number;
  rowsReturned: number;
}

let srv: TestServer;
let wrangler: WranglerRunner;
const expected = new Map<string, Expected>();

/** Adds one statement's answer to what wrangler must show. Reads are the SELECTs of this workload. */
function answered(sql: string, meta: D1Meta, rowsReturned: number): void {
  const query = normalizeStatement(sql);
  const e = expected.get(query) ?? { count: 0, reads: 0, writes: 0, durationMs: 0, rowsRead: 0, rowsWritten: 0, rowsReturned: 0 };
  e.count++;
  if (/^\s*SELECT/i.test(sql)) e.reads++;
  else e.writes++;
  e.durationMs += meta.duration;
  e.rowsRead += meta.rows_read;
  e.rowsWritten += meta.rows_written;
  e.rowsReturned += rowsReturned;
  expected.set(query, e);
}

async function restQuery(kind: 'query' | 'raw', body: { sql: string; params?: unknown[] } | { batch: { sql: string; params?: unknown[] }[] }): Promise<void> {
  const response = await srv.call(`${srv.api}/insights-shop/${kind}`, { method: 'POST', body: JSON.stringify(body) });
  const json = (await response.json()) as { success: boolean; result: { meta: D1Meta; results: unknown[] | { rows: unknown[] } }[] };
  assert.equal(response.status, 200, JSON.stringify(json));
  const sqls = 'batch' in body ? body.batch.map((b) => b.sql) : [body.sql];
  assert.equal(json.result.length, sqls.length);
  json.result.forEach((r, i) => {
    answered(sqls[i]!, r.meta, Array.isArray(r.results) ? r.results.length : r.results.rows.length);
  });
}

async function bindingQuery(sql: string, params: unknown[]): Promise<void> {
  const response = await srv.call('/query', { method: 'POST', body: JSON.stringify({ sql, params }), headers: { 'x-dione-database': 'insights-shop' } });
  const json = (await response.json()) as { success: boolean; meta: D1Meta; results: unknown[] };
  assert.equal(json.success, true, JSON.stringify(json));
  answered(sql, json.meta, json.results.length);
}

before(async () => {
  srv = await startTestServer();
  wrangler = wranglerFor(srv);
  await srv.createDatabase('insights-shop');
  // Setup counts too: it ran.
  await restQuery('query', { sql: 'CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT NOT NULL, price INTEGER NOT NULL)' });
  await restQuery('query', { sql: 'CREATE INDEX items_sku ON items (sku)' });
  await restQuery('query', { sql: `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS}) INSERT INTO items (sku, price) SELECT 'sku-' || i, i % 50 FROM n` });

  for (const price of [7, 8, 9]) await restQuery('raw', { sql: SCAN, params: [price] });
  for (let i = 1; i <= 12; i++) await bindingQuery(LOOKUP, [`sku-${i * 3}`]);
  await restQuery('query', { batch: [{ sql: 'UPDATE items SET price = price + 1 WHERE id <= ?', params: [20] }, { sql: 'UPDATE items SET price = price + 1 WHERE id <= ?', params: [30] }] });
  const db = connect({ url: srv.url, token: srv.token, database: 'insights-shop' });
  const insert = 'INSERT INTO items (sku, price) VALUES (?, ?)';
  const batch = await db.batch(Array.from({ length: 6 }, (_, i) => db.prepare(insert).bind(`new-${i}`, i)));
  for (const r of batch) answered(insert, r.meta as D1Meta, r.results.length);
  const calls = await Promise.all([1, 2].map((i) => db.prepare(insert).bind(`more-${i}`, i).run())); // one pipelined HTTP request
  for (const r of calls) answered(insert, r.meta as D1Meta, r.results.length);
  const counted = await db.prepare('SELECT count(*) AS n FROM items').all();
  answered('SELECT count(*) AS n FROM items', counted.meta as D1Meta, counted.results.length);
  // A failed statement is not recorded.
  await assert.rejects(db.prepare('SELECT * FROM no_such_table').all(), /no such table/);
});

after(async () => {
  wrangler?.close();
  await srv?.close();
});

function succeeded(run: WranglerRun): void {
  assert.equal(run.code, 0, show(run));
  assert.deepEqual(run.refused, [], `wrangler tried to reach beyond 127.0.0.1\n${show(run)}`);
}

const near = (actual: number, wanted: number, what: string) => assert.ok(Math.abs(actual - wanted) <= 1e-9 * Math.max(1, Math.abs(wanted)), `${what}: ${actual} ≠ ${wanted}`);

const sum = (pick: (e: Expected) => number) => [...expected.values()].reduce((n, e) => n + pick(e), 0);

test('wrangler d1 info shows the 24-hour counters the workload answered with', async () => {
  const run = await wrangler.run(['d1', 'info', 'insights-shop', '--json']);
  succeeded(run);
  const info = jsonOf(run) as Record<string, number>;
  assert.deepEqual(
    { read: info.read_queries_24h, write: info.write_queries_24h, rowsRead: info.rows_read_24h, rowsWritten: info.rows_written_24h },
    { read: sum((e) => e.reads), write: sum((e) => e.writes), rowsRead: sum((e) => e.rowsRead), rowsWritten: sum((e) => e.rowsWritten) },
    show(run),
  );
  assert.ok(info.read_queries_24h > 0 && info.write_queries_24h > 0);
  const cwd = mkdtempSync(path.join(tmpdir(), 'dione-info-cli-'));
  const ours = await dione(cwd, ['d1', 'info', 'insights-shop', '--json'], { DIONE_URL: srv.url, DIONE_TOKEN: srv.token }).finally(() => rmSync(cwd, { recursive: true, force: true }));
  ok(ours, 'dione d1 info');
  const counters = ({ read_queries_24h, write_queries_24h, rows_read_24h, rows_written_24h }: Record<string, number>) => ({ read_queries_24h, write_queries_24h, rows_read_24h, rows_written_24h });
  assert.deepEqual(counters(JSON.parse(ours.stdout)), counters(info), 'dione d1 info shows the same counters');
});

interface Insight {
  query: string;
  avgRowsRead: number;
  totalRowsRead: number;
  avgRowsWritten: number;
  totalRowsWritten: number;
  avgDurationMs: number;
  totalDurationMs: number;
  numberOfTimesRun: number;
  queryEfficiency: number;
}

function checkAgainstWorkload(insights: Insight[], run: WranglerRun): void {
  for (const insight of insights) {
    const e = expected.get(insight.query);
    assert.ok(e, `wrangler lists a statement the workload did not run: ${insight.query}\n${show(run)}`);
    assert.equal(insight.numberOfTimesRun, e.count, insight.query);
    assert.equal(insight.totalRowsRead, e.rowsRead, insight.query);
    assert.equal(insight.totalRowsWritten, e.rowsWritten, insight.query);
    near(insight.totalDurationMs, e.durationMs, `${insight.query} total duration`);
    near(insight.avgRowsRead, e.rowsRead / e.count, `${insight.query} avg rows read`);
    near(insight.avgRowsWritten, e.rowsWritten / e.count, `${insight.query} avg rows written`);
    near(insight.avgDurationMs, e.durationMs / e.count, `${insight.query} avg duration`);
    near(insight.queryEfficiency, e.rowsRead === 0 || e.rowsReturned === 0 ? 0 : e.rowsReturned / e.rowsRead, `${insight.query} efficiency`);
  }
}

const SORTED_BY = {
  reads: (i: Insight) => i.totalRowsRead,
  time: (i: Insight) => i.totalDurationMs,
  writes: (i: Insight) => i.totalRowsWritten,
  count: (i: Insight) => i.numberOfTimesRun,
} as const;

test('wrangler d1 insights --sort-by reads|time|writes|count lists every statement with the workload’s totals, in order', async () => {
  const sorts = Object.keys(SORTED_BY) as (keyof typeof SORTED_BY)[];
  const runs = await Promise.all(sorts.map((by) => wrangler.run(['d1', 'insights', 'insights-shop', '--sort-by', by, '--limit', '50', '--json'])));
  runs.forEach((run, i) => {
    succeeded(run);
    const insights = jsonOf(run) as Insight[];
    assert.equal(insights.length, expected.size, `every statement run, and nothing else\n${show(run)}`);
    checkAgainstWorkload(insights, run);
    const values = insights.map(SORTED_BY[sorts[i]!]);
    for (let k = 1; k < values.length; k++) assert.ok(values[k - 1]! >= values[k]!, `--sort-by ${sorts[i]} is descending: ${values.join(', ')}`);
  });
  const names = (jsonOf(runs[0]!) as Insight[]).map((i) => i.query);
  assert.ok(names.includes('SELECT * FROM items WHERE sku = ?') && names.includes('INSERT INTO items (sku, price) VALUES (?, ?)'), `normalized texts\n${names.join('\n')}`);
  assert.ok(!names.some((q) => q.includes('no_such_table')), 'the failed statement is not recorded');
});

test('wrangler d1 insights: --limit, --sort-direction ASC and --sort-type avg', async () => {
  const run = await wrangler.run(['d1', 'insights', 'insights-shop', '--sort-by', 'count', '--sort-direction', 'ASC', '--sort-type', 'avg', '--limit', '2', '--json']);
  succeeded(run);
  const insights = jsonOf(run) as Insight[];
  assert.equal(insights.length, 2);
  checkAgainstWorkload(insights, run);
  const fewest = [...expected.values()].map((e) => e.count).sort((a, b) => a - b);
  assert.deepEqual(
    insights.map((i) => i.numberOfTimesRun),
    fewest.slice(0, 2),
  );
  const avg = await wrangler.run(['d1', 'insights', 'insights-shop', '--sort-by', 'writes', '--sort-type', 'avg', '--limit', '50', '--json']);
  succeeded(avg);
  const byAvg = (jsonOf(avg) as Insight[]).map((i) => i.avgRowsWritten);
  for (let k = 1; k < byAvg.length; k++) assert.ok(byAvg[k - 1]! >= byAvg[k]!, `avg rows written descending: ${byAvg.join(', ')}`);
});

// Needs exact meters (issue 15 part 1): a full scan of ROWS rows reads ROWS; an indexed point lookup ~1.
test('a full-table scan ranks above an indexed lookup by rows read', async (t) => {
  const run = await wrangler.run(['d1', 'insights', 'insights-shop', '--sort-by', 'reads', '--limit', '50', '--json']);
  succeeded(run);
  const names = (jsonOf(run) as Insight[]).map((i) => i.query);
  const scan = expected.get(normalizeStatement(SCAN))!;
  const lookup = expected.get(normalizeStatement(LOOKUP))!;
  t.diagnostic(`rows read: ${scan.count} scans ${scan.rowsRead}, ${lookup.count} indexed lookups ${lookup.rowsRead}`);
  assert.ok(scan.rowsRead >= 3 * ROWS, `each scan reads every row: ${scan.rowsRead} rows read in 3 scans of ${ROWS}`);
  assert.ok(lookup.rowsRead <= 3 * lookup.count, `an indexed lookup reads about one row: ${lookup.rowsRead} in ${lookup.count}`);
  assert.ok(names.indexOf(normalizeStatement(SCAN)) < names.indexOf(normalizeStatement(LOOKUP)), names.join('\n'));
});

test('dione d1 insights prints what wrangler prints for the same flags; --local and bad periods are refused as wrangler refuses them', async () => {
  const env = { DIONE_URL: srv.url, DIONE_TOKEN: srv.token };
  const cwd = mkdtempSync(path.join(tmpdir(), 'dione-insights-cli-'));
  try {
    for (const flags of [
      ['--sort-by', 'reads', '--limit', '50'],
      ['--sortBy', 'count', '--sortDirection', 'ASC', '--limit', '3'],
      ['--sort-type', 'avg', '--sort-by', 'time', '--time-period', '2h'],
    ]) {
      const [ours, theirs] = await Promise.all([dione(cwd, ['d1', 'insights', 'insights-shop', ...flags, '--json'], env), wrangler.run(['d1', 'insights', 'insights-shop', ...flags, '--json'])]);
      ok(ours, `dione d1 insights ${flags.join(' ')}`);
      succeeded(theirs);
      assert.deepEqual(JSON.parse(ours.stdout), jsonOf(theirs), flags.join(' '));
    }
    failed(await dione(cwd, ['d1', 'insights', 'insights-shop', '--local'], env), /works on a server only, as in wrangler/, '--local');
    failed(await dione(cwd, ['d1', 'insights', 'insights-shop', '--time-period', '32d'], env), /Duration cannot be greater than 31 days/, '32d');
    failed(await dione(cwd, ['d1', 'insights', 'insights-shop', '--time-period', '5w'], env), /Invalid duration unit/, '5w');
    failed(await dione(cwd, ['d1', 'insights', 'no-such-db'], env), /no-such-db/, 'unknown database');
    const choice = await dione(cwd, ['d1', 'insights', 'insights-shop', '--sort-by', 'size'], env);
    assert.notEqual(choice.code, 0);
    assert.match(choice.stderr, /Allowed choices are time, reads, writes, count/);
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});
