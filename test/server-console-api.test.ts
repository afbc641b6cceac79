// The console's JSON API (/dione/v1) on a real Dione server on 127.0.0.1: whoami for each kind of
// caller, tokens made, used, listed and revoked through it, the database list with sizes and
// paging, commits over time (counts, recent bookmarks that restore, the oldest restorable one), and
// bad input answered as 400/403/404 envelopes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type DioneCluster, startDioneCluster, within } from './helpers/dione-cluster.ts';
import { type Envelope, fetchJson, jsonHeaders } from './helpers/server-checks.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer({});
});
after(() => s?.close());

/** A call with the admin token, another token, or (null) none. */
const send = <T = any>(method: string, url: string, body?: unknown, token: string | null = s.token) =>
  fetchJson<Envelope<T>>(url.startsWith('http') ? url : `${s.url}${url}`, { method, headers: jsonHeaders(token ?? undefined), body: body === undefined ? undefined : JSON.stringify(body) });
const get = <T = any>(url: string, token: string | null = s.token) => send<T>('GET', url, undefined, token);

async function query(db: string, sql: string, params: unknown[] = []): Promise<any[]> {
  const reply = await send('POST', `${s.api}/${db}/query`, { sql, params });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body.result.at(-1).results;
}

async function bookmark(db: string, timestamp?: number): Promise<string> {
  const reply = await get(`${s.api}/${db}/time_travel/bookmark${timestamp === undefined ? '' : `?timestamp=${timestamp}`}`);
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body.result.bookmark;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A failed answer in Cloudflare's envelope (a 401 too): its status and its first error's message. */
function refused(reply: { status: number; body: Envelope }, status: number, message?: RegExp): void {
  assert.equal(reply.status, status, JSON.stringify(reply.body));
  assert.equal(reply.body.success, false);
  assert.equal(reply.body.result, null);
  assert.equal(typeof reply.body.errors[0]?.code, 'number');
  if (message) assert.match(reply.body.errors[0]!.message, message);
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

describe('whoami', () => {
  test('an admin token for every database', async () => {
    const reply = await get('/dione/v1/whoami');
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.success, true);
    const me = reply.body.result;
    assert.match(me.token_id, /^[A-Za-z0-9]{12}$/);
    assert.ok(s.token.includes(`_${me.token_id}_`), 'token_id is the token’s id');
    assert.deepEqual(
      { ...me, token_id: undefined },
      { token_id: undefined, scope: 'admin', database: null, dev: false, node: null, history: true, account_id: s.accountId, region: me.region },
    );
    assert.equal(typeof me.region, 'string');
    assert.ok(me.region.length > 0);
  });

  test('read and write tokens, and a token for one database', async () => {
    const uuid = await s.createDatabase('who-one');
    for (const scope of ['read', 'write'] as const) {
      const me = (await get('/dione/v1/whoami', s.tokenFor(scope))).body.result;
      assert.equal(me.scope, scope);
      assert.equal(me.database, null);
    }
    const me = (await get('/dione/v1/whoami', s.tokenFor('write', 'who-one'))).body.result;
    assert.equal(me.scope, 'write');
    assert.deepEqual(me.database, { uuid, name: 'who-one' });
    assert.equal(me.dev, false);
  });

  test('without a token: 401 (no --dev)', async () => {
    refused(await get('/dione/v1/whoami', null), 401, /Authentication error/);
    refused(await get('/dione/v1/whoami', 'dione_nope'), 401, /unknown or revoked/);
  });
});

describe('a --dev server without a write log', () => {
  let dev: TestServer;
  before(async () => {
    dev = await startTestServer({ allowUnauthenticated: true, history: false });
  });
  after(() => dev?.close());

  test('whoami without a token says dev; with one, not', async () => {
    const anonymous = await fetchJson<Envelope>(`${dev.url}/dione/v1/whoami`);
    assert.equal(anonymous.status, 200, JSON.stringify(anonymous.body));
    assert.deepEqual(anonymous.body.result, {
      token_id: 'unauthenticated',
      scope: 'admin',
      database: null,
      dev: true,
      node: null,
      history: false,
      account_id: dev.accountId,
      region: anonymous.body.result.region,
    });
    const withToken = await fetchJson<Envelope>(`${dev.url}/dione/v1/whoami`, { headers: jsonHeaders(dev.tokenFor('read')) });
    assert.equal(withToken.body.result.dev, false);
    assert.equal(withToken.body.result.scope, 'read');
  });

  test('commits: 400 with the words of the REST Time Travel routes', async () => {
    await dev.createDatabase('dev-db');
    const rest = await fetchJson<Envelope>(`${dev.api}/dev-db/time_travel/bookmark`, { headers: jsonHeaders(dev.token) });
    refused(rest, 400, /--no-history/);
    const reply = await fetchJson<Envelope>(`${dev.url}/dione/v1/databases/dev-db/commits`, { headers: jsonHeaders(dev.token) });
    refused(reply, 400);
    assert.equal(reply.body.errors[0]!.message, rest.body.errors[0]!.message);
  });
});

describe('tokens', () => {
  test('create, use, list (no secret), revoke: the token stops working', async () => {
    const uuid = await s.createDatabase('tok-db');
    const created = await send('POST', '/dione/v1/tokens', { scope: 'write', database: 'tok-db', name: 'console test' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const { token, record } = created.body.result;
    assert.match(token, /^dione_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}$/);
    assert.ok(token.includes(`_${record.id}_`));
    assert.equal(record.scope, 'write');
    assert.equal(record.name, 'console test');
    assert.deepEqual(record.database, { uuid, name: 'tok-db' });
    assert.match(record.created_at, ISO);
    assert.equal(record.revoked_at, null);

    // It works, for its database only.
    const me = await get('/dione/v1/whoami', token);
    assert.equal(me.status, 200);
    assert.equal(me.body.result.token_id, record.id);
    assert.deepEqual(me.body.result.database, { uuid, name: 'tok-db' });
    assert.equal((await send('POST', `${s.api}/tok-db/query`, { sql: 'CREATE TABLE t (v)' }, token)).status, 200);
    await s.createDatabase('tok-other');
    // Another database is answered as an unknown one (a 403 would tell a scoped token it exists).
    refused(await send('POST', `${s.api}/tok-other/query`, { sql: 'SELECT 1' }, token), 404, /database not found/);

    // Listed as made, without its secret.
    const list = await get('/dione/v1/tokens');
    assert.equal(list.status, 200, JSON.stringify(list.body));
    const listed = list.body.result.tokens.find((t: { id: string }) => t.id === record.id);
    assert.deepEqual(listed, record);
    assert.deepEqual(Object.keys(listed).sort(), ['created_at', 'database', 'id', 'name', 'revoked_at', 'scope']);
    // The secret is all after dione_<12-character id>_ (it may hold '_' itself).
    const secret = token.slice('dione_'.length + 12 + 1);
    assert.equal(secret.length, 43);
    assert.ok(!JSON.stringify(list.body).includes(secret), 'no secret in the list');
    assert.ok(!JSON.stringify(list.body).includes('secret'), 'no secret hash in the list');
    assert.ok(list.body.result.tokens.some((t: { id: string; scope: string; database: unknown }) => s.token.includes(`_${t.id}_`) && t.scope === 'admin' && t.database === null));

    // Revoked: listed so, and refused within the auth cache's 2 s.
    const revoked = await send('DELETE', `/dione/v1/tokens/${record.id}`);
    assert.equal(revoked.status, 200, JSON.stringify(revoked.body));
    assert.equal(revoked.body.result.id, record.id);
    assert.match(revoked.body.result.revoked_at, ISO);
    const after = (await get('/dione/v1/tokens')).body.result.tokens.find((t: { id: string }) => t.id === record.id);
    assert.equal(after.revoked_at, revoked.body.result.revoked_at);
    const deadline = Date.now() + 5000;
    let status = 200;
    while (Date.now() < deadline) {
      status = (await get('/dione/v1/whoami', token)).status;
      if (status === 401) break;
      await pause(100);
    }
    assert.equal(status, 401, 'the revoked token still works after 5 s');
    refused(await send('POST', `${s.api}/tok-db/query`, { sql: 'SELECT 1' }, token), 401);

    // Revoking again, or an unknown id: 404.
    refused(await send('DELETE', `/dione/v1/tokens/${record.id}`), 404, /already revoked/);
    refused(await send('DELETE', '/dione/v1/tokens/nosuchtoken0'), 404, /not found/);
  });

  test('a token for every database, without a name; an admin token it makes works as admin', async () => {
    const created = await send('POST', '/dione/v1/tokens', { scope: 'admin' });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal(created.body.result.record.database, null);
    assert.equal(created.body.result.record.name, null);
    const list = await get('/dione/v1/tokens', created.body.result.token);
    assert.equal(list.status, 200);
  });

  test('read and write tokens, and a one-database admin token, are refused (403)', async () => {
    await s.createDatabase('tok-scoped');
    const someone = (await get('/dione/v1/tokens')).body.result.tokens[0].id;
    for (const token of [s.tokenFor('read'), s.tokenFor('write'), s.tokenFor('admin', 'tok-scoped')]) {
      refused(await get('/dione/v1/tokens', token), 403);
      refused(await send('POST', '/dione/v1/tokens', { scope: 'read' }, token), 403);
      refused(await send('DELETE', `/dione/v1/tokens/${someone}`, undefined, token), 403);
    }
    // Nothing was revoked by them.
    const still = (await get('/dione/v1/tokens')).body.result.tokens.find((t: { id: string }) => t.id === someone);
    assert.equal(still.revoked_at, null);
  });

  test('bad bodies: 400; an unknown database: 404; nothing is made', async () => {
    const before = (await get('/dione/v1/tokens')).body.result.tokens.length;
    refused(await send('POST', '/dione/v1/tokens', { scope: 'root' }), 400, /scope/);
    refused(await send('POST', '/dione/v1/tokens', {}), 400, /scope/);
    refused(await send('POST', '/dione/v1/tokens', { scope: 'read', name: 'x'.repeat(101) }), 400, /name/);
    refused(await send('POST', '/dione/v1/tokens', { scope: 'read', extra: 1 }), 400);
    refused(await send('POST', '/dione/v1/tokens', { scope: 'read', database: 'no-such-db' }), 404, /database not found/);
    const raw = await fetchJson<Envelope>(`${s.url}/dione/v1/tokens`, { method: 'POST', headers: jsonHeaders(s.token), body: '{not json' });
    refused(raw, 400, /not valid JSON/);
    assert.equal((await get('/dione/v1/tokens')).body.result.tokens.length, before);
    // 100 characters is allowed.
    assert.equal((await send('POST', '/dione/v1/tokens', { scope: 'read', name: 'y'.repeat(100) })).status, 200);
  });
});

describe('databases', () => {
  test('sizes, placement and paging; a one-database token sees its own only', async () => {
    const names = ['list-a', 'list-b', 'list-c'];
    for (const name of names) await s.createDatabase(name);
    await query('list-b', 'CREATE TABLE one (x)');
    await query('list-b', 'CREATE TABLE two (x)');
    await query('list-b', "INSERT INTO one VALUES (randomblob(100000))");

    const first = await get('/dione/v1/databases?per_page=200');
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const all = first.body.result;
    assert.equal(all.page, 1);
    assert.equal(all.per_page, 200);
    assert.equal(all.total_count, all.databases.length);
    const rest = (await get(`${s.api}?per_page=1000`)).body.result;
    assert.deepEqual(
      all.databases.map((d: { uuid: string }) => d.uuid),
      rest.map((d: { uuid: string }) => d.uuid),
      'the same databases in the same order as the REST list',
    );
    const b = all.databases.find((d: { name: string }) => d.name === 'list-b');
    const described = (await get(`${s.api}/list-b`)).body.result;
    assert.equal(b.num_tables, 2);
    assert.ok(b.file_size > 100_000, `file_size ${b.file_size}`);
    assert.equal(b.file_size, described.file_size);
    assert.equal(b.uuid, described.uuid);
    assert.equal(b.created_at, described.created_at);
    assert.deepEqual(b.read_replication, { mode: 'disabled' });
    const region = (await get('/dione/v1/whoami')).body.result.region;
    assert.deepEqual(b.primary, { node: 'local', region });
    assert.deepEqual(b.replicas, []);
    assert.equal(b.open, true);
    // Listing opens nothing: list-a was never used, and stays closed however often it is listed.
    const a = all.databases.find((d: { name: string }) => d.name === 'list-a');
    assert.equal(a.open, false);
    assert.equal(a.num_tables, null);
    const again = (await get('/dione/v1/databases?per_page=200')).body.result.databases.find((d: { name: string }) => d.name === 'list-a');
    assert.equal(again.open, false);
    await query('list-a', 'SELECT 1');
    const used = (await get('/dione/v1/databases?per_page=200')).body.result.databases.find((d: { name: string }) => d.name === 'list-a');
    assert.equal(used.open, true);
    assert.equal(used.num_tables, 0);

    // Paging: pages of 2 cover the list once, in order.
    const seen: string[] = [];
    for (let page = 1; ; page++) {
      const reply = await get(`/dione/v1/databases?per_page=2&page=${page}`);
      assert.equal(reply.status, 200);
      assert.equal(reply.body.result.page, page);
      assert.equal(reply.body.result.per_page, 2);
      assert.equal(reply.body.result.total_count, all.total_count);
      if (reply.body.result.databases.length === 0) break;
      assert.ok(reply.body.result.databases.length <= 2);
      seen.push(...reply.body.result.databases.map((d: { uuid: string }) => d.uuid));
    }
    assert.deepEqual(seen, all.databases.map((d: { uuid: string }) => d.uuid));
    const defaults = (await get('/dione/v1/databases')).body.result;
    assert.equal(defaults.per_page, 50);
    assert.equal(defaults.page, 1);

    const scoped = (await get('/dione/v1/databases', s.tokenFor('read', 'list-c'))).body.result;
    assert.equal(scoped.total_count, 1);
    assert.deepEqual(
      scoped.databases.map((d: { name: string }) => d.name),
      ['list-c'],
    );
  });

  test('bad paging: 400', async () => {
    for (const q of ['per_page=0', 'per_page=201', 'per_page=abc', 'page=0', 'page=-1', 'page=1.5']) {
      refused(await get(`/dione/v1/databases?${q}`), 400, /page/);
    }
  });
});

describe('commits', () => {
  test('counts per bucket, recent bookmarks (equal to time_travel/bookmark, and they restore), the oldest restorable commit', async () => {
    await s.createDatabase('cm');
    const start = Date.now();
    await pause(20);
    // Six commits, far enough apart to have distinct times; the bookmark after each.
    const made: string[] = [];
    await query('cm', 'CREATE TABLE t (v INTEGER)');
    made.push(await bookmark('cm'));
    for (let v = 1; v <= 5; v++) {
      await pause(40);
      await query('cm', 'INSERT INTO t VALUES (?)', [v]);
      made.push(await bookmark('cm'));
    }
    await pause(20);
    const end = Date.now();

    const reply = await get(`/dione/v1/databases/cm/commits?since=${start}&until=${end}&buckets=7`);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const c = reply.body.result;
    assert.equal(c.since, start);
    assert.equal(c.until, end);
    assert.equal(c.bucket_ms, (end - start) / 7);
    assert.equal(c.counts.length, 7);
    assert.equal(c.total, 6);
    assert.equal(
      c.counts.reduce((a: number, b: number) => a + b, 0),
      6,
    );
    assert.deepEqual(
      c.recent.map((r: { bookmark: string }) => r.bookmark),
      [...made].reverse(),
    );
    // Each commit in its bucket: (since + i·bucket_ms, since + (i+1)·bucket_ms].
    const expected = new Array(7).fill(0);
    for (const r of c.recent) {
      assert.ok(r.time > start && r.time <= end, `commit time ${r.time} outside the range`);
      expected[Math.min(6, Math.ceil((r.time - start) / c.bucket_ms) - 1)]++;
    }
    assert.deepEqual(c.counts, expected);
    // Newest first, and each is what time_travel/bookmark gives for its time.
    for (let i = 1; i < c.recent.length; i++) assert.ok(c.recent[i - 1].time > c.recent[i].time);
    for (const r of c.recent) assert.equal(await bookmark('cm', r.time), r.bookmark);

    // A narrower window: (time of the 4th newest, time of the newest] holds three commits.
    const narrow = (await get(`/dione/v1/databases/cm/commits?since=${c.recent[3].time}&until=${new Date(c.recent[0].time).toISOString()}&buckets=1`)).body.result;
    assert.deepEqual(narrow.counts, [3]);
    assert.equal(narrow.total, 3);
    assert.deepEqual(narrow.recent, c.recent.slice(0, 3));

    // The oldest restorable commit: the empty database it started as.
    assert.ok(c.oldest_restorable, 'an oldest restorable commit');
    assert.ok(c.oldest_restorable.time <= c.recent.at(-1).time);
    assert.notEqual(c.oldest_restorable.bookmark, c.recent.at(-1).bookmark);

    // A recent bookmark restores to its state (two rows), and the oldest one to the empty database.
    const restore = (b: string) => send('POST', `${s.api}/cm/time_travel/restore?bookmark=${encodeURIComponent(b)}`);
    const restored = await restore(c.recent[3].bookmark);
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    assert.deepEqual(
      (await query('cm', 'SELECT v FROM t ORDER BY v')).map((r) => r.v),
      [1, 2],
    );
    assert.equal((await restore(c.oldest_restorable.bookmark)).status, 200);
    assert.deepEqual(await query('cm', "SELECT name FROM sqlite_master WHERE type = 'table'"), []);

    // The restores are commits too; with the defaults (the last 24 h, 60 buckets) all eight count.
    const defaults = (await get('/dione/v1/databases/cm/commits')).body.result;
    assert.equal(defaults.counts.length, 60);
    assert.equal(defaults.until - defaults.since, 24 * 60 * 60 * 1000);
    assert.ok(Math.abs(defaults.until - Date.now()) < 60_000);
    assert.equal(defaults.total, 8);
    assert.equal(defaults.counts.at(-1), 8);
    assert.equal(defaults.recent.length, 8);
    assert.equal(defaults.recent[0].bookmark, await bookmark('cm'));
  });

  test('at most 20 recent commits; a window before any commit is empty', async () => {
    await s.createDatabase('cm-many');
    await query('cm-many', 'CREATE TABLE t (v INTEGER)');
    for (let v = 0; v < 24; v++) await query('cm-many', 'INSERT INTO t VALUES (?)', [v]);
    const c = (await get('/dione/v1/databases/cm-many/commits?buckets=500')).body.result;
    assert.equal(c.total, 25);
    assert.equal(c.counts.length, 500);
    assert.equal(
      c.counts.reduce((a: number, b: number) => a + b, 0),
      25,
    );
    assert.equal(c.recent.length, 20);
    assert.equal(c.recent[0].bookmark, await bookmark('cm-many'));
    const empty = (await get(`/dione/v1/databases/cm-many/commits?since=${Date.now() - 3 * 86_400_000}&until=${Date.now() - 2 * 86_400_000}`)).body.result;
    assert.equal(empty.total, 0);
    assert.deepEqual(empty.recent, []);
    assert.ok(empty.counts.every((n: number) => n === 0));
  });

  test('bad input: 400; unknown database: 404; another database’s token: 404 as well', async () => {
    await s.createDatabase('cm-bad');
    await s.createDatabase('cm-else');
    const url = '/dione/v1/databases/cm-bad/commits';
    for (const q of ['buckets=abc', 'buckets=0', 'buckets=501', 'buckets=1.5', 'buckets=']) refused(await get(`${url}?${q}`), 400, /buckets/);
    refused(await get(`${url}?since=yesterday`), 400, /since/);
    refused(await get(`${url}?until=2026-13-45T99:00:00Z`), 400, /until/);
    refused(await get(`${url}?since=${Date.now()}&until=${Date.now() - 1000}`), 400, /before/);
    refused(await get(`${url}?since=1700000000000&until=1700000000000`), 400, /before/);
    refused(await get('/dione/v1/databases/no-such-db/commits'), 404, /database not found/);
    refused(await get(url, s.tokenFor('read', 'cm-else')), 404, /database not found/);
    // A read token for it is enough.
    assert.equal((await get(url, s.tokenFor('read', 'cm-bad'))).status, 200);
  });
});

// Two `dione serve` nodes on one nats-server: the cluster fields of the list, commits from the
// shared JetStream history (a record of several messages included) on either node, tokens made on
// one node used on the other.
describe('cluster mode', () => {
  let cluster: DioneCluster;
  before(async () => {
    cluster = await startDioneCluster({ nodes: [{ name: 'a', region: 'WEUR' }, { name: 'b', region: 'ENAM' }], natsNodes: 1, replicas: 1, leaseTtlMs: 3000 });
  });
  after(() => cluster?.close());

  const on = <T = any>(i: number, path: string, init: RequestInit = {}) => cluster.request<Envelope<T>>(i, path, init);
  const sqlOn = async (i: number, sql: string, params: unknown[] = []) => {
    const reply = await on(i, `${cluster.api(i)}/cl/query`, { method: 'POST', body: JSON.stringify({ sql, params }) });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    return reply.body.result.at(-1).meta;
  };

  test('primary and replicas, commits on either node, tokens across nodes', async () => {
    const uuid = await cluster.createDatabase(0, 'cl');
    const start = Date.now();
    await pause(20);
    const created = await sqlOn(1, 'CREATE TABLE t (v)');
    const primary: string = created.served_by;
    const follower = primary === 'a' ? 1 : 0;
    // A record larger than one NATS message (768 KiB parts), among small ones.
    await sqlOn(follower, 'INSERT INTO t VALUES (randomblob(1500000))');
    for (let v = 0; v < 4; v++) {
      await pause(30);
      await sqlOn(v % 2, 'INSERT INTO t VALUES (?)', [v]);
    }
    await pause(20);
    const end = Date.now();

    for (const i of [0, 1]) {
      const me = (await on(i, '/dione/v1/whoami')).body.result;
      assert.equal(me.node, ['a', 'b'][i]);
      assert.equal(me.region, ['WEUR', 'ENAM'][i]);
      // Either node lists the follower's copy (asked over NATS), caught up: behind 0.
      const listed = await within(10_000, async () => {
        const db = (await on(i, '/dione/v1/databases')).body.result.databases.find((d: { uuid: string }) => d.uuid === uuid);
        return db && db.file_size > 1_500_000 && db.replicas[0]?.behind === 0 ? db : undefined;
      });
      assert.ok(listed, `node ${i}: the database listed, its copy caught up (the big row in it)`);
      assert.deepEqual(listed.primary, { node: primary, region: primary === 'a' ? 'WEUR' : 'ENAM' });
      const followerName = ['a', 'b'][follower]!;
      assert.deepEqual(listed.replicas, [{ node: followerName, region: followerName === 'a' ? 'WEUR' : 'ENAM', sequence: 6, behind: 0 }]);
      assert.equal(listed.num_tables, 1);
      assert.equal(listed.file_size, (await on(i, `${cluster.api(i)}/cl`)).body.result.file_size);
    }

    const answers = [];
    for (const i of [0, 1]) {
      const reply = await on(i, `/dione/v1/databases/cl/commits?since=${start}&until=${end}&buckets=5`);
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      answers.push(reply.body.result);
    }
    assert.deepEqual(answers[0], answers[1], 'both nodes answer alike from the shared history');
    const c = answers[0];
    assert.equal(c.total, 6);
    assert.equal(
      c.counts.reduce((a: number, b: number) => a + b, 0),
      6,
    );
    assert.equal(c.recent.length, 6);
    const expected = new Array(5).fill(0);
    for (const r of c.recent) expected[Math.min(4, Math.ceil((r.time - start) / c.bucket_ms) - 1)]++;
    assert.deepEqual(c.counts, expected);
    for (const r of c.recent) {
      const b = await on(follower, `${cluster.api(follower)}/cl/time_travel/bookmark?timestamp=${r.time}`);
      assert.equal(b.body.result?.bookmark, r.bookmark, JSON.stringify(b.body));
    }
    assert.ok(c.oldest_restorable, JSON.stringify(c));
    // The window from the big record's time on: five commits (itself excluded), counted across its parts.
    const after = (await on(0, `/dione/v1/databases/cl/commits?since=${c.recent[4].time}&until=${end}&buckets=3`)).body.result;
    assert.equal(after.total, 4);
    assert.deepEqual(after.recent, c.recent.slice(0, 4));

    // A token made through node a works on node b once the shared catalogue has it.
    const made = await on(0, '/dione/v1/tokens', { method: 'POST', body: JSON.stringify({ scope: 'read', database: 'cl' }) });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    const token: string = made.body.result.token;
    const accepted = await within(10_000, async () => {
      const r = await fetchJson<Envelope>(`${cluster.nodes[1]!.url}/dione/v1/whoami`, { headers: jsonHeaders(token) });
      return r.status === 200 ? r.body.result : undefined;
    });
    assert.equal(accepted?.token_id, made.body.result.record.id);
    assert.deepEqual(accepted?.database, { uuid, name: 'cl' });
    const revoked = await on(0, `/dione/v1/tokens/${made.body.result.record.id}`, { method: 'DELETE' });
    assert.equal(revoked.status, 200);
    const refusedThere = await within(10_000, async () => {
      const r = await fetchJson<Envelope>(`${cluster.nodes[1]!.url}/dione/v1/whoami`, { headers: jsonHeaders(token) });
      return r.status === 401 ? true : undefined;
    });
    assert.ok(refusedThere, 'the token revoked on a still works on b after 10 s');
  });
});
