// Time Travel and forks through a real Dione server's REST API: bookmarks by time, restore and its
// undo, concurrent writers during a restore, fork while the source keeps writing, bad points (no
// change), scopes, and a server without a write log.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Envelope, fetchJson, jsonHeaders } from './helpers/server-checks.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer({});
});
after(() => s?.close());

const send = <T = any>(method: string, url: string, body?: unknown, token = s.token) =>
  fetchJson<Envelope<T>>(url, { method, headers: jsonHeaders(token), body: body === undefined ? undefined : JSON.stringify(body) });

async function query(db: string, sql: string, params: unknown[] = []): Promise<any[]> {
  const reply = await send('POST', `${s.api}/${db}/query`, { sql, params });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body.result.at(-1).results;
}

const values = async (db: string) => (await query(db, 'SELECT v FROM t ORDER BY v')).map((r) => r.v);

async function bookmark(db: string, timestamp?: string): Promise<string> {
  const reply = await send('GET', `${s.api}/${db}/time_travel/bookmark${timestamp ? `?timestamp=${encodeURIComponent(timestamp)}` : ''}`);
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body.result.bookmark;
}

const restore = (db: string, query: string, token = s.token) => send('POST', `${s.api}/${db}/time_travel/restore?${query}`, undefined, token);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('time travel', () => {
  test('a timestamp maps to the newest commit at or before it; restore goes there and previous_bookmark comes back', async () => {
    await s.createDatabase('tt-basic');
    await query('tt-basic', 'CREATE TABLE t (v INTEGER)');
    await query('tt-basic', 'INSERT INTO t VALUES (1)');
    const afterOne = await bookmark('tt-basic');
    await pause(30);
    const between = new Date().toISOString();
    await pause(30);
    await query('tt-basic', 'INSERT INTO t VALUES (2)');
    await query('tt-basic', 'INSERT INTO t VALUES (3)');
    const latest = await bookmark('tt-basic');
    assert.ok(afterOne < latest, 'bookmarks sort in commit order');
    assert.equal(await bookmark('tt-basic', between), afterOne);
    // Unix seconds and milliseconds are timestamps too.
    assert.equal(await bookmark('tt-basic', String(Date.parse(between))), afterOne);

    const restored = await restore('tt-basic', `timestamp=${encodeURIComponent(between)}`);
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    const result = restored.body.result;
    assert.equal(result.previous_bookmark, latest);
    assert.ok(result.bookmark > latest, 'the restore is a new, later commit');
    assert.equal(typeof result.message, 'string');
    assert.deepEqual(await values('tt-basic'), [1]);
    assert.equal(await bookmark('tt-basic'), result.bookmark);

    const undone = await restore('tt-basic', `bookmark=${result.previous_bookmark}`);
    assert.equal(undone.status, 200, JSON.stringify(undone.body));
    assert.deepEqual(await values('tt-basic'), [1, 2, 3]);
    assert.equal(undone.body.result.previous_bookmark, result.bookmark);
    // Writes go on after a restore, and the history survives the host's restart.
    await query('tt-basic', 'INSERT INTO t VALUES (4)');
    await s.server.context.pool.stop((await send('GET', `${s.api}/tt-basic`)).body.result.uuid);
    assert.deepEqual(await values('tt-basic'), [1, 2, 3, 4]);
    assert.equal((await restore('tt-basic', `bookmark=${afterOne}`)).status, 200);
    assert.deepEqual(await values('tt-basic'), [1]);
  });

  test('bad points are refused with a reason, and nothing changes', async () => {
    await s.createDatabase('tt-bad');
    await s.createDatabase('tt-other');
    await query('tt-bad', 'CREATE TABLE t (v INTEGER)');
    await query('tt-bad', 'INSERT INTO t VALUES (1)');
    await query('tt-other', 'CREATE TABLE t (v INTEGER)');
    const before = await bookmark('tt-bad');
    const other = await bookmark('tt-other');
    const [high, low, zero, tag] = before.split('-');
    const future = [high, (Number.parseInt(low!, 16) + 5).toString(16).padStart(8, '0'), zero, tag].join('-');
    const cases: [string, RegExp][] = [
      ['bookmark=not-a-bookmark', /Invalid bookmark 'not-a-bookmark'/],
      [`bookmark=${other}`, /another database/],
      [`bookmark=${future}`, /in the future/],
      [`bookmark=${[high, low, 'ffffffff', tag].join('-')}`, /made no such bookmark/],
      ['timestamp=2026-02-30', /Invalid timestamp '2026-02-30'/],
      [`timestamp=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`, /in the future/],
      [`timestamp=${encodeURIComponent(new Date(Date.now() - 31 * 86_400_000).toISOString())}`, /older than the Time Travel window/],
      ['timestamp=yesterday', /Invalid timestamp 'yesterday'/],
      [`bookmark=${before}&timestamp=1`, /not both/],
      ['', /Provide a bookmark or a timestamp/],
    ];
    for (const [q, message] of cases) {
      const reply = await restore('tt-bad', q);
      assert.equal(reply.status, 400, q);
      assert.equal(reply.body.success, false);
      assert.match(reply.body.errors[0].message, message, q);
    }
    assert.equal(await bookmark('tt-bad'), before);
    assert.deepEqual(await values('tt-bad'), [1]);
    const notFound = await restore('no-such-db', `bookmark=${before}`);
    assert.equal(notFound.status, 404);
  });

  test('restore needs a token that may write', async () => {
    await s.createDatabase('tt-scope');
    await query('tt-scope', 'CREATE TABLE t (v INTEGER)');
    const point = await bookmark('tt-scope');
    const reader = s.tokenFor('read', 'tt-scope');
    const reply = await restore('tt-scope', `bookmark=${point}`, reader);
    assert.equal(reply.status, 403);
    const bookmarkAsReader = await send('GET', `${s.api}/tt-scope/time_travel/bookmark`, undefined, reader);
    assert.equal(bookmarkAsReader.status, 200);
  });

  test('writers running during a restore see the old state or the restored one, never a mix', async () => {
    await s.createDatabase('tt-busy');
    await query('tt-busy', 'CREATE TABLE t (v INTEGER)');
    await query('tt-busy', 'CREATE TABLE pairs (a INTEGER, b INTEGER)');
    await query('tt-busy', 'INSERT INTO t VALUES (1)');
    const point = await bookmark('tt-busy');
    let stop = false;
    let n = 0;
    const writers = Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 400 && !stop; i++) {
        const k = n++;
        // Two rows in one request: both or neither, whatever a restore does in between.
        await query('tt-busy', 'INSERT INTO pairs VALUES (?1, 1); INSERT INTO pairs VALUES (?1, 2)'.replace(/\?1/g, String(k)));
      }
    });
    await pause(50);
    const restored = await restore('tt-busy', `bookmark=${point}`);
    stop = true;
    await Promise.all(writers);
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    const pairs = await query('tt-busy', 'SELECT a, count(*) AS n FROM pairs GROUP BY a HAVING n <> 2');
    assert.deepEqual(pairs, []);
    assert.deepEqual(await values('tt-busy'), [1]);
  });
});

describe('fork', () => {
  test('a fork is a new database equal to the source at the point; both go on independently', async () => {
    await s.createDatabase('fork-src');
    await query('fork-src', 'CREATE TABLE t (v INTEGER)');
    await query('fork-src', 'INSERT INTO t VALUES (1)');
    const point = await bookmark('fork-src');
    await query('fork-src', 'INSERT INTO t VALUES (2)');
    const reply = await send('POST', `${s.api}/fork-src/fork`, { name: 'fork-new', bookmark: point });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const created = reply.body.result;
    assert.equal(created.name, 'fork-new');
    assert.match(created.uuid, /^[0-9a-f-]{36}$/);
    assert.equal(created.version, 'production');
    assert.deepEqual(await values('fork-new'), [1]);
    await query('fork-new', 'INSERT INTO t VALUES (10)');
    await query('fork-src', 'INSERT INTO t VALUES (3)');
    assert.deepEqual(await values('fork-new'), [1, 10]);
    assert.deepEqual(await values('fork-src'), [1, 2, 3]);
    // forked_from names the point in the source's history; the fork's history is its own.
    assert.deepEqual(created.forked_from, { uuid: (await send('GET', `${s.api}/fork-src`)).body.result.uuid, bookmark: point });
    assert.equal(created.bookmark.slice(0, 27), point.slice(0, 27));
    const forkBookmark = await bookmark('fork-new');
    assert.notEqual(forkBookmark.slice(27), point.slice(27));
    assert.equal(forkBookmark.slice(27), created.bookmark.slice(27));
    const listed = await send('GET', s.api);
    assert.ok(listed.body.result.some((d: { name: string }) => d.name === 'fork-new'));

    // A fork by timestamp, then deleting it removes its files, history included.
    const byTime = await send('POST', `${s.api}/fork-src/fork`, { name: 'fork-time', timestamp: new Date().toISOString() });
    assert.equal(byTime.status, 200, JSON.stringify(byTime.body));
    assert.deepEqual(await values('fork-time'), [1, 2, 3]);
    assert.equal((await send('DELETE', `${s.api}/fork-time`)).status, 200);
    const left = readdirSync(path.join(s.dataDir, 'databases')).filter((f) => f.startsWith(byTime.body.result.uuid));
    assert.deepEqual(left, []);
  });

  test('forks racing for one name: one is created, the others are refused with 7502 and leave no files', async () => {
    await s.createDatabase('fork-race');
    await query('fork-race', 'CREATE TABLE t (v INTEGER)');
    await query('fork-race', 'INSERT INTO t VALUES (1)');
    const point = await bookmark('fork-race');
    const before = readdirSync(path.join(s.dataDir, 'databases')).length;
    const replies = await Promise.all(Array.from({ length: 4 }, () => send('POST', `${s.api}/fork-race/fork`, { name: 'fork-raced', bookmark: point })));
    assert.deepEqual(
      replies.map((r) => r.status).sort(),
      [200, 400, 400, 400],
      JSON.stringify(replies.map((r) => r.body)),
    );
    for (const refused of replies.filter((r) => r.status === 400)) assert.equal(refused.body.errors[0].code, 7502);
    const created = replies.find((r) => r.status === 200)!.body.result;
    const added = readdirSync(path.join(s.dataDir, 'databases')).filter((f) => !f.startsWith(created.uuid));
    assert.equal(added.length, before, `files of refused forks left: ${added.join(', ')}`);
    assert.deepEqual(await values('fork-raced'), [1]);
  });

  test('a fork with a taken name, a bad point or a bad body creates nothing', async () => {
    await s.createDatabase('fork-bad');
    await query('fork-bad', 'CREATE TABLE t (v INTEGER)');
    const before = readdirSync(path.join(s.dataDir, 'databases')).length;
    const cases: [unknown, number, RegExp][] = [
      [{ name: 'fork-bad', bookmark: await bookmark('fork-bad') }, 400, /already exists/],
      [{ name: 'fork-x1', bookmark: 'nope' }, 400, /Invalid bookmark/],
      [{ name: 'fork-x2' }, 400, /bookmark or a timestamp/],
      [{ name: 'bad name!', timestamp: new Date().toISOString() }, 400, /Invalid database name/],
      [{ bookmark: 'x' }, 400, /Invalid request body/],
    ];
    for (const [body, status, message] of cases) {
      const reply = await send('POST', `${s.api}/fork-bad/fork`, body);
      assert.equal(reply.status, status, JSON.stringify(body));
      assert.match(reply.body.errors[0].message, message);
    }
    assert.equal(readdirSync(path.join(s.dataDir, 'databases')).length, before);
    assert.equal((await send('GET', `${s.api}/fork-x1`)).status, 404);
    const writer = s.tokenFor('write', 'fork-bad');
    const refused = await send('POST', `${s.api}/fork-bad/fork`, { name: 'fork-x3', timestamp: new Date().toISOString() }, writer);
    assert.equal(refused.status, 403);
  });
});

test('a server without a write log says Time Travel is off', async () => {
  const plain = await startTestServer({ history: false });
  try {
    await plain.createDatabase('nolog');
    const reply = await fetchJson<Envelope>(`${plain.api}/nolog/time_travel/bookmark`, { headers: jsonHeaders(plain.token) });
    assert.equal(reply.status, 400);
    assert.match(reply.body.errors[0].message, /Time Travel is off/);
    const uuid = (await fetchJson<Envelope<{ uuid: string }>>(`${plain.api}/nolog`, { headers: jsonHeaders(plain.token) })).body.result.uuid;
    assert.equal(existsSync(path.join(plain.dataDir, 'databases', `${uuid}.sqlite-history`)), false);
  } finally {
    await plain.close();
  }
});
