// Operating a server: /healthz, Prometheus /metrics with per-database counts that move, one JSON
// log line per request, graceful SIGTERM of `dione serve` (in-flight requests finish, exit 0,
// nothing acknowledged lost) and SIGKILL during a write load (nothing acknowledged lost).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, type TestContext, test } from 'node:test';
import pino from 'pino';
import { connect } from '../src/client.ts';
import { childPids, type Envelope, fetchJson, jsonHeaders, metric, poll, sleep, tokenIn } from './helpers/server-checks.ts';
import { type SpawnedServer, spawnServer, startTestServer } from './helpers/server.ts';

describe('health, metrics and logs', () => {
  test('/healthz answers 200 without a token', async (t) => {
    const s = await startTestServer({});
    t.after(() => s.close());
    const reply = await fetch(`${s.url}/healthz`);
    assert.equal(reply.status, 200);
    assert.equal(await reply.text(), 'ok');
  });

  test('/metrics: queries, rows and latency per database, moving with the traffic', async (t) => {
    const s = await startTestServer({});
    t.after(() => s.close());
    await s.createDatabase('metrics-x');
    await s.createDatabase('metrics-y');
    // Any token's scope will do, for every database (metrics need a token unless served with --metrics-public).
    const reader = s.tokenFor('read');
    const scrape = async () => {
      const reply = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${reader}` } });
      assert.equal(reply.status, 200);
      assert.match(reply.headers.get('content-type') ?? '', /^text\/plain/);
      return reply.text();
    };
    const rest = (db: string, sql: string) => fetchJson<Envelope>(`${s.api}/${db}/query`, { method: 'POST', headers: jsonHeaders(s.token), body: JSON.stringify({ sql }) });
    assert.equal((await rest('metrics-y', 'CREATE TABLE t (v)')).status, 200);
    assert.equal((await rest('metrics-x', 'CREATE TABLE t (v)')).status, 200);

    // A token made for one database does not see the others' names and traffic.
    const narrow = await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${s.tokenFor('admin', 'metrics-x')}` } });
    assert.equal(narrow.status, 403);
    assert.match(await narrow.text(), /Metrics cover every database/);

    const before = await scrape();
    for (const name of ['dione_queries_total', 'dione_rows_read_total', 'dione_rows_written_total', 'dione_query_duration_seconds', 'dione_requests_total']) {
      assert.match(before, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    const x = { database: 'metrics-x' };
    const ok = (protocol: string) => ({ ...x, protocol, outcome: 'ok' });
    const read = (text: string) => ({
      restOk: metric(text, 'dione_queries_total', ok('rest-query')),
      rawOk: metric(text, 'dione_queries_total', ok('rest-raw')),
      dioneOk: metric(text, 'dione_queries_total', ok('dione')),
      d1Ok: metric(text, 'dione_queries_total', ok('d1')),
      restError: metric(text, 'dione_queries_total', { ...x, protocol: 'rest-query', outcome: 'error' }),
      written: metric(text, 'dione_rows_written_total', x),
      read: metric(text, 'dione_rows_read_total', x),
      latencyCount: metric(text, 'dione_query_duration_seconds_count', x),
      latencyInf: metric(text, 'dione_query_duration_seconds_bucket', { le: '+Inf', ...x }),
      yQueries: metric(text, 'dione_queries_total', { database: 'metrics-y', protocol: 'rest-query', outcome: 'ok' }),
    });
    const start = read(before);

    assert.equal((await rest('metrics-x', "INSERT INTO t VALUES (1), (2), (3)")).status, 200);
    assert.equal((await rest('metrics-x', 'INSERT INTO t VALUES (4)')).status, 200);
    assert.equal((await rest('metrics-x', 'SELECT * FROM t')).status, 200);
    assert.equal((await rest('metrics-x', 'SELECT * FROM nope')).status, 400);
    const raw = await fetchJson<Envelope>(`${s.api}/metrics-x/raw`, { method: 'POST', headers: jsonHeaders(s.token), body: JSON.stringify({ sql: 'SELECT 1' }) });
    assert.equal(raw.status, 200);
    const db = connect({ url: s.url, token: s.token, database: 'metrics-x' });
    await db.prepare('INSERT INTO t VALUES (5)').run();
    await db.prepare('SELECT count(*) FROM t').first();
    const d1 = await fetchJson(`${s.url}/query`, { method: 'POST', headers: jsonHeaders(s.token, { 'x-dione-database': 'metrics-x' }), body: JSON.stringify({ sql: 'SELECT 1' }) });
    assert.equal(d1.status, 200);

    const end = read(await scrape());
    assert.equal(end.restOk - start.restOk, 3);
    assert.equal(end.restError - start.restError, 1);
    assert.equal(end.rawOk - start.rawOk, 1);
    assert.equal(end.dioneOk - start.dioneOk, 2);
    assert.equal(end.d1Ok - start.d1Ok, 1);
    assert.equal(end.written - start.written, 5, 'rows written');
    assert.ok(end.read - start.read >= 5, 'rows read');
    assert.equal(end.latencyCount - start.latencyCount, 8);
    assert.equal(end.latencyInf - start.latencyInf, 8);
    assert.equal(end.yQueries, start.yQueries, 'another database’s counters do not move');
    assert.ok(end.yQueries >= 1);
  });

  test('one JSON log line per request: database, token id, status, duration, rows, and why it failed at the level it deserves', async (t) => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const s = await startTestServer({ logger: pino({ level: 'info' }, sink) });
    t.after(() => s.close());
    await s.createDatabase('logged');
    const reader = s.tokenFor('read');
    const mark = lines.length;
    const rest = (sql: string, token = s.token) => fetchJson<Envelope>(`${s.api}/logged/query`, { method: 'POST', headers: jsonHeaders(token), body: JSON.stringify({ sql }) });
    assert.equal((await rest('CREATE TABLE t (v)')).status, 200);
    assert.equal((await rest("INSERT INTO t VALUES ('a'), ('b')")).status, 200);
    assert.equal((await rest('SELECT * FROM nope')).status, 400);
    await connect({ url: s.url, token: s.token, database: 'logged' }).prepare('SELECT * FROM t').all();
    assert.equal((await fetch(`${s.api}/logged`, { headers: jsonHeaders(s.token) })).status, 200);
    assert.equal((await fetch(s.api)).status, 401);
    assert.equal((await fetch(s.api, { headers: { authorization: 'Bearer nonsense' } })).status, 401);
    assert.equal((await rest('DELETE FROM t', reader)).status, 403);
    // A failed import answers 200 (as D1 does: the failure is in the result); its line says why.
    const sql = 'CREATE TABLE u (v);\nINSERT INTO nowhere VALUES (1);\n';
    const etag = createHash('md5').update(sql).digest('hex');
    const init = await fetchJson<Envelope>(`${s.api}/logged/import`, { method: 'POST', headers: jsonHeaders(s.token), body: JSON.stringify({ action: 'init', etag }) });
    const uploadUrl = (init.body.result as { upload_url: string }).upload_url;
    assert.equal((await fetch(uploadUrl, { method: 'PUT', body: sql })).status, 200);
    const ingest = await fetchJson<Envelope>(`${s.api}/logged/import`, {
      method: 'POST',
      headers: jsonHeaders(s.token),
      body: JSON.stringify({ action: 'ingest', etag, filename: (init.body.result as { filename: string }).filename }),
    });
    assert.equal(ingest.status, 200);
    assert.equal((ingest.body.result as { success: boolean }).success, false);
    await fetch(`${s.url}/healthz`);
    assert.equal((await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${s.token}` } })).status, 200);

    const entries = lines.slice(mark).map((line) => JSON.parse(line) as Record<string, any>);
    const requests = entries.filter((e) => e.msg === 'request');
    const idOf = (token: string) => token.split('_')[1];
    const admin = idOf(s.token);
    const read = idOf(reader);
    const query = `/client/v4/accounts/${s.accountId}/d1/database/logged/query`;
    const importPath = `/client/v4/accounts/${s.accountId}/d1/database/logged/import`;
    assert.deepEqual(
      requests.filter((e) => !e.path.startsWith('/dione/uploads/')).map((e) => [e.method, e.path, e.status, e.database, e.token, e.level]),
      [
        ['POST', query, 200, 'logged', admin, 30],
        ['POST', query, 200, 'logged', admin, 30],
        ['POST', query, 400, 'logged', admin, 40],
        ['POST', '/dione/v1/databases/logged/execute', 200, 'logged', admin, 30],
        ['GET', `/client/v4/accounts/${s.accountId}/d1/database/logged`, 200, 'logged', admin, 30],
        ['GET', `/client/v4/accounts/${s.accountId}/d1/database`, 401, undefined, undefined, 40],
        ['GET', `/client/v4/accounts/${s.accountId}/d1/database`, 401, undefined, undefined, 40],
        ['POST', query, 403, 'logged', read, 40],
        ['POST', importPath, 200, 'logged', admin, 30],
        ['POST', importPath, 200, 'logged', admin, 40],
      ],
    );
    for (const e of requests) {
      assert.equal(typeof e.ms, 'number');
      assert.ok(e.ms >= 0);
      assert.equal(typeof e.time, 'number');
    }
    const reasons = requests.filter((e) => !e.path.startsWith('/dione/uploads/')).map((e) => e.reason);
    assert.deepEqual(reasons.slice(0, 2), [undefined, undefined]);
    assert.match(reasons[2], /no such table: nope/);
    assert.equal(reasons[3], undefined);
    assert.match(reasons[5], /send "Authorization: Bearer <token>"/);
    assert.match(reasons[6], /unknown or revoked token/);
    assert.match(reasons[7], /can only read/);
    assert.match(reasons[9], /^import failed: .*no such table: nowhere/);
    assert.equal(requests[1]!.rows_written, 2);
    assert.equal(requests[3]!.rows_read, 2);
    // The token's secret never reaches the log.
    assert.ok(!lines.join('\n').includes(s.token.slice(-43)));
    assert.ok(!lines.join('\n').includes(reader.slice(-43)));
  });

  test('/metrics: each database\'s size on disk and its write log\'s, growing with its data', async (t) => {
    const s = await startTestServer({});
    t.after(() => s.close());
    await s.createDatabase('sized');
    const scrape = async () => (await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${s.token}` } })).text();
    const db = connect({ url: s.url, token: s.token, database: 'sized' });
    await db.exec('CREATE TABLE t (v)');
    const before = await scrape();
    const fileBefore = metric(before, 'dione_database_bytes', { database: 'sized' });
    const logBefore = metric(before, 'dione_write_log_bytes', { database: 'sized' });
    assert.ok(fileBefore > 0, 'the database file has a size');
    assert.ok(logBefore > 0, 'the write log holds the CREATE');
    await db.prepare("INSERT INTO t SELECT randomblob(1000) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 6000) SELECT i FROM n)").run();
    const after = await scrape();
    assert.ok(metric(after, 'dione_database_bytes', { database: 'sized' }) >= fileBefore + 6_000_000, 'the database grew by the rows');
    // Log segments are allocated whole (4 MiB): 6 MB of pages fill the first and start a second.
    assert.ok(metric(after, 'dione_write_log_bytes', { database: 'sized' }) >= logBefore + 4_000_000, 'the write log grew by the rows');
  });
});

/** Keeps writing sequential rows from `clients` clients until stopped or a bound is hit; records what was acknowledged. */
function writeLoad(url: string, token: string, database: string, clients: number) {
  const acknowledged: number[] = [];
  const failures: string[] = [];
  let stopped = false;
  const done = Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      const db = connect({ url, token, database });
      for (let n = 0; n < 3000 && !stopped; n++) {
        const id = c * 100_000 + n;
        try {
          if (n % 5 === 4) {
            await db.batch([db.prepare('INSERT INTO w (id, c) VALUES (?, ?)').bind(id, c), db.prepare('INSERT INTO w (id, c) VALUES (?, ?)').bind(id + 50_000, c)]);
            acknowledged.push(id, id + 50_000);
          } else {
            await db.prepare('INSERT INTO w (id, c) VALUES (?, ?)').bind(id, c).run();
            acknowledged.push(id);
          }
        } catch (e) {
          failures.push((e as Error).message);
          return;
        }
      }
    }),
  );
  return {
    acknowledged,
    failures,
    done,
    stop() {
      stopped = true;
    },
  };
}

async function exited(server: SpawnedServer): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return { code: server.child.exitCode, signal: server.child.signalCode };
  return new Promise((resolve) => server.child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Every row id of table w, read through a fresh server on `dir`; stops that server. */
async function rowsAfterRestart(dir: string, token: string, database: string): Promise<Set<number>> {
  const again = await spawnServer(dir);
  try {
    assert.equal((await fetch(`${again.url}/healthz`)).status, 200);
    const db = connect({ url: again.url, token, database });
    const { results } = await db.prepare('SELECT id FROM w').all<{ id: number }>();
    return new Set(results.map((r) => r.id));
  } finally {
    again.child.kill('SIGTERM');
    await exited(again);
  }
}

/** `dione serve` as a child on a fresh data dir, with an admin token and one database with table w; cleaned up after. */
async function servedDatabase(t: TestContext, prefix: string, name: string) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const token = tokenIn(dir, 'admin');
  const server = await spawnServer(dir);
  t.after(() => {
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  });
  const api = `${server.url}/client/v4/accounts/${server.accountId}/d1/database`;
  assert.equal((await fetchJson(api, { method: 'POST', headers: jsonHeaders(token), body: JSON.stringify({ name }) })).status, 200);
  await connect({ url: server.url, token, database: name }).exec('CREATE TABLE w (id INTEGER PRIMARY KEY, c INTEGER)');
  return { dir, token, server, api };
}

describe('stopping dione serve', () => {
  test('SIGTERM: in-flight requests finish with success, the process exits 0, every acknowledged write is kept', async (t) => {
    const { dir, token, server, api } = await servedDatabase(t, 'dione-sigterm-', 'graceful');

    const load = writeLoad(server.url, token, 'graceful', 6);
    await poll(async () => (load.acknowledged.length >= 200 ? true : undefined), 300, 50);
    assert.ok(load.acknowledged.length >= 200, 'the write load did not get going');

    // A request whose body is still arriving when SIGTERM comes: it is in flight for certain.
    const body = JSON.stringify({ sql: 'INSERT INTO w (id, c) VALUES (?, ?) RETURNING id', params: [999_999, -1] });
    const target = new URL(`${api}/graceful/query`);
    let sendRest!: () => void;
    const inFlight = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = http.request(
        { host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers: { ...jsonHeaders(token), 'content-length': Buffer.byteLength(body) } },
        (response) => {
          let text = '';
          response.on('data', (d) => (text += d));
          response.on('end', () => resolve({ status: response.statusCode!, text }));
        },
      );
      request.on('error', reject);
      request.write(body.slice(0, 20));
      sendRest = () => request.end(body.slice(20));
    });
    await sleep(100);
    // The databases live in the server's worker threads: there is no other process to outlive it.
    assert.deepEqual(childPids(server.child.pid!), [], 'the server started child processes');
    server.child.kill('SIGTERM');
    await sleep(300);
    sendRest();
    const answer = await inFlight;
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(JSON.parse(answer.text).result[0].results, [{ id: 999_999 }]);

    const exit = await exited(server);
    load.stop();
    await load.done;
    assert.deepEqual(exit, { code: 0, signal: null }, server.stderr());
    // Writers fail only by finding the server gone, never with an error from inside it.
    for (const message of load.failures) assert.match(message, /^D1_ERROR: Network connection lost\. \(POST http:\/\/127\.0\.0\.1:\d+\/dione\/v1\/databases\/[\w-]+\/execute failed: /);
    assert.match(server.stderr(), /SIGTERM: finishing in-flight requests/);

    const rows = await rowsAfterRestart(dir, token, 'graceful');
    const lost = load.acknowledged.filter((id) => !rows.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${load.acknowledged.length} acknowledged writes are missing`);
    assert.ok(rows.has(999_999), 'the in-flight write is missing');
  });

  test('SIGKILL during a write load: every acknowledged write is there after a restart', async (t) => {
    const { dir, token, server } = await servedDatabase(t, 'dione-sigkill-', 'killed');

    const load = writeLoad(server.url, token, 'killed', 8);
    await poll(async () => (load.acknowledged.length >= 400 ? true : undefined), 400, 50);
    assert.ok(load.acknowledged.length >= 400, 'the write load did not get going');
    server.child.kill('SIGKILL');
    assert.deepEqual(await exited(server), { code: null, signal: 'SIGKILL' });
    await load.done;
    assert.equal(load.failures.length, 8, 'every writer stops on its first failure');
    for (const message of load.failures) assert.match(message, /^D1_ERROR: Network connection lost\. \(POST http:\/\/127\.0\.0\.1:\d+\/dione\/v1\/databases\/[\w-]+\/execute failed: /);

    const rows = await rowsAfterRestart(dir, token, 'killed');
    const lost = load.acknowledged.filter((id) => !rows.has(id));
    assert.deepEqual(lost, [], `${lost.length} of ${load.acknowledged.length} acknowledged writes are missing`);
    // Batches stayed atomic across the kill: both rows of a batch, or neither.
    for (const id of rows) if (id % 100_000 >= 50_000) assert.ok(rows.has(id - 50_000), `half a batch: ${id}`);
    for (const id of rows) {
      const n = id % 100_000;
      if (n < 50_000 && n % 5 === 4) assert.ok(rows.has(id + 50_000), `half a batch: ${id}`);
    }
  });
});
