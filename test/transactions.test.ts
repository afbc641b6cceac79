// Interactive transactions (the `transactions: true` opt-in), through both bindings: open() on a
// real SQLite file and connect() to a real server on 127.0.0.1. Transaction statements on the
// handle, beginTransaction()/withTransaction(), isolation (no dirty reads, no lost updates), the
// bounded wait of a second writer, the idle timeout, and D1's refusals without the option.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { beginTransaction, type D1Database, history, open, withTransaction } from '../src/index.ts';
import { connect } from '../src/client.ts';
import { rejectsWith, tempDir } from './helpers/binding.ts';
import { poll } from './helpers/server-checks.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const D1_REFUSAL = /^D1_ERROR: To execute a transaction, please use the state\.storage\.transaction\(\)/;
const BUSY = /^D1_ERROR: database is locked: SQLITE_BUSY$/;

interface Handles {
  /** A handle with `transactions: true`. */
  db: D1Database;
  /** Another handle on the same database, without the option. */
  other: D1Database;
}

/** Two handles on a new database; held transactions roll back after `transactionTimeoutMs` idle (default 10 s). */
type Make = (options?: { transactionTimeoutMs?: number }) => Promise<Handles>;

const count = async (db: D1Database) => (await db.prepare('SELECT count(*) AS n FROM t').first<number>('n'))!;
const values = async (db: D1Database) => (await db.prepare('SELECT v FROM t ORDER BY id').raw<[number]>()).map((r) => r[0]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function suite(name: string, make: Make): void {
  describe(name, () => {
    const fresh = async (options?: { transactionTimeoutMs?: number }) => {
      const handles = await make(options);
      await handles.other.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
      return handles;
    };

    test('without the option every transaction statement keeps D1 refusal', async () => {
      const { other } = await fresh();
      for (const sql of ['BEGIN', 'BEGIN IMMEDIATE', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT a', 'RELEASE a', 'ROLLBACK TO a']) {
        await rejectsWith(() => other.prepare(sql).run(), D1_REFUSAL);
      }
      await rejectsWith(() => beginTransaction(other), /not opened with \{ transactions: true \}/);
      await rejectsWith(() => withTransaction(other, async () => 1), /not opened with \{ transactions: true \}/);
    });

    test('BEGIN … COMMIT on the handle: nothing is visible to other handles before COMMIT', async () => {
      const { db, other } = await fresh();
      const begin = await db.prepare('BEGIN').run();
      assert.equal(begin.success, true);
      assert.equal(begin.meta.changes, 0);
      await db.prepare('INSERT INTO t (v) VALUES (?)').bind(1).run();
      await db.batch([db.prepare('INSERT INTO t (v) VALUES (2)'), db.prepare('INSERT INTO t (v) VALUES (3)')]);
      assert.equal(await count(db), 3, 'the handle reads its own writes');
      assert.equal(await count(other), 0, 'no dirty read');
      await db.prepare('COMMIT').run();
      assert.deepEqual(await values(other), [1, 2, 3]);
    });

    test('ROLLBACK discards; COMMIT and ROLLBACK without a transaction get SQLite own errors', async () => {
      const { db, other } = await fresh();
      await db.prepare('BEGIN IMMEDIATE').run();
      await db.prepare('INSERT INTO t (v) VALUES (1)').run();
      await db.prepare('ROLLBACK').run();
      assert.equal(await count(other), 0);
      assert.equal(await count(db), 0);
      await rejectsWith(() => db.prepare('COMMIT').run(), /^D1_ERROR: cannot commit - no transaction is active: SQLITE_ERROR$/);
      await rejectsWith(() => db.prepare('ROLLBACK').run(), /^D1_ERROR: cannot rollback - no transaction is active: SQLITE_ERROR$/);
      await db.prepare('BEGIN').run();
      await rejectsWith(() => db.prepare('BEGIN').run(), /cannot start a transaction within a transaction/);
      await db.prepare('END TRANSACTION').run();
      // The handle still works as an ordinary D1 handle afterwards.
      await db.prepare('INSERT INTO t (v) VALUES (9)').run();
      assert.deepEqual(await values(other), [9]);
    });

    test('a failing request inside a transaction rolls back alone; the transaction goes on', async () => {
      const { db, other } = await fresh();
      await db.exec('CREATE UNIQUE INDEX tv ON t (v)');
      await db.prepare('BEGIN').run();
      await db.prepare('INSERT INTO t (v) VALUES (1)').run();
      await rejectsWith(() => db.batch([db.prepare('INSERT INTO t (v) VALUES (2)'), db.prepare('INSERT INTO t (v) VALUES (1)')]), /UNIQUE constraint failed/);
      await db.prepare('INSERT INTO t (v) VALUES (3)').run();
      await db.prepare('COMMIT').run();
      assert.deepEqual(await values(other), [1, 3], 'the failed batch left nothing, the rest committed');
    });

    test('transaction statements inside exec, batch and one multi-statement query', async () => {
      const { db, other } = await fresh();
      await db.exec('BEGIN;\nINSERT INTO t (v) VALUES (1);\nINSERT INTO t (v) VALUES (2);\nCOMMIT;');
      await db.batch([db.prepare('BEGIN'), db.prepare('INSERT INTO t (v) VALUES (3)'), db.prepare('ROLLBACK')]);
      await db.prepare('BEGIN; INSERT INTO t (v) VALUES (4); COMMIT').run();
      assert.deepEqual(await values(other), [1, 2, 4]);
    });

    test('savepoints: ROLLBACK TO undoes part; a SAVEPOINT outside a transaction commits at its RELEASE', async () => {
      const { db, other } = await fresh();
      await db.prepare('BEGIN').run();
      await db.prepare('INSERT INTO t (v) VALUES (1)').run();
      await db.prepare('SAVEPOINT a').run();
      await db.prepare('INSERT INTO t (v) VALUES (2)').run();
      await db.prepare('SAVEPOINT "B"').run();
      await db.prepare('INSERT INTO t (v) VALUES (3)').run();
      await db.prepare('ROLLBACK TO a').run();
      await db.prepare('INSERT INTO t (v) VALUES (4)').run();
      await db.prepare('RELEASE SAVEPOINT A').run();
      await rejectsWith(() => db.prepare('RELEASE b').run(), /no such savepoint: b/);
      await db.prepare('COMMIT').run();
      assert.deepEqual(await values(other), [1, 4]);

      await db.prepare('SAVEPOINT outer_one').run();
      await db.prepare('INSERT INTO t (v) VALUES (5)').run();
      assert.equal(await count(other), 2, 'not committed before the outermost RELEASE');
      await db.prepare('RELEASE outer_one').run();
      assert.deepEqual(await values(other), [1, 4, 5]);
      await db.prepare('INSERT INTO t (v) VALUES (6)').run();
      assert.deepEqual(await values(other), [1, 4, 5, 6], 'autocommit again after it');
    });

    test('withTransaction commits on resolve, rolls back on throw, nests as savepoints, and is isolated from the handle', async () => {
      const { db, other } = await fresh();
      const answer = await withTransaction(db, async (tx) => {
        await tx.prepare('INSERT INTO t (v) VALUES (1)').run();
        assert.equal(await count(db), 0, "the handle's own requests do not see the transaction");
        await assert.rejects(
          withTransaction(tx, async (inner) => {
            await inner.prepare('INSERT INTO t (v) VALUES (2)').run();
            throw new Error('inner fails');
          }),
          /inner fails/,
        );
        await withTransaction(tx, async (inner) => {
          await inner.prepare('INSERT INTO t (v) VALUES (3)').run();
        });
        return values(tx);
      });
      assert.deepEqual(answer, [1, 3]);
      assert.deepEqual(await values(other), [1, 3]);

      await assert.rejects(
        withTransaction(db, async (tx) => {
          await tx.prepare('INSERT INTO t (v) VALUES (4)').run();
          throw new Error('outer fails');
        }),
        /outer fails/,
      );
      assert.deepEqual(await values(other), [1, 3]);
    });

    test('beginTransaction: commit and rollback once; the ended transaction refuses more', async () => {
      const { db, other } = await fresh();
      const t = await beginTransaction(db);
      await t.db.prepare('INSERT INTO t (v) VALUES (1)').run();
      await t.commit();
      await assert.rejects(t.commit(), /already ended/);
      await t.rollback(); // a no-op once ended
      const r = await beginTransaction(db, { mode: 'deferred' });
      await r.db.prepare('INSERT INTO t (v) VALUES (2)').run();
      await r.rollback();
      assert.deepEqual(await values(other), [1]);
      await rejectsWith(() => beginTransaction(db, { mode: 'sideways' as 'deferred' }), /unknown transaction mode/);
    });

    test('no lost update: concurrent read-modify-write transactions all count', async () => {
      const { db, other } = await fresh();
      await other.prepare('INSERT INTO t (id, v) VALUES (1, 0)').run();
      const increments = 8;
      await Promise.all(
        Array.from({ length: increments }, () =>
          withTransaction(db, async (tx) => {
            const v = (await tx.prepare('SELECT v FROM t WHERE id = 1').first<number>('v'))!;
            await sleep(5);
            await tx.prepare('UPDATE t SET v = ? WHERE id = 1').bind(v + 1).run();
          }),
        ),
      );
      assert.equal(await other.prepare('SELECT v FROM t WHERE id = 1').first('v'), increments);
    });

    test('deferred transactions that both read and then write: the second writer is refused, not merged', async () => {
      const { db, other } = await fresh();
      await other.prepare('INSERT INTO t (id, v) VALUES (1, 0)').run();
      const a = await beginTransaction(db, { mode: 'deferred' });
      const b = await beginTransaction(db, { mode: 'deferred' });
      const va = (await a.db.prepare('SELECT v FROM t WHERE id = 1').first<number>('v'))!;
      const vb = (await b.db.prepare('SELECT v FROM t WHERE id = 1').first<number>('v'))!;
      await a.db.prepare('UPDATE t SET v = ? WHERE id = 1').bind(va + 1).run();
      await a.commit();
      await rejectsWith(() => b.db.prepare('UPDATE t SET v = ? WHERE id = 1').bind(vb + 1).run(), /database is locked|SQLITE_BUSY/);
      await b.rollback();
      assert.equal(await other.prepare('SELECT v FROM t WHERE id = 1').first('v'), 1);
    });

    test('a second writer waits for the transaction and goes on once it commits', async () => {
      const { db, other } = await fresh();
      const t = await beginTransaction(db);
      await t.db.prepare('INSERT INTO t (v) VALUES (1)').run();
      let written = false;
      const write = other
        .prepare('INSERT INTO t (v) VALUES (2)')
        .run()
        .then(() => {
          written = true;
        });
      await sleep(200);
      assert.equal(written, false, 'the write waits while the transaction holds the write lock');
      assert.equal(await count(other), 0, 'reads do not wait');
      await t.commit();
      await write;
      assert.deepEqual(await values(other), [1, 2]);
    });

    test('a script that opens a transaction and writes waits for another transaction as a whole, then runs', async () => {
      const { db, other } = await fresh();
      const t = await beginTransaction(db);
      await t.db.prepare('INSERT INTO t (v) VALUES (1)').run();
      const script = db.exec('BEGIN;\nINSERT INTO t (v) VALUES (2);\nCOMMIT;');
      await sleep(150);
      await t.commit();
      await script;
      assert.deepEqual(await values(other), [1, 2]);
    });

    test('a second writer that waits too long gets the busy error; nothing of it is kept', async () => {
      const { db, other } = await fresh();
      const t = await beginTransaction(db);
      await t.db.prepare('INSERT INTO t (v) VALUES (1)').run();
      const started = performance.now();
      await rejectsWith(() => other.prepare('INSERT INTO t (v) VALUES (2)').run(), BUSY);
      const waited = performance.now() - started;
      assert.ok(waited >= 4000, `gave up after ${waited} ms, before the bounded wait`);
      await t.commit();
      assert.deepEqual(await values(other), [1]);
    });

    test('an idle transaction is rolled back at its timeout; the next request is told, the one after runs', async () => {
      const { db, other } = await fresh({ transactionTimeoutMs: 300 });
      await db.prepare('BEGIN').run();
      await db.prepare('INSERT INTO t (v) VALUES (1)').run();
      await sleep(900);
      // The write lock was let go: another handle writes without waiting.
      await other.prepare('INSERT INTO t (v) VALUES (2)').run();
      await rejectsWith(() => db.prepare('COMMIT').run(), /Transaction rolled back: it was idle for more than 300 ms/);
      await db.prepare('INSERT INTO t (v) VALUES (3)').run();
      assert.deepEqual(await values(other), [2, 3]);
      const t = await beginTransaction(db);
      await t.db.prepare('INSERT INTO t (v) VALUES (4)').run();
      await sleep(900);
      await rejectsWith(() => t.db.prepare('INSERT INTO t (v) VALUES (5)').run(), /idle for more than 300 ms/);
      await t.rollback();
      assert.deepEqual(await values(other), [2, 3]);
      // Connections are reused for transactions: the next one is told nothing of the last one's end.
      for (let v = 6; v <= 8; v++) await withTransaction(db, (tx) => tx.prepare('INSERT INTO t (v) VALUES (?)').bind(v).run());
      assert.deepEqual(await values(other), [2, 3, 6, 7, 8]);
    });
  });
}

function inFiles(dir: string): Make {
  return async (options = {}) => {
    const file = path.join(dir, `db-${Math.random().toString(36).slice(2)}.sqlite`);
    const db = open(file, { transactions: true, ...options });
    const other = open(file);
    handles.push(db, other);
    return { db, other };
  };
}

const handles: D1Database[] = [];
after(async () => {
  for (const h of handles) await h.close();
});

suite('embedded (open, a file)', inFiles(tempDir()));

describe('embedded specifics', () => {
  test('in memory: a transaction has the one connection; the handle waits for it', async () => {
    const db = open(':memory:', { transactions: true });
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
    const t = await beginTransaction(db);
    await t.db.prepare('INSERT INTO t (v) VALUES (1)').run();
    const read = db.prepare('SELECT count(*) AS n FROM t').first('n');
    await sleep(50);
    await t.commit();
    assert.equal(await read, 1, 'the handle read after the transaction ended');
    // A second transaction waits for the first (bounded), it does not hang.
    const first = await beginTransaction(db);
    await rejectsWith(() => beginTransaction(db), BUSY);
    await first.rollback();
    await withTransaction(db, (tx) => tx.prepare('INSERT INTO t (v) VALUES (2)').run());
    assert.equal(await db.prepare('SELECT count(*) AS n FROM t').first('n'), 2);
    await db.close();
  });

  test('with a write log, a transaction is one commit: one bookmark step, and Time Travel restores around it whole', async () => {
    const file = path.join(tempDir(), 'logged.sqlite');
    const db = open(file, { transactions: true, history: true });
    handles.push(db);
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
    const before = history(db).bookmark();
    await withTransaction(db, async (tx) => {
      for (let v = 1; v <= 5; v++) await tx.prepare('INSERT INTO t (v) VALUES (?)').bind(v).run();
    });
    const afterCommit = history(db).bookmark();
    const sequence = (bookmark: string) => Number.parseInt(bookmark.slice(9, 17), 16);
    assert.equal(sequence(afterCommit) - sequence(before), 1, `${before} -> ${afterCommit}`);
    assert.equal(await count(db), 5);
    await history(db).restore({ bookmark: before });
    assert.equal(await count(db), 0);
    await history(db).restore({ bookmark: afterCommit });
    assert.deepEqual(await values(db), [1, 2, 3, 4, 5]);
  });

  test('with a write log, commits made only through transactions stay acknowledged once the WAL is due a checkpoint, and it is checkpointed', async () => {
    const file = path.join(tempDir(), 'checkpointed.sqlite');
    const db = open(file, { transactions: true, history: { checkpointBytes: 64 * 1024 } });
    handles.push(db);
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    // Each commit writes ~8 KiB of pages: 100 of them pass the 64 KiB threshold a dozen times.
    for (let i = 0; i < 100; i++) {
      await withTransaction(db, async (tx) => {
        await tx.prepare('INSERT INTO t (v) VALUES (?)').bind('x'.repeat(3000)).run();
      });
    }
    assert.equal(await count(db), 100);
    // Checkpointed: the WAL is written over from its start instead of growing past 800 KiB.
    assert.ok(statSync(`${file}-wal`).size < 400 * 1024, `WAL of ${statSync(`${file}-wal`).size} bytes`);
  });
});

/** One server for the suite; a test that needs another transaction timeout (the server's) gets a server of its own. */
const servers = new Map<number, TestServer>();
after(async () => {
  for (const s of servers.values()) await s.close();
});

async function overHttp(options: { transactionTimeoutMs?: number } = {}): Promise<Handles> {
  const timeout = options.transactionTimeoutMs ?? 10_000;
  let at = servers.get(timeout);
  if (!at) {
    at = await startTestServer({ transactionTimeoutMs: timeout });
    servers.set(timeout, at);
  }
  const name = `db${Math.random().toString(36).slice(2, 10)}`;
  await at.createDatabase(name);
  const db = connect({ url: at.url, token: at.token, database: name, transactions: true });
  const other = connect({ url: at.url, token: at.token, database: name });
  return { db, other };
}

/** Posts one statement to dione's execute route under a transaction handle (`held`: sent from inside its transaction). */
function handlePost(at: TestServer, database: string) {
  type Answer = { success: boolean; error?: string; inTransaction?: boolean };
  return async (sql: string, transaction: string, held?: boolean) =>
    (await (
      await at.call(`/dione/v1/databases/${database}/execute`, { method: 'POST', body: JSON.stringify({ queries: [{ sql, params: [] }], transaction, ...(held ? { held } : {}) }) })
    ).json()) as Answer;
}

describe('over HTTP specifics', () => {
  test("a transaction is its token's: another token naming the same handle is outside it", async () => {
    await overHttp();
    const at = servers.get(10_000)!;
    await at.createDatabase('tokens');
    await connect({ url: at.url, token: at.token, database: 'tokens' }).exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
    type Answer = { success: boolean; results?: { rows: unknown[][] }[]; error?: string; inTransaction?: boolean };
    const send = (token: string, sql: string, transaction = 'shared-handle') =>
      at.call('/dione/v1/databases/tokens/execute', { method: 'POST', token, body: JSON.stringify({ queries: [{ sql, params: [] }], transaction }) });
    const post = async (token: string, sql: string) => (await (await send(token, sql)).json()) as Answer;
    const a = at.tokenFor('write');
    const b = at.tokenFor('write');
    assert.equal((await post(a, 'BEGIN')).inTransaction, true);
    assert.equal((await post(a, 'INSERT INTO t (v) VALUES (1)')).success, true);
    const seen = await post(b, 'SELECT count(*) FROM t');
    assert.deepEqual(seen.results?.[0]?.rows, [[0]], 'token b is not inside token a transaction');
    assert.equal(seen.inTransaction, undefined);
    assert.equal((await post(a, 'SELECT count(*) FROM t')).results?.[0]?.rows[0]?.[0], 1);
    assert.equal((await post(a, 'COMMIT')).inTransaction, false);
    const bad = await send(at.token, 'SELECT 1', 'no spaces allowed');
    assert.equal(bad.status, 400);
  });

  test('a request sent inside a transaction that its own COMMIT already ended (the answer was lost) is told it committed, not that it rolled back', async () => {
    await overHttp();
    const at = servers.get(10_000)!;
    await at.createDatabase('ended');
    const post = handlePost(at, 'ended');
    await post('CREATE TABLE t (v)', 'setup');
    assert.equal((await post('BEGIN', 'h1')).inTransaction, true);
    assert.equal((await post('INSERT INTO t VALUES (1)', 'h1', true)).success, true);
    assert.equal((await post('COMMIT', 'h1', true)).inTransaction, false);
    const after = await post('INSERT INTO t VALUES (2)', 'h1', true);
    assert.equal(after.success, false);
    assert.match(after.error!, /^Transaction already committed: its COMMIT succeeded before this request/);
    assert.equal((await post('BEGIN', 'h2')).inTransaction, true);
    assert.equal((await post('ROLLBACK', 'h2', true)).inTransaction, false);
    assert.match((await post('SELECT 1', 'h2', true)).error!, /^Transaction already ended: its own COMMIT or ROLLBACK ended it before this request, and it wrote nothing/);
    // The handle starts a new transaction with BEGIN as before; nothing of the refused requests ran.
    assert.equal((await post('BEGIN', 'h1')).inTransaction, true);
    assert.equal((await post('COMMIT', 'h1', true)).inTransaction, false);
    const rows = await connect({ url: at.url, token: at.token, database: 'ended' }).prepare('SELECT v FROM t').raw();
    assert.deepEqual(rows, [[1]]);
  });

  test('a transaction open when the database is restored (Time Travel) is rolled back, and its handle is told why', async () => {
    await overHttp();
    const at = servers.get(10_000)!;
    await at.createDatabase('restored');
    const post = handlePost(at, 'restored');
    const plain = connect({ url: at.url, token: at.token, database: 'restored' });
    await plain.exec('CREATE TABLE t (v)');
    const bookmark = ((await (await at.call(`${at.api}/restored/time_travel/bookmark`)).json()) as { result: { bookmark: string } }).result.bookmark;
    await plain.exec('INSERT INTO t VALUES (1)');
    assert.equal((await post('BEGIN', 'open')).inTransaction, true);
    assert.equal((await post('INSERT INTO t VALUES (2)', 'open', true)).success, true);
    const restored = await at.call(`${at.api}/restored/time_travel/restore?bookmark=${bookmark}`, { method: 'POST' });
    assert.equal(restored.status, 200, await restored.text());
    const after = await post('COMMIT', 'open', true);
    assert.equal(after.success, false);
    assert.match(after.error!, /^Transaction rolled back: the database was restored to an earlier point \(Time Travel\)/);
    assert.deepEqual(await plain.prepare('SELECT count(*) FROM t').raw(), [[0]]);
  });

  test('a database holds at most 64 open transactions: the next BEGIN is refused until one ends', async () => {
    const at = servers.get(10_000)!;
    await at.createDatabase('crowded');
    type Answer = { success: boolean; error?: string; inTransaction?: boolean };
    const post = async (sql: string, transaction: string) =>
      (await (
        await at.call('/dione/v1/databases/crowded/execute', { method: 'POST', body: JSON.stringify({ queries: [{ sql, params: [] }], transaction }) })
      ).json()) as Answer;
    for (let i = 0; i < 64; i++) assert.equal((await post('BEGIN', `open-${i}`)).inTransaction, true, `transaction ${i}`);
    const refused = await post('BEGIN', 'one-too-many');
    assert.equal(refused.success, false);
    assert.equal(refused.error, 'Too many open transactions on this database (64): commit or roll back one first: SQLITE_BUSY');
    assert.equal((await post('ROLLBACK', 'open-0')).inTransaction, false);
    assert.equal((await post('BEGIN', 'one-too-many')).inTransaction, true);
    for (let i = 1; i < 64; i++) await post('ROLLBACK', `open-${i}`);
    await post('ROLLBACK', 'one-too-many');
  });

  // Found by an attacker's review: each transaction holds a connection outside the descriptor
  // budget, and 64 on each of a few databases took every descriptor (EMFILE for everyone else).
  test('the server holds at most maxOpenTransactions across its databases: the next BEGIN anywhere is refused until one ends', async () => {
    const small = await startTestServer({ maxOpenTransactions: 3 });
    try {
      type Answer = { success: boolean; error?: string; inTransaction?: boolean };
      const post = async (database: string, sql: string, transaction?: string) =>
        (await (
          await small.call(`/dione/v1/databases/${database}/execute`, { method: 'POST', body: JSON.stringify({ queries: [{ sql, params: [] }], transaction }) })
        ).json()) as Answer;
      for (const name of ['tx-a', 'tx-b']) await small.createDatabase(name);
      assert.equal((await post('tx-a', 'BEGIN', 'a1')).inTransaction, true);
      assert.equal((await post('tx-a', 'BEGIN', 'a2')).inTransaction, true);
      assert.equal((await post('tx-b', 'BEGIN', 'b1')).inTransaction, true);
      for (const database of ['tx-a', 'tx-b']) {
        const refused = await post(database, 'BEGIN', 'over');
        assert.equal(refused.success, false);
        assert.equal(refused.error, 'Too many open transactions on this server (3): commit or roll back one first: SQLITE_BUSY');
      }
      // Requests outside a transaction are served meanwhile.
      assert.equal((await post('tx-b', 'SELECT 1')).success, true);
      assert.equal((await post('tx-a', 'ROLLBACK', 'a1')).inTransaction, false);
      assert.equal((await post('tx-b', 'BEGIN', 'over')).inTransaction, true);
      // A COMMIT or a ROLLBACK gives the place back, once.
      for (const [database, handle] of [['tx-a', 'a2'], ['tx-b', 'b1'], ['tx-b', 'over']]) await post(database!, 'COMMIT', handle!);
      for (const handle of ['n1', 'n2', 'n3']) assert.equal((await post('tx-a', 'BEGIN', handle)).inTransaction, true, handle);
      assert.equal((await post('tx-b', 'BEGIN', 'n4')).success, false);
    } finally {
      await small.close();
    }
  });

  test('a worker that dies holding transactions gives their places back: the server-wide bound does not leak', async () => {
    const small = await startTestServer({ maxOpenTransactions: 2, workers: 1 });
    try {
      type Answer = { success: boolean; error?: string; inTransaction?: boolean };
      const post = async (sql: string, transaction?: string, held?: boolean) =>
        (await (
          await small.call('/dione/v1/databases/tx-crash/execute', { method: 'POST', body: JSON.stringify({ queries: [{ sql, params: [] }], transaction, held }) })
        ).json()) as Answer;
      await small.createDatabase('tx-crash');
      assert.equal((await post('BEGIN', 'c1')).inTransaction, true);
      assert.equal((await post('BEGIN', 'c2')).inTransaction, true);
      assert.equal((await post('BEGIN', 'c3')).error, 'Too many open transactions on this server (2): commit or roll back one first: SQLITE_BUSY');
      // Ended as a worker out of memory is: no ROLLBACK runs, nothing in it counts down.
      await small.server.context.pool.crashWorker(0, 'abruptly');
      const reopened = await poll(async () => ((await post('BEGIN', 'd1')).inTransaction === true ? true : undefined), 100, 100);
      assert.equal(reopened, true, 'a BEGIN after the crash was refused');
      assert.equal((await post('BEGIN', 'd2')).inTransaction, true);
      assert.equal((await post('BEGIN', 'd3')).success, false);
      // The dead worker's transactions ended: their handles are told so at their next call.
      const told = await post('SELECT 1', 'c1', true);
      assert.equal(told.success, false);
      assert.match(told.error ?? '', /^Transaction rolled back/);
      for (const handle of ['d1', 'd2']) assert.equal((await post('ROLLBACK', handle, true)).inTransaction, false);
    } finally {
      await small.close();
    }
  });
});

suite('over HTTP (connect, a real server)', overHttp);
