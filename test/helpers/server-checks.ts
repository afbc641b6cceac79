// Helpers for the server-*.test.ts files: REST calls that return status and parsed JSON, the
// `dione` CLI as a child process, bounded polling, Prometheus text parsing, and tokens for data
// directories served by a spawned `dione serve`.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Catalog } from '../../src/server/catalog.ts';
import { createToken } from '../../src/server/tokens.ts';
import { root } from './paths.ts';

export interface Envelope<T = any> {
  result: T;
  success: boolean;
  errors: { code: number; message: string }[];
  messages: unknown[];
  result_info?: { page: number; per_page: number; count: number; total_count: number };
}

export interface JsonReply<T = any> {
  status: number;
  body: T;
}

/** fetch() that reads the body as JSON (failing the test with the raw text when it is not JSON). */
export async function fetchJson<T = any>(url: string, init: RequestInit = {}): Promise<JsonReply<T>> {
  const response = await fetch(url, init);
  const text = await response.text();
  try {
    return { status: response.status, body: JSON.parse(text) as T };
  } catch {
    throw new Error(`${init.method ?? 'GET'} ${url} answered ${response.status} with a body that is not JSON: ${text.slice(0, 300)}`);
  }
}

/** Headers with a bearer token (when given) and a JSON content type. */
export function jsonHeaders(token: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `node bin/dione.js ...args`, asynchronously (an in-process server keeps answering meanwhile). */
export function dioneCli(args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, 'bin/dione.js'), ...args], { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `probe` every `intervalMs` until it returns a value other than undefined, at most
 * `attempts` times; returns that value, or undefined when it never came.
 */
export async function poll<T>(probe: () => Promise<T | undefined>, attempts: number, intervalMs: number): Promise<T | undefined> {
  for (let i = 0; i < attempts; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(intervalMs);
  }
  return undefined;
}

/** The value of one sample in Prometheus text output, or 0 when it is absent. */
export function metric(text: string, name: string, labels: Record<string, string>): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf('}');
    const found: Record<string, string> = {};
    for (const m of line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[m[1]!] = m[2]!;
    if (Object.entries(labels).every(([k, v]) => found[k] === v) && Object.keys(found).length === Object.keys(labels).length) {
      return Number(line.slice(close + 1).trim());
    }
  }
  return 0;
}

/** A token in a data directory's catalogue, made as `dione token create` makes it. */
export function tokenIn(dataDir: string, scope: 'read' | 'write' | 'admin', database?: string): string {
  const catalog = new Catalog(dataDir);
  try {
    const uuid = database ? (catalog.find(database)?.uuid ?? null) : null;
    if (database && !uuid) throw new Error(`no database ${database} in ${dataDir}`);
    return createToken(catalog, scope, uuid).token;
  } finally {
    catalog.close();
  }
}

/** Every regular file under `dir`, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(full));
    else if (statSync(full).isFile()) out.push(full);
  }
  return out;
}

/** The files under `dir` whose bytes contain `needle` (as UTF-8). */
export function filesContaining(dir: string, needle: string): string[] {
  const bytes = Buffer.from(needle, 'utf8');
  return filesUnder(dir).filter((file) => readFileSync(file).includes(bytes));
}

/** Whether a process exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The process ids whose parent is `pid` (Linux /proc). */
export function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

/** An endless recursive CTE: the runaway query. */
export const RUNAWAY_SQL = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c';
export const TIMEOUT_MESSAGE = 'D1 DB storage operation exceeded timeout which caused object to be reset.';
