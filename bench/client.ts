// npm run bench:client: dione/client against `dione serve` (its own process), in this process.
//   - point selects (`SELECT * FROM items WHERE id = ?`, ids cycling over 10,000 rows, first()) with
//     1, 8 and 64 calls in flight: calls/s, p50/p99 per call, and HTTP requests per call. At 8 and 64
//     also with pipelining off (maxCallsPerRequest: 1, one request per call), the client as it was;
//   - the same through `dione`'s connect() for Node (node-client.ts: dione/client over node:http with
//     keep-alive instead of fetch), 1 and 64 in flight;
//   - the sequential baseline: a bare fetch round trip to the same server's GET /healthz, one at a time;
//   - the second baseline (unless --miniflare 0): D1's binding inside a Worker under miniflare, the
//     same point selects with 1, 8 and 64 in flight (bench/miniflare-d1.ts; no HTTP per call).
// Ratios are against the fetch baseline measured in the same run. Each run measures everything once, in
// turn; printed: the median of --runs runs.
// Reproduce: npm run bench:client -- --seconds 3 [--runs 3] [--miniflare 0] [--server-flags "--workers 2"]
import { connect } from '../src/client.ts';
import { nodeFetch } from '../src/node-client.ts';
import { type MiniflareD1, startMiniflareD1 } from './miniflare-d1.ts';
import { buildNote, type Dione, fmt, machine, median, numberFlag, serverFlags, serverFlagsArgument, startDione, stopAll } from './harness.ts';

const SECONDS = numberFlag('seconds', 3);
const RUNS = numberFlag('runs', 3);
const FLAGS = serverFlags();
const MINIFLARE = numberFlag('miniflare', 1, 0) > 0;
const ROWS = 10_000;
/** Bounds each measurement by count as well as by time. */
const MAX_CALLS = 2_000_000;
const seedSql = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS}) INSERT INTO items SELECT i, 'item ' || i, i * 0.25 FROM n`;

interface Result {
  /** Completed calls (or round trips) per second. */
  rate: number;
  p50: number;
  p99: number;
  /** HTTP requests per call. */
  requestsPerCall: number;
  errors: number;
}

interface Measure {
  label: string;
  inFlight: number;
  target: 'healthz' | 'client' | 'miniflare';
  /** The client's. */
  maxCallsPerRequest?: number;
  /** How the client sends: Node's fetch (dione/client), or node:http (`dione`'s connect in Node). */
  transport?: 'fetch' | 'node';
}

const measures: Measure[] = [
  { label: 'bare fetch GET /healthz, sequential (baseline)', target: 'healthz', inFlight: 1 },
  { label: 'dione/client point select, 1 in flight', target: 'client', inFlight: 1, maxCallsPerRequest: 64 },
  { label: 'dione/client point select, 8 in flight', target: 'client', inFlight: 8, maxCallsPerRequest: 64 },
  { label: 'dione/client point select, 8 in flight, no pipelining', target: 'client', inFlight: 8, maxCallsPerRequest: 1 },
  { label: 'dione/client point select, 64 in flight', target: 'client', inFlight: 64, maxCallsPerRequest: 64 },
  { label: 'dione/client point select, 64 in flight, no pipelining', target: 'client', inFlight: 64, maxCallsPerRequest: 1 },
  { label: 'dione connect (Node, node:http) point select, 1 in flight', target: 'client', inFlight: 1, maxCallsPerRequest: 64, transport: 'node' },
  { label: 'dione connect (Node, node:http) point select, 64 in flight', target: 'client', inFlight: 64, maxCallsPerRequest: 64, transport: 'node' },
  ...(MINIFLARE
    ? ([1, 8, 64].map((inFlight) => ({ label: `miniflare D1 binding in a Worker, ${inFlight} in flight`, target: 'miniflare', inFlight })) as Measure[])
    : []),
];

async function post(url: string, headers: Record<string, string>, body: unknown): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
}

async function prepare(dione: Dione): Promise<void> {
  const api = `${dione.url}/client/v4/accounts/${dione.accountId}/d1/database`;
  await post(api, dione.headers, { name: 'bench' });
  for (const sql of ['CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)', seedSql]) await post(`${api}/bench/query`, dione.headers, { sql });
}

/** `inFlight` loops, each awaiting `call` then starting the next, until the time or the count is up. */
async function drive(inFlight: number, call: (i: number) => Promise<boolean>): Promise<{ rate: number; p50: number; p99: number; calls: number; errors: number }> {
  const latencies = new Float64Array(MAX_CALLS);
  let started = 0;
  let done = 0;
  let errors = 0;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  const loop = async () => {
    while (performance.now() < deadline && started < MAX_CALLS) {
      const i = started++;
      const t = performance.now();
      if (await call(i)) latencies[done++] = performance.now() - t;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, loop));
  const elapsed = (performance.now() - start) / 1000;
  const sorted = latencies.subarray(0, done).sort();
  const at = (p: number) => (done ? sorted[Math.min(done - 1, Math.floor((done * p) / 100))]! : Number.NaN);
  return { rate: done / elapsed, p50: at(50), p99: at(99), calls: done, errors };
}

async function measure(dione: Dione, miniflare: MiniflareD1 | undefined, m: Measure): Promise<Result> {
  if (m.target === 'miniflare') {
    const r = await miniflare!.run(m.inFlight, SECONDS);
    return { rate: r.rate, p50: Number.NaN, p99: Number.NaN, requestsPerCall: Number.NaN, errors: r.errors };
  }
  let requests = 0;
  const send = m.transport === 'node' ? nodeFetch : fetch;
  const counting = ((input: string | URL | Request, init?: RequestInit) => {
    requests++;
    return send(input, init);
  }) as typeof fetch;
  if (m.target === 'healthz') {
    const healthz = `${dione.url}/healthz`;
    const r = await drive(m.inFlight, async () => {
      const response = await counting(healthz);
      await response.arrayBuffer();
      return response.ok;
    });
    return { rate: r.rate, p50: r.p50, p99: r.p99, requestsPerCall: requests / Math.max(1, r.calls + r.errors), errors: r.errors };
  }
  const db = connect({ url: dione.url, token: dione.token, database: 'bench', fetch: counting, maxCallsPerRequest: m.maxCallsPerRequest });
  const r = await drive(m.inFlight, async (i) => {
    try {
      const row = await db
        .prepare('SELECT * FROM items WHERE id = ?')
        .bind((i % ROWS) + 1)
        .first<{ id: number }>();
      return row?.id === (i % ROWS) + 1;
    } catch {
      return false;
    }
  });
  return { rate: r.rate, p50: r.p50, p99: r.p99, requestsPerCall: requests / Math.max(1, r.calls + r.errors), errors: r.errors };
}

const reproduce = `npm run bench:client -- --seconds ${SECONDS} --runs ${RUNS}${MINIFLARE ? '' : ' --miniflare 0'}${serverFlagsArgument(FLAGS)}`;
console.log(`reproduce: ${reproduce}`);
console.log(`machine: ${machine()}; ${buildNote()}`);
console.log(`server: dione serve ${FLAGS.join(' ') || '(default flags)'}, own process; client: this process, Node's fetch (dione/client) or node:http (dione's connect)`);
console.log(`each: ${SECONDS} s (at most ${fmt(MAX_CALLS)} calls), ${RUNS} runs, medians\n`);

let miniflare: MiniflareD1 | undefined;
try {
  const dione = await startDione(FLAGS);
  await prepare(dione);
  if (MINIFLARE) miniflare = await startMiniflareD1(ROWS, MAX_CALLS);
  const runs: Result[][] = [];
  for (let run = 0; run < RUNS; run++) {
    const results: Result[] = [];
    for (const m of measures) results.push(await measure(dione, miniflare, m));
    runs.push(results);
    console.log(`run ${run + 1}: ${results.map((r) => fmt(r.rate)).join(' | ')} calls/s`);
  }
  console.log('');
  console.log('| measure | calls/s | p50 ms | p99 ms | HTTP requests per call | vs baseline | errors |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  measures.forEach((m, i) => {
    const of = (pick: (r: Result) => number) => median(runs.map((r) => pick(r[i]!)));
    // Each run's ratio to that run's baseline, then their median: the machine's load moves both together.
    const ratio = median(runs.map((r) => r[i]!.rate / r[0]!.rate));
    console.log(
      `| ${m.label} | ${fmt(of((r) => r.rate))} | ${fmt(of((r) => r.p50), 2)} | ${fmt(of((r) => r.p99), 2)} | ${fmt(of((r) => r.requestsPerCall), 3)} | ${fmt(ratio, 2)}× | ${fmt(of((r) => r.errors))} |`,
    );
  });
  console.log('\nminiflare: calls/s counted inside the Worker (its clock moves on I/O), so no per-call latency and no HTTP requests.');
  // The goals, from the same medians: a sequential call's round trip against the bare fetch's
  // (1 / the rate ratio), and 64 in flight against miniflare's 64 with p99 < 5 ms.
  const index = (label: string) => measures.findIndex((m) => m.label === label);
  const roundTrip = (label: string) => 1 / median(runs.map((r) => r[index(label)]!.rate / r[0]!.rate));
  const miniflare64 = index('miniflare D1 binding in a Worker, 64 in flight');
  console.log('\ngoals (medians of the runs):');
  for (const client of ['dione/client', 'dione connect (Node, node:http)']) {
    const sequential = roundTrip(`${client} point select, 1 in flight`);
    console.log(`${client}: sequential round trip ${fmt(sequential, 2)}× the bare fetch's (goal ≤ 1.2×: ${sequential <= 1.2 ? 'met' : 'NOT met'})`);
    if (miniflare64 < 0) continue;
    const at64 = index(`${client} point select, 64 in flight`);
    const times = median(runs.map((r) => r[at64]!.rate / r[miniflare64]!.rate));
    const p99 = median(runs.map((r) => r[at64]!.p99));
    console.log(`${client}: 64 in flight ${fmt(times, 1)}× miniflare's, p99 ${fmt(p99, 2)} ms (goal ≥ 8× with p99 < 5 ms: ${times >= 8 && p99 < 5 ? 'met' : 'NOT met'})`);
  }
  await dione.stop();
} finally {
  await miniflare?.stop();
  await stopAll();
}
