// Unmodified Worker code against a Dione server, through Cloudflare's own D1 binding: the real
// workerd binary from npm runs test/fixtures/workerd/worker.js with env.DB built by workerd from
// `cloudflare-internal:d1-api`, whose `fetcher` reaches an in-process Dione server (token and
// database injected as headers) through a proxy that records the status of every answer. Checks the
// binding API end to end, the statuses D1 answers with, writes seen through the REST API, and every
// conformance scenario against golden.json. `workerdSuite(options)` registers it all in the calling
// test file, for one way of reaching Dione:
//   via 'external': the binding's fetcher is an external service pointing at Dione (README's config);
//   via 'service':  the fetcher is Dione's Worker module workerd/d1-service.js (dione/workerd/d1-service),
//                   whose own binding DIONE is that external service;
//   jsrpc:          the `d1_binding_jsrpc` compatibility flag (experimental: workerd runs with
//                   --experimental), under which the binding calls the fetcher's RPC method query()
//                   instead of POST /query and /execute.
// Used by server-workerd.test.ts, workerd-service.test.ts and workerd-jsrpc.test.ts.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatBookmark } from '../../src/api/bookmark.ts';
import { DATABASE_HEADER } from '../../src/server/routes/database-protocols.ts';
import { conformanceDir, root } from './paths.ts';
import { startTestServer, type TestServer } from './server.ts';

/** The workerd package (a devDependency: the newest the registry serves) exports the path of its platform binary. */
export const workerdPackage: { default: string; version: string } = createRequire(import.meta.url)('workerd');
const workerdBinary = workerdPackage.default;

/** The newest compatibility date a workerd release fully describes: its own date (1.YYYYMMDD.n). */
export const workerdDate = (version: string) => version.replace(/^1\.(\d{4})(\d{2})(\d{2})\..*$/, '$1-$2-$3');

/**
 * golden.json was recorded with workerd 1.20260426.1 at compatibility date 2026-04-26 (the newest
 * that binary fully describes). D1's binding code has no compatibility-date-dependent behaviour in
 * that release nor in 1.20261123.1: the one flag that changes how it reaches D1, d1_binding_jsrpc,
 * has no enable date (it is experimental), so it is off under every date unless set.
 */
export const RECORDED_COMPATIBILITY_DATE = '2026-04-26';

export interface SuiteOptions {
  /** How the binding's fetcher reaches Dione (see the top of this file). */
  via: 'external' | 'service';
  /** Set the d1_binding_jsrpc compatibility flag (and run workerd with --experimental). */
  jsrpc?: boolean;
  /** Default RECORDED_COMPATIBILITY_DATE. */
  compatibilityDate?: string;
}
const DATABASE = 'workerd-db';
const fixtures = path.join(root, 'test/fixtures/workerd');

// ------------------------------------------------------------------ workerd

/** A capnp text string literal (JSON's escapes are a subset of capnp's). */
const capnpString = (s: string) => JSON.stringify(s);

/** A D1 binding named `binding` whose requests get `headers` (an external service each). */
interface BindingSpec {
  binding: string;
  headers: Record<string, string>;
}

function workerdConfig(dioneAddress: string, bindings: BindingSpec[], options: Required<SuiteOptions>): string {
  const services = bindings.map(
    (b, i) => `    (name = "dione-${i}", external = (
      address = ${capnpString(dioneAddress)},
      http = (injectRequestHeaders = [
${Object.entries(b.headers)
  .map(([name, value]) => `        (name = ${capnpString(name)}, value = ${capnpString(value)}),`)
  .join('\n')}
      ]),
    )),`,
  );
  // Dione's Worker module in front of each external service.
  const forwarders =
    options.via === 'service'
      ? bindings.map(
          (_, i) => `    (name = "d1-${i}", worker = (
      modules = [ (name = "d1-service.js", esModule = embed "d1-service.js") ],
      compatibilityDate = ${capnpString(options.compatibilityDate)},
      bindings = [ (name = "DIONE", service = "dione-${i}") ],
    )),`,
        )
      : [];
  const fetcher = (i: number) => (options.via === 'service' ? `d1-${i}` : `dione-${i}`);
  const wrapped = bindings.map(
    (b, i) => `    (name = ${capnpString(b.binding)}, wrapped = (
      moduleName = "cloudflare-internal:d1-api",
      innerBindings = [ (name = "fetcher", service = "${fetcher(i)}") ],
    )),`,
  );
  return `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
${services.join('\n')}
${forwarders.join('\n')}
  ],
  sockets = [ (name = "http", address = "127.0.0.1:0", http = (), service = "main") ],
);

const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "scenarios.mjs", esModule = embed "scenarios.mjs"),
  ],
  compatibilityDate = ${capnpString(options.compatibilityDate)},
  compatibilityFlags = [${options.jsrpc ? '"d1_binding_jsrpc"' : ''}],
  bindings = [
${wrapped.join('\n')}
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
async function startWorkerd(dioneUrl: string, bindings: BindingSpec[], options: Required<SuiteOptions>): Promise<Workerd> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dione-workerd-'));
  copyFileSync(path.join(fixtures, 'worker.js'), path.join(dir, 'worker.js'));
  copyFileSync(path.join(conformanceDir, 'scenarios.mjs'), path.join(dir, 'scenarios.mjs'));
  copyFileSync(path.join(root, 'workerd/d1-service.js'), path.join(dir, 'd1-service.js'));
  writeFileSync(path.join(dir, 'config.capnp'), workerdConfig(new URL(dioneUrl).host, bindings, options));

  const flags = options.jsrpc ? ['--experimental'] : [];
  const child = spawn(workerdBinary, ['serve', path.join(dir, 'config.capnp'), '--control-fd=3', '--verbose', ...flags], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
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
      let pending = '';
      const timer = setTimeout(() => reject(new Error(`workerd did not report its port within 30 s:\n${output}`)), 30_000);
      control.on('data', (chunk: Buffer) => {
        const lines = (pending + chunk.toString()).split('\n');
        pending = lines.pop()!;
        for (const line of lines) {
          const event = JSON.parse(line) as { event?: string; socket?: string; port?: number };
          if (event.event === 'listen' && event.socket === 'http' && event.port) {
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

// ------------------------------------------------------------------ the proxy between workerd and Dione

/** One answer the binding got: its path, status, and whether the body said success (every item of an array). */
interface Exchange {
  path: string;
  status: number;
  success: boolean | undefined;
}

interface RecordingProxy {
  url: string;
  exchanges: Exchange[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['host', 'connection', 'keep-alive', 'transfer-encoding', 'content-length', 'upgrade', 'expect']);

/** Passes every request on to `target` unchanged and records each answer. */
async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const exchanges: Exchange[] = [];
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name) && typeof value === 'string') headers[name] = value;
    const url = new URL(req.url ?? '/', target);
    const response = await fetch(url, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined });
    const body = Buffer.from(await response.arrayBuffer());
    let success: boolean | undefined;
    try {
      const parsed = JSON.parse(body.toString('utf8'));
      success = Array.isArray(parsed) ? parsed.every((item) => item.success === true) : parsed.success === true;
    } catch {
      success = undefined;
    }
    exchanges.push({ path: url.pathname, status: response.status, success });
    const out: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name)) out[name] = value;
    });
    res.writeHead(response.status, { ...out, 'content-length': String(body.length) });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ------------------------------------------------------------------ deep diff

interface Difference {
  path: string;
  expected: unknown;
  actual: unknown;
}

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/** Every difference between two JSON values; object key order is ignored, array order is not. */
export function deepDiff(expected: unknown, actual: unknown, at = '$', out: Difference[] = []): Difference[] {
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

/** The field a differing path ends in (as in conformance.test.ts): `$.meta.rows_read`, `$[2].rows_read[0]` -> rows_read. */
export const lastField = (p: string) => p.replace(/(\[\d+\])+$/, '').split('.').at(-1)!;

/** deepStrictEqual for JSON values, failing with every differing path. */
function assertSame(actual: unknown, expected: unknown): void {
  const diffs = deepDiff(expected, actual);
  if (diffs.length) assert.fail(`${diffs.length} difference(s):\n${describeDiffs(diffs)}`);
}

const short = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 300 ? `${s.slice(0, 300)}…` : s;
};
const describeDiffs = (diffs: Difference[]) => diffs.map((d) => `  ${d.path}: expected ${short(d.expected)}, actual ${short(d.actual)}`).join('\n');

/** Registers the whole suite (hooks and tests) in the calling test file. */
export function workerdSuite(given: SuiteOptions): void {
const options: Required<SuiteOptions> = { jsrpc: false, compatibilityDate: RECORDED_COMPATIBILITY_DATE, ...given };
const setting = `via ${options.via}${options.jsrpc ? ', d1_binding_jsrpc' : ''}, workerd ${workerdPackage.version}, compatibilityDate ${options.compatibilityDate}`;
let server: TestServer;
let proxy: RecordingProxy;
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
  let response: Response;
  let text: string;
  try {
    response = await fetch(`${workerd.url}${route}`, { signal: AbortSignal.timeout(120_000) });
    text = await response.text();
  } catch (e) {
    assert.fail(`GET ${route} failed: ${(e as Error).message}\nworkerd log:\n${workerd.logSince(mark)}`);
  }
  if (response.status !== 200) assert.fail(`GET ${route} answered ${response.status}: ${text}\nworkerd log:\n${workerd.logSince(mark)}`);
  return JSON.parse(text);
}

before(async () => {
  server = await startTestServer({});
  proxy = await startRecordingProxy(server.url);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  workerd = await startWorkerd(proxy.url, [
    { binding: 'DB', headers: { ...bearer(server.token), [DATABASE_HEADER]: DATABASE } },
    { binding: 'DB_NO_TOKEN', headers: { [DATABASE_HEADER]: DATABASE } },
    { binding: 'DB_BAD_TOKEN', headers: { ...bearer('dione_not-a-token'), [DATABASE_HEADER]: DATABASE } },
    { binding: 'DB_READ_ONLY', headers: { ...bearer(server.tokenFor('read')), [DATABASE_HEADER]: DATABASE } },
    { binding: 'DB_MISSING', headers: { ...bearer(server.token), [DATABASE_HEADER]: 'no-such-database' } },
  ], options);
});

after(async () => {
  await workerd?.stop();
  await proxy?.close();
  await server?.close();
});

/** The answers the binding got while `route` ran. */
async function exchangesOf(route: string): Promise<{ value: unknown; exchanges: Exchange[] }> {
  const mark = proxy.exchanges.length;
  const value = await worker(route);
  return { value, exchanges: proxy.exchanges.slice(mark) };
}

// ------------------------------------------------------------------ 1. Worker code using env.DB

/** A D1 meta object as the Worker reports it (duration and size_after vary, so only their types). */
const meta = (m: { changes: number; last_row_id: number; changed_db: boolean; rows_read: number; rows_written: number }) => ({
  served_by: 'dione',
  duration: 'number',
  size_after: 'number',
  ...m,
});
const d1Error = (detail: string) => ({ error: `D1_ERROR: ${detail}`, name: 'Error', cause: detail });

const COLUMNS = ['id', 'name', 'age', 'avatar', 'note'];
const ROOT = [1, 'root', 99, null, 'from exec'];
const ADA = [2, 'ada', 36, [0, 1, 2, 255], null];
const DEE = [5, 'dee', 41, [], 'empty blob'];
const asObject = (row: unknown[]) => Object.fromEntries(COLUMNS.map((c, i) => [c, row[i]]));

/** The users table through the REST API, blobs as hex and with SQLite types. */
const restUsers = () => restRows('SELECT id, name, age, typeof(age) AS age_t, hex(avatar) AS avatar, typeof(avatar) AS avatar_t, note FROM users ORDER BY id');

// rows_read / rows_written below are SQLite's counts, as D1 counts them: an insert into users writes
// the row, its UNIQUE name's index entry and its users_age entry; a scan reads every row it visits.
// The cases build on each other (same database), in this order.
describe(`Worker code on workerd with env.DB = workerd D1 binding -> Dione server (${setting})`, () => {
  before(recreateDatabase);

  test('exec() runs one statement per line; the rows are in the database', async () => {
    assertSame(await worker('/api/schema'), { count: 3, duration: 'number' });
    assert.deepEqual(await restUsers(), [{ id: 1, name: 'root', age: 99, age_t: 'integer', avatar: '', avatar_t: 'null', note: 'from exec' }]);
    assert.deepEqual(await restRows("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' AND sql IS NOT NULL"), [{ name: 'users_age' }]);
  });

  test('prepare().bind().run() with strings, numbers, blobs (Uint8Array, ArrayBuffer, byte array, empty), null and booleans', async () => {
    assertSame(await worker('/api/insert'), [
      { success: true, meta: meta({ changes: 1, last_row_id: 2, changed_db: true, rows_read: 0, rows_written: 3 }), results: [] },
      { success: true, meta: meta({ changes: 1, last_row_id: 3, changed_db: true, rows_read: 0, rows_written: 3 }), results: [] },
      { success: true, meta: meta({ changes: 1, last_row_id: 4, changed_db: true, rows_read: 0, rows_written: 3 }), results: [] },
      { success: true, meta: meta({ changes: 1, last_row_id: 5, changed_db: true, rows_read: 0, rows_written: 3 }), results: [] },
    ]);
    // Numbers bind as REAL (an INTEGER column converts them back, a TEXT column keeps '1.0': D1 does the same).
    assert.deepEqual(await restUsers(), [
      { id: 1, name: 'root', age: 99, age_t: 'integer', avatar: '', avatar_t: 'null', note: 'from exec' },
      { id: 2, name: 'ada', age: 36, age_t: 'integer', avatar: '000102FF', avatar_t: 'blob', note: null },
      { id: 3, name: 'bob', age: 25, age_t: 'integer', avatar: 'DEADBEEF', avatar_t: 'blob', note: 'second' },
      { id: 4, name: 'cy', age: null, age_t: 'null', avatar: '070809', avatar_t: 'blob', note: '1.0' },
      { id: 5, name: 'dee', age: 41, age_t: 'integer', avatar: '', avatar_t: 'blob', note: 'empty blob' },
    ]);
  });

  test('first() / first(column) / all() / raw() / raw({columnNames}) return exact values, blobs as byte arrays, nulls', async () => {
    assertSame(await worker('/api/reads'), {
      first: { name: 'ada', age: 36, avatar: [0, 1, 2, 255] },
      firstColumn: 'bob',
      firstNullColumn: null,
      firstNone: null,
      firstNoneColumn: null,
      all: { success: true, meta: meta({ changes: 0, last_row_id: 5, changed_db: false, rows_read: 5, rows_written: 0 }), results: [ROOT, ADA, DEE].map(asObject) },
      raw: [ROOT, ADA, DEE],
      rawColumns: [COLUMNS, ROOT, ADA, DEE],
      rawColumnsFalse: [ROOT, ADA, DEE],
      rawNoRows: [],
      rawNoRowsColumns: [COLUMNS],
      unbound: [],
      blobs: [
        { name: 'root', avatar: null, t: 'null', n: null },
        { name: 'ada', avatar: [0, 1, 2, 255], t: 'blob', n: 4 },
        { name: 'bob', avatar: [222, 173, 190, 239], t: 'blob', n: 4 },
        { name: 'cy', avatar: [7, 8, 9], t: 'blob', n: 3 },
        { name: 'dee', avatar: [], t: 'blob', n: 0 },
      ],
      nulls: { a: null, b: null, tb: 'null' },
      types: { v: 7, t: 'real' },
      text: { s: 'héllo ✓ 😀', echo: 'naïve "quoted" \\ \n line' },
    });
  });

  test('typed arrays bind as blobs of their element values taken as bytes, as D1 stores them', async () => {
    assertSame(await worker('/api/typedArrays'), {
      uint8: { v: [0, 128, 255], t: 'blob', h: '0080FF' },
      uint8Subarray: { v: [2, 3], t: 'blob', h: '0203' },
      int8: { v: [255, 1, 128], t: 'blob', h: 'FF0180' },
      uint16: { v: [44, 2], t: 'blob', h: '2C02' },
      int16: { v: [254], t: 'blob', h: 'FE' },
      float64: { v: [1, 255], t: 'blob', h: '01FF' },
      dataView: { v: [], t: 'blob', h: '' },
      arrayBuffer: { v: [9, 8], t: 'blob', h: '0908' },
      byteArray: { v: [1, 2, 3], t: 'blob', h: '010203' },
      emptyArray: { v: [], t: 'blob', h: '' },
      outOfRangeArray: { error: "D1_TYPE_ERROR: Type 'object' not supported for value '300'", name: 'Error', cause: "Type 'object' not supported for value '300'" },
    });
  });

  test('batch() runs in order and reads its own writes; the writes landed', async () => {
    assertSame(await worker('/api/batch'), [
      { success: true, meta: meta({ changes: 1, last_row_id: 6, changed_db: true, rows_read: 0, rows_written: 3 }), results: [] },
      { success: true, meta: meta({ changes: 1, last_row_id: 6, changed_db: true, rows_read: 1, rows_written: 2 }), results: [] },
      {
        success: true,
        meta: meta({ changes: 0, last_row_id: 6, changed_db: false, rows_read: 4, rows_written: 0 }),
        results: [
          { name: 'ada', age: 37 },
          { name: 'eve', age: 30 },
        ],
      },
    ]);
    assert.deepEqual(await restRows("SELECT id, name, age FROM users WHERE name IN ('ada', 'eve') ORDER BY id"), [
      { id: 2, name: 'ada', age: 37 },
      { id: 6, name: 'eve', age: 30 },
    ]);
  });

  test('a batch() whose third statement fails rejects with D1_ERROR and rolls back the first two', async () => {
    const unique = 'UNIQUE constraint failed: users.name: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)';
    const { value, exchanges } = await exchangesOf('/api/failingBatch');
    assertSame(value, { before: 6, error: d1Error(unique), after: 6, fay: null, bobNote: 'second' });
    // D1 answers a failed batch 200 with one failure object, as any failed query.
    assert.deepEqual(
      exchanges.map((e) => [e.path, e.status, e.success]),
      [
        ['/query', 200, true],
        ['/query', 200, false],
        ['/query', 200, true],
        ['/query', 200, true],
        ['/query', 200, true],
      ],
    );
    assert.deepEqual(await restRows("SELECT count(*) AS n, sum(name = 'fay') AS fay, max(CASE WHEN name = 'bob' THEN note END) AS bob FROM users"), [{ n: 6, fay: 0, bob: 'second' }]);
  });

  test("withSession('first-primary'): no bookmark before the first query, then increasing bookmarks from the response header", async () => {
    const result = (await worker('/api/session')) as Record<string, unknown>;
    for (const key of ['afterRead', 'afterWrite', 'afterBatch']) assert.match(String(result[key]), /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/, key);
    // Dione numbers commits: exec 1, four inserts 2-5, the batch 6 (the failed batch committed nothing).
    // The last group names the database's history (its write log), the same in every bookmark.
    const tag = String(result.afterRead).slice(27);
    assert.match(tag, /^[0-9a-f]{32}$/);
    assert.notEqual(tag, '0'.repeat(32));
    assert.deepEqual(result, {
      initial: null,
      read: 6,
      afterRead: formatBookmark(6, tag),
      afterWrite: formatBookmark(7, tag),
      afterBatch: formatBookmark(8, tag),
      writeChanges: 1,
      batchAge: [{ age: 61 }],
      resumedInitial: formatBookmark(8, tag),
      seen: 61,
      resumedAfter: formatBookmark(8, tag),
      plainBookmark: 'undefined',
      sessionExec: 'undefined',
    });
    assert.deepEqual(await restRows("SELECT age FROM users WHERE name = 'gus'"), [{ age: 61 }]);
  });

  test('errors: D1_ERROR with the SQLite detail in message and cause, D1_COLUMN_NOTFOUND, D1_TYPE_ERROR, D1_EXEC_ERROR (exec rolled back)', async () => {
    const typeError = (type: string, value: string) => ({
      error: `D1_TYPE_ERROR: Type '${type}' not supported for value '${value}'`,
      name: 'Error',
      cause: `Type '${type}' not supported for value '${value}'`,
    });
    // Over JS RPC the binding reports exec()'s failure without the line (its own wording, as on D1).
    const execDetail = options.jsrpc
      ? 'no such table: nope: SQLITE_ERROR'
      : "Error in line 1: INSERT INTO users (name) VALUES ('hal'): no such table: nope: SQLITE_ERROR";
    const { value, exchanges } = await exchangesOf('/api/errors');
    assertSame(value, {
      syntax: d1Error('near "SELEC": syntax error at offset 0: SQLITE_ERROR'),
      noTable: d1Error('no such table: nope: SQLITE_ERROR'),
      unique: d1Error('UNIQUE constraint failed: users.name: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)'),
      notNull: d1Error('NOT NULL constraint failed: users.name: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_NOTNULL)'),
      raw: d1Error('no such column: nope at offset 7: SQLITE_ERROR'),
      column: { error: 'D1_COLUMN_NOTFOUND: Column not found (missing)', name: 'Error', cause: 'Column not found' },
      bindUndefined: typeError('undefined', 'undefined'),
      bindBigint: typeError('bigint', '1'),
      bindObject: typeError('object', '[object Object]'),
      empty: d1Error('No SQL statements detected.'),
      emptyBatch: d1Error('No SQL statements detected.'),
      exec: { error: `D1_EXEC_ERROR: ${execDetail}`, name: 'Error', cause: execDetail },
      hal: 0,
      sessionError: d1Error('no such table: nope: SQLITE_ERROR'),
      wrongCount: d1Error('Wrong number of parameter bindings for SQL query.'),
    });
    assert.deepEqual(await restRows("SELECT count(*) AS n FROM users WHERE name = 'hal'"), [{ n: 0 }]);
    // Every failed query was answered 200 with success: false (the binding reads the body whatever the status).
    assert.deepEqual(new Set(exchanges.map((e) => e.status)), new Set([200]), JSON.stringify(exchanges));
    assert.ok(exchanges.filter((e) => e.success === false).length >= 8, JSON.stringify(exchanges));
    // Over JS RPC, d1-service.js sends every call to /query (Dione answers /query and /execute alike).
    const execPath = options.jsrpc ? '/query' : '/execute';
    assert.ok(exchanges.some((e) => e.path === execPath && e.success === false), `exec() failed through ${execPath}`);
  });

  test("the service's injected headers authenticate and name the database: missing, unknown and read-only tokens, unknown database", async () => {
    const { value, exchanges } = await exchangesOf('/api/access');
    assertSame(value, {
      noToken: d1Error('Authentication error: send "Authorization: Bearer <token>" (create one with `dione token create`)'),
      badToken: d1Error('Authentication error: unknown or revoked token'),
      readOnlyRead: 7,
      readOnlyWrite: d1Error('This token can only read: the statement would write'),
      readOnlyBatch: d1Error('This token can only read: the statement would write'),
      missingDatabase: d1Error('database not found: no-such-database'),
      stillThere: 1,
    });
    // Refused before reaching the database (no D1 counterpart): the token's and the lookup's statuses.
    assert.deepEqual(
      exchanges.map((e) => [e.status, e.success]),
      [
        [401, false],
        [401, false],
        [200, true],
        [403, false],
        [403, false],
        [404, false],
        [200, true],
      ],
    );
  });

  test('the binding and the REST API see the same final table', async () => {
    const expected = [
      { id: 1, name: 'root', age: 99, avatar: null, note: 'from exec' },
      { id: 2, name: 'ada', age: 37, avatar: [0, 1, 2, 255], note: null },
      { id: 3, name: 'bob', age: 25, avatar: [222, 173, 190, 239], note: 'second' },
      { id: 4, name: 'cy', age: null, avatar: [7, 8, 9], note: '1.0' },
      { id: 5, name: 'dee', age: 41, avatar: [], note: 'empty blob' },
      { id: 6, name: 'eve', age: 30, avatar: null, note: null },
      { id: 7, name: 'gus', age: 61, avatar: null, note: null },
    ];
    assertSame(await worker('/api/final'), expected);
    assert.deepEqual(await restRows('SELECT id, name, age, avatar, note FROM users ORDER BY id'), expected);
  });
});

// ------------------------------------------------------------------ 2. conformance scenarios

/**
 * What workerd's own binding code (not D1 behind it) changed since golden.json was recorded with
 * workerd 1.20260426.1, per scenario: the paths that differ for that reason alone, and why.
 */
const RECORDED_WORKERD = '1.20260426.1';
const BINDING_CHANGES: Record<string, { paths: RegExp; why: string }> = {
  shape_db_methods: { paths: /^\$\.query$/, why: 'D1Database has a query() method (the JS RPC form; it throws without d1_binding_jsrpc)' },
  shape_stmt_fields: { paths: /^\$\.ownKeys/, why: "D1PreparedStatement's session is a private field (#dbSession), no longer an own key" },
};

/**
 * Under d1_binding_jsrpc the binding reports a failed exec() as `D1_EXEC_ERROR: <message>` (cause
 * `<message>`), without the `Error in line N: <line>: ` it puts before it over HTTP, where it sends
 * one statement per line and sees which one failed (d1-api.ts: exec, _queryOrThrow). The binding's
 * wording, whatever serves it: the same message otherwise.
 */
function execErrorWithoutLine(d: Difference): boolean {
  if (typeof d.expected !== 'string' || typeof d.actual !== 'string') return false;
  const prefixed = /^D1_EXEC_ERROR: /.test(d.actual);
  const detail = d.actual.replace(/^D1_EXEC_ERROR: /, '');
  return d.expected.startsWith(prefixed ? 'D1_EXEC_ERROR: Error in line ' : 'Error in line ') && d.expected.endsWith(`: ${detail}`);
}

const readRecorded = (file: string) => JSON.parse(readFileSync(path.join(conformanceDir, file), 'utf8'));
const deviations: Record<string, { reason: string; fields: string[] }> = JSON.parse(readFileSync(path.join(root, 'test/conformance/deviations.json'), 'utf8')).scenarios;

test(`conformance scenarios run inside workerd against Dione match golden.json (${setting})`, async (t) => {
  const golden: Record<string, unknown> = readRecorded('golden.json');
  const artifacts: Record<string, string> = readRecorded('artifacts.json').scenarios;
  const names = (await worker('/scenarios')) as string[];
  assert.ok(names.length > 250, `the Worker knows only ${names.length} scenarios`);
  assert.deepEqual(
    Object.keys(golden).filter((name) => !names.includes(name)),
    [],
    'golden.json has scenarios that scenarios.mjs does not',
  );
  t.diagnostic(setting);
  const started = performance.now();
  for (const name of names) {
    await t.test(name, async (st) => {
      assert.ok(Object.hasOwn(golden, name), `${name} has no golden value (re-record golden.json)`);
      await recreateDatabase();
      const mark = workerd.log().length;
      const actual = await worker(`/run?name=${encodeURIComponent(name)}`);
      const diffs = deepDiff(golden[name], actual);
      const log = workerd.logSince(mark);
      const context = `${describeDiffs(diffs)}${log ? `\nworkerd log:\n${log}` : ''}`;
      if (artifacts[name]) {
        if (diffs.length) for (const line of `differs (known emulation artifact: ${artifacts[name]}):\n${context}`.split('\n')) st.diagnostic(line);
        return;
      }
      const allowed = deviations[name]?.fields ?? [];
      const changed = workerdPackage.version === RECORDED_WORKERD ? undefined : BINDING_CHANGES[name];
      if (changed && diffs.some((d) => changed.paths.test(d.path))) st.diagnostic(`workerd's binding changed since ${RECORDED_WORKERD}: ${changed.why}`);
      const unexpected = diffs.filter((d) => !allowed.includes(lastField(d.path)) && !changed?.paths.test(d.path) && !(options.jsrpc && execErrorWithoutLine(d)));
      assert.deepEqual(unexpected, [], `${name} differs from D1${allowed.length ? ` beyond its known deviation (${allowed.join(', ')})` : ''}:\n${context}`);
    });
  }
  t.diagnostic(`${names.length} scenarios through workerd in ${Math.round(performance.now() - started)} ms`);
});
}
