// Unmodified Worker code against a Dione server, through Cloudflare's own D1 binding: the real
// workerd binary from npm runs test/fixtures/workerd/worker.js with env.DB built by workerd from
// `cloudflare-internal:d1-api`, whose `fetcher` is an external service pointing at an in-process
// Dione server (token and database injected as headers). Checks the binding API end to end, writes
// seen through the REST API, and every conformance scenario against golden.json.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DATABASE_HEADER } from '../src/server/routes/database-protocols.ts';
import { root, sharedDir } from './helpers/paths.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

/** The workerd package (a dependency of wrangler) exports the path of its platform binary. */
const workerdBinary: string = createRequire(import.meta.url)('workerd').default;

/**
 * golden.json was recorded with workerd 1.20260426.1, the version installed here; its release date
 * is the newest date that binary fully describes (it accepts up to a week later, refuses newer).
 * D1's binding code in that release has no compatibility-date-dependent behaviour.
 */
const COMPATIBILITY_DATE = '2026-04-26';
const DATABASE = 'workerd-db';
const fixtures = path.join(root, 'test/fixtures/workerd');

// ------------------------------------------------------------------ workerd

/** A capnp text string literal (JSON's escapes are a subset of capnp's). */
const capnpString = (s: string) => JSON.stringify(s);

function workerdConfig(dioneAddress: string, token: string, database: string): string {
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    (name = "dione", external = (
      address = ${capnpString(dioneAddress)},
      http = (injectRequestHeaders = [
        (name = "authorization", value = ${capnpString(`Bearer ${token}`)}),
        (name = ${capnpString(DATABASE_HEADER)}, value = ${capnpString(database)}),
      ]),
    )),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);

const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "scenarios.mjs", esModule = embed "scenarios.mjs"),
  ],
  compatibilityDate = ${capnpString(COMPATIBILITY_DATE)},
  bindings = [
    (name = "DB", wrapped = (
      moduleName = "cloudflare-internal:d1-api",
      innerBindings = [ (name = "fetcher", service = "dione") ],
    )),
  ],
);
`;
}

interface Workerd {
  url: string;
  child: ChildProcess;
  /** Everything workerd printed (stdout and stderr) since start. */
  log(): string;
  /** What workerd printed since `mark` (a length of log()). */
  logSince(mark: number): string;
  stop(): Promise<void>;
}

/**
 * Starts workerd on a config in a fresh temp dir. The socket listens on port 0; workerd reports the
 * port it got on its control fd (3) once it is ready, then we wait until /health answers.
 */
async function startWorkerd(dioneUrl: string, token: string, database: string): Promise<Workerd> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dione-workerd-'));
  copyFileSync(path.join(fixtures, 'worker.js'), path.join(dir, 'worker.js'));
  copyFileSync(path.join(sharedDir(), 'conformance/scenarios.mjs'), path.join(dir, 'scenarios.mjs'));
  writeFileSync(path.join(dir, 'config.capnp'), workerdConfig(new URL(dioneUrl).host, token, database));

  const child = spawn(workerdBinary, ['serve', path.join(dir, 'config.capnp'), '--control-fd=3', '--verbose'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  // If this process dies without running the hooks, do not leave workerd behind.
  const killOnExit = () => {
    if (!exited && child.pid) process.kill(child.pid, 'SIGKILL');
  };
  process.once('exit', killOnExit);

  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (!exited && child.pid) {
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => !exited && child.pid && process.kill(child.pid, 'SIGKILL'), 5_000);
      await exit;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const control = child.stdio[3] as NodeJS.ReadableStream;
    const port = await new Promise<number>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`workerd did not report its port within 30 s:\n${output}`)), 30_000);
      control.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        for (const line of text.split('\n')) {
          const event = line.trim() ? (JSON.parse(line) as { event?: string; socket?: string; port?: number }) : null;
          if (event?.event === 'listen' && event.socket === 'http' && event.port) {
            clearTimeout(timer);
            resolve(event.port);
          }
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`workerd exited (${code ?? signal}) before listening:\n${output}`));
      });
    });
    const url = `http://127.0.0.1:${port}`;
    for (let attempt = 0; ; attempt++) {
      const ok = await fetch(`${url}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (exited || attempt > 300) throw new Error(`workerd does not answer on ${url}:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { url, child, log: () => output, logSince: (mark) => output.slice(mark), stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

// ------------------------------------------------------------------ deep diff

interface Difference {
  path: string;
  expected: unknown;
  actual: unknown;
}

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Every difference between two JSON values; object key order is ignored, array order is not. */
function deepDiff(expected: unknown, actual: unknown, at = '$', out: Difference[] = []): Difference[] {
  const ke = kind(expected);
  const ka = kind(actual);
  if (ke !== ka) {
    out.push({ path: at, expected, actual });
  } else if (ke === 'array') {
    const e = expected as unknown[];
    const a = actual as unknown[];
    if (e.length !== a.length) out.push({ path: `${at}.length`, expected: e.length, actual: a.length });
    for (let i = 0; i < Math.min(e.length, a.length); i++) deepDiff(e[i], a[i], `${at}[${i}]`, out);
  } else if (ke === 'object') {
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    for (const key of new Set([...Object.keys(e), ...Object.keys(a)])) {
      if (!Object.hasOwn(a, key)) out.push({ path: `${at}.${key}`, expected: e[key], actual: '<missing>' });
      else if (!Object.hasOwn(e, key)) out.push({ path: `${at}.${key}`, expected: '<absent>', actual: a[key] });
      else deepDiff(e[key], a[key], `${at}.${key}`, out);
    }
  } else if (!Object.is(expected, actual)) {
    out.push({ path: at, expected, actual });
  }
  return out;
}

/** The field a differing path ends in: `$.meta.rows_read` -> rows_read, `$[2].rows_read.length` -> rows_read. */
const lastField = (p: string) =>
  p
    .replace(/\.length$/, '')
    .replace(/(\[\d+\])+$/, '')
    .split('.')
    .at(-1)!;

const short = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
};
const describeDiffs = (diffs: Difference[]) => diffs.map((d) => `  ${d.path}: expected ${short(d.expected)}, actual ${short(d.actual)}`).join('\n');

test('deepDiff finds differences at any depth and ignores key order only', () => {
  assert.deepEqual(deepDiff({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 }), []);
  assert.deepEqual(deepDiff({ a: [1, 2] }, { a: [2, 1] }), [
    { path: '$.a[0]', expected: 1, actual: 2 },
    { path: '$.a[1]', expected: 2, actual: 1 },
  ]);
  assert.deepEqual(deepDiff({ m: { rows_read: 3 }, x: null }, { m: { rows_read: 2 }, y: 1, x: 0 }), [
    { path: '$.m.rows_read', expected: 3, actual: 2 },
    { path: '$.x', expected: null, actual: 0 },
    { path: '$.y', expected: '<absent>', actual: 1 },
  ]);
  assert.deepEqual(deepDiff([1], [1, 2]), [{ path: '$.length', expected: 1, actual: 2 }]);
  assert.deepEqual(deepDiff({ a: 1 }, {}), [{ path: '$.a', expected: 1, actual: '<missing>' }]);
  assert.equal(lastField('$[2].meta.rows_read'), 'rows_read');
  assert.equal(lastField('$.r[0].rows_read'), 'rows_read');
});

// ------------------------------------------------------------------ the suite

let server: TestServer;
let workerd: Workerd;

async function recreateDatabase(): Promise<void> {
  const response = await server.call(`${server.api}/${DATABASE}`, { method: 'DELETE' });
  if (response.status !== 404) assert.equal(response.status, 200, `DELETE ${DATABASE}: ${await response.text()}`);
  await server.createDatabase(DATABASE);
}

/** Rows of one SELECT through the REST API (not through workerd). */
async function restRows(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const response = await server.call(`${server.api}/${DATABASE}/query`, { method: 'POST', body: JSON.stringify({ sql, params }) });
  const body = (await response.json()) as { success: boolean; errors: unknown; result: { results: Record<string, unknown>[] }[] };
  assert.ok(body.success, `REST query failed: ${JSON.stringify(body.errors)}`);
  return body.result[0]!.results;
}

/** GET a Worker route; the value it answers, with workerd's log on any failure. */
async function worker(route: string): Promise<unknown> {
  const mark = workerd.log().length;
  const response = await fetch(`${workerd.url}${route}`, { signal: AbortSignal.timeout(120_000) });
  const text = await response.text();
  if (response.status !== 200) assert.fail(`GET ${route} answered ${response.status}: ${text}\nworkerd log:\n${workerd.logSince(mark)}`);
  return JSON.parse(text);
}

before(async () => {
  server = await startTestServer({ spares: 2 });
  workerd = await startWorkerd(server.url, server.token, DATABASE);
});

after(async () => {
  await workerd?.stop();
  await server?.close();
});

describe('conformance scenarios through workerd', () => {
  test('all', async () => {
    const golden: Record<string, unknown> = JSON.parse(readFileSync(path.join(sharedDir(), 'conformance/golden.json'), 'utf8'));
    const names = (await worker('/scenarios')) as string[];
    const started = performance.now();
    const report: Record<string, Difference[]> = {};
    for (const name of names) {
      await recreateDatabase();
      const actual = await worker(`/run?name=${encodeURIComponent(name)}`);
      const d = deepDiff(golden[name], actual);
      if (d.length) report[name] = d;
    }
    console.log('ms', performance.now() - started, 'n', names.length);
    writeFileSync('/tmp/wd-report.json', JSON.stringify(report, null, 1));
  });
});
