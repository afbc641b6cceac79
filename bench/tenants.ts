// npm run bench:tenants: one server holding many small databases (one per tenant), all of them in
// use. For each size (--also, default 500, then --databases, default 10,000), a fresh `dione serve`
// (its own process):
//   1. setup: create each database (REST POST /client/v4/accounts/:account/d1/database) and give it
//      a table and a row (one binding-protocol batch), --setup-concurrency requests at a time, cut
//      off after --setup-timeout seconds (what was reached is printed and used);
//   2. --runs loads of --seconds each: point selects round-robin over every database, --connections
//      connections, from the load generator in its own process (bench/load.ts, autocannon);
//   3. the server's process tree from /proc: RSS summed over the server and all its descendants,
//      how many processes, the server's open fds; peak during the load and 1 s after it;
//   4. from /metrics (dione_database_opens_total), the databases opened during each run, to keep
//      and for their request only, and so the share of answers that found their database open.
// Reproduce: npm run bench:tenants -- --seconds 10 [--databases 10000 --also 500 --runs 3 --server-flags "--workers 2"]
import { buildNote, type Dione, fmt, machine, median, memoryAvailableBytes, numberFlag, runLoad, serverFlags, serverFlagsArgument, startDione, stopAll, type TreeStats, treeStats } from './harness.ts';
import type { LoadResult } from './load.ts';

const DATABASES = numberFlag('databases', 10_000);
const ALSO = numberFlag('also', 500, 0);
const SECONDS = numberFlag('seconds', 10);
const RUNS = numberFlag('runs', 3);
const SETUP_TIMEOUT = numberFlag('setup-timeout', 600);
const SETUP_CONCURRENCY = numberFlag('setup-concurrency', 16);
const CONNECTIONS = numberFlag('connections', 16);
const MIN_FREE = numberFlag('min-free-mb', 2048) * 2 ** 20;
const FLAGS = serverFlags();
const BASELINE = { databases: 500, rps: 5, p50: 1400, p99: 1900, processes: 257, rssBytes: 4.9e9 };

const mb = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${fmt(bytes / 1e6)} MB`);
const gb = (bytes: number) => `${fmt(bytes / 1e9, 2)} GB`;
const describe = (s: TreeStats) => `RSS ${mb(s.rssBytes)}${s.pssBytes === undefined ? '' : ` (PSS ${mb(s.pssBytes)})`}, ${s.processes} processes, server fds ${s.fds}`;

interface Setup {
  ready: string[];
  seconds: number;
  errors: number;
  messages: string[];
  /** Why setup stopped before every database was ready, if it did. */
  cutOff?: string;
}

async function setup(dione: Dione, size: number): Promise<Setup> {
  const started = performance.now();
  const deadline = started + SETUP_TIMEOUT * 1000;
  const names = Array.from({ length: size }, (_, i) => `tenant-${String(i).padStart(5, '0')}`);
  const ready = new Array<boolean>(size).fill(false);
  let next = 0;
  let done = 0;
  let errors = 0;
  let cutOff: string | undefined;
  const messages: string[] = [];
  const call = async (url: string, headers: Record<string, string>, body: unknown) => {
    const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(Math.ceil(Math.max(1000, deadline - performance.now()))) });
    const text = await response.text();
    if (!response.ok) throw new Error(`${response.status} ${text.slice(0, 200)}`);
  };
  const worker = async () => {
    while (next < size && cutOff === undefined) {
      if (performance.now() > deadline) cutOff = `--setup-timeout ${SETUP_TIMEOUT} s`;
      else if (memoryAvailableBytes() < MIN_FREE) cutOff = `less than --min-free-mb ${MIN_FREE / 2 ** 20} MB of memory left on the machine`;
      // Nothing works at all: the same error thousands of times would say nothing more.
      else if (done === 0 && errors >= 50) cutOff = `${errors} errors and no database ready`;
      if (cutOff !== undefined) break;
      const i = next++;
      try {
        await call(`${dione.url}/client/v4/accounts/${dione.accountId}/d1/database`, dione.headers, { name: names[i] });
        await call(`${dione.url}/query`, { ...dione.headers, 'x-dione-database': names[i]! }, [
          { sql: 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)' },
          { sql: 'INSERT INTO t VALUES (1, ?)', params: [names[i]] },
        ]);
        ready[i] = true;
        done++;
      } catch (error) {
        // Requests still running when the time is up are cut off, not failed.
        if ((error as Error).name === 'TimeoutError' && performance.now() >= deadline - 100) continue;
        errors++;
        if (messages.length < 3) messages.push(`${names[i]}: ${(error as Error).message}`);
      }
    }
  };
  const progress = setInterval(() => console.log(`  setup: ${fmt(done)}/${fmt(size)} databases after ${fmt((performance.now() - started) / 1000)} s, ${describe(treeStats(dione.pid))}`), 15_000);
  try {
    await Promise.all(Array.from({ length: SETUP_CONCURRENCY }, worker));
  } finally {
    clearInterval(progress);
  }
  return { ready: names.filter((_, i) => ready[i]), seconds: (performance.now() - started) / 1000, errors, messages, cutOff };
}

interface Run {
  load: LoadResult;
  /** Databases the server opened during the load (/metrics): to keep open, and for the request only. */
  opens: { kept: number; forRequests: number } | undefined;
  /** Each the highest sampled (every 500 ms) during the load. */
  during: TreeStats;
  after: TreeStats;
}

async function measure(dione: Dione, databases: string[]): Promise<Run> {
  const during: TreeStats = { processes: 0, rssBytes: 0, fds: 0 };
  const lowMemory = new AbortController();
  const sample = () => {
    if (memoryAvailableBytes() < MIN_FREE) lowMemory.abort();
    const s = treeStats(dione.pid);
    during.processes = Math.max(during.processes, s.processes);
    during.rssBytes = Math.max(during.rssBytes, s.rssBytes);
    during.fds = Math.max(during.fds, s.fds);
  };
  const sampler = setInterval(sample, 500);
  const opensBefore = await openCounts(dione);
  let load: LoadResult;
  try {
    load = await runLoad({
      url: `${dione.url}/query?resultsFormat=ROWS_AND_COLUMNS`,
      headers: dione.headers,
      connections: CONNECTIONS,
      seconds: SECONDS,
      maxRequests: SECONDS * 200_000,
      timeoutSeconds: 10,
      workload: { kind: 'tenants', databases },
    }, lowMemory.signal);
  } catch (error) {
    if (lowMemory.signal.aborted) throw new Error(`load stopped: less than --min-free-mb ${MIN_FREE / 2 ** 20} MB of memory left on the machine`);
    throw error;
  } finally {
    clearInterval(sampler);
  }
  sample();
  const opensAfter = await openCounts(dione);
  const opens = opensBefore && opensAfter ? { kept: opensAfter.kept - opensBefore.kept, forRequests: opensAfter.forRequests - opensBefore.forRequests } : undefined;
  await new Promise((r) => setTimeout(r, 1000));
  return { load, opens, during, after: treeStats(dione.pid, true) };
}

/** The server's dione_database_opens_total counters, or undefined when /metrics does not answer them. */
async function openCounts(dione: Dione): Promise<{ kept: number; forRequests: number } | undefined> {
  try {
    const text = await (await fetch(`${dione.url}/metrics`, { headers: dione.headers })).text();
    const count = (kind: string) => Number(new RegExp(`^dione_database_opens_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(text)?.[1]);
    const kept = count('kept');
    const forRequests = count('for_requests');
    return Number.isFinite(kept) && Number.isFinite(forRequests) ? { kept, forRequests } : undefined;
  } catch {
    return undefined;
  }
}

interface Report {
  size: number;
  setup: Setup;
  idle: TreeStats;
  runs: Run[];
}

async function bench(size: number): Promise<Report> {
  console.log(`\n${fmt(size)} databases: starting dione serve ${FLAGS.join(' ')}`);
  const dione = await startDione(FLAGS);
  try {
    const s = await setup(dione, size);
    const idle = treeStats(dione.pid, true);
    console.log(
      `  setup: ${fmt(s.ready.length)}/${fmt(size)} databases created and filled in ${fmt(s.seconds, 1)} s (${fmt(s.ready.length / s.seconds, 1)}/s), ${s.errors} errors` +
        `${s.cutOff ? `, CUT OFF: ${s.cutOff}` : ''}; then ${describe(idle)}`,
    );
    for (const m of s.messages) console.log(`    error: ${m}`);
    const runs: Run[] = [];
    if (s.ready.length === 0) {
      console.log('  no database ready: no load');
      console.log(`  server log tail:\n${dione.log().slice(-2000)}`);
    }
    for (let run = 1; run <= RUNS && s.ready.length > 0; run++) {
      let r: Run;
      try {
        r = await measure(dione, s.ready);
      } catch (error) {
        console.log(`  run ${run}/${RUNS}: ${(error as Error).message}`);
        break;
      }
      runs.push(r);
      const other = Object.entries(r.load.statuses).filter(([k]) => k !== '2xx');
      console.log(
        `  run ${run}/${RUNS}: ${fmt(r.load.rps)} req/s (${r.load.ok} answers in ${fmt(r.load.seconds, 1)} s, ${r.load.unanswered} unanswered at the end), p50 ${fmt(r.load.p50, 2)} ms, p99 ${fmt(r.load.p99, 2)} ms, errors ${r.load.errors}${other.length ? ` (${other.map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}` +
          `${r.opens ? ` | opened ${fmt(r.opens.kept)} to keep and ${fmt(r.opens.forRequests)} for their request only: ${fmt(100 * Math.max(0, 1 - (r.opens.kept + r.opens.forRequests) / Math.max(1, r.load.ok)), 1)}% of the answers found their database open` : ''}` +
          ` | during: ${describe(r.during)} | after: ${describe(r.after)}`,
      );
    }
    return { size, setup: s, idle, runs };
  } finally {
    await dione.stop();
  }
}

const reproduce = `npm run bench:tenants -- --seconds ${SECONDS} --databases ${DATABASES} --also ${ALSO} --runs ${RUNS}${serverFlagsArgument(FLAGS)}`;
console.log(`reproduce: ${reproduce}`);
console.log(`machine: ${machine()}; ${buildNote()}`);
console.log(
  `server: dione serve ${FLAGS.join(' ') || '(default flags)'}, own process; load: autocannon in its own process, ${CONNECTIONS} connections, ${SECONDS} s × ${RUNS} run(s), ` +
    `point selects (D1 binding protocol POST /query) round-robin over the databases; setup ${SETUP_CONCURRENCY} at a time, cut off after ${SETUP_TIMEOUT} s or below ${MIN_FREE / 2 ** 20} MB of free memory`,
);
const sizes = ALSO > 0 && ALSO < DATABASES ? [ALSO, DATABASES] : [DATABASES];
const reports: Report[] = [];
try {
  for (const size of sizes) reports.push(await bench(size));
} finally {
  await stopAll();
}

const verdict = (met: boolean) => (met ? 'met' : 'NOT met');
console.log(`\nsummary (medians of ${RUNS} run(s); RSS summed over the server's process tree, peak during the load)`);
for (const { size, setup: s, runs } of reports) {
  const rps = median(runs.map((r) => r.load.rps));
  const p50 = median(runs.map((r) => r.load.p50));
  const p99 = median(runs.map((r) => r.load.p99));
  const rss = median(runs.map((r) => r.during.rssBytes));
  const rssAfter = median(runs.map((r) => r.after.rssBytes));
  const processes = median(runs.map((r) => r.during.processes));
  const fds = median(runs.map((r) => r.during.fds));
  const errors = runs.reduce((n, r) => n + r.load.errors, 0);
  const reached = s.ready.length < size ? ` (only ${fmt(s.ready.length)} reached in setup)` : '';
  console.log(
    `${fmt(size).padStart(6)} databases${reached}: setup ${fmt(s.seconds, 1)} s; ${fmt(rps)} req/s [${runs.map((r) => fmt(r.load.rps)).join(', ')}], p50 ${fmt(p50, 2)} ms, p99 ${fmt(p99, 2)} ms, ` +
      `errors ${errors}; RSS ${gb(rss)} during, ${gb(rssAfter)} after; ${fmt(processes)} processes, ${fmt(fds)} server fds`,
  );
  if (size === BASELINE.databases && runs.length) {
    console.log(
      `        vs the issue's baseline (500 DBs: ~5 req/s, p50 1.4 s, p99 1.9 s, 257 processes, 4.9 GB): req/s ×${fmt(rps / BASELINE.rps, 1)}, p99 ×${fmt(p99 / BASELINE.p99, 3)}, RSS ×${fmt(rss / BASELINE.rssBytes, 2)}`,
    );
  }
  if (size === DATABASES && runs.length) {
    console.log(
      `        goals for ${fmt(DATABASES)} databases: ≥ 2,000 req/s: ${verdict(rps >= 2000)}; p99 < 50 ms: ${verdict(p99 < 50)}; server RSS < 2 GB: ${verdict(rss < 2e9)}` +
        `${s.ready.length < size ? ` (only ${fmt(s.ready.length)} of ${fmt(size)} databases were set up: not the goal's figure)` : ''}`,
    );
  }
}
console.log(`reproduce: ${reproduce}`);
