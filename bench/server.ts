// npm run bench:server: Dione over HTTP against a plain node:http hello-world server answering the
// same bytes, in one run. Three processes besides this one: `dione serve`, the hello-world server
// (bench/hello-server.ts) and, for each measurement, the load generator (bench/load.ts, autocannon).
//   - point selects (D1's binding protocol, POST /query, ids cycling over 10,000 rows) at 1 and 64
//     connections, against Dione and against hello-world: requests/s, p50/p99 and the ratio;
//   - durable single-row inserts at 64 connections;
//   - the embedded binding (in this process, one caller) as the ceiling without HTTP;
//   - the same point selects and inserts against a second server started with --no-query-stats:
//     the cost of recording query statistics is the ratio of the two (goal: ≥ 0.95).
// Each run measures everything once, in turn; printed: the median of --runs runs, and each run.
// Reproduce: npm run bench:server -- --seconds 5 [--runs 3] [--server-flags "--workers 2"]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StatementResult } from '../src/api/executor.ts';
import { open } from '../src/index.ts';
import { QueryStatsStore } from '../src/server/stats/query-stats-store.ts';
import { QueryStatsRecorder } from '../src/server/stats/recorder.ts';
import { buildNote, type Dione, fmt, machine, median, numberFlag, runLoad, serverFlags, serverFlagsArgument, startDione, startHello, stopAll } from './harness.ts';
import type { LoadResult, Workload } from './load.ts';

const SECONDS = numberFlag('seconds', 5);
const RUNS = numberFlag('runs', 3);
const FLAGS = serverFlags();
const ROWS = 10_000;
const QUERY_PATH = '/query?resultsFormat=ROWS_AND_COLUMNS';
const seedSql = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS}) INSERT INTO items SELECT i, 'item ' || i, i * 0.25 FROM n`;
const schema = ['CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)', 'CREATE TABLE log (id INTEGER PRIMARY KEY, at INTEGER, note TEXT)'];

async function post(url: string, headers: Record<string, string>, body: unknown): Promise<Response> {
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response;
}

async function prepare(dione: Dione): Promise<{ body: Buffer; contentType: string }> {
  await post(`${dione.url}/client/v4/accounts/${dione.accountId}/d1/database`, dione.headers, { name: 'bench' });
  for (const sql of [...schema, seedSql]) await post(`${dione.url}/client/v4/accounts/${dione.accountId}/d1/database/bench/query`, dione.headers, { sql });
  // One real answer to the request the load sends, for hello-world to repeat byte for byte.
  const answer = await post(`${dione.url}${QUERY_PATH}`, { ...dione.headers, 'x-dione-database': 'bench' }, { sql: 'SELECT * FROM items WHERE id = ?', params: [1] });
  return { body: Buffer.from(await answer.arrayBuffer()), contentType: answer.headers.get('content-type') ?? 'application/json' };
}

async function embedded(dir: string, kind: 'read' | 'write', run: number): Promise<number> {
  const db = open(path.join(dir, `embedded-${kind}-${run}.sqlite`));
  try {
    await db.exec(schema.join('\n'));
    await db.prepare(seedSql).run();
    let n = 0;
    const start = performance.now();
    const deadline = start + SECONDS * 1000;
    while (performance.now() < deadline && n < 10_000_000) {
      if (kind === 'read') await db.prepare('SELECT * FROM items WHERE id = ?').bind((n % ROWS) + 1).first();
      else await db.prepare('INSERT INTO log (at, note) VALUES (?, ?)').bind(n, 'bench').run();
      n++;
    }
    return (n / (performance.now() - start)) * 1000;
  } finally {
    db.close();
  }
}

type Target = 'dione' | 'dione-no-stats' | 'hello';

/**
 * What recording costs one request on the HTTP thread, measured alone in this process: µs per
 * record() of a one-statement answer (the same texts come back, as in the load), and the time of a
 * timer's flush of 1,000 distinct statements to the store.
 */
function recordingCost(dir: string): { perRecordUs: number; flushMs: number } {
  const recorder = new QueryStatsRecorder(new QueryStatsStore(path.join(dir, 'query-stats.sqlite')), { flushMs: 3_600_000 });
  try {
    const result: StatementResult = {
      columns: ['id', 'name', 'price'],
      rows: [[1, 'item 1', 0.25]],
      meta: { duration: 0.05, size_after: 0, rows_read: 1, rows_written: 0, last_row_id: 0, changed_db: false, changes: 0 },
    };
    const queries = [{ sql: 'SELECT * FROM items WHERE id = ?', params: [1] }];
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < 1000 && n < 50_000_000) {
      for (let i = 0; i < 1000; i++) recorder.record('bench', queries, [result]);
      n += 1000;
    }
    const perRecordUs = ((performance.now() - start) * 1000) / n;
    for (let i = 0; i < 1000; i++) recorder.record('bench', [{ sql: `SELECT * FROM items WHERE id = ? -- ${i}\nAND ${i} = ${i}`, params: [] }], [result]);
    const flushStart = performance.now();
    recorder.flush();
    return { perRecordUs, flushMs: performance.now() - flushStart };
  } finally {
    recorder.close();
  }
}

interface Measure {
  label: string;
  target: Target | 'embedded';
  connections: number;
  workload: Workload;
  kind: 'read' | 'write';
}

const read: Workload = { kind: 'select', rows: ROWS };
// Each no-query-stats measure runs right after its counterpart, so both see the same machine.
const measures: Measure[] = [
  { label: 'point select, embedded (1 caller)', target: 'embedded', connections: 1, workload: read, kind: 'read' },
  { label: 'point select, dione, 1 conn', target: 'dione', connections: 1, workload: read, kind: 'read' },
  { label: 'point select, no query stats, 1 conn', target: 'dione-no-stats', connections: 1, workload: read, kind: 'read' },
  { label: 'point select, hello-world, 1 conn', target: 'hello', connections: 1, workload: read, kind: 'read' },
  { label: 'point select, dione, 64 conns', target: 'dione', connections: 64, workload: read, kind: 'read' },
  { label: 'point select, no query stats, 64 conns', target: 'dione-no-stats', connections: 64, workload: read, kind: 'read' },
  { label: 'point select, hello-world, 64 conns', target: 'hello', connections: 64, workload: read, kind: 'read' },
  { label: 'durable insert, embedded (1 caller)', target: 'embedded', connections: 1, workload: { kind: 'insert' }, kind: 'write' },
  { label: 'durable insert, dione, 64 conns', target: 'dione', connections: 64, workload: { kind: 'insert' }, kind: 'write' },
  { label: 'durable insert, no query stats, 64 conns', target: 'dione-no-stats', connections: 64, workload: { kind: 'insert' }, kind: 'write' },
];

const reproduce = `npm run bench:server -- --seconds ${SECONDS} --runs ${RUNS}${serverFlagsArgument(FLAGS)}`;
console.log(`reproduce: ${reproduce}`);
console.log(`machine: ${machine()}; ${buildNote()}`);
console.log(`server: dione serve ${FLAGS.join(' ') || '(default flags)'}, own process; hello-world: node:http, own process, answering Dione's bytes`);
console.log(`load: autocannon in its own process, ${SECONDS} s per measurement, ${RUNS} run(s); D1 binding protocol POST ${QUERY_PATH}; inserts are durable (answered once synced)`);

const scratch = mkdtempSync(path.join(os.tmpdir(), 'dione-bench-embedded-'));
const results = new Map<string, LoadResult[]>();
let cost = { perRecordUs: Number.NaN, flushMs: Number.NaN };
try {
  cost = recordingCost(scratch);
  const dione = await startDione(FLAGS);
  const sample = await prepare(dione);
  const dioneNoStats = await startDione([...FLAGS, '--no-query-stats']);
  await prepare(dioneNoStats);
  const hello = await startHello(sample.body, sample.contentType);
  console.log(`answer repeated by hello-world (${sample.body.length} bytes, ${sample.contentType}): ${sample.body.toString('utf8').slice(0, 160)}…`);
  const headers = { ...dione.headers, 'x-dione-database': 'bench' };
  const urls: Record<Target, string> = { dione: dione.url, 'dione-no-stats': dioneNoStats.url, hello: hello.url };
  // Each server has its own token.
  const headersOf: Record<Target, Record<string, string>> = { dione: headers, 'dione-no-stats': { ...dioneNoStats.headers, 'x-dione-database': 'bench' }, hello: headers };
  const load = (target: Target, connections: number, workload: Workload, seconds = SECONDS) =>
    runLoad({
      url: `${urls[target]}${QUERY_PATH}`,
      headers: headersOf[target],
      connections,
      seconds,
      maxRequests: seconds * 200_000,
      timeoutSeconds: 10,
      workload,
    });
  // Warm both servers (JIT, connections, the database's host) before anything is counted.
  await load('dione', 64, read, 1);
  await load('dione-no-stats', 64, read, 1);
  await load('hello', 64, read, 1);

  for (let run = 1; run <= RUNS; run++) {
    for (const m of measures) {
      let r: LoadResult;
      if (m.target === 'embedded') {
        const rps = await embedded(scratch, m.kind, run);
        r = { ok: 0, errors: 0, seconds: SECONDS, rps, p50: Number.NaN, p99: Number.NaN, unanswered: 0, statuses: {} };
      } else r = await load(m.target, m.connections, m.workload);
      if (!results.has(m.label)) results.set(m.label, []);
      results.get(m.label)!.push(r);
      const latency = Number.isNaN(r.p50) ? '' : `  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms  errors ${r.errors}`;
      console.log(`  run ${run}/${RUNS}  ${m.label.padEnd(38)} ${fmt(r.rps).padStart(8)} req/s${latency}`);
    }
  }
  await hello.stop();
  await dione.stop();
  await dioneNoStats.stop();
} finally {
  await stopAll();
  rmSync(scratch, { recursive: true, force: true });
}

const of = (label: string) => results.get(label)!;
const med = (label: string, key: 'rps' | 'p50' | 'p99') => median(of(label).map((r) => r[key]));
console.log(`\nmedian of ${RUNS} run(s)              req/s    p50 ms    p99 ms  errors   each run (req/s)`);
for (const m of measures) {
  const rs = of(m.label);
  const errors = rs.reduce((n, r) => n + r.errors, 0);
  const latency = m.target === 'embedded' ? ''.padStart(28) : `${fmt(med(m.label, 'p50'), 2).padStart(10)}${fmt(med(m.label, 'p99'), 2).padStart(10)}${String(errors).padStart(8)}`;
  console.log(`${m.label.padEnd(36)}${fmt(med(m.label, 'rps')).padStart(8)}${latency}   ${rs.map((r) => fmt(r.rps)).join(', ')}`);
}

const verdict = (met: boolean) => (met ? 'met' : 'NOT met');
console.log('\nratios and goals (medians; ratio = Dione req/s ÷ hello-world req/s, each run in brackets)');
for (const connections of [1, 64]) {
  const conns = connections === 1 ? '1 conn' : `${connections} conns`;
  const d = of(`point select, dione, ${conns}`);
  const h = of(`point select, hello-world, ${conns}`);
  const ratios = d.map((r, i) => r.rps / h[i]!.rps);
  const ratio = median(ratios);
  const p99 = median(d.map((r) => r.p99));
  const goal = connections === 1 ? ratio >= 0.5 : ratio >= 0.6 && p99 < 5;
  console.log(
    `point select, ${conns.padEnd(8)}: dione ${fmt(median(d.map((r) => r.rps)))} req/s, hello-world ${fmt(median(h.map((r) => r.rps)))} req/s, ratio ${fmt(ratio, 2)}× [${ratios.map((x) => fmt(x, 2)).join(', ')}], dione p99 ${fmt(p99, 2)} ms` +
      `   goal ${connections === 1 ? '≥ 0.5×' : '≥ 0.6× with p99 < 5 ms'}: ${verdict(goal)}`,
  );
}
const writes = med('durable insert, dione, 64 conns', 'rps');
console.log(`durable insert, 64 conns: ${fmt(writes)} req/s, p99 ${fmt(med('durable insert, dione, 64 conns', 'p99'), 2)} ms   goal ≥ 5,000/s: ${verdict(writes >= 5000)}`);
console.log('\nquery statistics overhead (ratio = recording on ÷ --no-query-stats, req/s, each run in brackets)');
for (const [on, off] of [
  ['point select, dione, 1 conn', 'point select, no query stats, 1 conn'],
  ['point select, dione, 64 conns', 'point select, no query stats, 64 conns'],
  ['durable insert, dione, 64 conns', 'durable insert, no query stats, 64 conns'],
] as const) {
  const ratios = of(on).map((r, i) => r.rps / of(off)[i]!.rps);
  const ratio = median(ratios);
  console.log(`${on.padEnd(36)}: ratio ${fmt(ratio, 3)} [${ratios.map((x) => fmt(x, 3)).join(', ')}]   goal ≥ 0.95: ${verdict(ratio >= 0.95)}`);
}
const perRequestUs = 1e6 / med('point select, dione, 64 conns', 'rps');
console.log(
  `recording alone (in process): ${fmt(cost.perRecordUs, 3)} µs per one-statement request = ${fmt((100 * cost.perRecordUs) / perRequestUs, 2)}% of a point select's ${fmt(perRequestUs, 1)} µs of server time at 64 conns; ` +
    `a timer's flush of 1,000 distinct statements ${fmt(cost.flushMs, 1)} ms (every 10 s)`,
);
console.log(`reproduce: ${reproduce}`);
