// What bench:server and bench:tenants share: their flags, the processes they start (`dione serve`,
// the hello-world server, the load generator), stopping exactly those, and what /proc says about a
// server's process tree.
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { currentBuildTime } from '../bin/build-freshness.js';
import { Catalog } from '../src/server/catalog.ts';
import { createToken } from '../src/server/tokens.ts';
import type { LoadResult, LoadSpec } from './load.ts';

export const root = path.resolve(import.meta.dirname, '..');

function flagValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i > 0) return process.argv[i + 1];
  return process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
}

export function numberFlag(name: string, fallback: number, min = 1): number {
  const raw = flagValue(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`--${name} wants a number ≥ ${min}, got ${raw}`);
  return value;
}

/** --server-flags "--workers 2 …": passed to `dione serve` as they are (split at whitespace). */
export function serverFlags(): string[] {
  return (flagValue('server-flags') ?? '').split(/\s+/).filter(Boolean);
}

/** How to pass the server flags again in a reproduce line. */
export function serverFlagsArgument(flags: string[]): string {
  return flags.length ? ` --server-flags "${flags.join(' ')}"` : '';
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} cores (${cpus[0]?.model.trim() ?? 'cpu'}), node ${process.version}, load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`;
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** n with thousands separators and `digits` decimals (at least one below 100, so 0.4 req/s does not print as 0). */
export const fmt = (n: number, digits = 0) => {
  if (Number.isNaN(n)) return 'n/a';
  const d = digits === 0 && Math.abs(n) < 100 && !Number.isInteger(n) ? 1 : digits;
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};

// Everything started and not yet stopped, so an error or Ctrl-C still stops it.
const running = new Set<() => Promise<void>>();

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((stop) => stop()));
}

process.once('SIGINT', () => {
  void stopAll().finally(() => process.exit(130));
});

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** A process's start time (clock ticks since boot): with the pid, names it even after pid reuse. */
const startTime = (pid: number) => statFields(pid)?.[19];

/** pid and every descendant of it alive now. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const child = Number(entry);
    if (!Number.isInteger(child)) continue;
    const parent = Number(statFields(child)?.[1]);
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent)!.push(child);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []));
  return tree;
}

function statusKiB(pid: number, field: string, file = 'status'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0; // gone meanwhile
  }
}

export interface TreeStats {
  processes: number;
  /** VmRSS summed over the tree (pages shared between processes count once per process). */
  rssBytes: number;
  /** Pss summed over the tree (shared pages divided among their processes); only when asked, it is slow. */
  pssBytes?: number;
  /** Open file descriptors of the server process itself. */
  fds: number;
}

export function treeStats(pid: number, withPss = false): TreeStats {
  const tree = processTree(pid);
  let fds = 0;
  try {
    fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {}
  const sum = (field: string, file?: string) => tree.reduce((total, p) => total + statusKiB(p, field, file) * 1024, 0);
  return { processes: tree.length, rssBytes: sum('VmRSS'), pssBytes: withPss ? sum('Pss', 'smaps_rollup') : undefined, fds };
}

/** MemAvailable from /proc/meminfo: a bench stops before the machine (shared, 2 cores) runs out. */
export function memoryAvailableBytes(): number {
  const match = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return match ? Number(match[1]) * 1024 : Number.POSITIVE_INFINITY;
}

/** What `dione serve` runs in this checkout (bin/dione.js): the compiled build, or the sources through tsx (slower). */
export function buildNote(): string {
  const built = currentBuildTime();
  if (built !== undefined) return `the server runs the compiled build (dist/, built ${new Date(built).toISOString()})`;
  return 'the server runs the TypeScript sources through tsx, ~10% slower per request (dist/ is missing or older than a source: `npm run build` to measure the compiled build)';
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGTERM, then SIGKILL after graceMs; then SIGKILL to any of its descendants (as they were) still alive. */
async function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  const descendants = child.pid === undefined ? [] : processTree(child.pid).slice(1).map((pid) => ({ pid, start: startTime(pid) }));
  child.kill('SIGTERM');
  if (!(await exited(child, graceMs))) {
    child.kill('SIGKILL');
    await exited(child, 5000);
  }
  await new Promise((r) => setTimeout(r, 200));
  for (const { pid, start } of descendants) {
    if (start !== undefined && startTime(pid) === start) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  }
}

export interface Dione {
  url: string;
  accountId: string;
  /** An admin token. */
  token: string;
  headers: Record<string, string>;
  pid: number;
  /** The last lines the server wrote to stderr. */
  log(): string;
  stop(): Promise<void>;
}

/** `dione serve` in its own process on a fresh data directory, with an admin token. */
export async function startDione(flags: string[]): Promise<Dione> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-bench-'));
  const child = spawn(process.execPath, [path.join(root, 'bin/dione.js'), 'serve', '--port', '0', '--data', dir, ...flags], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, DIONE_LOG_LEVEL: 'warn' },
  });
  let tail = '';
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      running.delete(stop);
      await stopProcess(child, 60_000);
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };
  running.add(stop);
  try {
    const { url, accountId } = await new Promise<{ url: string; accountId: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`dione serve did not start in 60 s:\n${tail}`)), 60_000);
      child.stderr!.on('data', (chunk: Buffer) => {
        tail = (tail + chunk.toString()).slice(-8000); // read on, or the server blocks on a full pipe
        const u = /listening on (http:\/\/\S+)/.exec(tail)?.[1];
        const a = /account id (\w+)/.exec(tail)?.[1];
        if (u && a) {
          clearTimeout(timer);
          resolve({ url: u, accountId: a });
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`dione serve ${flags.join(' ')} exited (${code}):\n${tail}`));
      });
    });
    const catalog = new Catalog(dir);
    const token = createToken(catalog, 'admin', null).token;
    catalog.close();
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    return { url, accountId, token, headers, pid: child.pid!, log: () => tail, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

const tsx = import.meta.resolve('tsx');

function forkModule(file: string): ChildProcess {
  return fork(path.join(root, 'bench', file), [], { execArgv: ['--import', tsx], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function nextMessage<T>(child: ChildProcess, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms / 1000} s`)), ms);
    child.once('message', (message) => {
      clearTimeout(timer);
      resolve(message as T);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code})`));
    });
  });
}

/** The hello-world server (bench/hello-server.ts) in its own process, answering every request with these bytes. */
export async function startHello(body: Buffer, contentType: string): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const child = forkModule('hello-server.ts');
  const stop = async () => {
    running.delete(stop);
    await stopProcess(child, 5000);
  };
  running.add(stop);
  try {
    child.send({ body: body.toString('base64'), contentType });
    const { url } = await nextMessage<{ url: string }>(child, 30_000, 'the hello-world server');
    return { url, pid: child.pid!, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** One load (bench/load.ts) in its own process; resolves when it is done, rejects when aborted. */
export async function runLoad(spec: LoadSpec, signal?: AbortSignal): Promise<LoadResult> {
  const child = forkModule('load.ts');
  const stop = async () => {
    running.delete(stop);
    await stopProcess(child, 2000);
  };
  running.add(stop);
  const abort = () => void stop();
  signal?.addEventListener('abort', abort, { once: true });
  try {
    child.send(spec);
    const answer = await nextMessage<{ result?: LoadResult; error?: string }>(child, (spec.seconds + spec.timeoutSeconds + 60) * 1000, 'the load generator');
    if (!answer.result) throw new Error(`the load generator failed: ${answer.error}`);
    return answer.result;
  } finally {
    signal?.removeEventListener('abort', abort);
    await stop();
  }
}
