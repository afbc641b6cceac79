// One history per database in a cluster (in-process nodes, each with its own NATS connection and
// directory, on a real 3-node NATS cluster): Time Travel restores and forks resolve and rebuild
// points from the JetStream stream and object store, so a bookmark or a time from before one or
// two failovers gives what a single node gives on the same writes; the shared history is compacted
// to the retention window under writes, with the primary killed midway, and stays bounded while
// every point inside the window stays exact; a bookmark older than the window is refused in the
// single node's words.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { NatsConnection } from '@nats-io/transport-node';
import Database from 'better-sqlite3';
import { formatBookmark, parseBookmark } from '../src/api/bookmark.ts';
import type { ExecuteResponse } from '../src/api/executor.ts';
import { HistoryError } from '../src/api/time-travel.ts';
import { ClusterDatabase, type ClusterDatabaseOptions, type Forward } from '../src/cluster/cluster-database.ts';
import { Leases } from '../src/cluster/leases.ts';
import { quietLogger } from '../src/cluster/logger.ts';
import { ObjectSnapshots } from '../src/cluster/object-snapshots.ts';
import type { TimeTravel } from '../src/log/history.ts';
import { LoggedDatabase } from '../src/log/logged-database.ts';
import { tempDir } from './helpers/binding.ts';
import { useNatsCluster } from './helpers/nats-cluster.ts';

const TTL = 1500;
const HOUR = 3_600_000;
const nats = useNatsCluster();

interface Node {
  name: string;
  db: ClusterDatabase;
  nc: NatsConnection;
  upkeep: NodeJS.Timeout;
}

type Extra = Partial<Omit<ClusterDatabaseOptions, 'nc' | 'database' | 'dir' | 'self' | 'leases' | 'snapshots'>>;

async function startNode(name: string, server: number, dir: string, database: string, extra: Extra = {}): Promise<Node> {
  const nc = await nats.connectTo([nats.cluster().urls[server]!]);
  const db = await ClusterDatabase.start({
    nc,
    database,
    dir: path.join(dir, name),
    self: { node: name, url: `http://${name}.invalid`, region: 'TEST' },
    leases: await Leases.open(nc, { ttlMs: TTL, replicas: 3 }),
    snapshots: await ObjectSnapshots.open(nc, { replicas: 3 }),
    replicas: 3,
    logger: quietLogger,
    ...extra,
  });
  // What a node's host does all along: renew the lease, or follow and take it when it lapses.
  const upkeep = setInterval(() => void db.tick().catch(() => {}), TTL / 4);
  return { name, db, nc, upkeep };
}

/** The node dies: no lease release, no goodbye. */
async function crash(node: Node): Promise<void> {
  clearInterval(node.upkeep);
  await node.db.stop({ crash: true });
  await node.nc.close();
}

async function stopAll(nodes: Node[]): Promise<void> {
  for (const node of nodes) {
    clearInterval(node.upkeep);
    await node.db.stop().catch(() => {});
  }
}

/** Waits (bounded) until one of `nodes` is the primary. */
async function primaryAmong(nodes: Node[], boundMs = 20_000): Promise<Node> {
  const started = Date.now();
  for (;;) {
    const primary = nodes.find((n) => n.db.role === 'primary');
    if (primary) return primary;
    assert.ok(Date.now() - started < boundMs, `no node took over within ${boundMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const isResponse = (r: ExecuteResponse | Forward): r is ExecuteResponse => 'success' in r;

/** The same writes on the cluster's primary and on a single node: each one commit on both. */
class Twins {
  constructor(
    readonly reference: LoggedDatabase,
    public primary: Node,
  ) {}

  async write(sql: string): Promise<number> {
    const r = await this.primary.db.execute({ queries: [{ sql, params: [] }] }, true);
    assert.ok(isResponse(r) && r.success, `${sql} on ${this.primary.name}: ${JSON.stringify(r)}`);
    const single = this.reference.execute({ queries: [{ sql, params: [] }] });
    assert.ok(single.success, `${sql} on the single node: ${JSON.stringify(single)}`);
    const seq = parseBookmark(r.bookmark!)!.sequence;
    assert.equal(seq, this.reference.engine.commitSequence, 'the cluster and the single node number the commit alike');
    return seq;
  }

  /** Runs Time Travel on the primary, with the shared history. */
  async onPrimary<T>(work: (tt: TimeTravel) => T | Promise<T>): Promise<T> {
    const result = await this.primary.db.asPrimary((_, tt) => work(tt));
    assert.ok(!(result !== null && typeof result === 'object' && 'forward' in result), `${this.primary.name} is not the primary`);
    return result as T;
  }

  async clusterRows(): Promise<unknown[]> {
    const r = await this.primary.db.execute({ queries: [{ sql: 'SELECT * FROM t ORDER BY id', params: [] }] }, false);
    assert.ok(isResponse(r) && r.success, JSON.stringify(r));
    return r.results[0]!.rows;
  }

  singleRows(): unknown[] {
    const r = this.reference.engine.execute({ queries: [{ sql: 'SELECT * FROM t ORDER BY id', params: [] }] });
    assert.ok(r.success);
    return r.results[0]!.rows;
  }
}

function fileRows(file: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT * FROM t ORDER BY id').raw().all();
  } finally {
    db.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('restores and forks to points before one and two failovers give what a single node gives on the same writes', async (t) => {
  const dir = tempDir();
  const database = 'tt-failovers';
  const nodes = [await startNode('a', 0, dir, database)];
  nodes.push(await startNode('b', 1, dir, database), await startNode('c', 2, dir, database));
  assert.equal(nodes[0]!.db.role, 'primary');
  const twins = new Twins(new LoggedDatabase(path.join(dir, 'single.sqlite')), nodes[0]!);
  const bookmarkOf = (seq: number) => formatBookmark(seq, twins.primary.db.history.tag);
  try {
    await twins.write('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    for (let i = 1; i <= 10; i++) await twins.write(`INSERT INTO t VALUES (${i}, 'first ${i}')`);
    const first = await twins.write("UPDATE t SET v = v || ' (updated)' WHERE id % 3 = 0");
    await sleep(20);
    const betweenFirstAndSecond = new Date();
    await sleep(20);

    await crash(twins.primary);
    twins.primary = await primaryAmong(nodes.filter((n) => n !== nodes[0]));
    t.diagnostic(`first failover: ${twins.primary.name} is the primary`);
    for (let i = 11; i <= 20; i++) await twins.write(`INSERT INTO t VALUES (${i}, 'second ${i}')`);
    const second = await twins.write('DELETE FROM t WHERE id IN (2, 12)');

    const survivor = nodes.find((n) => n !== nodes[0] && n !== twins.primary)!;
    await crash(twins.primary);
    twins.primary = await primaryAmong([survivor]);
    t.diagnostic(`second failover: ${twins.primary.name} is the primary`);
    for (let i = 21; i <= 25; i++) await twins.write(`INSERT INTO t VALUES (${i}, 'third ${i}')`);

    // A time from before both failovers names the same commit as on the single node.
    const atTime = await twins.onPrimary((tt) => tt.bookmarkAt(betweenFirstAndSecond));
    assert.equal(parseBookmark(atTime)!.sequence, first);
    assert.equal(parseBookmark(twins.reference.bookmarkAt(betweenFirstAndSecond))!.sequence, first);

    // Restore to before both failovers, then to between them, then undo: equal to the single node each time.
    for (const [what, seq] of [
      ['before both failovers', first],
      ['between the failovers', second],
    ] as const) {
      const restored = await twins.onPrimary((tt) => tt.restore({ bookmark: bookmarkOf(seq) }));
      const single = await twins.reference.restore({ bookmark: formatBookmark(seq, twins.reference.tag) });
      assert.equal(parseBookmark(restored.bookmark)!.sequence, parseBookmark(single.bookmark)!.sequence, `${what}: the restore is the same commit`);
      assert.deepEqual(await twins.clusterRows(), twins.singleRows(), `${what}: the restored database equals the single node's`);
    }
    // Forks of a point before the failovers.
    const clusterFork = path.join(dir, 'cluster-fork.sqlite');
    const singleFork = path.join(dir, 'single-fork.sqlite');
    const forked = await twins.onPrimary((tt) => tt.fork({ bookmark: bookmarkOf(first) }, clusterFork));
    twins.reference.fork({ bookmark: formatBookmark(first, twins.reference.tag) }, singleFork);
    assert.equal(parseBookmark(forked.bookmark)!.sequence, first);
    assert.deepEqual(fileRows(clusterFork), fileRows(singleFork));
    assert.equal(fileRows(clusterFork).length, 10);

    // Writes go on after the restores; the restarted first node follows it all.
    await twins.write("INSERT INTO t VALUES (100, 'after the restores')");
    const again = await startNode('a', 0, dir, database);
    nodes[0] = again;
    await again.db.tick();
    assert.equal(again.db.sequence, twins.primary.db.sequence);
    const onA = await again.db.execute({ queries: [{ sql: 'SELECT * FROM t ORDER BY id', params: [] }], bookmark: 'first-unconstrained' }, false);
    assert.ok(isResponse(onA) && onA.success);
    assert.deepEqual(onA.results[0]!.rows, twins.singleRows());
  } finally {
    await stopAll(nodes);
    twins.reference.closeNow();
  }
});

test('the shared history is compacted to the window under writes, with the primary killed during a compaction: bounded, and exact inside the window', async (t) => {
  const dir = tempDir();
  const database = 'tt-retention';
  // Simulated time: every write is 20 minutes after the one before; the window is 12 hours.
  let now = Date.now() - 200 * HOUR;
  const clock = () => now;
  const settings: Extra = { clock, retentionDays: 0.5, snapshotIntervalMs: 2 * HOUR, compactEveryMs: 0 };
  const nodes = [await startNode('a', 0, dir, database, settings), await startNode('b', 1, dir, database, settings)];
  const twins = new Twins(new LoggedDatabase(path.join(dir, 'single.sqlite'), {}, { clock, retentionDays: 0.5, snapshotIntervalMs: 2 * HOUR }), nodes[0]!);
  const sizes: { writes: number; bytes: number; snapshots: number; commits: number }[] = [];
  const measure = async (writes: number) => {
    const history = twins.primary.db.history;
    const snapshots = await history.snapshots();
    // Commits the history can rebuild: from its oldest snapshot to its newest record.
    const commits = (await history.last())!.seq - snapshots[0]!.seq;
    sizes.push({ writes, bytes: await history.bytes(), snapshots: snapshots.length, commits });
  };
  const bookmarks: { seq: number; time: number }[] = [];
  try {
    await twins.write("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, pad TEXT DEFAULT (printf('%.500c', 'x')))");
    let id = 0;
    const writeSome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        now += HOUR / 3;
        id++;
        const seq = await twins.write(`INSERT INTO t (id, v) VALUES (${id}, 'row ${id}')`);
        if (id % 7 === 0) await twins.write(`DELETE FROM t WHERE id = ${id - 5}`);
        bookmarks.push({ seq, time: now });
        // Let a snapshot the write started finish, and let upkeep store and compact.
        await sleep(5);
        if (id % 6 === 0) await twins.primary.db.keepHistoryNow();
      }
    };
    await writeSome(90);
    await measure(90);
    await writeSome(60);
    await measure(150);

    // The primary is killed while it compacts (its NATS connection drops under it).
    now += 6 * HOUR;
    await twins.write("INSERT INTO t (id, v) VALUES (100000, 'before the kill')");
    const compacting = twins.primary.db.keepHistoryNow().catch((e: Error) => e);
    await sleep(2);
    const victim = twins.primary;
    clearInterval(victim.upkeep);
    await victim.nc.close();
    await compacting;
    await victim.db.stop({ crash: true }).catch(() => {});
    twins.primary = await primaryAmong(nodes.filter((n) => n !== victim));
    t.diagnostic(`${victim.name} killed during a compaction; ${twins.primary.name} took over`);
    await writeSome(90);
    await twins.primary.db.keepHistoryNow();
    await measure(240);
    t.diagnostic(`shared history as writes go on: ${sizes.map((s) => `${s.writes} writes: ${s.commits} commits, ${s.bytes} bytes, ${s.snapshots} snapshots`).join('; ')}`);
    // Steady writes, steady window: the history holds the window (12 h: 36 writes, 41 commits) and
    // up to a snapshot interval and an upkeep's worth more, whatever was written before.
    for (const size of sizes) {
      assert.ok(size.commits <= 41 + 7 + 7, `the history keeps more than the window needs: ${JSON.stringify(sizes)}`);
      assert.ok(size.snapshots <= 12, `snapshots pile up: ${JSON.stringify(sizes)}`);
    }
    // (Records grow a little as the table does: the bytes stop growing with the number of writes.)
    const [first, , third] = sizes;
    assert.ok(third!.bytes < first!.bytes * 1.6, `the stream keeps growing: ${JSON.stringify(sizes)}`);

    // Every point inside the window restores exactly as on the single node (same window, same clock).
    const windowStart = now - 12 * HOUR;
    const inside = bookmarks.filter((b) => b.time >= windowStart + HOUR);
    for (const point of [inside[0]!, inside[Math.floor(inside.length / 2)]!]) {
      await twins.onPrimary((tt) => tt.restore({ bookmark: formatBookmark(point.seq, twins.primary.db.history.tag) }));
      await twins.reference.restore({ bookmark: formatBookmark(point.seq, twins.reference.tag) });
      assert.deepEqual(await twins.clusterRows(), twins.singleRows(), `restored to commit ${point.seq}`);
    }
    // A bookmark older than the window is refused as on a single node, in the same words.
    const old = bookmarks[10]!;
    const refusal = async (tt: { restore: TimeTravel['restore'] }, tag: string) => {
      const bookmark = formatBookmark(old.seq, tag);
      try {
        await tt.restore({ bookmark });
      } catch (e) {
        assert.ok(e instanceof HistoryError, String(e));
        return e.message.replace(bookmark, '<bookmark>');
      }
      assert.fail('the old bookmark was restored');
    };
    const inCluster = await twins.onPrimary((tt) => refusal(tt, twins.primary.db.history.tag));
    const single = await refusal(twins.reference, twins.reference.tag);
    assert.equal(inCluster, "Invalid bookmark '<bookmark>': it is older than the Time Travel window of 0.5 days");
    assert.equal(inCluster, single);
    // And a time before the window likewise.
    const tooOld = new Date(now - 13 * HOUR);
    await assert.rejects(
      twins.onPrimary((tt) => tt.bookmarkAt(tooOld)),
      (e: Error) => e.message === `Invalid timestamp '${tooOld.toISOString()}': it is older than the Time Travel window of 0.5 days`,
    );
  } finally {
    await stopAll(nodes);
    twins.reference.closeNow();
  }
});
