// npm run bench:cluster: what cluster mode costs and what it buys, with real processes: a 3-node
// NATS cluster (nats-server on loopback ports) and `dione serve` nodes, driven over HTTP in
// Dione's own protocol (what dione/client sends). The load generator (this process) sends with
// node:http over kept-alive connections: ~50 µs of its CPU per request where fetch took ~230, so that
// on 2 cores the figures are the servers', not the generator's (with fetch, its one thread was
// saturated at ~4,200 writes/s: the single node's figure was the generator's limit).
//   1. Durable single-row inserts: a single `dione serve` (local write log) vs the primary of a
//      3-node Dione cluster (each write shipped to the JetStream stream, replicas 3, before the
//      answer), with 1 and with 16 concurrent callers.
//   2. Replica lag at a paced write rate (default 1,000/s): a follower in its own process (as a node
//      runs it); lag = when its copy reached a commit minus when the primary answered that write.
//      Measured once the new follower has caught up with what part 1 wrote (its catch-up time is
//      printed on its own line).
//   3. Session reads ('first-unconstrained': any node's copy will do) served by 1 node vs by 3.
//   4. Time Travel after a failover: the primary's node is killed (SIGKILL), and the database is
//      restored through another node to a bookmark taken before; the restore's time is reported.
// Reproduce: npm run bench:cluster [-- --seconds 5 --rate 1000 --readers 24]
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { streamNameOf } from '../src/cluster/stream-log.ts';
import { startNatsCluster } from '../test/helpers/nats-cluster.ts';
import { buildNote } from './harness.ts';

const argument = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const value = i > 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} wants a positive number`);
  return value;
};
const SECONDS = argument('seconds', 5);
const RATE = argument('rate', 1000);
const READERS = argument('readers', 24);
const root = path.resolve(import.meta.dirname, '..');

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

console.log(`reproduce: npm run bench:cluster -- --seconds ${SECONDS} --rate ${RATE} --readers ${READERS}`);
console.log(
  `dione bench:cluster: ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}; ${buildNote()}`,
);
const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-bench-cluster-'));
const children: ChildProcess[] = [];
const processes = new Map<string, ChildProcess>();

/** `dione serve` in dev mode (no tokens) as a child process; resolves with its URL. */
function serve(name: string, args: string[]): Promise<string> {
  const child = spawn(process.execPath, [path.join(root, 'bin/dione.js'), 'serve', '--port', '0', '--dev', '--data', path.join(dir, name), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, DIONE_LOG_LEVEL: 'warn' },
  });
  children.push(child);
  processes.set(name, child);
  let err = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${err}`)), 60_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(err)?.[1];
      if (url) {
        clearTimeout(timer);
        resolve(url);
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}):\n${err}`)));
  });
}

async function createDatabase(url: string, name: string): Promise<string> {
  const accounts = (await (await fetch(`${url}/client/v4/accounts`)).json()) as { result: { id: string }[] };
  const account = accounts.result[0]!.id;
  const created = (await (await fetch(`${url}/client/v4/accounts/${account}/d1/database`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) })).json()) as {
    result: { uuid: string };
  };
  return created.result.uuid;
}

interface Answer {
  success: boolean;
  error?: string;
  bookmark?: string;
  results?: { meta: { served_by: string } }[];
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** One POST over a kept-alive connection (see the head of this file for why not fetch). */
function post(url: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
      });
      response.on('end', () => resolve(text));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

async function execute(url: string, database: string, sql: string, params: unknown[] = [], bookmark?: string): Promise<Answer> {
  const answer = JSON.parse(await post(`${url}/dione/v1/databases/${database}/execute`, JSON.stringify({ queries: [{ sql, params }], bookmark }))) as Answer;
  if (!answer.success) throw new Error(`${sql}: ${answer.error}`);
  return answer;
}

/** CPU time (user + system, seconds) a process has used so far, from /proc (Linux); 0 where unreadable. */
function cpuSeconds(pid: number | null | undefined): number {
  if (!pid) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Runs `callers` loops of `work` for SECONDS; returns operations per second. */
async function throughput(callers: number, work: (caller: number, i: number) => Promise<unknown>): Promise<number> {
  let done = 0;
  const until = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      for (let i = 0; performance.now() < until; i++) {
        await work(caller, i);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

const sequenceOf = (bookmark: string) => Number.parseInt(bookmark.slice(0, 8), 16) * 2 ** 32 + Number.parseInt(bookmark.slice(9, 17), 16);
const row = (i: number) => [`row ${i} ${'x'.repeat(40)}`];

const nats = await startNatsCluster({ nodes: 3 });
try {
  // 1. Writes.
  const single = await serve('single', []);
  const singleDb = await createDatabase(single, 'bench');
  await execute(single, singleDb, 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const nodes = await Promise.all(['a', 'b', 'c'].map((name, i) => serve(name, ['--nats', nats.urls[i]!, '--node-id', name, '--region', `R${i}`, '--lease-ttl', '3000'])));
  const [primary, ...followers] = nodes as [string, string, string];
  const database = await createDatabase(primary, 'bench');
  await execute(primary, database, 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const writes: Record<string, number> = {};
  // Where the CPU goes during the 16-caller runs: the machine's cores are shared by every process.
  const groups = {
    'dione (single)': [processes.get('single')?.pid],
    'dione primary (a)': [processes.get('a')?.pid],
    'dione followers (b, c)': [processes.get('b')?.pid, processes.get('c')?.pid],
    'nats-server ×3': nats.nodes.map((n) => n.pid),
    'load generator': [process.pid],
  };
  const cpuOf = () => Object.fromEntries(Object.entries(groups).map(([name, pids]) => [name, pids.reduce<number>((sum, pid) => sum + cpuSeconds(pid), 0)]));
  const cpu: Record<string, { used: Record<string, number>; ops: number; seconds: number }> = {};
  // Messages in the database's stream: how many writes shared each (group commit), and NATS's CPU per message.
  const observer = await connect({ servers: nats.urls[1]! });
  const streamMessages = async () => (await (await jetstreamManager(observer)).streams.info(streamNameOf(database))).state.last_seq;
  const messages: Record<string, number> = {};
  for (const callers of [1, 16]) {
    for (const [kind, url, db] of [
      ['single', single, singleDb],
      ['cluster', primary, database],
    ] as const) {
      const messagesBefore = kind === 'cluster' ? await streamMessages() : 0;
      const before = cpuOf();
      const started = performance.now();
      writes[`${kind} ${callers}`] = await throughput(callers, (c, i) => execute(url, db, 'INSERT INTO t (v) VALUES (?)', row(c * 1e6 + i)));
      const seconds = (performance.now() - started) / 1000;
      const after = cpuOf();
      cpu[`${kind} ${callers}`] = { used: Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - before[k]!])), ops: writes[`${kind} ${callers}`]! * seconds, seconds };
      if (kind === 'cluster') messages[callers] = (await streamMessages()) - messagesBefore;
    }
  }
  await observer.close();
  console.log('\n1. durable single-row inserts over HTTP, ops/s');
  for (const callers of [1, 16]) {
    const s = writes[`single ${callers}`]!;
    const c = writes[`cluster ${callers}`]!;
    console.log(`${String(callers).padStart(2)} caller(s): single node ${s.toFixed(0).padStart(6)}   cluster primary ${c.toFixed(0).padStart(6)}   ${(c / s).toFixed(2)}× the single node`);
  }
  for (const kind of ['single', 'cluster']) {
    const { used, ops, seconds } = cpu[`${kind} 16`]!;
    const total = Object.values(used).reduce((a, b) => a + b, 0);
    const parts = Object.entries(used)
      .filter(([, v]) => v > 0)
      .map(([name, v]) => `${name} ${((v / ops) * 1e6).toFixed(0)} µs`)
      .join(', ');
    console.log(`CPU per write, 16 callers, ${kind}: ${((total / ops) * 1e6).toFixed(0)} µs (${parts}); the ${os.cpus().length} cores were ${((total / seconds / os.cpus().length) * 100).toFixed(0)}% busy`);
  }
  const { used, ops } = cpu['cluster 16']!;
  console.log(
    `stream messages, 16 callers: ${messages[16]} for ${ops.toFixed(0)} writes (${(ops / messages[16]!).toFixed(1)} writes a message); nats-server ×3 CPU per message ${((used['nats-server ×3']! / messages[16]!) * 1e6).toFixed(0)} µs`,
  );

  // 2. Lag: a follower in its own process; the writer keeps to RATE with up to 64 writes in flight.
  const follower = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'cluster-follower.ts'), JSON.stringify({ servers: [nats.urls[2]], database, dir: path.join(dir, 'follower'), seconds: SECONDS + 15 })],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(follower);
  const reachedAt = new Map<number, number>();
  const lines = createInterface({ input: follower.stdout! });
  const spawnedAt = Date.now();
  let startSequence = 0;
  await new Promise<void>((resolve, reject) => {
    follower.once('exit', (code) => reject(new Error(`the follower process ended (${code}) before it was ready`)));
    lines.on('line', (line) => {
      if (line.startsWith('ready')) {
        startSequence = Number(line.split(' ')[1]);
        return resolve();
      }
      const [seq, at] = line.split(' ').map(Number) as [number, number];
      reachedAt.set(seq, at);
    });
  });
  // Lag is measured in steady state: the new follower first replays what part 1 wrote. That
  // catch-up is reported on its own line rather than counted as the lag of the first paced writes.
  const marker = sequenceOf((await execute(primary, database, 'INSERT INTO t (v) VALUES (?)', row(0))).bookmark!);
  const caughtUpBy = Date.now() + 60_000;
  while (Math.max(0, ...reachedAt.keys()) < marker && Date.now() < caughtUpBy) await pause(5);
  const caughtUp = [...reachedAt].find(([seq]) => seq >= marker)?.[1];
  if (caughtUp === undefined) throw new Error(`the follower did not reach commit ${marker} within 60 s`);
  const catchUp = `the new follower started at commit ${startSequence} and reached commit ${marker} ${caughtUp - spawnedAt} ms after its process was spawned`;
  const answeredAt = new Map<number, number>();
  const started = performance.now();
  let sent = 0;
  let inFlight = 0;
  let last = 0;
  while (performance.now() - started < SECONDS * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    while (sent < due && inFlight < 64) {
      inFlight++;
      sent++;
      void execute(primary, database, 'INSERT INTO t (v) VALUES (?)', row(sent)).then((answer) => {
        inFlight--;
        const seq = sequenceOf(answer.bookmark!);
        answeredAt.set(seq, Date.now());
        last = Math.max(last, seq);
      });
    }
    await pause(1);
  }
  while (inFlight > 0) await pause(5);
  const achieved = sent / ((performance.now() - started) / 1000);
  for (const waitUntil = Date.now() + 10_000; Math.max(0, ...reachedAt.keys()) < last && Date.now() < waitUntil; ) await pause(20);
  const reached = [...reachedAt.entries()].sort((a, b) => a[0] - b[0]);
  const lags: number[] = [];
  for (const [seq, at] of answeredAt) {
    const first = reached.find(([s]) => s >= seq);
    if (first) lags.push(Math.max(0, first[1] - at));
  }
  lags.sort((a, b) => a - b);
  follower.kill('SIGTERM');
  console.log(`\n2. replica lag, follower in another process, asked ${RATE} writes/s, achieved ${achieved.toFixed(0)}/s over ${SECONDS} s`);
  console.log(`lag ms: p50 ${percentile(lags, 50)}, p99 ${percentile(lags, 99)}, max ${lags.at(-1)} (${lags.length} commits; goal p99 < 50 ms)`);
  console.log(`(before the paced writes, ${catchUp})`);

  // 3. Session reads: every node's copy will do. Let the followers catch up first.
  const end = (await execute(primary, database, 'SELECT count(*) FROM t')).bookmark!;
  for (const node of followers) await execute(node, database, 'SELECT 1', [], end);
  const rows = sequenceOf(end);
  const read = (url: string, db = database, max = rows) => execute(url, db, 'SELECT v FROM t WHERE id = ?', [1 + Math.floor(Math.random() * max)], 'first-unconstrained');
  const singleRows = sequenceOf((await execute(single, singleDb, 'SELECT 1')).bookmark!);
  const alone = await throughput(READERS, () => read(single, singleDb, singleRows));
  const one = await throughput(READERS, () => read(primary));
  const three = await throughput(READERS, (caller) => read(nodes[caller % 3]!));
  console.log(`\n3. session reads (first-unconstrained), ${READERS} callers in this process, reads/s`);
  console.log(`single node, no cluster ${alone.toFixed(0).padStart(7)}`);
  console.log(`cluster, 1 node serving ${one.toFixed(0).padStart(7)}   ${(one / alone).toFixed(2)}× the single node`);
  console.log(`cluster, 3 nodes serving ${three.toFixed(0).padStart(6)}   ${(three / one).toFixed(2)}× 1 node (goal ≥ 2.5× where cores allow: this machine has ${os.cpus().length})`);

  // 4. Time Travel across a failover: a bookmark, more writes, the primary killed, a restore through another node.
  const accounts = (await (await fetch(`${primary}/client/v4/accounts`)).json()) as { result: { id: string }[] };
  const api = `/client/v4/accounts/${accounts.result[0]!.id}/d1/database/${database}`;
  const before = (await execute(primary, database, 'SELECT count(*) FROM t')).bookmark!;
  const rowsBefore = (await execute(primary, database, 'SELECT count(*) AS n FROM t')) as Answer & { results: { rows: [[number]] }[] };
  for (let i = 0; i < 50; i++) await execute(primary, database, 'INSERT INTO t (v) VALUES (?)', row(i));
  processes.get('a')!.kill('SIGKILL');
  const killed = performance.now();
  let takenOver = Number.NaN;
  for (let attempt = 0; attempt < 300; attempt++) {
    try {
      await execute(followers[0], database, 'INSERT INTO t (v) VALUES (?)', row(-1));
      takenOver = performance.now() - killed;
      break;
    } catch {
      await pause(100);
    }
  }
  const restoring = performance.now();
  const restore = await fetch(`${followers[0]}${api}/time_travel/restore?bookmark=${before}`, { method: 'POST' });
  const restoreMs = performance.now() - restoring;
  const restored = (await restore.json()) as { success: boolean; result?: { bookmark: string }; errors?: { message: string }[] };
  // Read in a session that starts at the restore's bookmark: whichever node answers has seen the restore.
  const rowsAfter = (await execute(followers[0], database, 'SELECT count(*) AS n FROM t', [], restored.result?.bookmark)) as Answer & { results: { rows: [[number]] }[] };
  const [counted, expected] = [rowsAfter.results[0]!.rows[0][0], rowsBefore.results[0]!.rows[0][0]];
  console.log(`
4. Time Travel restore through another node to a bookmark from before the primary was killed (${sequenceOf(before)} commits, lease TTL 3 s)`);
  console.log(
    `writes served again ${takenOver.toFixed(0)} ms after the kill; restore ${restored.success ? `took ${restoreMs.toFixed(0)} ms` : `failed: ${restored.errors?.[0]?.message}`}; rows as at the bookmark: ${counted === expected ? 'yes' : `NO (${counted}, expected ${expected})`}`,
  );
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  await pause(500);
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await nats.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
