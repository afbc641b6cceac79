// The cluster's catalogue (a NATS KV bucket) mirrored into each node's local catalogue, on a real
// 3-node NATS cluster, with three nodes each holding its own Catalog and connected to a different
// NATS server: a database from before cluster mode is imported and the account id is shared; a
// database created on one node is found on the others; one of several nodes creating the same
// name at once wins, also when the name was used before; tokens created or revoked through a
// node's catalogue file (as `dione token` does) reach the others; a deleted database is gone
// everywhere with its log, snapshots and lease; a node that was away catches up when it starts.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { JetStreamApiCodes, JetStreamApiError, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Leases } from '../src/cluster/leases.ts';
import { ObjectSnapshots } from '../src/cluster/object-snapshots.ts';
import { StreamLog, streamNameOf } from '../src/cluster/stream-log.ts';
import { Catalog, type DatabaseRecord } from '../src/server/catalog.ts';
import { ClusterCatalog } from '../src/server/cluster-catalog.ts';
import { ErrorCodes } from '../src/server/protocols/envelope.ts';
import { ApiError } from '../src/server/protocols/api-errors.ts';
import { createToken, verifyToken } from '../src/server/tokens.ts';
import { tempDir } from './helpers/binding.ts';
import { useNatsCluster } from './helpers/nats-cluster.ts';

interface Node {
  dir: string;
  catalog: Catalog;
  shared: ClusterCatalog;
  nc: NatsConnection;
  /** What onRemoved was called with. */
  removed: string[];
}

const nodes: Node[] = [];
// Registered before the NATS cluster's own hook, so the catalogues stop while NATS still runs.
after(async () => {
  for (const node of nodes) await node.shared.close();
  for (const node of nodes) node.catalog.close();
});
const nats = useNatsCluster();

async function startNode(server: number, dir = tempDir(), catalog = new Catalog(dir)): Promise<Node> {
  const nc = await nats.connectTo([nats.cluster().urls[server]!]);
  const removed: string[] = [];
  const shared = await ClusterCatalog.start(nc, catalog, {
    replicas: 3,
    pollMs: 100,
    onRemoved: (uuid) => {
      removed.push(uuid);
    },
  });
  return { dir, catalog, shared, nc, removed };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (at most 5 s) until `holds`; returns how long it took. */
async function eventually(what: string, holds: () => boolean): Promise<number> {
  const started = Date.now();
  while (!holds()) {
    if (Date.now() - started > 5000) assert.fail(`not within 5 s: ${what}`);
    await pause(10);
  }
  return Date.now() - started;
}

/** What a node's REST routes do to create a database. */
async function createOn(node: Node, name: string): Promise<DatabaseRecord> {
  const record = node.catalog.create(name);
  await node.shared.created(record);
  return record;
}

async function deleteOn(node: Node, record: DatabaseRecord): Promise<void> {
  node.catalog.remove(record.uuid);
  await node.shared.removed(record.uuid, record.name);
}

let a: Node;
let b: Node;
let c: Node;

test('a database from before cluster mode is imported; the account id is the same on every node', async () => {
  const dir = tempDir();
  const before = new Catalog(dir);
  const legacy = before.create('legacy');
  const { token } = createToken(before, 'read', legacy.uuid);
  a = await startNode(0, dir, before);
  b = await startNode(1);
  c = await startNode(2);
  nodes.push(a, b, c);

  // Nodes started afterwards have the bucket's content as soon as start() resolves.
  for (const node of [b, c]) {
    assert.deepEqual(node.catalog.find('legacy'), legacy);
    assert.deepEqual(node.catalog.find(legacy.uuid), legacy);
    assert.equal(verifyToken(node.catalog, token)?.databaseUuid, legacy.uuid);
  }

  const ids = await Promise.all(nodes.map((node) => node.shared.accountId(node.catalog.accountId())));
  assert.equal(new Set(ids).size, 1, `one account id: ${ids.join(', ')}`);
  assert.ok(nodes.some((node) => node.catalog.accountId() === ids[0]), 'it is one of the nodes’ own');
  assert.equal(await c.shared.accountId('f'.repeat(32)), ids[0]);
});

test('a database created on one node is found by name and id on the others, and so are its settings', async (t) => {
  const shop = await createOn(a, 'shop');
  const ms = await eventually('shop on b and c', () => [b, c].every((node) => node.catalog.find('shop')?.uuid === shop.uuid));
  for (const node of [b, c]) assert.deepEqual(node.catalog.find(shop.uuid), shop);
  t.diagnostic(`a database created on one node was found on the two others after ${ms} ms`);

  // A local name check (checkNewName) now refuses it everywhere.
  assert.throws(() => c.catalog.create('shop'), /UNIQUE/);

  b.catalog.setReadReplication(shop.uuid, 'auto');
  await b.shared.changed({ ...shop, read_replication: 'auto' });
  await eventually('read replication on a and c', () => [a, c].every((node) => node.catalog.find('shop')?.read_replication === 'auto'));
});

test('several nodes creating one name at once: exactly one wins, everywhere, also for a name used before', async (t) => {
  let rounds = 0;
  for (let round = 0; round < 8; round++) {
    // The same name every round: from the second on it belonged to a database deleted just before.
    const locals = nodes.map((node) => node.catalog.create('race'));
    const results = await Promise.allSettled(nodes.map((node, i) => node.shared.created(locals[i]!)));
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1, `round ${round}: exactly one node takes the name (${results.map((r) => r.status).join(', ')})`);
    for (const r of results) {
      if (r.status === 'fulfilled') continue;
      assert.ok(r.reason instanceof ApiError, String(r.reason));
      assert.equal(r.reason.status, 400);
      assert.equal(r.reason.code, ErrorCodes.nameTaken);
      assert.equal(r.reason.message, 'A database with that name already exists');
    }
    const winner = locals[won[0]!]!;
    await eventually(`round ${round}: every node has the winner`, () => nodes.every((node) => node.catalog.find('race')?.uuid === winner.uuid));
    for (const [i, node] of nodes.entries()) if (i !== won[0]) assert.equal(node.catalog.find(locals[i]!.uuid), undefined, 'the loser’s insert is undone');

    await deleteOn(nodes[won[0]!]!, winner);
    await eventually(`round ${round}: deleted everywhere`, () => nodes.every((node) => node.catalog.find('race') === undefined));
    for (const [i, node] of nodes.entries()) if (i !== won[0]) assert.ok(node.removed.includes(winner.uuid), 'onRemoved on the other nodes');
    rounds++;
  }
  t.diagnostic(`${rounds} rounds of three nodes creating one name at once: one winner each`);
});

test('tokens created and revoked through a node’s catalogue file reach the other nodes', async (t) => {
  // As `dione token create --data <a's dir>` does while the server runs: another connection to the file.
  const cli = new Catalog(a.dir);
  const { token, record } = createToken(cli, 'write', null);
  cli.close();
  const ms = await eventually('the token verifies on b and c', () => [b, c].every((node) => verifyToken(node.catalog, token)?.tokenId === record.id));
  t.diagnostic(`a token created through a node's catalogue file verified on the others after ${ms} ms`);

  const revoker = new Catalog(c.dir);
  assert.equal(revoker.revokeToken(record.id), true);
  revoker.close();
  await eventually('refused on a and b', () => [a, b].every((node) => verifyToken(node.catalog, token) === undefined));
  // Final: the revocation stays, whatever arrives later.
  await pause(300);
  for (const node of nodes) assert.notEqual(node.catalog.token(record.id)?.revoked_at, null);

  // Created on one node's own catalogue object, too.
  const own = createToken(b.catalog, 'admin', null);
  await eventually('b’s own token verifies on a and c', () => [a, c].every((node) => verifyToken(node.catalog, own.token)?.scope === 'admin'));
});

test('a database deleted on one node is gone on the others, with its log, snapshots and lease', async () => {
  const doomed = await createOn(a, 'doomed');
  await eventually('doomed on b and c', () => [b, c].every((node) => node.catalog.find('doomed') !== undefined));
  const { token } = createToken(a.catalog, 'read', doomed.uuid);
  await eventually('its token on c', () => verifyToken(c.catalog, token) !== undefined);

  const log = await StreamLog.open(a.nc, doomed.uuid, { replicas: 3 });
  const snapshots = await ObjectSnapshots.open(a.nc, { replicas: 3 });
  const file = path.join(a.dir, 'snapshot.bin');
  writeFileSync(file, 'not really a database');
  await snapshots.put(doomed.uuid, 1, file);
  await snapshots.put(doomed.uuid, 7, file);
  await snapshots.put('another-database', 1, file);
  const leases = await Leases.open(a.nc, { ttlMs: 60_000, replicas: 3 });
  await leases.acquire(doomed.uuid, { node: 'a', url: 'http://a.invalid', region: 'WEUR' });

  await deleteOn(b, doomed);
  await eventually('gone on a and c', () => [a, c].every((node) => node.catalog.find('doomed') === undefined && node.catalog.find(doomed.uuid) === undefined));
  await eventually('onRemoved on a and c', () => a.removed.includes(doomed.uuid) && c.removed.includes(doomed.uuid));
  assert.ok(!b.removed.includes(doomed.uuid), 'not on the node that deleted it: its route cleaned up');
  assert.equal(verifyToken(c.catalog, token), undefined, 'the database’s tokens are revoked');

  const jsm = await jetstreamManager(a.nc);
  await assert.rejects(jsm.streams.info(log.stream), (e) => e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound);
  assert.equal(log.stream, streamNameOf(doomed.uuid));
  assert.deepEqual(await snapshots.list(doomed.uuid), []);
  assert.deepEqual(await snapshots.list('another-database'), [1]);
  assert.equal(await leases.holder(doomed.uuid), undefined);

  // Deleting a database that had no log, snapshots or lease is fine too.
  const plain = await createOn(c, 'plain');
  await deleteOn(c, plain);
});

test('a node that was away: what was deleted meanwhile goes, what was created comes, a local leftover goes', async () => {
  await c.shared.close();
  const shop = a.catalog.find('shop')!;
  await deleteOn(a, shop);
  const added = await createOn(b, 'added-while-away');
  // Registered locally but never in the cluster (the node died before telling it): not imported.
  const leftover = c.catalog.create('leftover');

  const again = await startNode(2, c.dir, c.catalog);
  nodes[nodes.indexOf(c)] = again;
  c = again;
  assert.equal(c.catalog.find('shop'), undefined);
  assert.deepEqual(c.catalog.find('added-while-away'), added);
  assert.equal(c.catalog.find('leftover'), undefined);
  await eventually('onRemoved for both', () => c.removed.includes(shop.uuid) && c.removed.includes(leftover.uuid));
  assert.equal(a.catalog.find('leftover'), undefined);

  // A new node whose own database has a name the cluster gave to another one refuses to join.
  const dir = tempDir();
  const clashing = new Catalog(dir);
  clashing.create('added-while-away');
  const nc = await nats.connectTo([nats.cluster().urls[0]!]);
  await assert.rejects(ClusterCatalog.start(nc, clashing, { replicas: 3 }), /Database "added-while-away" is .* on this node but .* in the cluster: rename or delete/);
  clashing.close();
});
