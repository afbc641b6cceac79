// npm run bench:log: what the write log costs and what it buys, in one run.
//   1. Durable single-row inserts with the log on and off: embedded (each insert its own commit and
//      fsync), and through the server at 1 and 32 clients (the host group-commits: many writes, one
//      transaction, one log fsync). Without the log the database runs synchronous=FULL, with it
//      synchronous=NORMAL plus the log's fsync, so both are durable. Prints ops/s (median of
//      rounds, the two alternating within each round) and on/off. Goal: ≤ 15% overhead with group commit.
//   2. Log bytes per written row, from the log's size before and after (.log.bytes()).
//   3. Restoring a database of --gb GiB to one hour back (goal < 30 s): built through a
//      history-enabled database whose clock is simulated (every commit moves it on, so the build
//      spans --hours hours), ~1 KiB text rows in transactions of --batch rows, default snapshot
//      settings. Prints build time, log and snapshot sizes, restore time and a plain copy of the
//      file as the baseline, and checks the restored row count.
//   4. Opening a database whose history holds --reopen-commits commits (one row each): the median
//      of --rounds opens (the log is read to index its records), against opening the same file
//      without its history (better-sqlite3 through Dione's Connection), and the heap it takes; then
//      the first and second durable inserts after opening.
// Reproduce: npm run bench:log [-- --gb 1 --rounds 5 --seconds 1 --server-seconds 3 --reopen-commits 50000 --parts write,server,bytes,restore,reopen]
import { closeSync, copyFileSync, fsyncSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statfsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { deflateRawSync } from 'node:zlib';
import autocannon from 'autocannon';
import pino from 'pino';
import { Connection } from '../src/engine/connection.ts';
import { D1Database, type D1PreparedStatement, open } from '../src/index.ts';
import { LoggedExecutor } from '../src/log/executor.ts';
import type { HistoryOptions, LoggedDatabase } from '../src/log/logged-database.ts';
import { startServer } from '../src/server/serve.ts';
import { mulberry32 } from '../test/helpers/random.ts';

const argument = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const value = i > 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} wants a positive number`);
  return value;
};
const textArgument = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const GIB = 2 ** 30;
const MIB = 2 ** 20;
const GB = argument('gb', 1);
const ROUNDS = Math.round(argument('rounds', 5));
const SECONDS = argument('seconds', 1);
const SERVER_SECONDS = Math.round(argument('server-seconds', 3));
const HOURS = argument('hours', 6);
if (HOURS <= 1.5) throw new Error('--hours: the build must span more than the hour the restore goes back');
const BATCH = Math.round(argument('batch', 2000));
const BUILD_MINUTES = argument('build-minutes', 20);
const PARTS = new Set(textArgument('parts', 'write,server,bytes,restore,reopen').split(','));
const REOPEN_COMMITS = argument('reopen-commits', 50_000);
const MAX_OPS = 1_000_000;
const CLIENTS = [1, 32];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const pct = (on: number, off: number) => `${on >= off ? '+' : ''}${((on / off - 1) * 100).toFixed(1)}%`;
const yieldTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-bench-log-'));
let cleaned = false;
const cleanUp = () => {
  if (cleaned) return;
  cleaned = true;
  rmSync(dir, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  cleanUp();
  process.exit(130);
});

/** Opens a database with a history, keeping hold of its LoggedDatabase (as open() does, which keeps it private). */
function openLogged(file: string, options: HistoryOptions = {}): { db: D1Database; logged: LoggedDatabase } {
  const executor = new LoggedExecutor(file, {}, options);
  return { db: new D1Database(executor), logged: executor.database };
}

// --- text that compresses like text: Zipf-distributed words of a synthetic vocabulary, seeded ---

function makeCorpus(bytes: number, random: () => number): string {
  const syllables = ['ka', 'lo', 'mi', 'ten', 'ra', 'sto', 'pe', 'an', 'de', 'ri', 'on', 'ul', 'ver', 'sa', 'ti', 'que', 'mar', 'el', 'bo', 'nu', 'ges', 'ph', 'or', 'in', 'ly', 'tra', 'ment', 'ce'];
  const words: string[] = [];
  for (let i = 0; i < 5000; i++) {
    const n = 1 + Math.floor(random() * random() * 4);
    let w = '';
    for (let k = 0; k < n; k++) w += syllables[Math.floor(random() * syllables.length)];
    words.push(w);
  }
  const cumulative: number[] = [];
  let total = 0;
  for (let r = 1; r <= words.length; r++) cumulative.push((total += 1 / r));
  const pick = () => {
    const x = random() * total;
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (cumulative[mid]! < x) low = mid + 1;
      else high = mid;
    }
    return words[low]!;
  };
  const parts: string[] = [];
  let length = 0;
  while (length < bytes) {
    const n = 6 + Math.floor(random() * 14);
    const sentence = Array.from({ length: n }, pick).join(' ');
    const text = `${sentence[0]!.toUpperCase()}${sentence.slice(1)}. `;
    parts.push(text);
    length += text.length;
  }
  return parts.join('');
}

const random = mulberry32(42);
const corpus = makeCorpus(16 * MIB, random);
const slice = (length: number) => {
  const at = Math.floor(random() * (corpus.length - length));
  return corpus.slice(at, at + length);
};
const DOCS_SCHEMA =
  'CREATE TABLE docs (id INTEGER PRIMARY KEY, author INTEGER NOT NULL, created_at INTEGER NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL)\nCREATE INDEX docs_created ON docs (created_at)';
const DOCS_INSERT = 'INSERT INTO docs (author, created_at, title, body) VALUES (?, ?, ?, ?)';
/** A ~1 KiB row: a title of 40-80 characters, a body of 900-1100. */
const docRow = (at: number): [number, number, string, string] => [Math.floor(random() * 10_000), at, slice(40 + Math.floor(random() * 40)), slice(900 + Math.floor(random() * 200))];
const SMALL_SCHEMA = 'CREATE TABLE log (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, note TEXT)';
const SMALL_INSERT = 'INSERT INTO log (at, note) VALUES (?, ?)';

// --- disk use, sampled by a worker (restores are synchronous and would stop a timer) ---

const peak = new Float64Array(new SharedArrayBuffer(8));
const sampler = new Worker(
  `const { workerData } = require('node:worker_threads');
   const fs = require('node:fs');
   const path = require('node:path');
   const peak = new Float64Array(workerData.peak);
   const size = (d) => {
     let n = 0;
     let names = [];
     try { names = fs.readdirSync(d, { withFileTypes: true }); } catch { return 0; }
     for (const e of names) {
       const p = path.join(d, e.name);
       try { n += e.isDirectory() ? size(p) : fs.statSync(p).size; } catch {}
     }
     return n;
   };
   setInterval(() => { peak[0] = Math.max(peak[0], size(workerData.dir)); }, 200);`,
  { eval: true, workerData: { dir, peak: peak.buffer } },
);
sampler.unref();

function bytesUnder(d: string): number {
  let n = 0;
  for (const e of readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    n += e.isDirectory() ? bytesUnder(p) : statSync(p).size;
  }
  return n;
}

// --- 1a. embedded durable single-row inserts ---

/** Sequential single-row inserts for `secs`, each its own commit; ops/s. */
async function insertLoop(db: D1Database, secs: number): Promise<number> {
  const stmt = db.prepare(SMALL_INSERT);
  let n = 0;
  const start = performance.now();
  const deadline = start + secs * 1000;
  while ((performance.now() < deadline || n < 5) && n < MAX_OPS) {
    await stmt.bind(n, 'bench').run();
    n++;
  }
  return (n / (performance.now() - start)) * 1000;
}

async function embeddedWrites(): Promise<void> {
  const base = path.join(dir, 'embedded');
  const off = open(path.join(base, 'off.sqlite'));
  const on = open(path.join(base, 'on.sqlite'), { history: true });
  for (const db of [off, on]) await db.exec(SMALL_SCHEMA);
  await insertLoop(off, 0.2);
  await insertLoop(on, 0.2);
  const runs = { off: [] as number[], on: [] as number[] };
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate who goes first, so a drift of the machine does not favour one side.
    for (const side of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      runs[side].push(await insertLoop(side === 'off' ? off : on, SECONDS));
    }
  }
  await off.close();
  await on.close();
  rmSync(base, { recursive: true, force: true });
  row('embedded, 1 caller, 1 row/commit', runs);
}

/** One line of part 1: medians, their ratio, and the median of the ratios of each round's adjacent off and on runs. */
function row(label: string, runs: { off: number[]; on: number[] }, extra = ''): void {
  const off = median(runs.off);
  const on = median(runs.on);
  const paired = median(runs.on.map((x, i) => x / runs.off[i]!));
  const spread = (xs: number[]) => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;
  console.log(
    `${label.padEnd(36)} ${off.toFixed(0).padStart(9)} ${on.toFixed(0).padStart(9)} ${(on / off).toFixed(2).padStart(6)}× ${pct(on, off).padStart(7)} ${paired.toFixed(2).padStart(7)}×   off ${spread(runs.off)}, on ${spread(runs.on)}${extra}`,
  );
}

// --- 1b. the server, group commit ---

interface Target {
  history: boolean;
  url: string;
  data: string;
  close: () => Promise<void>;
}

async function startTarget(history: boolean): Promise<Target> {
  const data = path.join(dir, history ? 'server-on' : 'server-off');
  const s = await startServer({ data, port: 0, allowUnauthenticated: true, history, logger: pino({ level: 'silent' }) });
  const headers = { 'content-type': 'application/json' };
  const created = await fetch(`${s.url}/client/v4/accounts/${s.accountId}/d1/database`, { method: 'POST', headers, body: JSON.stringify({ name: 'bench' }) });
  if (!created.ok) throw new Error(`creating the database: ${created.status} ${await created.text()}`);
  const schema = await fetch(`${s.url}/dione/v1/databases/bench/execute`, { method: 'POST', headers, body: JSON.stringify({ queries: [{ sql: SMALL_SCHEMA, params: [] }] }) });
  if (!schema.ok) throw new Error(`creating the table: ${schema.status} ${await schema.text()}`);
  return { history, url: s.url, data, close: () => s.close() };
}

/** Whether anything under `d` looks like a write log (segments/*.log). */
function hasLog(d: string): boolean {
  for (const e of readdirSync(d, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const p = path.join(d, e.name);
    if (e.name === 'segments' && readdirSync(p).some((n) => n.endsWith('.log'))) return true;
    if (hasLog(p)) return true;
  }
  return false;
}

let seq = 0;
async function serverLoad(target: Target, connections: number, secs: number) {
  const result = await autocannon({
    url: `${target.url}/dione/v1/databases/bench/execute`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    connections,
    duration: secs,
    requests: [
      {
        setupRequest: (request) => {
          (request as { body?: string }).body = JSON.stringify({ queries: [{ sql: SMALL_INSERT, params: [seq++, 'bench'] }], resultsFormat: 'NONE' });
          return request;
        },
      },
    ],
  });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx };
}

async function serverWrites(): Promise<void> {
  const off = await startTarget(false);
  const on = await startTarget(true);
  try {
    await serverLoad(off, 8, 1);
    await serverLoad(on, 8, 1);
    const logged = { off: hasLog(off.data), on: hasLog(on.data) };
    if (!logged.on || logged.off) {
      console.log(`  ! the server ignored history (a log with history on: ${logged.on}, with it off: ${logged.off}): the rows below compare like with like`);
    }
    for (const connections of CLIENTS) {
      const runs = { off: [] as number[], on: [] as number[] };
      const p99 = { off: [] as number[], on: [] as number[] };
      let errors = 0;
      for (let r = 0; r < ROUNDS; r++) {
        for (const side of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
          const result = await serverLoad(side === 'off' ? off : on, connections, SERVER_SECONDS);
          runs[side].push(result.rps);
          p99[side].push(result.p99);
          errors += result.errors;
        }
      }
      const label = `server, ${connections} client${connections === 1 ? '' : 's'}, 1 row/request`;
      row(label, runs, `; p99 ms off ${median(p99.off)}, on ${median(p99.on)}${errors ? `; ${errors} ERRORS` : ''}`);
    }
  } finally {
    await off.close();
    await on.close();
    rmSync(off.data, { recursive: true, force: true });
    rmSync(on.data, { recursive: true, force: true });
  }
}

// --- 2. log bytes per written row ---

async function bytesPerRow(): Promise<void> {
  const base = path.join(dir, 'bytes');
  const { db, logged } = openLogged(path.join(base, 'bytes.sqlite'));
  try {
    await db.exec(`${SMALL_SCHEMA}\n${DOCS_SCHEMA}`);
    // Trees of some depth first, as in a database in use.
    await db.prepare(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000) INSERT INTO log (at, note) SELECT i, 'seed row ' || i FROM n`).run();
    const seedDocs = db.prepare(DOCS_INSERT);
    for (let k = 0; k < 5; k++) await db.batch(Array.from({ length: 1000 }, (_, i) => seedDocs.bind(...docRow(k * 1000 + i))));
    const cases: { label: string; rows: number; statement: () => D1PreparedStatement }[] = [
      { label: 'small row (~25 B), 1 per commit', rows: 1, statement: () => db.prepare(SMALL_INSERT).bind(Date.now(), 'bench note') },
      { label: 'small row (~25 B), 100 per batch', rows: 100, statement: () => db.prepare(SMALL_INSERT).bind(Date.now(), 'bench note') },
      { label: '~1 KiB text row, 1 per commit', rows: 1, statement: () => db.prepare(DOCS_INSERT).bind(...docRow(Date.now())) },
      { label: `~1 KiB text row, ${BATCH} per batch`, rows: BATCH, statement: () => db.prepare(DOCS_INSERT).bind(...docRow(Date.now())) },
    ];
    console.log(`${'rows written'.padEnd(36)} ${'commits'.padStart(9)} ${'log B/row'.padStart(10)} ${'log B/commit'.padStart(13)}`);
    for (const c of cases) {
      const maxCommits = Math.max(5, Math.floor(4000 / c.rows));
      const deadline = performance.now() + 5000;
      const before = logged.log.bytes();
      let commits = 0;
      while (commits < maxCommits && (performance.now() < deadline || commits < 5)) {
        if (c.rows === 1) await c.statement().run();
        else await db.batch(Array.from({ length: c.rows }, c.statement));
        commits++;
      }
      const delta = logged.log.bytes() - before;
      console.log(`${c.label.padEnd(36)} ${String(commits).padStart(9)} ${(delta / (commits * c.rows)).toFixed(0).padStart(10)} ${(delta / commits).toFixed(0).padStart(13)}`);
    }
  } finally {
    await db.close();
    rmSync(base, { recursive: true, force: true });
  }
}

// --- 3. restore a large database to one hour back ---

async function restoreHourBack(): Promise<void> {
  const target = GB * GIB;
  const free = statfsSync(dir);
  const needed = target * 5.5;
  if (free.bavail * free.bsize < needed) {
    console.log(`skipped: ${mib(free.bavail * free.bsize)} free, the run needs about ${mib(needed)}`);
    return;
  }
  const base = path.join(dir, 'restore');
  mkdirSync(base, { recursive: true });
  const file = path.join(base, 'big.sqlite');
  const spanMs = HOURS * 3600_000;
  // Every commit moves the simulated clock on by `step`, so the build spans HOURS whatever its size.
  const estimatedCommits = Math.max(10, Math.ceil(target / (BATCH * 1380)));
  const step = Math.floor(spanMs / estimatedCommits);
  let now = Date.now() - spanMs - step;
  const { db, logged } = openLogged(file, { clock: () => now });
  const timeline: { time: number; rows: number; logBytes: number }[] = [];
  let rows = 0;
  let restoreMs = 0;
  try {
    now += step;
    await db.exec(DOCS_SCHEMA);
    const insert = db.prepare(DOCS_INSERT);
    const started = performance.now();
    const budget = started + BUILD_MINUTES * 60_000;
    let lastReport = started;
    let size = 0;
    while (size < target && timeline.length < estimatedCommits * 3 && performance.now() < budget) {
      now += step;
      const at = now;
      await db.batch(Array.from({ length: BATCH }, () => insert.bind(...docRow(at))));
      rows += BATCH;
      timeline.push({ time: now, rows, logBytes: logged.log.bytes() });
      // Between transactions the event loop turns, as it does between requests: an online
      // snapshot (SQLite's backup, 100 pages a turn) makes progress.
      for (let k = 0; k < 64; k++) await yieldTurn();
      size = statSync(file).size;
      if (performance.now() - lastReport > 15_000) {
        lastReport = performance.now();
        console.log(`  … ${mib(size)} after ${seconds(lastReport - started)}`);
      }
    }
    const buildMs = performance.now() - started;
    if (size < target) console.log(`  ! the build stopped at ${mib(size)} (bounds: ${BUILD_MINUTES} min, ${estimatedCommits * 3} commits)`);
    // A snapshot still in progress would be waited for by the restore; it belongs to the build.
    const waitStarted = performance.now();
    await (logged as unknown as { snapshotting?: Promise<void> }).snapshotting?.catch(() => {});
    const snapshotWaitMs = performance.now() - waitStarted;
    const snapshots = logged.snapshots.list();
    const dbBytes = statSync(file).size;
    const logBytes = logged.log.bytes();
    console.log(`build: ${rows} rows of ~1 KiB in ${timeline.length} commits of ${BATCH}, simulated span ${((now - timeline[0]!.time) / 3600_000).toFixed(1)} h`);
    console.log(`  ${seconds(buildMs)} (${(dbBytes / MIB / (buildMs / 1000)).toFixed(1)} MiB/s), then ${seconds(snapshotWaitMs)} for the snapshot in progress`);
    console.log(`  database ${mib(dbBytes)}; log ${mib(logBytes)} (${(logBytes / rows).toFixed(0)} B/row, ${(logBytes / dbBytes).toFixed(2)} of the database)`);
    console.log(`  snapshots: ${snapshots.length}, ${mib(snapshots.reduce((n, s) => n + s.bytes, 0))}: ${snapshots.map((s) => mib(s.bytes)).join(', ')}`);

    const point = now - 3600_000;
    const expected = timeline.filter((t) => t.time <= point).at(-1);
    const from = snapshots.filter((s) => s.time <= point).at(-1)!;
    const fromRows = timeline.filter((t) => t.time <= from.time).at(-1);
    const replay = (expected?.logBytes ?? 0) - (fromRows?.logBytes ?? 0);
    console.log(
      `restore to ${new Date(point).toISOString()} (1 h back): ${expected?.rows ?? 0} rows expected; from the snapshot taken ${((now - from.time) / 3600_000).toFixed(1)} h back (${mib(from.bytes)}), replaying ~${mib(replay)} of log`,
    );
    const phases = watchRestore(logged);
    const restoreStarted = performance.now();
    // history(db).restore(point) is this call (index.ts hands it straight to the LoggedDatabase).
    await logged.restore({ timestamp: new Date(point) });
    const restoreEnded = performance.now();
    restoreMs = restoreEnded - restoreStarted;
    phases.stop();
    const countStarted = performance.now();
    const counted = await db.prepare('SELECT COUNT(*) AS n FROM docs').first<{ n: number }>();
    const countMs = performance.now() - countStarted;
    const ok = counted?.n === (expected?.rows ?? 0);
    console.log(
      `  restore: ${seconds(restoreMs)} ${restoreMs < 30_000 ? '(goal < 30 s: met)' : '(goal < 30 s: MISSED)'}; rows after: ${counted?.n} ${ok ? '(right)' : `(WRONG, expected ${expected?.rows})`}, counted in ${seconds(countMs)}`,
    );
    const [first, swap] = phases.copies;
    const put = phases.puts[0];
    if (first && swap && put) {
      const replayMs = put.start - first.end;
      console.log(
        `  phases: resolve ${seconds(first.start - restoreStarted)}, copy the snapshot ${seconds(first.end - first.start)}, replay ${phases.records} records ${seconds(replayMs)} (read + inflate ${seconds(phases.readMs)}, write pages + fsync ${seconds(replayMs - phases.readMs)}), keep the result as a snapshot (copy + fsync) ${seconds(put.end - put.start)}, log it + close ${seconds(swap.start - put.end)}, swap in (copy) ${seconds(swap.end - swap.start)}, rename + reopen ${seconds(restoreEnded - swap.end)}`,
      );
    }
    console.log(`  after: database ${mib(statSync(file).size)}, snapshots ${logged.snapshots.list().length}, log ${mib(logged.log.bytes())}`);
    // The swapped-in file is written but not synced by the restore; flushing it first keeps its
    // writeback out of the baseline below.
    const syncStarted = performance.now();
    const restored = openSync(file, 'r+');
    fsyncSync(restored);
    closeSync(restored);
    console.log(`  fsync of the swapped-in database file afterwards: ${seconds(performance.now() - syncStarted)}`);
    // Baseline, same run: one plain copy of the database file, made durable.
    const copy = path.join(base, 'copy.sqlite');
    const copyStarted = performance.now();
    copyFileSync(file, copy);
    const fd = openSync(copy, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    const copyMs = performance.now() - copyStarted;
    rmSync(copy);
    console.log(`  baseline: copy + fsync of the restored file (${mib(statSync(file).size)}): ${seconds(copyMs)}; restore / copy = ${(restoreMs / copyMs).toFixed(1)}×`);
  } finally {
    await db.close();
    console.log(`  disk: peak ${mib(peak[0]!)} under the bench's temporary directory (sampled every 200 ms), ${mib(bytesUnder(dir))} before cleanup`);
    rmSync(base, { recursive: true, force: true });
  }
}

interface Span {
  start: number;
  end: number;
}

/**
 * Times the restore's steps by wrapping its stores' methods on this instance (src stays as it is):
 * snapshot copies (the base, then the swap), storing the result as a snapshot, and the log reads
 * (read + CRC + inflate) inside the replay.
 */
function watchRestore(logged: LoggedDatabase) {
  const snapshots = logged.snapshots;
  const log = logged.log;
  const original = { copyTo: snapshots.copyTo, put: snapshots.put, read: log.read };
  const watch = { copies: [] as Span[], puts: [] as Span[], readMs: 0, records: 0, stop: () => {} };
  snapshots.copyTo = (seq, file) => {
    const start = performance.now();
    original.copyTo.call(snapshots, seq, file);
    watch.copies.push({ start, end: performance.now() });
  };
  snapshots.put = (file, seq, time) => {
    const start = performance.now();
    const info = original.put.call(snapshots, file, seq, time);
    watch.puts.push({ start, end: performance.now() });
    return info;
  };
  log.read = function* (from, to) {
    const records = original.read.call(log, from, to)[Symbol.iterator]();
    let start = performance.now();
    for (let next = records.next(); !next.done; next = records.next()) {
      watch.readMs += performance.now() - start;
      watch.records++;
      yield next.value;
      start = performance.now();
    }
    watch.readMs += performance.now() - start;
  };
  watch.stop = () => {
    snapshots.copyTo = original.copyTo;
    snapshots.put = original.put;
    log.read = original.read;
  };
  return watch;
}

/** 4. Opening a database with a long history: the log is read to index its records. */
async function reopenLongHistory(): Promise<void> {
  const file = path.join(dir, 'reopen', 'long.sqlite');
  mkdirSync(path.dirname(file), { recursive: true });
  // Built without syncing the log (the opening is measured, not the writes).
  const { db, logged } = openLogged(file, { syncLog: false });
  await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const started = performance.now();
  for (let i = 0; i < REOPEN_COMMITS; i++) await insert.bind(`row ${i}`).run();
  const logBytes = logged.log.bytes();
  await db.close();
  console.log(`  built: ${REOPEN_COMMITS} commits in ${seconds(performance.now() - started)}, log ${mib(logBytes)}`);
  const opens: number[] = [];
  const plain: number[] = [];
  const heap: number[] = [];
  const firstWrites: number[] = [];
  const laterWrites: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const before = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const executor = new LoggedExecutor(file, {}, {});
    opens.push(performance.now() - t0);
    heap.push(process.memoryUsage().heapUsed - before);
    // The first write after opening also sums the page bytes since the newest snapshot (it may
    // read a segment's index back); the next one is an ordinary durable insert.
    const reopened = new D1Database(executor);
    const write = reopened.prepare('INSERT INTO t (v) VALUES (?)');
    const t2 = performance.now();
    await write.bind(`reopened ${round}`).run();
    const t3 = performance.now();
    await write.bind(`reopened ${round} again`).run();
    firstWrites.push(t3 - t2);
    laterWrites.push(performance.now() - t3);
    await executor.close();
    const t1 = performance.now();
    new Connection(file).close();
    plain.push(performance.now() - t1);
  }
  const med = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
  console.log(
    `  open with its history: ${med(opens).toFixed(1)} ms (median of ${ROUNDS}; ${opens.map((v) => v.toFixed(1)).join(', ')}), heap +${mib(med(heap))}; without (the file alone): ${med(plain).toFixed(2)} ms`,
  );
  console.log(`  then the first durable insert: ${med(firstWrites).toFixed(1)} ms, the second: ${med(laterWrites).toFixed(1)} ms (medians)`);
}

// --- the run ---

const ratio = deflateRawSync(Buffer.from(corpus.slice(0, 4 * MIB)), { level: 1 }).length / (4 * MIB);
console.log(`reproduce: npm run bench:log -- --gb ${GB} --rounds ${ROUNDS} --seconds ${SECONDS} --server-seconds ${SERVER_SECONDS} --hours ${HOURS} --batch ${BATCH} --reopen-commits ${REOPEN_COMMITS} --parts ${[...PARTS].join(',')}`);
const load = () => os.loadavg().map((x) => x.toFixed(1)).join(' ');
console.log(`dione bench:log: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load average ${load()}, temporary files in ${dir}`);
console.log(`row text: synthetic Zipf-distributed words, deflates (level 1) to ${(ratio * 100).toFixed(0)}% of its size`);
try {
  if (PARTS.has('write') || PARTS.has('server')) {
    console.log(`\n1. durable single-row inserts, ops/s, median of ${ROUNDS} rounds (${SECONDS} s embedded, ${SERVER_SECONDS} s server), log off vs on`);
    console.log(`${'workload'.padEnd(36)} ${'log off'.padStart(9)} ${'log on'.padStart(9)} ${'on/off'.padStart(7)} ${'change'.padStart(7)} ${'paired'.padStart(8)}   range over rounds (paired: median of each round's on/off)`);
    if (PARTS.has('write')) await embeddedWrites();
    if (PARTS.has('server')) await serverWrites();
  }
  if (PARTS.has('bytes')) {
    console.log('\n2. log bytes per written row (.log.bytes() before and after)');
    await bytesPerRow();
  }
  if (PARTS.has('restore')) {
    console.log(`\n3. restore a ${GB} GiB database to one hour back (default snapshot settings: a snapshot once the log since the last one exceeds max(64 MiB, database size))`);
    await restoreHourBack();
  }
  if (PARTS.has('reopen')) {
    console.log(`\n4. open a database whose history holds ${REOPEN_COMMITS} commits`);
    await reopenLongHistory();
  }
  console.log(`\nload average at the end: ${load()}`);
} finally {
  await sampler.terminate();
  cleanUp();
}
