// When the write log cannot take a commit (a full disk, a failed sync), the write is answered as
// failed and never applied: the database goes back to the log's last durable record before
// anything else runs, and later writes work once the log can write again. And one history has one
// writer: a second handle, in this process or another, is refused.
//
// Faults are injected into the log's own segment files (fixtures/log-faults.ts): a record half
// written when the disk fills (ENOSPC), or an fdatasync that fails (EIO).
//   1. In this process: failed writes fail with SQLite's wording, are gone (also after a reopen),
//      and the next writes succeed. When the files are not as the log left them (another
//      connection checkpointed a commit the log had not made durable) the repair rebuilds the file
//      from the log; when the database cannot be reopened, every request is refused with the
//      reason until a later try succeeds.
//   2. Through `dione serve` (the hosts load the fault injection): the failed write's answer is the
//      failure, the host stays up, reads go on, later writes work; in one batch, a failed sync fails
//      its whole group commit and the requests after it run on the repaired database.
//   3. A child process (fixtures/log-failure-worker.ts) writes under random faults and is SIGKILLed
//      (by its PID) at each step of the repair in turn, standing still there; after reopening,
//      every acknowledged write is present, every write reported failed is absent, batches are
//      whole, the log rebuilds the live database exactly, quick_check passes, and writes go on.
//   4. Two handles on one file: refused at once in the same process and from another process; the
//      lock dies with its process; a host-style open waits for it.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { after, describe, test } from 'node:test';
import { openSqlite } from '../src/engine/sqlite.ts';
import { beginTransaction, D1Database, open } from '../src/index.ts';
import { LoggedExecutor } from '../src/log/executor.ts';
import { type LoggedDatabase, LoggedDatabase as LoggedDatabaseClass } from '../src/log/logged-database.ts';
import { materialize, sequenceOfFile } from '../src/log/pages.ts';
import { armLogFault } from './fixtures/log-faults.ts';
import { tempDir } from './helpers/binding.ts';
import { contents, withDatabase } from './helpers/database-files.ts';
import { root } from './helpers/paths.ts';
import { mulberry32 } from './helpers/random.ts';
import { alive, type Envelope, fetchJson, jsonHeaders, tokenIn } from './helpers/server-checks.ts';
import type { SpawnedServer } from './helpers/server.ts';

const children = new Set<ChildProcess>();
after(() => {
  // Only the processes this file started, by PID, if one is somehow still running.
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
});

const FULL = 'database or disk is full: SQLITE_FULL';
const IOERR = 'disk I/O error: SQLITE_IOERR';

/** The log rebuilds the live database: the last bookmark materialised equals the file, both intact. */
function assertLogAgrees(logged: LoggedDatabase, file: string, scratch: string, where: string): void {
  const last = logged.log.last();
  assert.ok(last, `${where}: the log has no records`);
  assert.equal(last.seq, logged.engine.commitSequence, `${where}: the log ends at commit ${last.seq}, the database is at ${logged.engine.commitSequence}`);
  const rebuilt = path.join(scratch, `rebuilt-${last.seq}.sqlite`);
  materialize(logged.log, logged.snapshots, last.seq, rebuilt);
  assert.equal(sequenceOfFile(rebuilt), last.seq);
  const live = withDatabase(file, (c) => {
    assert.equal(c.pragma('quick_check', { simple: true }), 'ok', `${where}: quick_check of the live database`);
    return contents(c);
  });
  const fromLog = withDatabase(rebuilt, (c) => {
    assert.equal(c.pragma('quick_check', { simple: true }), 'ok', `${where}: quick_check of the database rebuilt from the log`);
    return contents(c);
  });
  assert.deepEqual(fromLog, live, `${where}: the log rebuilds commit ${last.seq} differently from the live database`);
}

const ids = async (db: D1Database) => new Set((await db.prepare('SELECT id FROM rows').raw<[number]>()).map(([id]) => Number(id)));

describe('a write the log cannot take', () => {
  test('is answered as failed with SQLite wording and undone; later writes work; a reopen agrees', async () => {
    const scratch = tempDir();
    const file = path.join(scratch, 'faults.sqlite');
    const executor = new LoggedExecutor(file, {}, {});
    const db = new D1Database(executor);
    await db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, payload BLOB)');
    const insert = (id: number) => db.prepare('INSERT INTO rows (id, batch, payload) VALUES (?, ?, randomblob(100))').bind(id, id);
    for (const id of [1, 2, 3]) await insert(id).run();

    // The disk fills halfway through the record: the commit's own answer fails.
    armLogFault('write');
    await assert.rejects(insert(4).run(), (e: Error) => e.message.includes(FULL));
    // The sync fails: both writes of the turn (one sync) fail.
    armLogFault('sync');
    const pair = await Promise.allSettled([insert(5).run(), insert(6).run()]);
    assert.deepEqual(
      pair.map((p) => (p.status === 'rejected' ? (p.reason as Error).message.includes(IOERR) : 'acknowledged')),
      [true, true],
    );
    // A batch is undone whole.
    armLogFault('write');
    await assert.rejects(db.batch([insert(7), insert(8)]), (e: Error) => e.message.includes(FULL));

    // Reads see only what was acknowledged, and writes work again at once.
    assert.deepEqual([...(await ids(db))].sort(), [1, 2, 3]);
    await insert(9).run();
    await db.batch([insert(10), insert(11)]);
    assert.deepEqual([...(await ids(db))].sort((a, b) => a - b), [1, 2, 3, 9, 10, 11]);
    assertLogAgrees(executor.database, file, scratch, 'after the failures');
    await db.close();

    // Reopening (crash recovery reads the WAL) brings none of the failed writes back.
    const again = new LoggedExecutor(file, {}, {});
    const reopened = new D1Database(again);
    assert.deepEqual([...(await ids(reopened))].sort((a, b) => a - b), [1, 2, 3, 9, 10, 11]);
    assertLogAgrees(again.database, file, scratch, 'after reopening');
    await reopened.close();
  });

  test('a read issued with a write whose sync then fails answers the repaired database, not the undone row', async () => {
    const scratch = tempDir();
    const file = path.join(scratch, 'read-gate.sqlite');
    const executor = new LoggedExecutor(file, {}, {});
    const db = new D1Database(executor);
    await db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, payload BLOB)');
    await db.prepare('INSERT INTO rows (id, batch) VALUES (1, 1)').run();
    armLogFault('sync');
    // The read runs after the write's commit (it sees its row), before the log's sync fails.
    const [write, read] = await Promise.allSettled([
      db.prepare('INSERT INTO rows (id, batch) VALUES (2, 2)').run(),
      db.prepare('SELECT group_concat(id) AS ids FROM rows').first('ids'),
    ]);
    assert.ok(write.status === 'rejected' && (write.reason as Error).message.includes(IOERR), inspect(write));
    assert.deepEqual(read, { status: 'fulfilled', value: '1' });
    // A read issued with a write that succeeds answers after the sync, with the row.
    const [, after] = await Promise.all([db.prepare('INSERT INTO rows (id, batch) VALUES (3, 3)').run(), db.prepare('SELECT group_concat(id) AS ids FROM rows').first('ids')]);
    assert.equal(after, '1,3');
    await db.close();
  });

  test("reads issued at every step after a transaction lets go never see a waiting write that the failed sync then undoes", async () => {
    const file = path.join(tempDir(), 'busy-gate.sqlite');
    const db = open(file, { history: true, transactions: true });
    await db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, payload BLOB)');
    const tx = await beginTransaction(db);
    await tx.db.prepare('INSERT INTO rows (id, batch) VALUES (1, 1)').run();
    const write = db.prepare('INSERT INTO rows (id, batch) VALUES (2, 2)').run();
    await new Promise((resolve) => setTimeout(resolve, 20));
    armLogFault('sync');
    const seen: unknown[] = [];
    const reads: Promise<unknown>[] = [];
    // One read per microtask step from the rollback on: the waiting write commits somewhere among them.
    const probe = (left: number) => {
      if (left === 0) return;
      reads.push(db.prepare('SELECT count(*) AS n FROM rows WHERE id = 2').first('n').then((n) => seen.push(n)));
      void Promise.resolve().then(() => probe(left - 1));
    };
    const rolledBack = tx.rollback();
    probe(12);
    await rolledBack;
    await assert.rejects(write, (e: Error) => e.message.includes(IOERR));
    await Promise.all(reads);
    assert.deepEqual(seen, seen.map(() => 0), 'no read showed the write the repair undid');
    assert.equal(await db.prepare('SELECT count(*) AS n FROM rows').first('n'), 0);
    await db.close();
  });

  test('after a commit of more than 16 MiB still in the WAL (its pages read again from there), a failed write is undone and the database serves on', async () => {
    const scratch = tempDir();
    const file = path.join(scratch, 'large.sqlite');
    // No checkpoint moves the large commit out of the WAL (as when a reader keeps one from completing).
    const executor = new LoggedExecutor(file, {}, { checkpointBytes: 1e12 });
    const db = new D1Database(executor);
    await db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, payload BLOB)');
    await db.prepare('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) INSERT INTO rows SELECT i, 0, randomblob(4000) FROM n').run();
    armLogFault('sync');
    await assert.rejects(db.prepare('INSERT INTO rows VALUES (-1, 1, NULL)').run(), (e: Error) => e.message.includes(IOERR));
    // The repair cut the WAL back to the large commit, which it read to check its number.
    assert.equal(await db.prepare('SELECT count(*) AS n FROM rows').first('n'), 5000);
    await db.prepare('INSERT INTO rows VALUES (-2, 1, NULL)').run();
    assert.equal(await db.prepare('SELECT count(*) AS n FROM rows').first('n'), 5001);
    assertLogAgrees(executor.database, file, scratch, 'after the repair');
    await db.close();
  });
});

describe('a repair that cannot go the usual way', () => {
  test('a commit checkpointed into the file before the log made it durable: the repair rebuilds the file from the log', async () => {
    const scratch = tempDir();
    const file = path.join(scratch, 'checkpointed.sqlite');
    const executor = new LoggedExecutor(file, {}, {});
    const db = new D1Database(executor);
    await db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, payload BLOB)');
    await db.prepare('INSERT INTO rows (id, batch) VALUES (1, 1)').run();
    armLogFault('sync');
    const write = db.prepare('INSERT INTO rows (id, batch) VALUES (2, 2)').run();
    // Before the log syncs it, another connection moves the WAL into the file (no Dione handle would).
    const other = openSqlite(file);
    other.pragma('wal_checkpoint(TRUNCATE)');
    other.close();
    await assert.rejects(write, (e: Error) => e.message.includes(IOERR));
    assert.deepEqual([...(await ids(db))], [1]);
    await db.prepare('INSERT INTO rows (id, batch) VALUES (3, 3)').run();
    assert.deepEqual([...(await ids(db))].sort(), [1, 3]);
    assertLogAgrees(executor.database, file, scratch, 'after the rebuild');
    await db.close();
  });

  test('a database that cannot be reopened after the repair refuses every request with the reason, and serves again once it can', async () => {
    const scratch = tempDir();
    const file = path.join(scratch, 'refused.sqlite');
    const executor = new LoggedExecutor(file, {}, {});
    const db = new D1Database(executor);
    await db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, payload BLOB)');
    await db.prepare('INSERT INTO rows (id, batch) VALUES (1, 1)').run();
    // The first reopen inside the repair fails (as a full disk can make it: no room for the -shm).
    const proto = LoggedDatabaseClass.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
    const openEngine = proto.openEngine!;
    let failures = 1;
    proto.openEngine = function (this: unknown, ...args: unknown[]) {
      if (failures-- > 0) throw new Error('unable to open database file');
      return openEngine.apply(this, args);
    };
    try {
      armLogFault('write');
      const refusal = /refused: its write log failed \(database or disk is full: SQLITE_FULL\), the commits it could not take were undone, but the database cannot be opened again: unable to open database file/;
      await assert.rejects(db.prepare('INSERT INTO rows (id, batch) VALUES (2, 2)').run(), refusal);
      await assert.rejects(db.prepare('SELECT count(*) FROM rows').first(), refusal);
      // Tried again (at most once a second): served again.
      await new Promise((r) => setTimeout(r, 1100));
      assert.deepEqual([...(await ids(db))], [1]);
      await db.prepare('INSERT INTO rows (id, batch) VALUES (3, 3)').run();
      assertLogAgrees(executor.database, file, scratch, 'after the refusal');
    } finally {
      proto.openEngine = openEngine;
      await db.close();
    }
  });
});

/**
 * The server helpers, loaded only once the database hosts are set to load the fault injection (the
 * pool reads DIONE_HOST_NODE_FLAGS when it is loaded); a fault fires when the trigger file names it.
 */
const hostFaultTrigger = path.join(tempDir(), 'host-fault');
async function serverWithFaults() {
  // tsx too: when a fresh build exists, hosts run the compiled JavaScript, and the fixture is TypeScript.
  process.env.DIONE_HOST_NODE_FLAGS = `--import ${import.meta.resolve('tsx')} --import ${path.join(root, 'test', 'fixtures', 'log-faults.ts')}`;
  process.env.DIONE_TEST_LOG_FAULT_FILE = hostFaultTrigger;
  return await import('./helpers/server.ts');
}

describe('through dione serve', () => {
  test('a write whose log record cannot be written or synced is answered as failed; the host stays up, reads go on, later writes work', { timeout: 60_000 }, async (t) => {
    const { spawnServer } = await serverWithFaults();
    const data = path.join(tempDir(), 'data');
    mkdirSync(data);
    const trigger = hostFaultTrigger;
    let server: SpawnedServer | undefined;
    t.after(() => {
      if (server && server.child.exitCode === null && server.child.signalCode === null) process.kill(server.child.pid!, 'SIGKILL');
    });
    const token = tokenIn(data, 'admin');
    server = await spawnServer(data);
    const api = () => `${server!.url}/client/v4/accounts/${server!.accountId}/d1/database`;
    const query = (sql: string, params: unknown[] = []) =>
      fetchJson<Envelope>(`${api()}/faulty/query`, { method: 'POST', headers: jsonHeaders(token), body: JSON.stringify({ sql, params }) });
    const insert = (id: number) => query('INSERT INTO rows (id) VALUES (?)', [id]);
    const rows = async () => {
      const reply = await query('SELECT id FROM rows ORDER BY id');
      assert.equal(reply.status, 200, JSON.stringify(reply.body));
      return (reply.body.result[0].results as { id: number }[]).map((r) => r.id);
    };
    const failsWith = async (reply: Promise<{ status: number; body: Envelope }>, message: string) => {
      const { status, body } = await reply;
      assert.equal(status, 400, JSON.stringify(body));
      assert.equal(body.errors[0]!.message, message);
    };

    assert.equal((await fetchJson(api(), { method: 'POST', headers: jsonHeaders(token), body: JSON.stringify({ name: 'faulty' }) })).status, 200);
    assert.equal((await query('CREATE TABLE rows (id INTEGER PRIMARY KEY)')).status, 200);
    assert.equal((await insert(1)).status, 200);
    assert.equal((await insert(2)).status, 200);

    writeFileSync(trigger, 'sync');
    await failsWith(insert(3), IOERR);
    assert.ok(!existsSync(trigger), 'the fault fired');
    assert.deepEqual(await rows(), [1, 2]);
    assert.equal((await insert(4)).status, 200);

    writeFileSync(trigger, 'write');
    await failsWith(insert(5), FULL);
    assert.deepEqual(await rows(), [1, 2, 4]);

    // Requests sent together (they may or may not arrive in one batch, to share a commit and a
    // sync): each write is acknowledged or answered with the failure, and the rows are exactly the
    // acknowledged ones; the read is answered.
    writeFileSync(trigger, 'sync');
    const batch = [6, 7, 9, 10, 11, 12, 13, 14];
    const [reads, writes] = await Promise.all([
      Promise.all([1, 2, 3].map(() => query('SELECT count(*) AS n FROM rows'))),
      Promise.all(batch.map((id) => insert(id).then((reply) => [id, reply] as const))),
    ]);
    const kept = [1, 2, 4];
    for (const [id, reply] of writes) {
      if (reply.status === 200) kept.push(id);
      else assert.equal(reply.body.errors?.[0]?.message, IOERR, JSON.stringify(reply.body));
    }
    assert.ok(kept.length < 3 + batch.length, 'the fault failed no write');
    t.diagnostic(`${3 + batch.length - kept.length} of ${batch.length} writes sent together met the failed sync`);
    for (const read of reads) assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal((await insert(8)).status, 200);
    kept.push(8);
    kept.sort((a, b) => a - b);
    assert.deepEqual(await rows(), kept);

    // The server stayed up all along; the log's report is an error-level line naming the file.
    assert.ok(alive(server.child.pid!), 'the server stayed up');
    assert.match(server.stderr(), /"level":50[^\n]*"file":"[^"]+\.sqlite"[^\n]*could not take a commit/);
    assert.doesNotMatch(server.stderr(), /stopping this database's host/);

    // A new server on the same data: the failed writes never come back.
    server.child.kill('SIGTERM');
    await new Promise((resolve) => server!.child.once('exit', resolve));
    server = await spawnServer(data);
    assert.deepEqual(await rows(), kept);
  });

  test('one batch in the host: a failed sync fails the whole group commit; the requests after it run on the repaired database', async (t) => {
    const { startTestServer } = await serverWithFaults();
    const trigger = hostFaultTrigger;
    const s = await startTestServer({});
    t.after(() => s.close());
    const uuid = await s.createDatabase('group');
    const file = s.server.context.catalog.file(uuid);
    // Straight to the database's host: requests sent in one turn reach it as one batch.
    const send = (sql: string, params: number[] = []) =>
      s.server.context.pool.execute({ uuid, file }, { queries: [{ sql, params }] }, !sql.startsWith('SELECT'));
    assert.equal((await send('CREATE TABLE rows (id INTEGER PRIMARY KEY)')).success, true);

    writeFileSync(trigger, 'sync');
    const replies = await Promise.all([
      ...[1, 2, 3].map((id) => send('INSERT INTO rows (id) VALUES (?)', [id])),
      send('SELECT count(*) AS n FROM rows'),
      ...[4, 5].map((id) => send('INSERT INTO rows (id) VALUES (?)', [id])),
    ]);
    // The group of 1, 2, 3 committed together, and its sync failed: all three fail, and are undone.
    for (const reply of replies.slice(0, 3)) assert.deepEqual(reply, { success: false, error: IOERR });
    // The read and the next group ran on the repaired database, not on the closed one.
    const count = replies[3]!;
    assert.ok(count.success, inspect(count));
    assert.equal(count.results[0]!.rows[0]![0], 0n);
    for (const reply of replies.slice(4)) assert.equal(reply.success, true, inspect(reply));
    const rows = await send('SELECT id FROM rows ORDER BY id');
    assert.ok(rows.success);
    assert.deepEqual(
      rows.results[0]!.rows.map((r) => r[0]),
      [4n, 5n],
    );
  });
});

// ---------------------------------------------------------------------------------------------
// SIGKILL during the repair.

const worker = path.join(root, 'test', 'fixtures', 'log-failure-worker.ts');
const STEPS = ['repair', 'closed-keeping-wal', 'rollback', 'rolled-back', 'cut-wal', 'wal-cut', 'reopen', 'reopened', 'repaired'] as const;
const SEED = Number(process.env.LOG_FAILURE_SEED ?? Math.floor(Math.random() * 2 ** 31));

interface Run {
  lines: string[];
  /** The worker announced it stood still at the target step, and was killed there. */
  landed: boolean;
}

function runAndKill(config: Record<string, unknown>, target: string, killAfterMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', worker, JSON.stringify(config)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const lines: string[] = [];
    let pending = '';
    let stderr = '';
    let landed = false;
    let answered = 0;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    };
    // Bounded: killed at the latest after this, wherever it is.
    const deadline = setTimeout(kill, 15_000);
    let timer: NodeJS.Timeout | undefined;
    child.stdout!.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const parts = pending.split('\n');
      pending = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        if (line === `pause ${target}`) {
          landed = true;
          kill();
        }
        if (target === 'any' && (line.startsWith('ack ') || line.startsWith('fail ')) && ++answered === 5) timer = setTimeout(kill, killAfterMs);
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      clearTimeout(deadline);
      clearTimeout(timer);
      children.delete(child);
      if (signal !== 'SIGKILL' && code !== 0) reject(new Error(`the worker exited with ${code}:\n${stderr}`));
      else resolve({ lines, landed });
    });
  });
}

test('SIGKILL at each step of the repair: acknowledged writes are kept, failed ones never come back, log == database', { timeout: 180_000 }, async (t) => {
  t.diagnostic(`seed ${SEED} (LOG_FAILURE_SEED=${SEED} replays it)`);
  const random = mulberry32(SEED);
  const scratch = tempDir();
  const file = path.join(scratch, 'killed.sqlite');
  const targets = [...STEPS, 'any', 'any'];
  const acknowledged = new Set<number>();
  let nextId = 1;
  const tally = { acknowledged: 0, failed: 0, inFlight: 0, inFlightKept: 0 };
  const began = Date.now();
  for (const [round, target] of targets.entries()) {
    const where = `[seed ${SEED} round ${round} kill at ${target}]`;
    const run = await runAndKill(
      {
        file,
        seed: Math.floor(random() * 2 ** 31),
        nextId,
        checkpointBytes: 64 * 1024,
        snapshotBytes: 256 * 1024,
        faultRate: 0.3,
        pauseAt: target === 'any' ? undefined : target,
        pauseMs: 3000,
        pauseAfter: 3 + Math.floor(random() * 10),
        maxMs: 8000,
      },
      target,
      Math.floor(random() * 400),
    );
    if (target !== 'any') assert.ok(run.landed, `${where}: the worker never reached the step (lines: ${run.lines.slice(-5).join(' | ')})`);

    const failed = new Set<number>();
    const begun: number[][] = [];
    const batches: [number, number][] = [];
    for (const line of run.lines) {
      const [word, ...rest] = line.split(' ');
      if (word === 'begin' || word === 'batch') {
        const group = rest.map(Number);
        begun.push(group);
        if (word === 'batch') batches.push([group[0]!, group[1]!]);
        nextId = Math.max(nextId, ...group.map((id) => id + 1));
      } else if (word === 'ack') acknowledged.add(Number(rest[0]));
      else if (word === 'fail') {
        failed.add(Number(rest[0]));
        assert.ok(line.includes(FULL) || line.includes(IOERR), `${where}: a failure not in SQLite's wording: ${line}`);
      }
    }

    const executor = new LoggedExecutor(file, {}, { checkpointBytes: 64 * 1024, snapshotBytes: 256 * 1024 });
    const db = new D1Database(executor);
    try {
      const hasTable = await db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'rows'").first('n');
      const actual = hasTable ? await ids(db) : new Set<number>();
      const missing = [...acknowledged].filter((id) => !actual.has(id));
      assert.deepEqual(missing, [], `${where}: acknowledged writes missing after the kill`);
      const back = [...failed].filter((id) => actual.has(id));
      assert.deepEqual(back, [], `${where}: writes reported failed are there after the kill`);
      for (const [a, b] of batches) assert.equal(actual.has(a), actual.has(b), `${where}: batch ${a},${b} is there in part`);
      for (const group of begun) {
        for (const id of group) {
          if (acknowledged.has(id) || failed.has(id)) continue;
          tally.inFlight++;
          if (actual.has(id)) tally.inFlightKept++;
        }
      }
      tally.acknowledged = acknowledged.size;
      tally.failed += failed.size;
      assertLogAgrees(executor.database, file, scratch, where);
      assert.equal(await db.prepare('PRAGMA quick_check').first('quick_check'), 'ok', `${where}: quick_check`);

      // Service goes on: a write is acknowledged and the log still agrees.
      const id = nextId++;
      await db.prepare('INSERT INTO rows (id, batch, payload) VALUES (?, ?, randomblob(10))').bind(id, id).run();
      acknowledged.add(id);
      for (const kept of actual) acknowledged.add(kept);
      assertLogAgrees(executor.database, file, scratch, `${where} after a write`);
    } finally {
      await db.close();
    }
  }
  t.diagnostic(`${targets.length} rounds in ${((Date.now() - began) / 1000).toFixed(1)} s: ${JSON.stringify(tally)}`);
  assert.ok(tally.failed > 0, 'no write was ever reported failed: the faults did not fire');
});

// ---------------------------------------------------------------------------------------------
// One writer per history.

describe('two handles on one file', () => {
  test('in one process: the second open is refused at once, naming the file; the first goes on; after it closes, opening works', async () => {
    const file = path.join(tempDir(), 'twice.sqlite');
    const first = open(file, { history: true });
    await first.exec('CREATE TABLE t (v INTEGER)');
    const started = Date.now();
    assert.throws(
      () => open(file, { history: true }),
      (e: Error) => e.message === `dione: ${file} is already open with its write log by another handle or process (pid ${process.pid}: this process)`,
    );
    assert.ok(Date.now() - started < 1000, 'refused at once, not after a wait');
    await first.prepare('INSERT INTO t VALUES (1)').run();
    await first.close();
    const second = open(file, { history: true });
    assert.equal(await second.prepare('SELECT count(*) AS n FROM t').first('n'), 1);
    await second.close();
  });

  test('across processes: refused while another process holds it (naming its pid); the lock dies with that process; a waiting open gets it', async () => {
    const file = path.join(tempDir(), 'shared.sqlite');
    const holderCode = `
      import { open } from ${JSON.stringify(path.join(root, 'src/index.ts'))};
      const db = open(${JSON.stringify(file)}, { history: true });
      await db.exec('CREATE TABLE IF NOT EXISTS t (v INTEGER)');
      await db.prepare('INSERT INTO t VALUES (1)').run();
      process.stdout.write('holding\\n');
      const release = Number(process.argv[1] ?? 0);
      if (release > 0) setTimeout(async () => { await db.close(); process.stdout.write('released\\n'); }, release);
      setInterval(() => {}, 1000);
    `;
    const hold = (releaseAfterMs: number) =>
      new Promise<ChildProcess>((resolve, reject) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', holderCode, String(releaseAfterMs)], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
        children.add(child);
        child.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('holding')) resolve(child);
        });
        child.once('exit', (code) => reject(new Error(`the holder exited with ${code}`)));
      });
    const gone = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

    const holder = await hold(0);
    assert.throws(() => open(file, { history: true }), (e: Error) => e.message === `dione: ${file} is already open with its write log by another handle or process (pid ${holder.pid})`);
    process.kill(holder.pid!, 'SIGKILL');
    await gone(holder);
    // The OS dropped the lock with the process: no stale lock to clear by hand.
    const after = open(file, { history: true });
    assert.equal(await after.prepare('SELECT count(*) AS n FROM t').first('n'), 1);
    await after.prepare('INSERT INTO t VALUES (2)').run();
    await after.close();

    // A database host's open waits (bounded) for the host it replaces to let go.
    const slow = await hold(800);
    const started = Date.now();
    const waited = new LoggedDatabaseClass(file, {}, { lockWaitMs: 10_000 });
    assert.ok(Date.now() - started >= 500, 'the open waited for the other process');
    const counted = waited.execute({ queries: [{ sql: 'SELECT count(*) AS n FROM t', params: [] }] });
    assert.ok(counted.success && counted.results[0]!.rows[0]![0] === 3, JSON.stringify(counted));
    await waited.close();
    process.kill(slow.pid!, 'SIGKILL');
    await gone(slow);
    // …but not without bound.
    const stuck = await hold(0);
    const tried = Date.now();
    assert.throws(() => new LoggedDatabaseClass(file, {}, { lockWaitMs: 300 }), /already open with its write log/);
    assert.ok(Date.now() - tried < 5000);
    process.kill(stuck.pid!, 'SIGKILL');
    await gone(stuck);
  });
});
