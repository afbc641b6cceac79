// One database on two nodes of a cluster (in one process, each with its own NATS connection and
// directory, on a real 3-node NATS cluster): the lease holder is the primary and acknowledges a
// write once the JetStream log holds it; the other node follows, serves reads, and hands writes
// back; when the primary dies without a word, the follower takes the lease after it lapses, catches
// up and serves writes, with every acknowledged write present; the old node comes back as a follower.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ExecuteResponse } from '../src/api/executor.ts';
import { formatBookmark } from '../src/api/bookmark.ts';
import { ClusterDatabase, clusterTag, type Forward } from '../src/cluster/cluster-database.ts';
import { Leases } from '../src/cluster/leases.ts';
import { ObjectSnapshots } from '../src/cluster/object-snapshots.ts';
import { Engine } from '../src/engine/engine.ts';
import { tempDir } from './helpers/binding.ts';
import { useNatsCluster } from './helpers/nats-cluster.ts';

const TTL = 2000;
const nats = useNatsCluster();
const { connectTo } = nats;

async function startNode(name: string, dir: string, server: number, database = 'orders', seed?: string): Promise<{ db: ClusterDatabase; nc: NatsConnection }> {
  const nc = await connectTo([nats.cluster().urls[server]!]);
  const db = await ClusterDatabase.start({
    nc,
    database,
    seed,
    dir,
    self: { node: name, url: `http://${name}.invalid`, region: name === 'a' ? 'WEUR' : 'ENAM' },
    leases: await Leases.open(nc, { ttlMs: TTL, replicas: 3 }),
    snapshots: await ObjectSnapshots.open(nc, { replicas: 3 }),
    replicas: 3,
  });
  return { db, nc };
}

const isResponse = (r: ExecuteResponse | Forward): r is ExecuteResponse => 'success' in r;

async function sql(node: ClusterDatabase, text: string, writes: boolean, bookmark?: string): Promise<ExecuteResponse | Forward> {
  return node.execute({ queries: [{ sql: text, params: [] }], bookmark }, writes);
}

/** Reads this node's own copy (a session that takes any copy). */
async function ids(node: ClusterDatabase): Promise<number[]> {
  const r = await sql(node, 'SELECT id FROM orders ORDER BY id', false, 'first-unconstrained');
  assert.ok(isResponse(r) && r.success, JSON.stringify(r));
  return r.results[0]!.rows.map((row) => Number(row[0]));
}

test('a primary that dies is replaced by a follower that has every acknowledged write', async (t) => {
  const dir = tempDir();
  const a = await startNode('a', path.join(dir, 'a'), 0);
  const b = await startNode('b', path.join(dir, 'b'), 1);
  assert.equal(a.db.role, 'primary');
  assert.equal(b.db.role, 'follower');
  // What a node does all along: renew its lease (a quarter of the TTL), or follow.
  const upkeep = setInterval(() => void a.db.tick().catch(() => {}), TTL / 4);

  const created = await sql(a.db, 'CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT, at TEXT DEFAULT CURRENT_TIMESTAMP)', true);
  assert.ok(isResponse(created) && created.success, JSON.stringify(created));
  const acknowledged: number[] = [];
  // Longer than the lease's TTL: the primary keeps it by renewing.
  for (let i = 1; i <= 30; i++) {
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, TTL / 2));
    const r = await sql(a.db, `INSERT INTO orders (id, note) VALUES (${i}, hex(randomblob(${i * 10})))`, true);
    assert.ok(isResponse(r) && r.success, JSON.stringify(r));
    acknowledged.push(i);
  }
  // The follower hands writes to the primary, and reads what the primary wrote once it has followed.
  const forwarded = await sql(b.db, 'INSERT INTO orders (id) VALUES (999)', true);
  assert.ok(!isResponse(forwarded));
  assert.equal(forwarded.forward?.node, 'a');
  // So do reads outside a session (D1 sends them to the primary), and reads of a session that must
  // see more than the follower's copy holds once the wait for it runs out.
  const plainRead = await sql(b.db, 'SELECT 1', false);
  assert.ok(!isResponse(plainRead) && plainRead.forward?.node === 'a');
  const ahead = await sql(b.db, 'SELECT 1', false, formatBookmark(b.db.sequence + 1000, clusterTag('orders')));
  assert.ok(!isResponse(ahead) && ahead.forward?.node === 'a', JSON.stringify(ahead));
  await b.db.tick();
  assert.equal(b.db.sequence, a.db.sequence);
  assert.deepEqual(await ids(b.db), acknowledged);

  // The primary dies: no lease release, no goodbye.
  clearInterval(upkeep);
  await a.db.stop({ crash: true });
  await a.nc.close();
  const died = Date.now();
  while ((b.db.role as string) !== 'primary') {
    assert.ok(Date.now() - died < 15_000, 'the follower never took over');
    await new Promise((r) => setTimeout(r, 200));
    await b.db.tick();
  }
  t.diagnostic(`the follower became the primary ${Date.now() - died} ms after the primary died (lease TTL ${TTL} ms)`);
  assert.deepEqual(await ids(b.db), acknowledged, 'every acknowledged write is there');
  for (let i = 31; i <= 40; i++) {
    const r = await sql(b.db, `INSERT INTO orders (id, note) VALUES (${i}, 'after failover')`, true);
    assert.ok(isResponse(r) && r.success, JSON.stringify(r));
    acknowledged.push(i);
  }

  // The old node comes back: a follower now, it catches up with what happened without it.
  const again = await startNode('a', path.join(dir, 'a'), 2);
  assert.equal(again.db.role, 'follower');
  await again.db.tick();
  assert.equal(again.db.sequence, b.db.sequence);
  assert.deepEqual(await ids(again.db), acknowledged);
  // Bookmarks name the same commit on every node.
  const onB = await sql(b.db, 'SELECT 1', false, 'first-unconstrained');
  const onA = await sql(again.db, 'SELECT 1', false, 'first-unconstrained');
  assert.ok(isResponse(onA) && isResponse(onB) && onA.success && onB.success);
  assert.equal(onA.bookmark, onB.bookmark);
  await again.db.stop();
  await b.db.stop();
});

test('a database whose first primary stopped before any write starts on the next one from its first snapshot (a fork, say)', async () => {
  const dir = tempDir();
  // A fork: a file with a history of its own, the seed of a new cluster database.
  const seed = path.join(dir, 'fork.sqlite');
  const source = new Engine(seed);
  source.execute({ queries: [{ sql: 'CREATE TABLE t (v TEXT)', params: [] }] });
  source.execute({ queries: [{ sql: "INSERT INTO t VALUES ('from the fork')", params: [] }] });
  source.close();
  const a = await startNode('a', path.join(dir, 'a'), 0, 'forked', seed);
  assert.equal(a.db.role, 'primary');
  // It stops (giving the lease up) before anything was written to the log.
  await a.db.stop();
  await a.nc.close();
  // b takes the lease at once, never having followed; it has no seed: only the object store's first
  // snapshot holds the fork's content.
  const b = await startNode('b', path.join(dir, 'b'), 1, 'forked');
  assert.equal(b.db.role, 'primary');
  const r = await sql(b.db, 'SELECT v FROM t', false);
  assert.ok(isResponse(r) && r.success, JSON.stringify(r));
  assert.deepEqual(r.results[0]!.rows, [['from the fork']]);
  await b.db.stop();
});
