// Interactive transactions in cluster mode (two in-process `dione serve` nodes on a real 3-node NATS
// cluster), and a new database found at once on another node: a transaction started through a follower runs on the primary, isolated until COMMIT, and
// its commit is one record of the shared history (one bookmark step); when the primary stops in the
// middle of one, the transaction is gone whole and the client is told, and the next primary serves
// new transactions.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { beginTransaction, connect, withTransaction } from '../src/client.ts';
import type { NatsCluster } from './helpers/nats-cluster.ts';
import { poll } from './helpers/server-checks.ts';
import type { TestServer } from './helpers/server.ts';
import { startTwoNodes } from './helpers/two-nodes.ts';

let nats: NatsCluster | undefined;
let a: TestServer | undefined;
let b: TestServer;

before(async () => {
  ({ nats, a, b } = await startTwoNodes({ leaseTtlMs: 2000 }));
});

after(async () => {
  await b?.close();
  await a?.close();
  await nats?.close();
});

const sequenceOf = (bookmark: string) => Number.parseInt(bookmark.split('-')[1]!, 16);

async function bookmarkOn(node: TestServer, token: string, database: string): Promise<string> {
  const response = await node.call(`${node.api}/${database}/time_travel/bookmark`, { token });
  const body = (await response.json()) as { success: boolean; result: { bookmark: string } };
  assert.ok(body.success, JSON.stringify(body));
  return body.result.bookmark;
}

test('a database created on one node is found at once on the other (the shared catalogue is read on a miss)', async () => {
  await a!.createDatabase('fresh');
  const onB = connect({ url: b.url, token: a!.token, database: 'fresh' });
  assert.equal(await onB.prepare('SELECT 1 AS one').first('one'), 1);
  const rest = await b.call(`${b.api}/fresh`, { token: a!.token });
  assert.equal(rest.status, 200, await rest.text());
  const missing = await b.call(`${b.api}/never-created`, { token: a!.token });
  assert.equal(missing.status, 404);
});

test('a transaction through a follower runs on the primary: isolated, then one commit of the shared history', async () => {
  const token = a!.token;
  await a!.createDatabase('ledger');
  const onA = connect({ url: a!.url, token, database: 'ledger' });
  // The first write makes a the primary.
  await onA.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
  const viaB = connect({ url: b.url, token, database: 'ledger', transactions: true });
  const before = await bookmarkOn(a!, token, 'ledger');
  const seenInside = await withTransaction(viaB, async (tx) => {
    for (let v = 1; v <= 4; v++) {
      const { meta } = await tx.prepare('INSERT INTO t (v) VALUES (?)').bind(v).run();
      assert.equal(meta.served_by, 'a', 'the transaction runs on the primary');
    }
    assert.equal(await onA.prepare('SELECT count(*) AS n FROM t').first('n'), 0, 'nothing is visible before COMMIT');
    return tx.prepare('SELECT count(*) AS n FROM t').first('n');
  });
  assert.equal(seenInside, 4);
  assert.equal(await onA.prepare('SELECT count(*) AS n FROM t').first('n'), 4);
  const afterCommit = await bookmarkOn(a!, token, 'ledger');
  assert.equal(sequenceOf(afterCommit) - sequenceOf(before), 1, `one commit: ${before} -> ${afterCommit}`);
  // The follower's copy reaches the commit whole.
  const session = connect({ url: b.url, token, database: 'ledger' }).withSession(afterCommit);
  const { results, meta } = await session.prepare('SELECT count(*) AS n FROM t').all<{ n: number }>();
  assert.equal(results[0]!.n, 4);
  assert.equal(meta.served_by, 'b');

  // A plain write on the primary waits for an open transaction, and goes on once it commits.
  const open = await beginTransaction(viaB);
  await open.db.prepare('INSERT INTO t (v) VALUES (10)').run();
  let written = false;
  const write = onA
    .prepare('INSERT INTO t (v) VALUES (11)')
    .run()
    .then(() => {
      written = true;
    });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(written, false, 'the write waits for the transaction');
  await open.commit();
  await write;
  assert.deepEqual((await onA.prepare('SELECT v FROM t ORDER BY id').raw<[number]>()).map((r) => r[0]), [1, 2, 3, 4, 10, 11]);
  await onA.prepare('DELETE FROM t WHERE v >= 10').run();
});

test('the primary stops mid-transaction: nothing of it is kept, the client is told, the next primary takes new ones', async () => {
  const token = a!.token;
  const viaB = connect({ url: b.url, token, database: 'ledger', transactions: true });
  const open = await beginTransaction(viaB);
  await open.db.prepare('INSERT INTO t (v) VALUES (100)').run();
  await open.db.prepare('INSERT INTO t (v) VALUES (101)').run();

  await a!.close();
  a = undefined;
  // Whatever answers now (no primary yet, or b as the new one), the transaction is not there any more.
  await assert.rejects(open.db.prepare('INSERT INTO t (v) VALUES (102)').run(), /Transaction rolled back|no primary|Network connection lost|not durable/i);
  await assert.rejects(open.commit());

  const plainB = connect({ url: b.url, token, database: 'ledger' });
  const committed = await poll(
    async () => {
      try {
        return await withTransaction(viaB, async (tx) => {
          await tx.prepare('INSERT INTO t (v) VALUES (5)').run();
          return (await tx.prepare('SELECT v FROM t ORDER BY id').raw<[number]>()).map((r) => r[0]);
        });
      } catch {
        return undefined;
      }
    },
    200,
    100,
  );
  assert.deepEqual(committed, [1, 2, 3, 4, 5], 'b took over with every committed row and none of the lost transaction');
  const { results, meta } = await plainB.prepare('SELECT v FROM t ORDER BY id').all<{ v: number }>();
  assert.deepEqual(
    results.map((r) => r.v),
    [1, 2, 3, 4, 5],
  );
  assert.equal(meta.served_by, 'b');
});
