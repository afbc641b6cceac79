// ClusterDatabase's roles and routing against in-memory fakes of the shared services (no
// nats-server): the lease holder writes and ships; a follower serves session reads from its copy
// and hands the rest to the holder; a primary whose lease is gone, or whose log refuses a write,
// steps down and says so; a follower whose live tail breaks says so and follows again; with the
// shared services unreachable, writes are refused and session reads still served.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBookmark } from '../src/api/bookmark.ts';
import type { ExecuteResponse } from '../src/api/executor.ts';
import { type ClusterDatabase, clusterTag, type Forward, NOT_DURABLE } from '../src/cluster/cluster-database.ts';
import { tempDir } from './helpers/binding.ts';
import { fakes, node } from './helpers/cluster-fakes.ts';

const DB = 'roles';

const isResponse = (r: ExecuteResponse | Forward): r is ExecuteResponse => 'success' in r;
const sql = (db: ClusterDatabase, text: string, writes: boolean, bookmark?: string) => db.execute({ queries: [{ sql: text, params: [] }], bookmark }, writes);

async function until(what: string, probe: () => boolean | Promise<boolean>, boundMs = 5000): Promise<void> {
  const started = Date.now();
  while (!(await probe())) {
    assert.ok(Date.now() - started < boundMs, `${what} within ${boundMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('the lease holder writes; a follower serves session reads from its copy and hands the rest to the holder', async () => {
  const dir = tempDir();
  const shared = fakes();
  const a = await node('a', dir, shared);
  const b = await node('b', dir, shared);
  assert.equal(a.db.role, 'primary');
  assert.equal(b.db.role, 'follower');
  const created = await sql(a.db, 'CREATE TABLE t (v INTEGER)', true);
  assert.ok(isResponse(created) && created.success, JSON.stringify(created));
  const inserted = await sql(a.db, 'INSERT INTO t VALUES (1)', true);
  assert.ok(isResponse(inserted) && inserted.success);
  assert.equal(shared.stream.records.at(-1)!.seq, a.db.sequence, 'the write is in the log once answered');

  // Writes and reads outside a session go to the holder.
  for (const [text, writes, bookmark] of [
    ['INSERT INTO t VALUES (2)', true, undefined],
    ['SELECT v FROM t', false, undefined],
    ['SELECT v FROM t', false, 'first-primary'],
  ] as const) {
    const r = await sql(b.db, text, writes, bookmark);
    assert.ok(!isResponse(r) && r.forward?.node === 'a', `${text} (${bookmark}): ${JSON.stringify(r)}`);
  }
  // A session that has seen the primary's write reads on b once b's copy holds it.
  const session = await sql(b.db, 'SELECT v FROM t', false, inserted.bookmark);
  assert.ok(isResponse(session) && session.success, JSON.stringify(session));
  assert.deepEqual(session.results[0]!.rows, [[1]]);
  // One ahead of everything written waits its bounded time, then goes to the holder.
  const ahead = await sql(b.db, 'SELECT 1', false, formatBookmark(a.db.sequence + 5, clusterTag(DB)));
  assert.ok(!isResponse(ahead) && ahead.forward?.node === 'a');
  await a.db.stop();
  await b.db.stop();
});

test('a primary whose lease went to another node steps down on its next upkeep and says so', async () => {
  const dir = tempDir();
  const shared = fakes();
  const a = await node('a', dir, shared);
  await sql(a.db, 'CREATE TABLE t (v INTEGER)', true);
  const b = await node('b', dir, shared);
  // a's lease lapses (it stalled), and b takes it.
  shared.leases.lapse(DB);
  await b.db.tick();
  assert.equal(b.db.role, 'primary');
  await a.db.tick();
  assert.equal(a.db.role, 'follower');
  assert.ok(a.logger.lines.some((l) => l.level === 'warn' && /stepping down as the primary: lost its lease/.test(l.message)), JSON.stringify(a.logger.lines));
  const w = await sql(a.db, 'INSERT INTO t VALUES (1)', true);
  assert.ok(!isResponse(w) && w.forward?.node === 'b');
  const onB = await sql(b.db, 'INSERT INTO t VALUES (1)', true);
  assert.ok(isResponse(onB) && onB.success, JSON.stringify(onB));
  await until('a follows b', () => a.db.sequence === b.db.sequence);
  await a.db.stop();
  await b.db.stop();
});

test('a write the log refuses is answered as not durable; the primary steps down and comes back when the log does', async () => {
  const dir = tempDir();
  const shared = fakes();
  const a = await node('a', dir, shared);
  await sql(a.db, 'CREATE TABLE t (v INTEGER)', true);
  shared.stream.failAppends = new Error('TIMEOUT');
  const refused = await sql(a.db, 'INSERT INTO t VALUES (1)', true);
  assert.ok(isResponse(refused) && !refused.success && refused.error === NOT_DURABLE, JSON.stringify(refused));
  assert.ok(a.logger.lines.some((l) => /stepping down as the primary: the log did not take a write \(TIMEOUT\)/.test(l.message)), JSON.stringify(a.logger.lines));
  assert.equal(a.db.role, 'follower');
  shared.stream.failAppends = undefined;
  const again = await sql(a.db, 'INSERT INTO t VALUES (2)', true);
  assert.ok(isResponse(again) && again.success, JSON.stringify(again));
  const rows = await sql(a.db, 'SELECT v FROM t', false);
  assert.ok(isResponse(rows) && rows.success);
  assert.deepEqual(rows.results[0]!.rows, [[2]], 'the refused write is not there');
  await a.db.stop();
});

/**
 * A primary with a table, whose write of 0 is being shipped and held there: its message is out
 * until `release()`. `appendsBefore`/`recordsBefore`: the log's counts before that write.
 */
async function primaryShipping(dir: string) {
  const shared = fakes();
  const a = await node('a', dir, shared);
  await sql(a.db, 'CREATE TABLE t (v INTEGER)', true);
  let letGo!: () => void;
  shared.stream.holdAppends = new Promise<void>((r) => (letGo = r));
  const appendsBefore = shared.stream.appends;
  const recordsBefore = shared.stream.records.length;
  const first = sql(a.db, 'INSERT INTO t VALUES (0)', true);
  await until('the first write is being shipped', () => shared.stream.appends === appendsBefore + 1);
  const release = () => {
    shared.stream.holdAppends = undefined;
    letGo();
  };
  return { shared, a, first, release, appendsBefore, recordsBefore };
}

test('writes that arrive while a shipment is out share the next one: one commit, one record, one message', async () => {
  const { shared, a, first, release, appendsBefore, recordsBefore } = await primaryShipping(tempDir());
  // Ten callers arrive, one at a time, while the first write's message is out; one of them fails.
  const later: Promise<ExecuteResponse | Forward>[] = [];
  for (let v = 1; v <= 10; v++) {
    later.push(sql(a.db, v === 5 ? 'INSERT INTO missing VALUES (5)' : `INSERT INTO t VALUES (${v})`, true));
    await new Promise((r) => setImmediate(r));
  }
  release();
  const answers = [await first, ...(await Promise.all(later))];
  answers.forEach((r, v) => {
    assert.ok(isResponse(r), JSON.stringify(r));
    if (v === 5) assert.ok(!r.success && /no such table: missing/.test(r.error), JSON.stringify(r));
    else assert.ok(r.success, `${v}: ${JSON.stringify(r)}`);
  });
  assert.equal(shared.stream.appends - appendsBefore, 2, 'the first write, then the ten that waited for it, in one message');
  assert.equal(shared.stream.records.length - recordsBefore, 2);
  const bookmarks = new Set(answers.slice(1).flatMap((r) => (isResponse(r) && r.success ? [r.bookmark] : [])));
  assert.equal(bookmarks.size, 1, 'the nine that committed share one commit');
  assert.equal(shared.stream.records.at(-1)!.seq, a.db.sequence);
  const rows = await sql(a.db, 'SELECT v FROM t ORDER BY v', false);
  assert.ok(isResponse(rows) && rows.success);
  assert.deepEqual(rows.results[0]!.rows, [[0], [1], [2], [3], [4], [6], [7], [8], [9], [10]]);
  await a.db.stop();
});

test('work queued as the primary after a group closes it: requests that come later run after that work', async () => {
  const { a, first, release } = await primaryShipping(tempDir());
  const second = sql(a.db, 'INSERT INTO t VALUES (1)', true);
  await new Promise((r) => setImmediate(r));
  // Work of its own on the primary (as a restore is), queued after the group waiting with write 1.
  const own = a.db.asPrimary((engine) => engine.execute({ queries: [{ sql: 'INSERT INTO t VALUES (100)', params: [] }] }));
  await new Promise((r) => setImmediate(r));
  const third = sql(a.db, 'INSERT INTO t VALUES (2)', true);
  release();
  for (const r of [await first, await second, await own, await third]) assert.ok(isResponse(r) && r.success, JSON.stringify(r));
  const rows = await sql(a.db, 'SELECT v FROM t ORDER BY rowid', false);
  assert.ok(isResponse(rows) && rows.success);
  assert.deepEqual(rows.results[0]!.rows, [[0], [1], [100], [2]], 'in the order they were queued');
  await a.db.stop();
});

test('a follower whose live tail breaks says so once and follows again', async () => {
  const dir = tempDir();
  const shared = fakes();
  const a = await node('a', dir, shared);
  await sql(a.db, 'CREATE TABLE t (v INTEGER)', true);
  const b = await node('b', dir, shared);
  shared.stream.breakTails();
  await until('b says its tail stopped', () => b.logger.lines.some((l) => /stopped following the log/.test(l.message)));
  await until('b follows again', () => b.logger.lines.some((l) => /follows the log again/.test(l.message)));
  await sql(a.db, 'INSERT INTO t VALUES (1)', true);
  await until('b has the new write', () => b.db.sequence === a.db.sequence);
  await a.db.stop();
  await b.db.stop();
});

test('with the shared services unreachable, writes are refused at once and session reads are served from the copy', async () => {
  const dir = tempDir();
  const shared = fakes();
  let reachable = true;
  const a = await node('a', dir, shared);
  await sql(a.db, 'CREATE TABLE t (v INTEGER)', true);
  const b = await node('b', dir, shared, () => reachable);
  await b.db.tick();
  assert.equal(b.db.sequence, a.db.sequence);
  // b has seen who holds the lease (a read it handed on).
  assert.ok(!isResponse(await sql(b.db, 'SELECT 1', false)));
  reachable = false;
  const write = await sql(b.db, 'INSERT INTO t VALUES (1)', true);
  assert.ok(isResponse(write) && !write.success && write.error === NOT_DURABLE);
  const session = await sql(b.db, 'SELECT count(*) FROM t', false, 'first-unconstrained');
  assert.ok(isResponse(session) && session.success);
  const plain = await sql(b.db, 'SELECT 1', false);
  assert.ok(!isResponse(plain) && plain.forward?.node === 'a', 'a plain read goes to the holder last seen');
  await a.db.stop();
  await b.db.stop();
});
