// Operations that belong to a database's primary, asked of another node of a cluster (in-process
// `dione serve` nodes on a real 3-node NATS cluster): Time Travel bookmarks and restores, forks,
// exports and imports are relayed to the primary, and what they did is seen through every node;
// a database deleted on one node is gone on all.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect } from '../src/client/connect.ts';
import type { NatsCluster } from './helpers/nats-cluster.ts';
import type { TestServer } from './helpers/server.ts';
import { startTwoNodes } from './helpers/two-nodes.ts';
import { dioneCli, poll } from './helpers/server-checks.ts';

let nats: NatsCluster | undefined;
let a: TestServer;
let b: TestServer;

before(async () => {
  ({ nats, a, b } = await startTwoNodes({ leaseTtlMs: 3000 }));
});

after(async () => {
  await b?.close();
  await a?.close();
  await nats?.close();
});

interface Envelope<T> {
  success: boolean;
  result: T;
  errors: { message: string }[];
}

async function rest<T>(node: TestServer, method: string, path: string, body?: unknown): Promise<Envelope<T>> {
  const response = await node.call(`${node.api}${path}`, { method, token: a.token, body: body === undefined ? undefined : JSON.stringify(body) });
  return (await response.json()) as Envelope<T>;
}

const db = (node: TestServer, name: string) => connect({ url: node.url, token: a.token, database: name });

async function values(node: TestServer, name: string): Promise<number[]> {
  const { results } = await db(node, name).prepare('SELECT v FROM t ORDER BY v').all<{ v: number }>();
  return results.map((r) => r.v);
}

test('Time Travel asked of a follower is the primary\'s, and every node sees the restore', async () => {
  await a.createDatabase('tt');
  await db(a, 'tt').exec('CREATE TABLE t (v INTEGER)');
  await db(a, 'tt').prepare('INSERT INTO t VALUES (1)').run();
  const point = await rest<{ bookmark: string }>(b, 'GET', '/tt/time_travel/bookmark');
  assert.ok(point.success, JSON.stringify(point));
  await db(b, 'tt').prepare('INSERT INTO t VALUES (2)').run();
  assert.deepEqual(await values(b, 'tt'), [1, 2]);

  const restored = await rest<{ bookmark: string; previous_bookmark: string }>(b, 'POST', `/tt/time_travel/restore?bookmark=${point.result.bookmark}`);
  assert.ok(restored.success, JSON.stringify(restored));
  assert.deepEqual(await values(a, 'tt'), [1]);
  assert.deepEqual(await values(b, 'tt'), [1]);
  // b's own copy reaches the restore too (a session holding the restore's bookmark reads there).
  const session = db(b, 'tt').withSession(restored.result.bookmark);
  const onB = await session.prepare('SELECT v FROM t ORDER BY v').all<{ v: number }>();
  assert.deepEqual(
    onB.results.map((r) => r.v),
    [1],
  );
  assert.equal(onB.meta.served_by, 'b');
  assert.equal(onB.meta.served_by_primary, false);
});

test('a fork asked of a follower starts from the source at the point, on every node', async () => {
  await b.createDatabase('src');
  await db(b, 'src').exec('CREATE TABLE t (v INTEGER)');
  await db(b, 'src').prepare('INSERT INTO t VALUES (1)').run();
  const point = await rest<{ bookmark: string }>(a, 'GET', '/src/time_travel/bookmark');
  await db(a, 'src').prepare('INSERT INTO t VALUES (2)').run();
  const forked = await rest<{ name: string; uuid: string }>(a, 'POST', '/src/fork', { name: 'forked', bookmark: point.result.bookmark });
  assert.ok(forked.success, JSON.stringify(forked));
  const seen = await poll(async () => ((await rest(b, 'GET', '/forked')).success ? true : undefined), 50, 100);
  assert.ok(seen, 'the fork never reached b');
  assert.deepEqual(await values(a, 'forked'), [1]);
  assert.deepEqual(await values(b, 'forked'), [1]);
  await db(b, 'forked').prepare('INSERT INTO t VALUES (10)').run();
  assert.deepEqual(await values(a, 'forked'), [1, 10]);
  assert.deepEqual(await values(a, 'src'), [1, 2]);
});

test('export and import asked of a follower run on the primary', async () => {
  await a.createDatabase('io');
  await db(a, 'io').exec('CREATE TABLE t (v INTEGER)');
  await db(a, 'io').prepare('INSERT INTO t VALUES (7)').run();
  // b is not the primary of io: its export is the primary's, with a download URL there.
  const exported = await rest<{ result: { signed_url: string } }>(b, 'POST', '/io/export', { output_format: 'polling' });
  assert.ok(exported.success, JSON.stringify(exported));
  const sql = await (await fetch(exported.result.result.signed_url)).text();
  assert.match(sql, /INSERT INTO "t" \("v"\) VALUES\(7\);/);

  const body = 'INSERT INTO t VALUES (8);\nINSERT INTO t VALUES (9);';
  const { createHash } = await import('node:crypto');
  const etag = createHash('md5').update(body).digest('hex');
  const init = await rest<{ upload_url: string; filename: string }>(b, 'POST', '/io/import', { action: 'init', etag });
  assert.ok(init.success, JSON.stringify(init));
  const put = await fetch(init.result.upload_url, { method: 'PUT', body });
  assert.ok(put.ok, `upload: ${put.status}`);
  const ingest = await rest<{ success: boolean; messages: string[] }>(b, 'POST', '/io/import', { action: 'ingest', etag, filename: init.result.filename });
  assert.ok(ingest.success && ingest.result.success, JSON.stringify(ingest));
  assert.deepEqual(await values(b, 'io'), [7, 8, 9]);
});

test('a database deleted on one node is gone on every node', async () => {
  await a.createDatabase('gone');
  await db(a, 'gone').exec('CREATE TABLE t (v INTEGER)');
  assert.deepEqual(await values(b, 'gone'), []);
  const deleted = await rest(b, 'DELETE', '/gone');
  assert.ok(deleted.success, JSON.stringify(deleted));
  const goneOnA = await poll(async () => ((await rest(a, 'GET', '/gone')).success ? undefined : true), 50, 100);
  assert.ok(goneOnA, 'a still has the database');
  await assert.rejects(values(a, 'gone'), /not found/i);
  // The name is free again, and the new database starts empty (not from the old one's log).
  await a.createDatabase('gone');
  await db(b, 'gone').exec('CREATE TABLE t (v INTEGER)');
  assert.deepEqual(await values(a, 'gone'), []);
});

test('dione serve refuses cluster flags that do not go together', async () => {
  const noName = await dioneCli(['serve', '--port', '0', '--nats', 'nats://127.0.0.1:1']);
  assert.notEqual(noName.code, 0);
  assert.match(noName.stderr, /--nats needs --node-id NAME/);
  const noNats = await dioneCli(['serve', '--port', '0', '--node-id', 'x']);
  assert.notEqual(noNats.code, 0);
  assert.match(noNats.stderr, /--node-id is for cluster mode/);
  const noLog = await dioneCli(['serve', '--port', '0', '--nats', 'nats://127.0.0.1:1', '--node-id', 'x', '--no-history']);
  assert.notEqual(noLog.code, 0);
  assert.match(noLog.stderr, /cluster mode keeps a write log/);
});
