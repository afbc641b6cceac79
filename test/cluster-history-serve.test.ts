// Time Travel of `dione serve` cluster nodes (in-process servers on a real 3-node NATS cluster,
// `--retention-days 2`): the window is the one configured, not the default; and a bookmark taken
// before the primary stopped restores on the node that took over (the history is the cluster's,
// not the old primary's), as the reproduction asks.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect } from '../src/client/connect.ts';
import type { NatsCluster } from './helpers/nats-cluster.ts';
import type { TestServer } from './helpers/server.ts';
import { startTwoNodes } from './helpers/two-nodes.ts';
import { poll } from './helpers/server-checks.ts';

let nats: NatsCluster | undefined;
let a: TestServer | undefined;
let b: TestServer;

before(async () => {
  ({ nats, a, b } = await startTwoNodes({ leaseTtlMs: 2000, history: { retentionDays: 2 } }));
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

async function rest<T>(node: TestServer, token: string, method: string, path: string): Promise<Envelope<T>> {
  const response = await node.call(`${node.api}${path}`, { method, token });
  return (await response.json()) as Envelope<T>;
}

test('--retention-days is the window in cluster mode, and a bookmark from before the primary stopped restores on the new primary', async () => {
  const token = a!.token;
  await a!.createDatabase('kept');
  const onA = connect({ url: a!.url, token, database: 'kept' });
  await onA.exec('CREATE TABLE t (v INTEGER)');
  await onA.prepare('INSERT INTO t VALUES (1)').run();
  const before = await rest<{ bookmark: string }>(b, token, 'GET', '/kept/time_travel/bookmark');
  assert.ok(before.success, JSON.stringify(before));
  await onA.prepare('INSERT INTO t VALUES (2)').run();

  // Three days ago is past a two-day window: refused in the window's words, on either node.
  const threeDaysAgo = new Date(Date.now() - 3 * 24 * 3_600_000).toISOString();
  for (const node of [a!, b]) {
    const old = await rest(node, token, 'GET', `/kept/time_travel/bookmark?timestamp=${threeDaysAgo}`);
    assert.equal(old.success, false);
    assert.match(old.errors[0]!.message, /older than the Time Travel window of 2 days/, JSON.stringify(old));
  }

  // The primary stops; b takes over and takes a write.
  await a!.close();
  a = undefined;
  const onB = connect({ url: b.url, token, database: 'kept' });
  const written = await poll(
    async () => {
      try {
        return (await onB.prepare('INSERT INTO t VALUES (3)').run()).meta;
      } catch {
        return undefined;
      }
    },
    200,
    100,
  );
  assert.ok(written && written.served_by === 'b', `b serves writes after a stopped: ${JSON.stringify(written)}`);
  const restored = await rest<{ bookmark: string; previous_bookmark: string }>(b, token, 'POST', `/kept/time_travel/restore?bookmark=${before.result.bookmark}`);
  assert.ok(restored.success, JSON.stringify(restored));
  const { results } = await onB.prepare('SELECT v FROM t ORDER BY v').all<{ v: number }>();
  assert.deepEqual(
    results.map((r) => r.v),
    [1],
  );
  // And undone.
  const undone = await rest(b, token, 'POST', `/kept/time_travel/restore?bookmark=${restored.result.previous_bookmark}`);
  assert.ok(undone.success, JSON.stringify(undone));
  const back = await onB.prepare('SELECT v FROM t ORDER BY v').all<{ v: number }>();
  assert.deepEqual(
    back.results.map((r) => r.v),
    [1, 2, 3],
  );
});
