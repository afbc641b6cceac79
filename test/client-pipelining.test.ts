// dione/client's pipelining against a real server: calls made in the same event-loop turn share
// one HTTP request (version 2 of the wire format), each with its own result, error, atomicity and
// bookmark; the cap splits them; a call alone still goes as version 1.
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { build } from 'esbuild';
import { Miniflare } from 'miniflare';
import { type ConnectOptions, connect } from '../src/client.ts';
import type { D1Database } from '../src/index.ts';
import { root } from './helpers/paths.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let s: TestServer;
let counter = 0;
before(async () => {
  s = await startTestServer({});
});
after(() => s?.close());

const EXECUTE_ROUTE = '/dione/v1/databases/:db/execute';

/** The execute requests the server has counted so far (its request metric). */
async function executeRequests(): Promise<number> {
  const metric = await s.server.context.metrics.requests.get();
  return metric.values.filter((v) => v.labels.route === EXECUTE_ROUTE).reduce((sum, v) => sum + v.value, 0);
}

/** The SQL requests the server has executed so far, each call of a pipelined request counting as one. */
async function executedCalls(): Promise<number> {
  const metric = await s.server.context.metrics.queries.get();
  return metric.values.filter((v) => v.labels.protocol === 'dione').reduce((sum, v) => sum + v.value, 0);
}

/** Counts execute requests at the server while `run` runs (each test runs alone, so no one else's). */
async function serverRequestsDuring(run: () => Promise<unknown>): Promise<number> {
  const before = await executeRequests();
  await run();
  return (await executeRequests()) - before;
}

/** A fetch that keeps the JSON bodies the client sends. */
function recordingFetch(): { fetch: typeof fetch; bodies: any[] } {
  const bodies: any[] = [];
  const wrapped = (input: string | URL | Request, init?: RequestInit) => {
    bodies.push(JSON.parse(init!.body as string));
    return fetch(input, init);
  };
  return { fetch: wrapped as typeof fetch, bodies };
}

/** A fresh database with a table `t (id INTEGER PRIMARY KEY, v TEXT)` holding rows 1..10. */
async function seeded(options: Partial<ConnectOptions> = {}): Promise<{ db: D1Database; name: string }> {
  const name = `pipelining-${++counter}`;
  await s.createDatabase(name);
  const setup = connect({ url: s.url, token: s.token, database: name });
  await setup.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  await setup.batch(Array.from({ length: 10 }, (_, i) => setup.prepare('INSERT INTO t VALUES (?, ?)').bind(i + 1, `row ${i + 1}`)));
  return { db: connect({ url: s.url, token: s.token, database: name, ...options }), name };
}

describe('calls in one turn share one request', () => {
  test('many point selects: one HTTP request, each its own row', async () => {
    const { fetch: recording, bodies } = recordingFetch();
    const { db } = await seeded({ fetch: recording });
    let rows: unknown[] = [];
    const callsBefore = await executedCalls();
    const requests = await serverRequestsDuring(async () => {
      rows = await Promise.all(Array.from({ length: 10 }, (_, i) => db.prepare('SELECT v FROM t WHERE id = ?').bind(i + 1).first('v')));
    });
    assert.equal(requests, 1);
    assert.equal((await executedCalls()) - callsBefore, 10, 'each call runs as its own SQL request');
    assert.deepEqual(
      rows,
      Array.from({ length: 10 }, (_, i) => `row ${i + 1}`),
    );
    assert.equal(bodies.length, 1);
    assert.equal(bodies[0].version, 2);
    assert.equal(bodies[0].calls.length, 10);
  });

  test('a call alone goes as version 1, with no version field', async () => {
    const { fetch: recording, bodies } = recordingFetch();
    const { db } = await seeded({ fetch: recording });
    assert.equal(await db.prepare('SELECT v FROM t WHERE id = 3').first('v'), 'row 3');
    assert.equal(bodies.length, 1);
    assert.equal(bodies[0].version, undefined);
    assert.equal(bodies[0].queries[0].sql, 'SELECT v FROM t WHERE id = 3');
  });

  test('run(), all(), raw(), exec() and batch() in one turn each get their own kind of result', async () => {
    const { db } = await seeded();
    let results: unknown[] = [];
    const requests = await serverRequestsDuring(async () => {
      results = await Promise.all([
        db.prepare("UPDATE t SET v = 'updated' WHERE id = 1").run(),
        db.prepare('SELECT id FROM t WHERE id <= 2 ORDER BY id').all(),
        db.prepare('SELECT id, v FROM t WHERE id = 2').raw(),
        db.exec('CREATE TABLE other (x)'),
        db.batch([db.prepare('INSERT INTO other VALUES (1)'), db.prepare('INSERT INTO other VALUES (2)')]),
      ]);
    });
    assert.equal(requests, 1);
    const [run, all, raw, exec, batch] = results as [any, any, any, any, any[]];
    assert.equal(run.meta.changes, 1);
    assert.deepEqual(all.results, [{ id: 1 }, { id: 2 }]);
    assert.deepEqual(raw, [[2, 'row 2']]);
    assert.equal(exec.count, 1);
    assert.deepEqual(
      batch.map((r) => r.meta.changes),
      [1, 1],
    );
    assert.equal(await db.prepare('SELECT v FROM t WHERE id = 1').first('v'), 'updated');
  });

  test('a failing call fails alone', async () => {
    const { db } = await seeded();
    let settled: PromiseSettledResult<unknown>[] = [];
    const requests = await serverRequestsDuring(async () => {
      settled = await Promise.allSettled([
        db.prepare('SELECT v FROM t WHERE id = 1').first('v'),
        db.prepare('SELECT * FROM no_such_table').all(),
        db.prepare('SELECT v FROM t WHERE id = 2').first('v'),
      ]);
    });
    assert.equal(requests, 1);
    assert.deepEqual(settled[0], { status: 'fulfilled', value: 'row 1' });
    assert.equal(settled[1]!.status, 'rejected');
    assert.match(((settled[1] as PromiseRejectedResult).reason as Error).message, /^D1_ERROR: no such table: no_such_table/);
    assert.deepEqual(settled[2], { status: 'fulfilled', value: 'row 2' });
  });

  test('each batch keeps its own atomicity: the failing one rolls back alone', async () => {
    const { db } = await seeded();
    let settled: PromiseSettledResult<unknown>[] = [];
    const requests = await serverRequestsDuring(async () => {
      settled = await Promise.allSettled([
        db.batch([db.prepare("INSERT INTO t VALUES (100, 'lost')"), db.prepare("INSERT INTO t VALUES (1, 'duplicate')")]),
        db.batch([db.prepare("INSERT INTO t VALUES (200, 'kept')"), db.prepare("INSERT INTO t VALUES (201, 'kept')")]),
        db.prepare("INSERT INTO t VALUES (300, 'kept')").run(),
      ]);
    });
    assert.equal(requests, 1);
    assert.equal(settled[0]!.status, 'rejected');
    assert.match(((settled[0] as PromiseRejectedResult).reason as Error).message, /UNIQUE constraint failed/);
    assert.equal(settled[1]!.status, 'fulfilled');
    assert.equal(settled[2]!.status, 'fulfilled');
    const ids = await db.prepare('SELECT id FROM t WHERE id >= 100 ORDER BY id').raw();
    assert.deepEqual(ids, [[200], [201], [300]]);
  });

  test('sessions: each call carries its own session’s bookmark, and each session learns its own', async () => {
    const { fetch: recording, bodies } = recordingFetch();
    const { db } = await seeded({ fetch: recording });
    const write = await db.prepare("INSERT INTO t VALUES (50, 'w')").run();
    assert.ok(write.meta);
    const primary = db.withSession('first-primary');
    const unconstrained = db.withSession('first-unconstrained');
    const pinned = db.withSession('00000000-00000001-00000000-00000000000000000000000000000000');
    bodies.length = 0;
    const [a, b, c, d] = await Promise.all([
      primary.prepare("INSERT INTO t VALUES (51, 'session')").run(),
      unconstrained.prepare('SELECT count(*) AS n FROM t WHERE id <= 50').first('n'),
      pinned.prepare('SELECT v FROM t WHERE id = 50').first('v'),
      db.prepare('SELECT v FROM t WHERE id = 1').first('v'),
    ]);
    assert.equal(bodies.length, 1);
    assert.deepEqual(
      bodies[0].calls.map((call: { bookmark?: string }) => call.bookmark),
      ['first-primary', 'first-unconstrained', '00000000-00000001-00000000-00000000000000000000000000000000', undefined],
    );
    assert.equal((a as { meta: { changes: number } }).meta.changes, 1);
    assert.equal(b, 11);
    assert.equal(c, 'w');
    assert.equal(d, 'row 1');
    // Each session learned a bookmark from its own answer; the one that wrote is past the write before.
    const afterWrite = primary.getBookmark();
    assert.ok(afterWrite && unconstrained.getBookmark() && pinned.getBookmark());
    assert.ok(afterWrite.localeCompare(unconstrained.getBookmark()!) >= 0, `${afterWrite} should not be behind ${unconstrained.getBookmark()}`);
    // A later read in the writing session carries its bookmark.
    bodies.length = 0;
    await primary.prepare('SELECT 1').first();
    assert.equal(bodies[0].bookmark, afterWrite);
  });
});

describe('inside a Worker', () => {
  // dione/client bundled as a Worker would bundle it, run by workerd (miniflare): its event loop, its fetch.
  const WORKER = `import { connect } from './client.js';
export default {
  async fetch(request, env) {
    const db = connect({ url: env.URL, token: env.TOKEN, database: env.DATABASE });
    const [run, n, error] = await Promise.all([
      db.prepare("INSERT INTO t VALUES (100, 'from a worker')").run(),
      db.prepare('SELECT count(*) AS n FROM t WHERE id <= 10').first('n'),
      db.prepare('SELECT * FROM no_such_table').all().catch((e) => e.message),
    ]);
    return Response.json({ changes: run.meta.changes, n, error });
  },
};`;

  test('calls in one turn share one request there too', { timeout: 120_000 }, async () => {
    const { name } = await seeded();
    const bundle = await build({ entryPoints: [path.join(root, 'src/client.ts')], bundle: true, write: false, format: 'esm', platform: 'neutral' });
    const mf = new Miniflare({
      modules: [
        { type: 'ESModule', path: 'worker.js', contents: WORKER },
        { type: 'ESModule', path: 'client.js', contents: bundle.outputFiles[0]!.text },
      ],
      compatibilityDate: '2025-01-01',
      bindings: { URL: s.url, TOKEN: s.token, DATABASE: name },
    });
    try {
      let answer: unknown;
      const requests = await serverRequestsDuring(async () => {
        const response = await mf.dispatchFetch('http://worker/');
        answer = await response.json();
      });
      assert.equal(requests, 1);
      assert.deepEqual(answer, { changes: 1, n: 10, error: 'D1_ERROR: no such table: no_such_table: SQLITE_ERROR' });
    } finally {
      await mf.dispose();
    }
  });
});

describe('the cap', () => {
  test('splits calls into requests of at most maxCallsPerRequest', async () => {
    const { fetch: recording, bodies } = recordingFetch();
    const { db } = await seeded({ fetch: recording, maxCallsPerRequest: 4 });
    let rows: unknown[] = [];
    const requests = await serverRequestsDuring(async () => {
      rows = await Promise.all(Array.from({ length: 10 }, (_, i) => db.prepare('SELECT v FROM t WHERE id = ?').bind(i + 1).first('v')));
    });
    assert.equal(requests, 3);
    assert.deepEqual(
      bodies.map((b) => b.calls.length),
      [4, 4, 2],
    );
    assert.deepEqual(
      rows,
      Array.from({ length: 10 }, (_, i) => `row ${i + 1}`),
    );
  });

  test('the default cap is 64 calls', async () => {
    const { fetch: recording, bodies } = recordingFetch();
    const { db } = await seeded({ fetch: recording });
    const values = await Promise.all(Array.from({ length: 130 }, (_, i) => db.prepare('SELECT ? AS n').bind(i).first('n')));
    assert.deepEqual(
      values,
      Array.from({ length: 130 }, (_, i) => i),
    );
    assert.deepEqual(
      bodies.map((b) => b.calls?.length ?? 1),
      [64, 64, 2],
    );
  });

  test('a request holds at most 1 MiB of JSON text', async () => {
    const { fetch: recording, bodies } = recordingFetch();
    const { db } = await seeded({ fetch: recording });
    const big = 'x'.repeat(400_000);
    const lengths = await Promise.all(Array.from({ length: 5 }, () => db.prepare('SELECT length(?) AS n').bind(big).first('n')));
    assert.deepEqual(lengths, [400_000, 400_000, 400_000, 400_000, 400_000]);
    assert.deepEqual(
      bodies.map((b) => b.calls?.length ?? 1),
      [2, 2, 1],
    );
  });

  test('maxCallsPerRequest: 1 sends every call alone', async () => {
    const { fetch: recording, bodies } = recordingFetch();
    const { db } = await seeded({ fetch: recording, maxCallsPerRequest: 1 });
    await Promise.all([db.prepare('SELECT 1').first(), db.prepare('SELECT 2').first()]);
    assert.equal(bodies.length, 2);
    assert.ok(bodies.every((b) => b.version === undefined));
    assert.throws(() => connect({ url: s.url, database: 'x', maxCallsPerRequest: 0 }), /maxCallsPerRequest/);
  });
});

describe('authorization and failures of the whole request', () => {
  test('read-only token: a write among reads is refused alone', async () => {
    const { name } = await seeded();
    const db = connect({ url: s.url, token: s.tokenFor('read', name), database: name });
    let settled: PromiseSettledResult<unknown>[] = [];
    const requests = await serverRequestsDuring(async () => {
      settled = await Promise.allSettled([
        db.prepare('SELECT v FROM t WHERE id = 1').first('v'),
        db.prepare("INSERT INTO t VALUES (99, 'refused')").run(),
        db.prepare('SELECT v FROM t WHERE id = 2').first('v'),
      ]);
    });
    assert.equal(requests, 1);
    assert.deepEqual(settled[0], { status: 'fulfilled', value: 'row 1' });
    assert.equal(settled[1]!.status, 'rejected');
    assert.match(((settled[1] as PromiseRejectedResult).reason as Error).message, /This token can only read/);
    assert.deepEqual(settled[2], { status: 'fulfilled', value: 'row 2' });
    const admin = connect({ url: s.url, token: s.token, database: name });
    assert.equal(await admin.prepare('SELECT count(*) AS n FROM t WHERE id = 99').first('n'), 0);
  });

  test('a refused token fails every call in the request, each with its own error', async () => {
    const { name } = await seeded();
    const db = connect({ url: s.url, token: 'not-a-token', database: name });
    const settled = await Promise.allSettled([db.prepare('SELECT 1').first(), db.prepare('SELECT 2').first()]);
    const errors = settled.map((r) => (r as PromiseRejectedResult).reason as Error);
    assert.equal(errors.length, 2);
    for (const e of errors) assert.match(e.message, /^D1_ERROR: /);
    assert.notEqual(errors[0], errors[1]);
  });

  test('a lost connection fails every call with D1’s text', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as net.AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const db = connect({ url: `http://127.0.0.1:${port}`, database: 'gone' });
    const settled = await Promise.allSettled([db.prepare('SELECT 1').first(), db.prepare('SELECT 2').first(), db.prepare('SELECT 3').first()]);
    for (const r of settled) assert.match(((r as PromiseRejectedResult).reason as Error).message, /^D1_ERROR: Network connection lost\./);
  });

  test('a server that refuses version 2 gets the calls again one by one, and from then on singly', async () => {
    const { name } = await seeded();
    const bodies: any[] = [];
    const versionOneOnly = (async (input: string | URL | Request, init?: RequestInit) => {
      const body = JSON.parse(init!.body as string);
      bodies.push(body);
      if (body.version !== undefined) return new Response(JSON.stringify({ success: false, error: 'Invalid request: Unrecognized key' }), { status: 400 });
      return fetch(input, init);
    }) as typeof fetch;
    const db = connect({ url: s.url, token: s.token, database: name, fetch: versionOneOnly });
    assert.deepEqual(await Promise.all([db.prepare('SELECT v FROM t WHERE id = 1').first('v'), db.prepare('SELECT v FROM t WHERE id = 2').first('v')]), ['row 1', 'row 2']);
    assert.deepEqual(
      bodies.map((b) => b.version ?? 1),
      [2, 1, 1],
    );
    await Promise.all([db.prepare('SELECT 1').first(), db.prepare('SELECT 2').first()]);
    assert.deepEqual(
      bodies.slice(3).map((b) => b.version ?? 1),
      [1, 1],
    );
  });
});

describe('the wire, by hand', () => {
  const execute = (name: string, body: unknown) => s.call(`/dione/v1/databases/${name}/execute`, { method: 'POST', body: JSON.stringify(body) });

  test('a version 1 request is answered as it always was', async () => {
    const { name } = await seeded();
    const response = await execute(name, { queries: [{ sql: 'SELECT v FROM t WHERE id = ?', params: [4] }], intMode: 'number' });
    assert.equal(response.status, 200);
    const body = (await response.json()) as any;
    assert.equal(body.success, true);
    assert.equal(body.version, undefined);
    assert.deepEqual(body.results[0].rows, [['row 4']]);
    assert.ok(response.headers.get('x-cf-d1-session-commit-token'));
  });

  test('version 2: each call its own status and body, a malformed call refused alone', async () => {
    const { name } = await seeded();
    const response = await execute(name, {
      version: 2,
      calls: [{ queries: [{ sql: 'SELECT v FROM t WHERE id = 5', params: [] }] }, { queries: 'not a list' }, { queries: [{ sql: 'SELECT 7 AS n', params: [] }] }],
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as any;
    assert.equal(body.version, 2);
    assert.deepEqual(
      body.answers.map((a: { status: number }) => a.status),
      [200, 400, 200],
    );
    assert.deepEqual(body.answers[0].body.results[0].rows, [['row 5']]);
    assert.equal(body.answers[1].body.success, false);
    assert.match(body.answers[1].body.error, /^Invalid request at queries/);
    assert.deepEqual(body.answers[2].body.results[0].rows, [[7]]);
    assert.ok(body.answers[2].body.bookmark);
  });

  test('a malformed envelope is refused as a whole', async () => {
    const { name } = await seeded();
    for (const [envelope, reason] of [
      [{ version: 3, calls: [] }, /Unsupported request version 3/],
      [{ version: 2, calls: [] }, /non-empty array of calls/],
      [{ version: 2 }, /non-empty array of calls/],
      [{ version: 2, calls: Array.from({ length: 257 }, () => ({ queries: [] })) }, /257 calls, at most 256/],
    ] as const) {
      const response = await execute(name, envelope);
      assert.equal(response.status, 400, JSON.stringify(envelope).slice(0, 50));
      assert.match(((await response.json()) as { error: string }).error, reason);
    }
  });
});
