// A database's write log carried by JetStream on a real 3-node NATS cluster: a primary's records
// shipped to the stream (large ones in parts) are read back on another connection and applied to
// a replica file that then equals the primary; a second writer with a stale view of the tail is
// fenced off; reading starts from any record; a NATS node killed mid-way does not stop the log.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { openSqlite } from '../src/engine/sqlite.ts';
import type { ExecuteRequest } from '../src/api/executor.ts';
import { LogFenced, StreamLog } from '../src/cluster/stream-log.ts';
import { LoggedDatabase } from '../src/log/logged-database.ts';
import { materialize } from '../src/log/pages.ts';
import type { LogRecord, PagesRecord } from '../src/log/record.ts';
import { prepareReplicaFile, ReplicaFile } from '../src/log/replica.ts';
import { tempDir } from './helpers/binding.ts';
import { useNatsCluster } from './helpers/nats-cluster.ts';

const nats = useNatsCluster();
const { connectTo } = nats;

function run(primary: LoggedDatabase, sql: string): void {
  const response = primary.execute({ queries: [{ sql, params: [] }] } as ExecuteRequest);
  assert.ok(response.success, `${sql}: ${!response.success && response.error}`);
}

function content(file: string): string {
  const db = openSqlite(file, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all() as string[];
    return tables.map((t) => `${t}:${JSON.stringify(db.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).raw().all())}`).join('\n');
  } finally {
    db.close();
  }
}

async function collect(records: AsyncIterable<LogRecord>): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for await (const r of records) out.push(r);
  return out;
}

/** Retries an operation while the NATS cluster elects a new leader (bounded). */
async function eventually<T>(fn: () => Promise<T>, boundMs = 20_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (Date.now() - started > boundMs || e instanceof LogFenced) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Appends the primary's records after `from` to the stream, through NATS elections; returns the last shipped. */
async function shipRecords(primary: LoggedDatabase, log: StreamLog, from: number): Promise<number> {
  let shipped = from;
  for (const record of [...primary.log.read(from, Number.MAX_SAFE_INTEGER)]) {
    await eventually(async () => {
      try {
        await log.append(record);
      } catch (e) {
        // A timed-out append may have been stored after all: then the tail already holds it.
        if (!(e instanceof LogFenced)) throw e;
        await log.refresh();
        if (log.lastSeq !== record.seq) throw e;
      }
    });
    shipped = record.seq;
  }
  return shipped;
}

test('records shipped through JetStream rebuild the primary on a replica; writers with a stale tail are fenced', async (t) => {
  const dir = tempDir();
  const primaryFile = path.join(dir, 'primary.sqlite');
  const primary = new LoggedDatabase(primaryFile);
  const base = primary.engine.commitSequence;
  const writer = await StreamLog.open(await connectTo([nats.cluster().urls[0]!]), 'shop', { replicas: 3 });
  assert.equal(writer.lastSeq, undefined);

  run(primary, 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, blob BLOB, made TEXT DEFAULT CURRENT_TIMESTAMP)');
  run(primary, 'CREATE TABLE loose (a, b)');
  for (let i = 0; i < 30; i++) run(primary, `INSERT INTO items (name, blob) VALUES ('item ${i}', randomblob(${i * 100}))`);
  // One transaction larger than a NATS message: it travels in parts.
  run(primary, 'INSERT INTO loose SELECT randomblob(3000), random() FROM items, items AS i2 LIMIT 900');
  run(primary, 'DELETE FROM items WHERE id % 3 = 0');
  const shipped = [...primary.log.read(base, Number.MAX_SAFE_INTEGER)];
  const started = performance.now();
  for (const record of shipped) await writer.append(record);
  t.diagnostic(`${shipped.length} records appended in ${(performance.now() - started).toFixed(0)} ms`);
  assert.equal(writer.lastSeq, primary.engine.commitSequence);

  // Another node reads the log from the base and applies it to its copy.
  const reader = await StreamLog.open(await connectTo([nats.cluster().urls[1]!]), 'shop', { replicas: 3 });
  assert.equal(reader.lastSeq, primary.engine.commitSequence);
  const records = await eventually(async () => {
    const got = await collect(reader.read(base));
    if (got.at(-1)?.seq !== primary.engine.commitSequence) throw new Error('not all replicated yet');
    return got;
  });
  assert.deepEqual(
    records.map((r) => r.seq),
    shipped.map((r) => r.seq),
  );
  const replicaFile = path.join(dir, 'replica.sqlite');
  materialize(primary.log, primary.snapshots, base, replicaFile);
  prepareReplicaFile(replicaFile, base);
  const replica = new ReplicaFile(replicaFile);
  assert.ok(replica.apply(records as PagesRecord[]));
  assert.equal(replica.sequence, primary.engine.commitSequence);
  assert.equal(content(replicaFile), content(primaryFile));
  replica.close();

  // Reading can start at any record.
  const middle = shipped[10]!.seq;
  assert.deepEqual(
    (await collect(reader.read(middle))).map((r) => r.seq),
    shipped.filter((r) => r.seq > middle).map((r) => r.seq),
  );

  // The reader has a stale view once the writer appends: its append is refused, nothing forks.
  run(primary, "INSERT INTO items (name) VALUES ('after')");
  const next = [...primary.log.read(writer.lastSeq!, Number.MAX_SAFE_INTEGER)];
  await writer.append(next[0]!);
  await assert.rejects(reader.append(next[0]!), LogFenced);
  await reader.refresh();
  assert.equal(reader.lastSeq, next[0]!.seq);
  primary.closeNow();
});

test('the log keeps taking appends when a NATS node is killed, and the records stay readable', async (t) => {
  const dir = tempDir();
  const primary = new LoggedDatabase(path.join(dir, 'p.sqlite'));
  const base = primary.engine.commitSequence;
  const nc = await connectTo(nats.cluster().urls);
  const log = await StreamLog.open(nc, 'failover', { replicas: 3 });
  run(primary, 'CREATE TABLE t (v)');
  let shipped = base;
  const ship = async () => {
    shipped = await shipRecords(primary, log, shipped);
  };
  for (let i = 0; i < 20; i++) run(primary, `INSERT INTO t VALUES (${i})`);
  await ship();
  // Kill the node that leads this stream: the other two must elect a new leader.
  const leader = (await (await jetstreamManager(nc)).streams.info(log.stream)).cluster?.leader;
  const victim = nats.cluster().nodes.findIndex((n) => n.name === leader);
  assert.ok(victim >= 0, `stream leader ${leader} is one of ours`);
  const killedAt = Date.now();
  await nats.cluster().kill(victim);
  for (let i = 20; i < 40; i++) run(primary, `INSERT INTO t VALUES (${i})`);
  await ship();
  t.diagnostic(`20 appends after killing a NATS node took ${Date.now() - killedAt} ms`);
  const records = await eventually(async () => {
    const got = await collect(log.read(base));
    if (got.at(-1)?.seq !== primary.engine.commitSequence) throw new Error('not all readable yet');
    return got;
  });
  assert.deepEqual(
    records.map((r) => r.seq),
    Array.from({ length: primary.engine.commitSequence - base }, (_, i) => base + 1 + i),
  );
  await nats.cluster().restart(victim);
  primary.closeNow();
});

test("a tail whose consumer's NATS server dies ends with an error instead of waiting for ever, and a new tail reads on", async (t) => {
  const dir = tempDir();
  const primary = new LoggedDatabase(path.join(dir, 'tail.sqlite'));
  t.after(() => primary.closeNow());
  const nc = await connectTo(nats.cluster().urls);
  const log = await StreamLog.open(nc, 'tail-death', { replicas: 3 });
  const ship = async () => {
    await shipRecords(primary, log, log.lastSeq ?? primary.engine.commitSequence - 1);
  };
  run(primary, 'CREATE TABLE t (v)');
  await ship();
  const from = primary.engine.commitSequence;

  // The tail reads through an ordered consumer: one replica, on one NATS server. The hard case is a
  // tail whose own connection is on that server too (as the CI failure had it): killing it moves the
  // connection, and nats.js stops watching heartbeats until the dead consumer answers. Tails are
  // opened from connections pinned to each server in turn until one's consumer lands on its own.
  const jsm = await jetstreamManager(nc);
  const consumerNames = async () => new Set((await jsm.consumers.list(log.stream).next()).map((c) => c.name));
  let chosen: { tail: Awaited<ReturnType<StreamLog['tail']>>; victim: number; sameServer: boolean } | undefined;
  for (let attempt = 0; attempt < 12 && !chosen?.sameServer; attempt++) {
    const server = attempt % 3;
    const before = await consumerNames();
    const tailLog = await StreamLog.open(await connectTo([nats.cluster().urls[server]!]), 'tail-death', { replicas: 3 });
    const tail = await tailLog.tail(from);
    const created = (await jsm.consumers.list(log.stream).next()).find((c) => !before.has(c.name));
    const victim = nats.cluster().nodes.findIndex((n) => n.name === created?.cluster?.leader);
    assert.ok(victim >= 0, `the new tail's consumer is on one of our servers (${created?.cluster?.leader})`);
    chosen?.tail.stop();
    chosen = { tail, victim, sameServer: victim === server };
  }
  const { tail, victim, sameServer } = chosen!;
  t.diagnostic(sameServer ? "the tail's connection is on its consumer's server" : "the tail's connection is on another server than its consumer's");
  const arrived: number[] = [];
  const ended = (async () => {
    try {
      for await (const record of tail.records) arrived.push(record.seq);
      return 'ended without an error';
    } catch (e) {
      return e as Error;
    }
  })();
  run(primary, 'INSERT INTO t VALUES (1)');
  await ship();
  await eventually(async () => assert.deepEqual(arrived, [from + 1]), 10_000);

  const killedAt = Date.now();
  await nats.cluster().kill(victim);
  const outcome = await Promise.race([ended, new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 30 s'), 30_000).unref())]);
  assert.ok(outcome instanceof Error, `the tail ended with an error, not: ${String(outcome)}`);
  assert.match(outcome.message, /^the tail of .* (missed its consumer's heartbeats|heard nothing from its consumer for 6 s)/);
  t.diagnostic(`the tail ended ${Date.now() - killedAt} ms after its consumer's server was killed: ${outcome.message}`);

  // A new tail (as the follower starts one) takes the records written since. With the server still
  // dead, nats-server 2.9 may place new consumers on it for a while (each attempt times out after 5 s;
  // the follower's catch-ups read message by message meanwhile): the server comes back first.
  await nats.cluster().restart(victim);
  run(primary, 'INSERT INTO t VALUES (2)');
  await ship();
  const again = await eventually(() => log.tail(from + 1));
  try {
    const next = await eventually(async () => {
      const result = await Promise.race([again.records.next(), new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 15_000).unref())]);
      if (!result || result.done) throw new Error('no record from the new tail');
      return result.value;
    }, 20_000);
    assert.equal(next.seq, from + 2);
  } finally {
    again.stop();
  }
});
