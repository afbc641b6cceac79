// Query timeouts in place: the guard extension's watchdog thread interrupts a request that runs past
// its deadline, the request gets D1's timeout error, nothing it wrote is kept, and the same
// connection goes on serving. Real SQLite files in a temp dir.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { openSqlite } from '../src/engine/sqlite.ts';
import { Messages } from '../src/api/errors.ts';
import type { ExecuteRequest, ExecuteResponse } from '../src/api/executor.ts';
import { D1Database } from '../src/binding/database.ts';
import { Connection } from '../src/engine/connection.ts';
import { Engine, timedOut } from '../src/engine/engine.ts';
import { loadGuard } from '../src/engine/guard.ts';
import { D1Failure } from '../src/engine/sqlite-error.ts';
import { EmbeddedExecutor } from '../src/engine/executor.ts';
import { tempDir } from './helpers/binding.ts';

const TIMEOUT = 'D1 DB storage operation exceeded timeout which caused object to be reset.';
const RUNAWAY = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) AS n FROM c';
const RUNAWAY_INSERT = 'INSERT INTO t (v) WITH RECURSIVE c(x) AS (SELECT 1000 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c';
/** Counts to n: about 3 million a second. */
const countTo = (n: number) => `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${n}) SELECT count(*) AS n FROM c`;

const one = (sql: string, params: ExecuteRequest['queries'][number]['params'] = []): ExecuteRequest => ({ queries: [{ sql, params }] });
const answer = (r: ExecuteResponse) => (r.success ? 'ok' : r.error);
const file = (name: string) => path.join(tempDir(), name);

function rows(engine: Engine, sql: string): unknown[][] {
  const r = engine.execute(one(sql));
  assert.ok(r.success, answer(r));
  return r.results[0]!.rows;
}

function timed<T>(fn: () => T): { value: T; ms: number } {
  const started = performance.now();
  const value = fn();
  return { value, ms: performance.now() - started };
}

test('the timeout text is D1 exact, and the helper that arms deadlines refuses user SQL', () => {
  assert.equal(Messages.queryTimeout, TIMEOUT);
  const engine = new Engine(file('helper.sqlite'), { queryTimeoutMs: 1000 });
  try {
    for (const sql of ['SELECT dione_deadline(0, 1)', 'SELECT dione_deadline(1, 0)', 'SELECT dione_deadline(0, 0)']) {
      assert.equal(answer(engine.execute(one(sql))), 'not authorized: SQLITE_AUTH');
    }
  } finally {
    engine.close();
  }
});

test('a runaway read fails with the timeout error near its deadline, and the next query works', () => {
  const engine = new Engine(file('read.sqlite'), { queryTimeoutMs: 300 });
  try {
    assert.equal(engine.execute(one('CREATE TABLE t (v)')).success, true);
    const forms: [string, ExecuteRequest][] = [
      ['alone', one(RUNAWAY)],
      ['read-only request', { ...one(RUNAWAY), readOnly: true }],
      ['batch of reads', { queries: [{ sql: 'SELECT 1', params: [] }, { sql: RUNAWAY, params: [] }] }],
      ['after a statement of the same query', one(`SELECT 1; ${RUNAWAY}`)],
    ];
    for (const [form, request] of forms) {
      const { value, ms } = timed(() => engine.execute(request));
      assert.equal(answer(value), TIMEOUT, form);
      assert.equal(timedOut(value), true, form);
      assert.ok(ms >= 250, `${form}: interrupted after ${ms} ms, before its deadline`);
      assert.ok(ms < 5000, `${form}: took ${ms} ms`);
      assert.deepEqual(rows(engine, 'SELECT 1 + 1'), [[2]], form);
    }
    assert.equal(engine.execute(one('INSERT INTO t VALUES (1)')).success, true);
    assert.deepEqual(rows(engine, 'SELECT v FROM t'), [[1]]);
  } finally {
    engine.close();
  }
});

test('through the binding: the runaway rejects with D1_ERROR and the timeout text, the database goes on', async () => {
  const db = new D1Database(new EmbeddedExecutor(file('binding.sqlite'), { queryTimeoutMs: 300 }));
  try {
    const started = performance.now();
    await assert.rejects(db.prepare(RUNAWAY).all(), { message: `D1_ERROR: ${TIMEOUT}` });
    assert.ok(performance.now() - started < 5000);
    await db.exec('CREATE TABLE t (v)');
    await assert.rejects(db.batch([db.prepare('INSERT INTO t VALUES (1)'), db.prepare(RUNAWAY_INSERT)]), { message: `D1_ERROR: ${TIMEOUT}` });
    assert.equal(await db.prepare('SELECT count(*) AS n FROM t').first('n'), 0);
    await db.prepare('INSERT INTO t VALUES (2)').run();
    assert.deepEqual((await db.prepare('SELECT v FROM t').all()).results, [{ v: 2 }]);
  } finally {
    db.close();
  }
});

test('a runaway write is interrupted and leaves the table as it was; the next write is durable', () => {
  const name = file('write.sqlite');
  const engine = new Engine(name, { queryTimeoutMs: 300 });
  const before = [[1], [2], [3]];
  let sequence: number;
  try {
    assert.equal(engine.execute(one('CREATE TABLE t (v)')).success, true);
    assert.equal(engine.execute(one('INSERT INTO t VALUES (1), (2), (3)')).success, true);
    sequence = engine.commitSequence;
    const runaways: [string, ExecuteRequest][] = [
      ['INSERT ... SELECT', one(RUNAWAY_INSERT)],
      // Rows 1 and 2 are updated before row 3 never finishes.
      ['UPDATE with a slow expression', one(`UPDATE t SET v = v + 100 + (CASE WHEN v = 3 THEN (${RUNAWAY}) ELSE 0 END)`)],
      ['a write then a runaway read', { queries: [{ sql: 'INSERT INTO t VALUES (4)', params: [] }, { sql: RUNAWAY, params: [] }] }],
      ['a write then a runaway write', one(`DELETE FROM t WHERE v = 1; ${RUNAWAY_INSERT}`)],
    ];
    for (const [form, request] of runaways) {
      const { value, ms } = timed(() => engine.execute(request));
      assert.equal(answer(value), TIMEOUT, form);
      assert.ok(ms < 5000, `${form}: took ${ms} ms`);
      assert.deepEqual(rows(engine, 'SELECT v FROM t ORDER BY v'), before, form);
      assert.equal(engine.commitSequence, sequence, `${form}: nothing committed`);
    }
    const next = engine.execute(one('INSERT INTO t VALUES (4)'));
    assert.ok(next.success, answer(next));
    assert.equal(next.results[0]!.meta.changes, 1);
    assert.equal(engine.commitSequence, sequence + 1);
  } finally {
    engine.close();
  }
  const reopened = new Engine(name);
  try {
    assert.deepEqual(rows(reopened, 'SELECT v FROM t ORDER BY v'), [...before, [4]]);
    assert.equal(reopened.commitSequence, sequence + 1);
  } finally {
    reopened.close();
  }
});

test('in a group commit, a runaway write fails alone: the innocent requests commit and succeed', () => {
  const name = file('group.sqlite');
  const engine = new Engine(name, { queryTimeoutMs: 300 });
  let sequence: number;
  try {
    assert.equal(engine.execute(one('CREATE TABLE t (v)')).success, true);
    sequence = engine.commitSequence;
    const requests = [
      one('INSERT INTO t VALUES (1)'),
      one('INSERT INTO t VALUES (2)'),
      one(RUNAWAY_INSERT),
      one('INSERT INTO t VALUES (3)'),
      // A runaway read inside the group: SQLite keeps the transaction, its savepoint is rolled back.
      { queries: [{ sql: 'INSERT INTO t VALUES (50)', params: [] }, { sql: RUNAWAY, params: [] }] },
      one('INSERT INTO t VALUES (4)'),
    ];
    const reported: number[] = [];
    const { value: answers, ms } = timed(() =>
      engine.executeMany(requests, (i, r) => {
        reported.push(i);
        if (r.success) assert.ok(r.bookmark, `answer ${i} has its bookmark`);
      }),
    );
    assert.deepEqual(answers.map(answer), ['ok', 'ok', TIMEOUT, 'ok', TIMEOUT, 'ok']);
    assert.deepEqual(reported, [0, 1, 2, 3, 4, 5]);
    assert.ok(ms < 10_000, `took ${ms} ms`);
    for (const i of [0, 1, 3, 5]) {
      const r = answers[i]!;
      assert.ok(r.success);
      assert.equal(r.results[0]!.meta.changes, 1, `request ${i}`);
    }
    assert.equal(engine.commitSequence, sequence + 1, 'one commit for the group');
    assert.deepEqual(rows(engine, 'SELECT v FROM t ORDER BY v'), [[1], [2], [3], [4]]);
    // The innocents' answers carry the bookmark of the commit that holds them.
    assert.equal((answers[0] as { bookmark: string }).bookmark, engine.bookmark);
  } finally {
    engine.close();
  }
  const reopened = new Engine(name);
  try {
    assert.deepEqual(rows(reopened, 'SELECT v FROM t ORDER BY v'), [[1], [2], [3], [4]]);
    assert.equal(reopened.commitSequence, sequence + 1);
  } finally {
    reopened.close();
  }
});

test('a group with two runaway writes keeps the rest, and a group of runaways only commits nothing', () => {
  const engine = new Engine(file('groups.sqlite'), { queryTimeoutMs: 200 });
  try {
    assert.equal(engine.execute(one('CREATE TABLE t (v)')).success, true);
    const sequence = engine.commitSequence;
    const mixed = engine.executeMany([one(RUNAWAY_INSERT), one('INSERT INTO t VALUES (1)'), one(RUNAWAY_INSERT), one('INSERT INTO t VALUES (2)')]);
    assert.deepEqual(mixed.map(answer), [TIMEOUT, 'ok', TIMEOUT, 'ok']);
    assert.equal(engine.commitSequence, sequence + 1);
    const runaways = engine.executeMany([one(RUNAWAY_INSERT), one(RUNAWAY_INSERT)]);
    assert.deepEqual(runaways.map(answer), [TIMEOUT, TIMEOUT]);
    assert.equal(engine.commitSequence, sequence + 1);
    assert.deepEqual(rows(engine, 'SELECT v FROM t ORDER BY v'), [[1], [2]]);
  } finally {
    engine.close();
  }
});

test('a script (an import): each query has the whole timeout, a runaway one is still stopped, and afterwards requests are timed whole again', () => {
  const engine = new Engine(file('per-query.sqlite'));
  try {
    // A query that takes a twentieth of the timeout on this machine (the median of five runs: the
    // machine is shared, and CI runs tests side by side); 200 of them, ten timeouts, so the script
    // runs past one timeout even when the machine is several times faster than when measured.
    let n = 100_000;
    const typical = () => [0, 1, 2, 3, 4].map(() => timed(() => engine.execute(one(countTo(n)))).ms).sort((a, b) => a - b)[2]!;
    let single = typical();
    while (single < 15 && n < 50_000_000) {
      n *= 2;
      single = typical();
    }
    const timeoutMs = Math.ceil(single * 20);
    engine.setQueryTimeout(timeoutMs);
    const queries = Array.from({ length: 200 }, () => ({ sql: countTo(n), params: [] }));
    const many: ExecuteRequest = { queries, resultsFormat: 'NONE' };
    assert.equal(answer(engine.execute(many)), TIMEOUT, 'timed whole, the request is longer than the timeout');
    const { value, ms } = timed(() => engine.executeScript([queries.slice(0, 50), queries.slice(50)]));
    assert.ok(value.success && value.statements === 200, JSON.stringify(value));
    assert.ok(ms > timeoutMs, `ran ${ms} ms, timeout ${timeoutMs} ms`);
    // A runaway among them: stopped at the timeout, nothing of the script kept.
    const stopped = timed(() => engine.executeScript([[{ sql: 'CREATE TABLE kept (x)', params: [] }], [{ sql: countTo(1_000_000_000), params: [] }]]));
    assert.equal(stopped.value.success ? 'ok' : stopped.value.error, TIMEOUT);
    assert.ok(stopped.ms < timeoutMs * 20, `stopped after ${stopped.ms} ms`);
    assert.deepEqual(rows(engine, "SELECT count(*) FROM sqlite_master WHERE name = 'kept'"), [[0]]);
    assert.equal(answer(engine.execute(many)), TIMEOUT, 'restored');
    const failing = engine.executeScript(
      (function* () {
        yield [{ sql: 'CREATE TABLE kept (x)', params: [] }];
        throw new Error('the file could not be read');
      })(),
    );
    assert.equal(failing.success, false);
    assert.deepEqual(rows(engine, "SELECT count(*) FROM sqlite_master WHERE name = 'kept'"), [[0]]);
    assert.equal(answer(engine.execute(many)), TIMEOUT);
  } finally {
    engine.close();
  }
});

test('no deadline by default: an engine without queryTimeoutMs runs a long request to the end', () => {
  const engine = new Engine(file('none.sqlite'));
  try {
    assert.equal(answer(engine.execute(one(countTo(1_000_000)))), 'ok');
  } finally {
    engine.close();
  }
});

test('many connections armed at once, closed while armed (fired or not): no crash, deadlines keep working', async () => {
  const dir = tempDir();
  for (let round = 0; round < 15; round++) {
    const connections = Array.from({ length: 20 }, (_, i) => new Connection(path.join(dir, `c${i}.sqlite`)));
    // Some past their deadline (the watchdog interrupts them over and over), some not yet.
    connections.forEach((c, i) => {
      c.armDeadline(i % 2 === 0 ? 1 : 5 + i * 3);
    });
    await new Promise((resolve) => setTimeout(resolve, 3));
    for (let i = connections.length - 1; i >= 0; i--) connections[i]!.close();
    // Every connection is gone (SQLite unloads the extension); the watchdog wakes for deadlines
    // that were armed and must find nothing.
    await new Promise((resolve) => setTimeout(resolve, 80));
  }
  // Closed without disarming: the extension's state leaves the watch list as SQLite frees it.
  for (let round = 0; round < 15; round++) {
    const raw = Array.from({ length: 20 }, (_, i) => {
      const db = openSqlite(path.join(dir, `r${i}.sqlite`));
      loadGuard(db);
      const token = db.prepare('SELECT dione_claim()').pluck().safeIntegers(true).get();
      db.prepare('SELECT dione_deadline(?, ?)').get(token, i % 2 === 0 ? 1 : 5 + i * 3);
      return { db, token };
    });
    await new Promise((resolve) => setTimeout(resolve, 3));
    for (const { db, token } of raw) {
      // The watchdog keeps interrupting the connections past their deadline: retry when it hit this.
      for (let attempt = 1; ; attempt++) {
        try {
          db.prepare('SELECT dione_release(?)').get(token);
          break;
        } catch (e) {
          if (attempt >= 100 || (e as { code?: string }).code !== 'SQLITE_INTERRUPT') throw e;
        }
      }
      db.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 80));
  }
  const engine = new Engine(path.join(dir, 'after.sqlite'), { queryTimeoutMs: 200 });
  try {
    assert.equal(answer(engine.execute(one(RUNAWAY))), TIMEOUT);
    assert.deepEqual(rows(engine, 'SELECT 1'), [[1]]);
  } finally {
    engine.close();
  }
});

test('engines in several threads, armed at once: each is interrupted at its own deadline, no sooner', async () => {
  const dir = tempDir();
  // Worker threads do not inherit tsx from --import: the worker registers it itself.
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    (async () => {
      (await import(workerData.tsx)).register();
      const { Engine } = await import(workerData.engine);
      const engine = new Engine(workerData.file, { queryTimeoutMs: workerData.ms });
      const started = performance.now();
      const r = engine.execute({ queries: [{ sql: workerData.sql, params: [] }] });
      const ms = performance.now() - started;
      const after = engine.execute({ queries: [{ sql: 'SELECT 1', params: [] }] });
      engine.close();
      parentPort.postMessage({ error: r.error, ms, after: after.success });
    })();`;
  const deadlines = [150, 250, 350, 450, 550, 650];
  const results = await Promise.all(
    deadlines.map(
      (ms, i) =>
        new Promise<{ error?: string; ms: number; after: boolean }>((resolve, reject) => {
          const workerData = { tsx: import.meta.resolve('tsx/esm/api'), engine: import.meta.resolve('../src/engine/engine.ts'), file: path.join(dir, `w${i}.sqlite`), ms, sql: RUNAWAY };
          const worker = new Worker(code, { eval: true, workerData });
          worker.once('message', resolve);
          worker.once('error', reject);
        }),
    ),
  );
  results.forEach((r, i) => {
    assert.equal(r.error, TIMEOUT, `thread ${i}`);
    assert.ok(r.ms >= deadlines[i]! - 20, `thread ${i} was interrupted after ${r.ms} ms, before its deadline of ${deadlines[i]} ms`);
    // Six busy threads share the machine's cores: generous.
    assert.ok(r.ms < 10_000, `thread ${i} took ${r.ms} ms`);
    assert.equal(r.after, true, `thread ${i}: the next query`);
  });
});

test('a deadline that passes between statements still stops the next one; disarming stops it', () => {
  const connection = new Connection(file('between.sqlite'));
  const spin = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until);
  };
  try {
    // SQLite clears the interrupt flag when a statement starts on an idle connection: only
    // interrupting again (the watchdog does, every few ms until disarmed) stops this one.
    connection.armDeadline(1);
    spin(20);
    const { ms } = timed(() => assert.throws(() => connection.db.prepare(countTo(20_000_000)).get(), { code: 'SQLITE_INTERRUPT' }));
    assert.ok(ms < 2000, `interrupted after ${ms} ms`);
    assert.equal(connection.disarmDeadline(), true, 'the deadline had fired');
    assert.deepEqual(connection.db.prepare(countTo(1_000_000)).raw().get(), [1_000_000]);
    connection.armDeadline(10_000);
    assert.equal(connection.disarmDeadline(), false, 'not fired');
  } finally {
    connection.close();
  }
});

test('helpers that change the connection state run whole while the watchdog interrupts it over and over', () => {
  const connection = new Connection(file('helpers.sqlite'));
  try {
    connection.armDeadline(1);
    const started = performance.now();
    // The window in which an interrupt can stop a helper is tiny: many tries.
    for (let i = 0; i < 20_000 || performance.now() - started < 600; i++) {
      try {
        connection.prepareRead(`SELECT ${i}`);
      } catch (e) {
        // Only the statement being prepared may fail, as D1's timeout, never a read-mode switch.
        assert.ok(e instanceof D1Failure, String(e));
        assert.equal(e.detail, TIMEOUT);
      }
    }
    connection.disarmDeadline();
    // Read mode is off: a write compiles.
    assert.doesNotThrow(() => connection.prepare('CREATE TABLE t (v)'));
  } finally {
    connection.close();
  }
});

test('a deadline does not fire for fast requests: 2,000 quick reads and writes with a 50 ms deadline', () => {
  const engine = new Engine(file('fast.sqlite'), { queryTimeoutMs: 50, durability: 'normal' });
  // The deadline is wall-clock time: on a starved machine a request can really overrun it. What
  // must never happen is a timeout for a request that ran for less than its deadline.
  let overruns = 0;
  const check = (label: string, run: () => ExecuteResponse[]): ExecuteResponse[] => {
    const { value, ms } = timed(run);
    for (const r of value) {
      if (r.success) continue;
      assert.equal(r.error, TIMEOUT, label);
      assert.ok(ms >= 50, `${label}: timed out after ${ms} ms, under its 50 ms deadline`);
      overruns++;
    }
    return value;
  };
  try {
    assert.equal(engine.execute(one('CREATE TABLE t (id INTEGER PRIMARY KEY, v)')).success, true);
    const started = performance.now();
    let count = 0;
    // Long enough that a deadline left armed from an earlier request would fire.
    while (count < 2000 || performance.now() - started < 500) {
      const [write] = check(`insert ${count}`, () => [engine.execute(one('INSERT INTO t (v) VALUES (?)', [count]))]);
      if (write!.success) {
        const [read] = check(`read ${count}`, () => [engine.execute(one('SELECT v FROM t WHERE id = ?', [write!.results[0]!.meta.last_row_id]))]);
        if (read!.success) assert.deepEqual(read!.results[0]!.rows, [[count]]);
      }
      check(`group ${count}`, () => engine.executeMany([one('UPDATE t SET v = v WHERE id = 1'), one('SELECT count(*) FROM t')]));
      count++;
    }
    assert.ok(overruns < count / 10, `${overruns} of ${count * 4} requests overran 50 ms`);
  } finally {
    engine.close();
  }
});

test('deadlines that land anywhere in a request never leave the connection broken', () => {
  const engine = new Engine(file('phases.sqlite'), { durability: 'normal' });
  try {
    assert.equal(engine.execute(one('CREATE TABLE t (v)')).success, true);
    let timeouts = 0;
    for (let i = 0; i < 300; i++) {
      engine.setQueryTimeout(1);
      // New SQL text each time: the statements are prepared (in read mode, for reads) inside the request.
      const n = 1 + ((i * 7919) % 20_000);
      const request: ExecuteRequest =
        i % 3 === 0
          ? { queries: [{ sql: `INSERT INTO t VALUES (${i})`, params: [] }, { sql: countTo(n), params: [] }] }
          : i % 3 === 1
            ? one(`${countTo(n)} -- ${i}`)
            : { queries: [{ sql: `SELECT ${i}`, params: [] }, { sql: countTo(n), params: [] }, { sql: `SELECT ${i} + 1`, params: [] }], readOnly: true };
      const r = i % 5 === 0 ? engine.executeMany([request, one(`INSERT INTO t VALUES (${-i})`)])[0]! : engine.execute(request);
      assert.ok(r.success || r.error === TIMEOUT, `request ${i}: ${answer(r)}`);
      if (!r.success) timeouts++;
      engine.setQueryTimeout(0);
      // The connection is whole: writes are allowed (read mode is off), reads see a coherent state.
      const write = engine.execute(one('INSERT INTO t VALUES (?)', [i]));
      assert.ok(write.success, `after request ${i}: ${answer(write)}`);
      assert.equal(write.results[0]!.meta.changes, 1);
    }
    assert.ok(timeouts > 0, 'some requests were interrupted');
    const sequence = engine.commitSequence;
    assert.equal(engine.execute(one('INSERT INTO t VALUES (0)')).success, true);
    assert.equal(engine.commitSequence, sequence + 1);
  } finally {
    engine.close();
  }
});
