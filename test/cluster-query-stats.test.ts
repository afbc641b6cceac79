// Cluster mode: each node records the statements it runs; the GraphQL Analytics answer of any node
// covers every node's (scatter-gather over NATS request/reply). Two `dione serve` nodes on a real
// 3-server NATS JetStream cluster: writes go through both nodes (a follower forwards them to the
// primary, which records them once), session reads are served by the follower's own copy (which
// records them), and a second database is first written through the other node. Both nodes'
// answers must equal the sums of the meta every response carried, per database and statement.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { D1Meta } from '../src/api/types.ts';
import { normalizeStatement } from '../src/server/stats/normalize.ts';
import { type DioneCluster, startDioneCluster, within } from './helpers/dione-cluster.ts';

let cluster: DioneCluster;

before(async () => {
  cluster = await startDioneCluster({ nodes: [{ name: 'a', region: 'WEUR' }, { name: 'b', region: 'ENAM' }] });
});

after(async () => {
  await cluster?.close();
});

interface Totals {
  count: number;
  rowsRead: number;
  rowsWritten: number;
}

const expected = new Map<string, Totals>();
const servedBy = new Set<string>();

function answered(uuid: string, sql: string, meta: D1Meta): void {
  const key = `${uuid} ${normalizeStatement(sql)}`;
  const t = expected.get(key) ?? { count: 0, rowsRead: 0, rowsWritten: 0 };
  t.count++;
  t.rowsRead += meta.rows_read;
  t.rowsWritten += meta.rows_written;
  expected.set(key, t);
  if (meta.served_by) servedBy.add(meta.served_by);
}

async function analytics(node: number): Promise<Map<string, Totals>> {
  const query = `{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 1000, orderBy: [count_DESC]) { count sum { rowsRead rowsWritten } dimensions { query databaseId } } } } }`;
  const { status, body } = await cluster.request(node, '/client/v4/graphql', { method: 'POST', body: JSON.stringify({ query }) });
  assert.equal(status, 200, JSON.stringify(body));
  assert.equal(body.errors, null, JSON.stringify(body));
  const groups = body.data.viewer.accounts[0].d1QueriesAdaptiveGroups as { count: number; sum: { rowsRead: number; rowsWritten: number }; dimensions: { query: string; databaseId: string } }[];
  return new Map(groups.map((g) => [`${g.dimensions.databaseId} ${g.dimensions.query}`, { count: g.count, rowsRead: g.sum.rowsRead, rowsWritten: g.sum.rowsWritten }]));
}

test("the GraphQL answer of either node covers both nodes' statements, each counted once", async (t) => {
  const shop = await cluster.createDatabase(0, 'stats-shop');
  const two = await cluster.createDatabase(0, 'stats-two');
  for (const name of ['stats-shop', 'stats-two']) {
    // Listed, not opened: opening a database on b would make b its primary.
    const listed = await within(10_000, async () => ((await cluster.request(1, `${cluster.api(1)}?name=${name}`)).body.result?.length === 1 ? true : undefined));
    assert.ok(listed, `node b knows ${name}`);
  }
  const [shopA, shopB] = [cluster.client(0, 'stats-shop'), cluster.client(1, 'stats-shop')];
  const create = 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)';
  answered(shop, create, (await shopA.prepare(create).run()).meta as D1Meta);
  const insert = 'INSERT INTO t (v) VALUES (?)';
  for (let i = 0; i < 4; i++) answered(shop, insert, (await shopA.prepare(insert).bind(`a${i}`).run()).meta as D1Meta);
  for (let i = 0; i < 3; i++) answered(shop, insert, (await shopB.prepare(insert).bind(`b${i}`).run()).meta as D1Meta); // forwarded
  // Reads in a session are served by the node asked, from its own copy.
  const session = shopB.withSession('first-unconstrained');
  const count = 'SELECT count(*) AS n FROM t';
  for (let i = 0; i < 5; i++) answered(shop, count, (await session.prepare(count).all()).meta as D1Meta);
  // The other database is first written through b.
  const twoB = cluster.client(1, 'stats-two');
  answered(two, create, (await twoB.prepare(create).run()).meta as D1Meta);
  for (let i = 0; i < 2; i++) answered(two, insert, (await twoB.prepare(insert).bind(`x${i}`).run()).meta as D1Meta);

  t.diagnostic(`statements were answered by: ${[...servedBy].sort().join(', ')}`);
  assert.deepEqual([...servedBy].sort(), ['a', 'b'], 'both nodes answered some of the statements');
  const want = Object.fromEntries([...expected].sort());
  for (const node of [0, 1]) {
    const got = Object.fromEntries([...(await analytics(node))].sort());
    assert.deepEqual(got, want, `node ${node === 0 ? 'a' : 'b'} answers for the whole cluster`);
  }
});
