// The server's execution model, through HTTP: a runaway query fails with D1's timeout error after
// the configured limit while other databases keep answering, and its database works again with
// its data intact; concurrent writes to one database all land and each batch stays atomic (group
// commit); many databases are in use at once.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from '../src/client.ts';
import type { D1Database } from '../src/index.ts';
import { type Envelope, fetchJson, jsonHeaders, metric, poll, RUNAWAY_SQL, sleep, TIMEOUT_MESSAGE, tokenIn } from './helpers/server-checks.ts';
import { spawnServer, startTestServer, type TestServer } from './helpers/server.ts';

const QUERY_TIMEOUT_MS = 1500;

/** A server with a short query timeout, for the runaway queries. */
let s: TestServer;
/** A server with the default timeout (30 s), for the concurrency tests. */
let c: TestServer;
before(async () => {
  [s, c] = await Promise.all([startTestServer({ queryTimeoutMs: QUERY_TIMEOUT_MS }), startTestServer({})]);
});
after(() => Promise.all([s?.close(), c?.close()]));

const client = (database: string, server = s) => connect({ url: server.url, token: server.token, database });

/**
 * Creates a database, then runs a first statement, with retries: on the short-timeout server a cold
 * host's start-up counts against the query timeout.
 */
async function ready(name: string, setup: string, server = s): Promise<D1Database> {
  await server.createDatabase(name);
  const db = client(name, server);
  const done = await poll(
    () =>
      db.exec(setup).then(
        () => true,
        () => undefined,
      ),
    10,
    200,
  );
  assert.ok(done, `could not set up ${name}`);
  return db;
}

describe('query timeout', () => {
  test("a runaway query on A fails with D1's timeout error while B keeps answering; A's data is intact afterwards", async () => {
    const a = await ready('exec-a', 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    await a.batch(Array.from({ length: 50 }, (_, i) => a.prepare('INSERT INTO t (v) VALUES (?)').bind(`a${i}`)));
    const b = await ready('exec-b', 'CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');

    let settled = false;
    const runaway = a
      .prepare(RUNAWAY_SQL)
      .all()
      .then(
        () => 'resolved',
        (e: Error) => e.message,
      )
      .finally(() => {
        settled = true;
      });
    // While A is stuck, B reads and writes. Bounded: at most 5000 rounds.
    let answered = 0;
    for (let i = 0; i < 5000 && !settled; i++) {
      if (i % 2 === 0) await b.prepare('INSERT INTO t (v) VALUES (?)').bind(i).run();
      else assert.equal(await b.prepare('SELECT count(*) AS n FROM t').first('n'), (i + 1) / 2);
      answered++;
    }
    assert.equal(await runaway, `D1_ERROR: ${TIMEOUT_MESSAGE}`);
    assert.ok(answered >= 20, `B answered only ${answered} times while A was stuck`);

    // A comes back (bounded wait) with every row.
    const rows = await poll(
      () =>
        a
          .prepare('SELECT count(*) AS n, min(v) AS lo, max(v) AS hi FROM t')
          .first()
          .catch(() => undefined),
      20,
      100,
    );
    assert.deepEqual(rows, { n: 50, lo: 'a0', hi: 'a9' });
    await a.prepare("INSERT INTO t (v) VALUES ('after')").run();
    assert.equal(await a.prepare('SELECT count(*) AS n FROM t').first('n'), 51);
    assert.equal(await b.prepare('SELECT count(*) AS n FROM t').first('n'), Math.ceil(answered / 2));
  });

  test('a runaway query through the REST API and the binding protocol: the same error, in their shapes and statuses', async () => {
    await ready('exec-rest', 'CREATE TABLE t (v)');
    const rest = await fetchJson<Envelope>(`${s.api}/exec-rest/query`, { method: 'POST', headers: jsonHeaders(s.token), body: JSON.stringify({ sql: RUNAWAY_SQL }) });
    assert.equal(rest.status, 504);
    assert.equal(rest.body.success, false);
    assert.equal(rest.body.errors[0].message, TIMEOUT_MESSAGE);
    const binding = await poll(
      async () => {
        const reply = await fetchJson<any>(`${s.url}/query`, { method: 'POST', headers: jsonHeaders(s.token, { 'x-dione-database': 'exec-rest' }), body: JSON.stringify({ sql: RUNAWAY_SQL }) });
        // The first request after a timeout may meet the host being replaced (reported separately).
        return reply.body.error === TIMEOUT_MESSAGE ? reply : undefined;
      },
      3,
      100,
    );
    assert.ok(binding, 'the binding protocol never reported the timeout');
    // D1 answers its timeout as any failed query: 200, success false.
    assert.equal(binding.status, 200);
    assert.equal(binding.body.success, false);
    const metrics = await (await fetch(`${s.url}/metrics`, { headers: { authorization: `Bearer ${s.token}` } })).text();
    assert.ok(metric(metrics, 'dione_query_timeouts_total', { database: 'exec-rest' }) >= 2);
  });

  test('the first request after a timeout is answered normally', async () => {
    const db = await ready('exec-next', "CREATE TABLE t (v)\nINSERT INTO t VALUES ('kept')");
    for (let round = 0; round < 2; round++) {
      await assert.rejects(db.prepare(RUNAWAY_SQL).all(), { message: `D1_ERROR: ${TIMEOUT_MESSAGE}` });
      assert.equal(await db.prepare('SELECT v FROM t').first('v'), 'kept', `round ${round}: the next request failed`);
    }
  });

  test('writes answered with the timeout error were not committed (and answered writes were)', async () => {
    // Writes that reach the database host together with the runaway query, ahead of it.
    const setup = await ready('exec-victims', 'CREATE TABLE t (id INTEGER PRIMARY KEY)');
    const writers = Array.from({ length: 20 }, () => client('exec-victims'));
    const reader = client('exec-victims');
    const inconsistent: string[] = [];
    for (let round = 0; round < 4; round++) {
      // Warm: the host is up and every writer has a connection.
      await poll(() => setup.prepare('SELECT 1').all().then(() => true, () => undefined), 20, 100);
      await Promise.all(writers.map((w) => poll(() => w.prepare('SELECT 1').all().then(() => true, () => undefined), 20, 100)));
      const outcomes = await Promise.all([
        ...writers.map((w, k) =>
          w
            .prepare('INSERT INTO t (id) VALUES (?)')
            .bind(round * 100 + k)
            .run()
            .then(
              () => true,
              () => false,
            ),
        ),
        reader.prepare(RUNAWAY_SQL).all().then(
          () => true,
          () => false,
        ),
      ]);
      assert.equal(outcomes.at(-1), false, 'the runaway query did not time out');
      const present = await poll(
        () =>
          setup
            .prepare('SELECT id FROM t WHERE id >= ? AND id < ?')
            .bind(round * 100, round * 100 + 100)
            .all<{ id: number }>()
            .then(
              (r) => new Set(r.results.map((row) => row.id - round * 100)),
              () => undefined,
            ),
        20,
        100,
      );
      assert.ok(present, 'the database did not come back');
      writers.forEach((_, k) => {
        if (outcomes[k] && !present.has(k)) inconsistent.push(`round ${round}: write ${k} was acknowledged but is missing`);
        if (!outcomes[k] && present.has(k)) inconsistent.push(`round ${round}: write ${k} was answered with an error but is committed`);
      });
    }
    assert.deepEqual(inconsistent, []);
  });
});

describe('host start-up', () => {
  test('a query timeout that expires while a database host is still starting does not bring the server down', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dione-exec-startup-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const token = tokenIn(dir, 'admin');
    // 25 ms is far less than starting a host process takes, and far more than SELECT 1 needs.
    const server = await spawnServer(dir, ['--query-timeout', '25']);
    let exit: string | undefined;
    server.child.once('exit', (code, signal) => (exit = `exit code ${code}, signal ${signal}`));
    t.after(() => {
      if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    });
    const api = `${server.url}/client/v4/accounts/${server.accountId}/d1/database`;
    const names = Array.from({ length: 6 }, (_, i) => `cold-${i}`);
    for (const name of names) {
      const created = await fetchJson<Envelope>(api, { method: 'POST', headers: jsonHeaders(token), body: JSON.stringify({ name }) });
      assert.equal(created.status, 200);
    }
    const answers = await Promise.all(
      names.map((name) =>
        fetchJson<Envelope>(`${api}/${name}/query`, { method: 'POST', headers: jsonHeaders(token), body: JSON.stringify({ sql: 'SELECT 1 AS one' }) }).then(
          (r) => (r.status === 200 ? 'ok' : r.body.errors[0]!.message),
          (e: Error) => `no answer: ${e.message}`,
        ),
      ),
    );
    await sleep(500);
    assert.equal(exit, undefined, `dione serve died:\n${server.stderr().slice(-2000)}`);
    for (const answer of answers) assert.ok(answer === 'ok' || answer === TIMEOUT_MESSAGE, answer);
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    // Stopped before its data directory is removed (a server still closing writes into it).
    const exited = new Promise((resolve) => server.child.once('exit', resolve));
    server.child.kill('SIGTERM');
    const stopping = setTimeout(() => server.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(stopping);
  });
});

describe('host lifecycle', () => {
  test('requests that arrive while an idle database is being closed are answered; data and bookmarks survive reopening', async (t) => {
    const server = await startTestServer({ idleMs: 40 });
    t.after(() => server.close());
    await server.createDatabase('idle');
    const db = client('idle', server);
    await db.exec('CREATE TABLE t (v INTEGER)');
    const session = db.withSession('first-primary');
    // Requests spaced around the idle time: the host closes between many of them.
    const failures: string[] = [];
    const bookmarks: string[] = [];
    for (let i = 0; i < 60; i++) {
      await sleep(30 + ((i * 7) % 40));
      try {
        await session.prepare('INSERT INTO t VALUES (?)').bind(i).run();
        bookmarks.push(session.getBookmark()!);
      } catch (e) {
        failures.push(`request ${i}: ${(e as Error).message}`);
      }
    }
    assert.deepEqual(failures, []);
    assert.deepEqual(await db.prepare('SELECT count(*) AS n, sum(v) AS s FROM t').first(), { n: 60, s: (59 * 60) / 2 });
    assert.deepEqual([...bookmarks].sort(), bookmarks, 'bookmarks went backwards across a reopen');
    assert.equal(new Set(bookmarks).size, 60, 'every write has its own, newer bookmark');
  });
});

describe('concurrency', () => {
  test('many clients writing to one database: every acknowledged write lands', async () => {
    await ready('exec-many-writers', 'CREATE TABLE t (client INTEGER, n INTEGER, PRIMARY KEY (client, n))', c);
    const clients = 20;
    const perClient = 25;
    const results = await Promise.all(
      Array.from({ length: clients }, async (_, k) => {
        const db = client('exec-many-writers', c);
        let acknowledged = 0;
        for (let n = 0; n < perClient; n++) {
          await db.prepare('INSERT INTO t VALUES (?, ?)').bind(k, n).run();
          acknowledged++;
        }
        return acknowledged;
      }),
    );
    assert.deepEqual(results, Array.from({ length: clients }, () => perClient));
    const db = client('exec-many-writers', c);
    const counts = await db.prepare('SELECT client, count(*) AS n, min(n) AS lo, max(n) AS hi FROM t GROUP BY client ORDER BY client').all();
    assert.deepEqual(
      counts.results,
      Array.from({ length: clients }, (_, k) => ({ client: k, n: perClient, lo: 0, hi: perClient - 1 })),
    );
  });

  test('50 concurrent batches, some failing: the failing ones leave nothing, the others everything (group commit)', async () => {
    await ready(
      'exec-group',
      'CREATE TABLE items (batch INTEGER, n INTEGER, PRIMARY KEY (batch, n))\nCREATE TABLE gate (id INTEGER PRIMARY KEY)\nINSERT INTO gate VALUES (0)',
      c,
    );
    const fails = (k: number) => k % 5 === 3;
    const inconsistent: string[] = [];
    let sharedCommits = 0;
    for (let round = 0; round < 3; round++) {
      const clients = Array.from({ length: 50 }, () => client('exec-group', c));
      await Promise.all(clients.map((x) => x.prepare('SELECT 1').all()));
      const outcomes = await Promise.all(
        clients.map(async (db, k) => {
          const batch = round * 100 + k;
          const session = db.withSession('first-primary');
          const statements = [0, 1, 2].map((n) => session.prepare('INSERT INTO items VALUES (?, ?)').bind(batch, n));
          // A failing batch's last statement breaks the gate's primary key.
          statements.push(session.prepare('INSERT INTO gate VALUES (?)').bind(fails(k) ? 0 : batch + 1));
          try {
            await session.batch(statements);
            return { ok: true, bookmark: session.getBookmark() };
          } catch (e) {
            return { ok: false, error: (e as Error).message };
          }
        }),
      );
      const rows = await client('exec-group', c).prepare('SELECT batch, count(*) AS n FROM items WHERE batch >= ? AND batch < ? GROUP BY batch').bind(round * 100, round * 100 + 100).all<{ batch: number; n: number }>();
      const landed = new Map(rows.results.map((r) => [r.batch - round * 100, r.n]));
      outcomes.forEach((o, k) => {
        if (o.ok !== !fails(k)) inconsistent.push(`round ${round}: batch ${k} ${o.ok ? 'succeeded' : `failed (${o.error})`}`);
        if (!o.ok && !/UNIQUE constraint failed: gate\.id/.test(o.error!)) inconsistent.push(`round ${round}: batch ${k} failed with ${o.error}`);
        const n = landed.get(k) ?? 0;
        if (n !== (o.ok ? 3 : 0)) inconsistent.push(`round ${round}: batch ${k} (${o.ok ? 'ok' : 'failed'}) left ${n} rows`);
      });
      const bookmarks = outcomes.filter((o) => o.ok).map((o) => o.bookmark);
      sharedCommits += bookmarks.length - new Set(bookmarks).size;
    }
    assert.deepEqual(inconsistent, []);
    // Batches that share a bookmark were committed together: the group-commit path was exercised.
    assert.ok(sharedCommits > 0, 'no two concurrent batches ever shared a commit');
    const total = await client('exec-group', c).prepare('SELECT count(*) AS n FROM items').first('n');
    assert.equal(total, 3 * 3 * 40);
  });

  test('concurrent batches over every protocol (REST, binding, dione/client) stay atomic together', async () => {
    await ready('exec-mixed', 'CREATE TABLE items (who TEXT, n INTEGER, PRIMARY KEY (who, n))', c);
    const insert = (who: string, n: number) => `INSERT INTO items VALUES ('${who}', ${n})`;
    const requests = Array.from({ length: 30 }, (_, k) => {
      const who = `w${k}`;
      const bad = k % 4 === 1;
      const sqls = [insert(who, 0), insert(who, 1), bad ? insert(who, 0) : insert(who, 2)];
      const kind = k % 3;
      const run = async (): Promise<boolean> => {
        if (kind === 0) {
          const r = await fetchJson<Envelope>(`${c.api}/exec-mixed/query`, { method: 'POST', headers: jsonHeaders(c.token), body: JSON.stringify({ batch: sqls.map((sql) => ({ sql })) }) });
          return r.status === 200;
        }
        if (kind === 1) {
          const r = await fetchJson<any>(`${c.url}/query`, { method: 'POST', headers: jsonHeaders(c.token, { 'x-dione-database': 'exec-mixed' }), body: JSON.stringify(sqls.map((sql) => ({ sql, params: [] }))) });
          // A failed batch is 200 too (as D1 answers it): one failure object instead of the results.
          assert.equal(r.status, 200);
          return Array.isArray(r.body);
        }
        const db = client('exec-mixed', c);
        return db.batch(sqls.map((sql) => db.prepare(sql))).then(
          () => true,
          () => false,
        );
      };
      return { who, bad, run };
    });
    const outcomes = await Promise.all(requests.map((r) => r.run()));
    assert.deepEqual(
      outcomes,
      requests.map((r) => !r.bad),
    );
    const rows = await client('exec-mixed', c).prepare('SELECT who, count(*) AS n FROM items GROUP BY who ORDER BY who').all<{ who: string; n: number }>();
    assert.deepEqual(
      rows.results,
      requests
        .filter((r) => !r.bad)
        .map((r) => ({ who: r.who, n: 3 }))
        .sort((x, y) => (x.who < y.who ? -1 : 1)),
    );
  });

  test('40 databases in use at once, each keeping to itself', async () => {
    const names = Array.from({ length: 40 }, (_, i) => `exec-fleet-${i}`);
    for (const name of names) await c.createDatabase(name);
    // First use in waves of 10 (each database's host starts then), so that start-up on a loaded
    // machine stays far from the query timeout.
    const first: string[] = [];
    for (let wave = 0; wave < names.length; wave += 10) {
      const answers = await Promise.all(
        names.slice(wave, wave + 10).map(async (name) => {
          const db = client(name, c);
          return db.batch([db.prepare('CREATE TABLE t (v TEXT)'), db.prepare('INSERT INTO t VALUES (?)').bind(name)]).then(
            () => 'ok',
            (e: Error) => e.message,
          );
        }),
      );
      first.push(...answers);
    }
    assert.deepEqual(first, names.map(() => 'ok'));
    // All at once again: reads and a write each; every database sees only its own rows.
    const seen = await Promise.all(
      names.map(async (name) => {
        const db = client(name, c);
        await db.prepare('INSERT INTO t VALUES (?)').bind(`${name}/2`).run();
        return (await db.prepare('SELECT v FROM t ORDER BY rowid').raw()).flat();
      }),
    );
    assert.deepEqual(
      seen,
      names.map((name) => [name, `${name}/2`]),
    );
    const list = await fetchJson<Envelope>(`${c.api}?name=exec-fleet-&per_page=100`, { headers: jsonHeaders(c.token) });
    assert.equal(list.body.result_info?.total_count, 40);
  });
});
