// npm run bench:cluster: what the cluster's write log costs, on a 3-node NATS cluster started here
// (real nats-server processes on loopback ports).
//   1. Durable single-row inserts, one caller: the single-node log (local fsync) vs a cluster
//      primary (each write shipped to the JetStream stream, replicas=3, before the answer).
//   2. Replica lag at a paced write rate (default 1,000/s): a follower in another process applies
//      the stream; lag = when the follower's copy reached a commit minus when the primary answered it.
// Not measured yet: read throughput with 1 vs 3 serving nodes (cluster mode is not in `dione serve` yet).
// Reproduce: npm run bench:cluster [-- --seconds 5 --rate 1000]
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { connect } from '@nats-io/transport-node';
import type { ExecuteRequest } from '../src/api/executor.ts';
import { ClusterDatabase } from '../src/cluster/cluster-database.ts';
import { Leases } from '../src/cluster/leases.ts';
import { ObjectSnapshots } from '../src/cluster/object-snapshots.ts';
import { LoggedDatabase } from '../src/log/logged-database.ts';
import { startNatsCluster } from '../test/helpers/nats-cluster.ts';

const argument = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const value = i > 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} wants a positive number`);
  return value;
};
const SECONDS = argument('seconds', 5);
const RATE = argument('rate', 1000);

const insert = (i: number): ExecuteRequest => ({ queries: [{ sql: 'INSERT INTO t (v) VALUES (?)', params: [`row ${i}`] }] });
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN;

console.log(`reproduce: npm run bench:cluster -- --seconds ${SECONDS} --rate ${RATE}`);
console.log(`dione bench:cluster: ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-bench-cluster-'));
const cluster = await startNatsCluster({ nodes: 3 });
const children: ChildProcess[] = [];
try {
  // 1. One caller, one row per write, for SECONDS each.
  const local = new LoggedDatabase(path.join(dir, 'local.sqlite'));
  local.execute({ queries: [{ sql: 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', params: [] }] });
  let n = 0;
  let until = performance.now() + SECONDS * 1000;
  while (performance.now() < until) local.execute(insert(n++));
  const localRate = n / SECONDS;
  local.closeNow();

  const nc = await connect({ servers: cluster.urls, timeout: 2000 });
  const primary = await ClusterDatabase.start({
    nc,
    database: 'bench',
    dir: path.join(dir, 'primary'),
    self: { node: 'p', url: 'http://p.invalid', region: 'WEUR' },
    leases: await Leases.open(nc, { ttlMs: 10_000, replicas: 3 }),
    snapshots: await ObjectSnapshots.open(nc, { replicas: 3 }),
    replicas: 3,
  });
  const upkeep = setInterval(() => void primary.tick().catch(() => {}), 2500);
  await primary.execute({ queries: [{ sql: 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)', params: [] }] }, true);
  n = 0;
  until = performance.now() + SECONDS * 1000;
  while (performance.now() < until) await primary.execute(insert(n++), true);
  const clusterRate = n / SECONDS;
  console.log('\n1. durable single-row inserts, one caller, ops/s');
  console.log(`single-node log (local fsync)          ${localRate.toFixed(0).padStart(8)}`);
  console.log(`cluster primary (JetStream, replicas 3) ${clusterRate.toFixed(0).padStart(7)}   ${(clusterRate / localRate).toFixed(2)}× the single-node log`);

  // 2. Replica lag at a paced rate, the follower in its own process.
  const follower = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'cluster-follower.ts'), JSON.stringify({ servers: [cluster.urls[2]], database: 'bench', dir: path.join(dir, 'follower'), seconds: SECONDS + 10 })],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(follower);
  const reachedAt = new Map<number, number>();
  const lines = createInterface({ input: follower.stdout! });
  const ready = new Promise<void>((resolve, reject) => {
    follower.once('exit', (code) => reject(new Error(`the follower process ended (${code}) before it was ready`)));
    lines.on('line', (line) => {
      if (line.startsWith('ready')) return resolve();
      const [seq, at] = line.split(' ').map(Number) as [number, number];
      reachedAt.set(seq, at);
    });
  });
  await ready;
  const answeredAt = new Map<number, number>();
  const started = performance.now();
  let sent = 0;
  while (performance.now() - started < SECONDS * 1000) {
    const due = Math.floor(((performance.now() - started) / 1000) * RATE);
    while (sent < due) {
      await primary.execute(insert(n++), true);
      answeredAt.set(primary.sequence, Date.now());
      sent++;
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  const achieved = sent / ((performance.now() - started) / 1000);
  const last = primary.sequence;
  for (const waitUntil = Date.now() + 10_000; Math.max(0, ...reachedAt.keys()) < last && Date.now() < waitUntil; ) await new Promise((r) => setTimeout(r, 20));
  const reached = [...reachedAt.entries()].sort((a, b) => a[0] - b[0]);
  const lags: number[] = [];
  for (const [seq, at] of answeredAt) {
    const first = reached.find(([s]) => s >= seq);
    if (first) lags.push(first[1] - at);
  }
  lags.sort((a, b) => a - b);
  console.log(`\n2. replica lag, follower in another process, asked ${RATE} writes/s, achieved ${achieved.toFixed(0)}/s over ${SECONDS} s`);
  console.log(`lag ms: p50 ${percentile(lags, 50)}, p99 ${percentile(lags, 99)}, max ${lags.at(-1)} (${lags.length} commits; goal p99 < 50 ms)`);
  clearInterval(upkeep);
  await primary.stop();
  await nc.close();
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await cluster.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log(`\nload average at the end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
