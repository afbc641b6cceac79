// Primary leases in a NATS key-value bucket on a real 3-node cluster: one holder at a time among
// racing nodes, renewal keeps it, a lease not renewed lapses after the TTL and another node takes
// it (the old holder's renewal then fails), and a released lease is free at once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Leases } from '../src/cluster/leases.ts';
import { useNatsCluster } from './helpers/nats-cluster.ts';

const nats = useNatsCluster();
const { connectTo } = nats;

async function leasesOn(node: number, ttlMs: number): Promise<Leases> {
  const nc = await connectTo([nats.cluster().urls[node]!]);
  return Leases.open(nc, { ttlMs, replicas: 3 });
}

const node = (name: string) => ({ node: name, url: `http://${name}.invalid`, region: 'WEUR' });
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The holder another node's connection reads, once it shows `expected` (within a second): a read
 * through another NATS server may come before that server has the write (seen once in CI: undefined).
 */
async function holderSeen(leases: Leases, database: string, expected: unknown): Promise<unknown> {
  const deadline = Date.now() + 1000;
  let seen = await leases.holder(database);
  while (JSON.stringify(seen) !== JSON.stringify(expected) && Date.now() < deadline) {
    await pause(50);
    seen = await leases.holder(database);
  }
  return seen;
}

test('one node at a time holds a lease; it lapses without renewal and another node takes it', async (t) => {
  const TTL = 2000;
  const a = await leasesOn(0, TTL);
  const b = await leasesOn(1, TTL);
  const c = await leasesOn(2, TTL);

  // Racing for the same database: exactly one wins, and everyone sees the winner.
  const attempts = await Promise.all([a.acquire('db1', node('a')), b.acquire('db1', node('b')), c.acquire('db1', node('c'))]);
  const winners = attempts.filter((l) => l !== undefined);
  assert.equal(winners.length, 1);
  const held = winners[0]!;
  assert.deepEqual(await holderSeen(a, 'db1', held.holder), held.holder);
  assert.ok(held.valid);

  // Renewing past several TTLs keeps it; nobody else can take it meanwhile (another node: the
  // holder's own node may take its lease again). Renewed every quarter TTL: on a machine starved by
  // other tests, a pause can overshoot by a second.
  const [rival] = [{ leases: a, name: 'a' }, { leases: b, name: 'b' }, { leases: c, name: 'c' }].filter((n) => n.name !== held.holder.node);
  for (let i = 0; i < 8; i++) {
    await pause(TTL / 4);
    assert.equal(await held.renew(), true);
    assert.equal(await rival!.leases.acquire('db1', node(rival!.name)), undefined);
  }

  // Not renewed: it lapses, and another node takes it; the old holder's renewal fails for good.
  const stopped = Date.now();
  let taken: Awaited<ReturnType<Leases['acquire']>>;
  while (!(taken = await c.acquire('db1', node('c2')))) {
    assert.ok(Date.now() - stopped < TTL * 4, 'the lease never lapsed');
    await pause(100);
  }
  t.diagnostic(`taken over ${Date.now() - stopped} ms after the last renewal (TTL ${TTL} ms)`);
  assert.ok(Date.now() - stopped >= TTL * 0.9, 'it lapsed before its TTL');
  assert.equal(await held.renew(), false);
  assert.equal(held.valid, false);
  assert.deepEqual(await holderSeen(a, 'db1', node('c2')), node('c2'));

  // Released: free at once.
  await taken.release();
  const next = await a.acquire('db1', node('a2'));
  assert.ok(next, 'a released lease can be taken at once');
  await next.release();

  // Leases of different databases are independent.
  const one = await a.acquire('db2', node('a'));
  const two = await b.acquire('db3', node('b'));
  assert.ok(one && two);
});
