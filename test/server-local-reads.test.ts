// Reads answered on the server's own thread (src/server/host/local-reads.ts), through a real
// server's REST API: they happen (the pool counts them), they see every acknowledged write with the
// worker's meta (last_row_id included), and they never outlive the file they read: a Time Travel
// restore, a deleted and re-created database, a write that failed. A read too slow for the server
// thread is answered by a worker, whole. `localReads: 1` makes a database eligible after one read.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { restImport } from './helpers/rest-transfer.ts';
import { type Envelope, fetchJson, jsonHeaders } from './helpers/server-checks.ts';
import { spawnServer, startTestServer, type TestServer } from './helpers/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer({ localReads: 1 });
});
after(() => s?.close());

const send = <T = any>(method: string, url: string, body?: unknown, token = s.token) =>
  fetchJson<Envelope<T>>(url, { method, headers: jsonHeaders(token), body: body === undefined ? undefined : JSON.stringify(body) });

async function query(db: string, sql: string, params: unknown[] = [], token = s.token): Promise<{ results: any[]; meta: any }> {
  const reply = await send('POST', `${s.api}/${db}/query`, { sql, params }, token);
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body.result.at(-1);
}

const served = () => s.server.context.pool.localReadStats.served;

/**
 * Reads `sql` (each answer must be `expected`) until one is answered on the server thread, at most
 * 300 times: a busy thread hands reads to the workers for a while. True when one was.
 */
async function readsHere(db: string, sql: string, expected: unknown[]): Promise<boolean> {
  const before = served();
  for (let i = 0; i < 300 && served() === before; i++) assert.deepEqual((await query(db, sql)).results, expected, `read ${i}`);
  return served() > before;
}
const values = async (db: string) => (await query(db, 'SELECT v FROM t ORDER BY v')).results.map((r) => r.v);

describe('reads on the server thread', () => {
  test('every read after a write sees it, with the worker connection’s last_row_id, and reads are answered here', async () => {
    await s.createDatabase('lr-basic');
    await query('lr-basic', 'CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
    await query('lr-basic', 'SELECT 1');
    const before = served();
    for (let i = 1; i <= 40; i++) {
      const inserted = await query('lr-basic', 'INSERT INTO t (v) VALUES (?)', [i]);
      const read = await query('lr-basic', 'SELECT count(*) AS n, max(v) AS top FROM t');
      assert.deepEqual(read.results, [{ n: i, top: i }]);
      // D1 reports its connection's last insert rowid on reads too.
      assert.equal(read.meta.last_row_id, inserted.meta.last_row_id);
      assert.equal(read.meta.changes, 0);
      assert.equal(read.meta.changed_db, false);
      assert.equal(read.meta.rows_read, i);
      assert.equal(read.meta.size_after, inserted.meta.size_after);
    }
    // How many depends on the thread's load (a busy thread hands reads to the workers), not whether.
    assert.ok(served() > before, 'no read was answered on the server thread');
    assert.ok(s.server.context.pool.localReadStats.copies >= 1);
    const metrics = await (await s.call('/metrics')).text();
    const counted = Number(/^dione_local_reads_total (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(counted >= served() - 1 && counted > 0, `dione_local_reads_total ${counted}, served ${served()}`);
  });

  // Found by a differential against workerd: the copy's connection answered 0 to all three, and
  // `WHERE rowid = last_insert_rowid()` found nothing.
  test('last_insert_rowid(), changes() and total_changes() in a read answer the worker connection’s state, as D1’s one connection does', async () => {
    await s.createDatabase('lr-state');
    await query('lr-state', 'CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
    assert.ok(await readsHere('lr-state', 'SELECT count(*) AS n FROM t', [{ n: 0 }]), 'no read was answered on the server thread');
    const inserted = await query('lr-state', 'INSERT INTO t (v) VALUES (7), (8)');
    assert.equal(inserted.meta.last_row_id, 2);
    assert.ok(await readsHere('lr-state', 'SELECT count(*) AS n FROM t', [{ n: 2 }]), 'reads stopped being answered on the server thread');
    for (const sql of [
      'SELECT last_insert_rowid() AS l, changes() AS c',
      'SELECT LAST_INSERT_ROWID /* c */ () AS l, "changes"() AS c',
      'SELECT 1; SELECT last_insert_rowid() AS l, changes() AS c',
    ]) {
      assert.deepEqual((await query('lr-state', sql)).results, [{ l: 2, c: 2 }], sql);
    }
    assert.deepEqual((await query('lr-state', 'SELECT v FROM t WHERE rowid = last_insert_rowid()')).results, [{ v: 8 }]);
    assert.ok((await query('lr-state', 'SELECT total_changes() AS tc')).results[0].tc >= 2);
  });

  test('after a write that failed, reads still report the worker’s last_row_id', async () => {
    await s.createDatabase('lr-failed');
    await query('lr-failed', 'CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER UNIQUE)');
    await query('lr-failed', 'INSERT INTO t (v) VALUES (1)');
    await query('lr-failed', 'SELECT 1');
    // The batch inserts row 2, then fails and is rolled back: SQLite keeps that insert's rowid.
    const failed = await send('POST', `${s.api}/lr-failed/query`, { sql: 'INSERT INTO t (v) VALUES (2); INSERT INTO t (v) VALUES (1)' });
    assert.equal(failed.status, 400, JSON.stringify(failed.body));
    const first = await query('lr-failed', 'SELECT count(*) AS n FROM t');
    const second = await query('lr-failed', 'SELECT count(*) AS n FROM t');
    assert.deepEqual(first.results, [{ n: 1 }]);
    assert.equal(second.meta.last_row_id, first.meta.last_row_id);
  });

  test('a Time Travel restore is seen by the next read', async () => {
    await s.createDatabase('lr-restore');
    await query('lr-restore', 'CREATE TABLE t (v INTEGER)');
    await query('lr-restore', 'INSERT INTO t VALUES (1)');
    const bookmark = (await send('GET', `${s.api}/lr-restore/time_travel/bookmark`)).body.result.bookmark;
    for (let i = 2; i <= 5; i++) await query('lr-restore', 'INSERT INTO t VALUES (?)', [i]);
    for (let i = 0; i < 5; i++) assert.deepEqual(await values('lr-restore'), [1, 2, 3, 4, 5]);
    const before = served();
    const restored = await send('POST', `${s.api}/lr-restore/time_travel/restore?bookmark=${bookmark}`);
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    // Until one is answered on the server thread again (a busy thread hands reads to the workers).
    for (let i = 0; i < 5 || (served() === before && i < 100); i++) assert.deepEqual(await values('lr-restore'), [1]);
    assert.ok(served() > before, 'reads after the restore are answered on the server thread again');
    await query('lr-restore', 'INSERT INTO t VALUES (9)');
    assert.deepEqual(await values('lr-restore'), [1, 9]);
  });

  test("a PRAGMA that changes the worker connection's settings: every later read answers with them", async () => {
    await s.createDatabase('lr-pragma');
    await query('lr-pragma', 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    await query('lr-pragma', "INSERT INTO t (v) VALUES ('a')");
    // Hot: a copy answers reads on the server thread.
    assert.ok(await readsHere('lr-pragma', "SELECT count(*) AS n FROM t WHERE v LIKE 'A'", [{ n: 1 }]), 'no read was answered on the server thread');
    // Set in a request that fails: the setting stays (a rollback does not undo it), as on D1's one connection.
    const failed = await send('POST', `${s.api}/lr-pragma/query`, { sql: 'PRAGMA case_sensitive_like = 1; SELECT nosuch FROM t' });
    assert.equal(failed.status, 400);
    for (let i = 0; i < 40; i++) assert.deepEqual((await query('lr-pragma', "SELECT count(*) AS n FROM t WHERE v LIKE 'A'")).results, [{ n: 0 }], `read ${i}`);
    await query('lr-pragma', 'PRAGMA case_sensitive_like = 0');
    assert.deepEqual((await query('lr-pragma', "SELECT count(*) AS n FROM t WHERE v LIKE 'A'")).results, [{ n: 1 }]);
  });

  test('a setting made by an import holds for later reads too; a PRAGMA that keeps nothing leaves reads here', async () => {
    await s.createDatabase('lr-import-pragma');
    await query('lr-import-pragma', 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    await query('lr-import-pragma', "INSERT INTO t (v) VALUES ('a')");
    // defer_foreign_keys ends with its transaction, optimize sets nothing: reads stay on the server thread.
    await query('lr-import-pragma', 'PRAGMA defer_foreign_keys = on');
    await query('lr-import-pragma', 'PRAGMA optimize');
    assert.ok(await readsHere('lr-import-pragma', "SELECT count(*) AS n FROM t WHERE v LIKE 'A'", [{ n: 1 }]), 'reads went to the workers after a PRAGMA that keeps nothing');
    const imported = await restImport(s, 'lr-import-pragma', 'PRAGMA case_sensitive_like = 1;\nINSERT INTO t (v) VALUES (\'b\');\n');
    assert.equal(imported.status, 'complete', JSON.stringify(imported));
    const before = served();
    for (let i = 0; i < 40; i++) assert.deepEqual((await query('lr-import-pragma', "SELECT count(*) AS n FROM t WHERE v LIKE 'A'")).results, [{ n: 0 }], `read ${i}`);
    assert.equal(served(), before, 'no read answered on the server thread');
  });

  test('a deleted and re-created database is read afresh', async () => {
    const uuid = await s.createDatabase('lr-recreate');
    await query('lr-recreate', 'CREATE TABLE t (v INTEGER)');
    await query('lr-recreate', 'INSERT INTO t VALUES (7)');
    for (let i = 0; i < 5; i++) assert.deepEqual(await values('lr-recreate'), [7]);
    const deleted = await send('DELETE', `${s.api}/${uuid}`);
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    const gone = await send('POST', `${s.api}/${uuid}/query`, { sql: 'SELECT v FROM t' });
    assert.equal(gone.status, 404, JSON.stringify(gone.body));
    await s.createDatabase('lr-recreate');
    const missing = await send('POST', `${s.api}/lr-recreate/query`, { sql: 'SELECT v FROM t' });
    assert.equal(missing.status, 400, JSON.stringify(missing.body));
    assert.match(JSON.stringify(missing.body), /no such table: t/);
  });

  test('a read too slow for the server thread is answered whole by a worker, and later ones go there at once', async () => {
    await s.createDatabase('lr-slow');
    await query('lr-slow', 'SELECT 1');
    await query('lr-slow', 'SELECT 1');
    const slow = 'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT count(*) AS c FROM n';
    const before = served();
    for (let i = 0; i < 2; i++) {
      const started = performance.now();
      const answer = await query('lr-slow', slow);
      assert.deepEqual(answer.results, [{ c: 3000000 }]);
      assert.ok(performance.now() - started < 25_000);
    }
    assert.equal(served(), before, 'the slow read was not answered on the server thread');
  });

  test('concurrent writers and readers: each writer reads its own writes, and no reader sees the table shrink or skip ahead of what was acknowledged', async () => {
    await s.createDatabase('lr-race');
    await query('lr-race', 'SELECT 1');
    const before = served();
    // Reads go to the server thread only while it has time to spare: on a loaded machine a round may
    // see none answered there, and it is run again on a fresh table (at most 5 rounds).
    for (let round = 0; round < 5 && served() === before; round++) {
      const table = `t${round}`;
      await query('lr-race', `CREATE TABLE ${table} (id INTEGER PRIMARY KEY, writer INTEGER, k INTEGER)`);
      let acknowledged = 0;
      const writers = Array.from({ length: 6 }, async (_, writer) => {
        for (let k = 1; k <= 25; k++) {
          const inserted = await query('lr-race', `INSERT INTO ${table} (writer, k) VALUES (?, ?)`, [writer, k]);
          acknowledged = Math.max(acknowledged, inserted.meta.last_row_id);
          const own = await query('lr-race', `SELECT count(*) AS n, max(k) AS top FROM ${table} WHERE writer = ?`, [writer]);
          assert.deepEqual(own.results, [{ n: k, top: k }], `writer ${writer} after its write ${k}`);
        }
      });
      const readers = Array.from({ length: 3 }, async () => {
        let seen = 0;
        for (let i = 0; i < 60; i++) {
          const floor = acknowledged;
          const read = await query('lr-race', `SELECT count(*) AS n FROM ${table}`);
          const n = read.results[0].n;
          assert.ok(n >= seen, `the table shrank under a reader: ${n} after ${seen}`);
          assert.ok(n >= floor, `a reader saw ${n} rows after ${floor} were acknowledged`);
          seen = n;
        }
      });
      await Promise.all([...writers, ...readers]);
      assert.deepEqual((await query('lr-race', `SELECT count(*) AS n FROM ${table}`)).results, [{ n: 150 }]);
    }
    assert.ok(served() > before, 'no read was answered on the server thread');
  });

  test('a read-only token reads here too, and its writes are still refused', async () => {
    await s.createDatabase('lr-reader');
    await query('lr-reader', 'CREATE TABLE t (v INTEGER)');
    await query('lr-reader', 'INSERT INTO t VALUES (3)');
    const reader = s.tokenFor('read', 'lr-reader');
    for (let i = 0; i < 3; i++) assert.deepEqual((await query('lr-reader', 'SELECT v FROM t', [], reader)).results, [{ v: 3 }]);
    const refused = await send('POST', `${s.api}/lr-reader/query`, { sql: 'INSERT INTO t VALUES (4)' }, reader);
    assert.notEqual(refused.status, 200);
    assert.deepEqual(await values('lr-reader'), [3]);
  });
});

describe('reads on the server thread turned off', () => {
  test('localReads: false answers every read from a worker', async () => {
    const off = await startTestServer({ localReads: false });
    try {
      await off.createDatabase('lr-off');
      for (let i = 0; i < 10; i++) {
        const reply = await fetchJson<Envelope<any>>(`${off.api}/lr-off/query`, { method: 'POST', headers: jsonHeaders(off.token), body: JSON.stringify({ sql: 'SELECT 1 AS one' }) });
        assert.equal(reply.status, 200);
      }
      assert.deepEqual(off.server.context.pool.localReadStats, { served: 0, copies: 0 });
    } finally {
      await off.close();
    }
  });

  test('dione serve --no-local-reads: none counted in /metrics, while the default server counts them', async () => {
    for (const [flags, expectSome] of [[['--no-local-reads'], false], [[], true]] as const) {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'dione-local-reads-'));
      const spawned = await spawnServer(dataDir, ['--dev', ...flags]);
      try {
        const api = `${spawned.url}/client/v4/accounts/${spawned.accountId}/d1/database`;
        const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        assert.equal((await post(api, { name: 'flag' })).status, 200);
        const counted = async () => Number(/^dione_local_reads_total (\d+)$/m.exec(await (await fetch(`${spawned.url}/metrics`)).text())?.[1]);
        // Past the default heat (32 reads a second), so the default server opens a copy; it answers
        // on its HTTP thread once that thread has time to spare (bounded: 3,000 reads, 20 s).
        const until = Date.now() + 20_000;
        for (let i = 1; i <= 3000 && Date.now() < until; i++) {
          assert.equal((await post(`${api}/flag/query`, { sql: 'SELECT 1 AS one' })).status, 200);
          if (i % 100 === 0 && (await counted()) > 0) break;
          if (!expectSome && i === 300) break;
        }
        if (expectSome) assert.ok((await counted()) > 0, 'the default server answered no read on its HTTP thread');
        else assert.equal(await counted(), 0);
      } finally {
        spawned.child.kill('SIGTERM');
        await new Promise((r) => spawned.child.once('exit', r));
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
  });
});
