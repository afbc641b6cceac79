// Time Travel across SIGKILLed primaries, with real processes: three `dione serve` nodes on a
// 3-node NATS cluster (test/helpers/dione-cluster.ts, lease TTL 3 s). A bookmark is taken, more
// is written, the primary's node is killed; once another node serves writes, the database is
// restored through a node to the bookmark: it holds exactly the rows it held then, on every node;
// then the new primary is killed too and the restore is undone through the last node.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { THREE_NODES, useDioneCluster, within } from './helpers/dione-cluster.ts';

const names = THREE_NODES.map((n) => n.name);
const clusterOf = useDioneCluster();

interface Envelope<T> {
  success: boolean;
  result: T;
  errors: { message: string }[];
}

async function rows(node: number): Promise<{ ids: number[]; servedBy: string }> {
  const r = await clusterOf().client(node, 'kept').prepare('SELECT id FROM t ORDER BY id').all<{ id: number }>();
  return { ids: r.results.map((x) => x.id), servedBy: String(r.meta.served_by) };
}

/** Writes through `node` until one is acknowledged (another node took over); answers where it landed. */
async function writeOnceServed(node: number, id: number): Promise<string> {
  const served = await within(30_000, async () => {
    try {
      const r = await clusterOf().client(node, 'kept').prepare('INSERT OR IGNORE INTO t (id) VALUES (?)').bind(id).run();
      return String(r.meta.served_by);
    } catch {
      return undefined;
    }
  }, 200);
  assert.ok(served, `a write through ${names[node]} was acknowledged within 30 s`);
  return served;
}

test('restore through another node to a bookmark from before two SIGKILLed primaries, then undo it', async (t) => {
  const cluster = clusterOf();
  await cluster.createDatabase(0, 'kept');
  const created = await cluster.client(0, 'kept').prepare('CREATE TABLE t (id INTEGER PRIMARY KEY)').run();
  let primary = names.indexOf(String(created.meta.served_by));
  for (let i = 1; i <= 20; i++) await cluster.client(0, 'kept').prepare('INSERT INTO t (id) VALUES (?)').bind(i).run();
  const point = await cluster.request<Envelope<{ bookmark: string }>>(0, `${cluster.api(0)}/kept/time_travel/bookmark`);
  assert.ok(point.body.success, JSON.stringify(point.body));
  const expected = (await rows(0)).ids;
  for (let i = 21; i <= 40; i++) await cluster.client(1, 'kept').prepare('INSERT INTO t (id) VALUES (?)').bind(i).run();

  // The primary dies; another node takes over and takes a write.
  await cluster.kill(primary);
  const first = (primary + 1) % 3;
  primary = names.indexOf(await writeOnceServed(first, 1000));
  t.diagnostic(`first kill: ${names[primary]} is the primary`);
  const other = [0, 1, 2].find((i) => i !== primary && cluster.running(i))!;
  const restored = await cluster.request<Envelope<{ bookmark: string; previous_bookmark: string }>>(other, `${cluster.api(other)}/kept/time_travel/restore?bookmark=${point.body.result.bookmark}`, { method: 'POST' });
  assert.ok(restored.body.success, JSON.stringify(restored.body));
  const after = await rows(other);
  assert.deepEqual(after.ids, expected, `restored rows (served by ${after.servedBy})`);

  // The new primary dies too; the last node undoes the restore.
  await cluster.kill(primary);
  const last = [0, 1, 2].find((i) => cluster.running(i))!;
  primary = names.indexOf(await writeOnceServed(last, 2000));
  assert.equal(primary, last);
  const undone = await cluster.request<Envelope<unknown>>(last, `${cluster.api(last)}/kept/time_travel/restore?bookmark=${restored.body.result.previous_bookmark}`, { method: 'POST' });
  assert.ok(undone.body.success, JSON.stringify(undone.body));
  const back = await rows(last);
  assert.deepEqual(back.ids, [...Array.from({ length: 40 }, (_, i) => i + 1), 1000]);
});
