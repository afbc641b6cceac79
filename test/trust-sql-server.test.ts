// SQLite, not Dione's JS lexer, is the authority on what a request may do: regressions against a
// real `dione serve` (in process, temp data directory) through each public protocol: the REST API
// (/query and /raw), workerd's binding protocol (POST /query, database in a header) and
// dione/client. Read tokens cannot write or change the connection state later writers see,
// however the SQL is spelled; the guard's helpers answer no user SQL; temp schema objects and
// reserved names are refused; in a group commit only the request that broke a deferred constraint
// fails; a write reported as failed is not applied; the dump route returns no free page.
// The embedded side: trust-sql.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect } from '../src/client.ts';
import type { D1Database } from '../src/index.ts';
import { SESSION_HEADER } from '../src/server/routes/sql.ts';
import { HELPER_CALLS, RESERVED_NAMES, TEMP_OBJECTS } from './helpers/attacks.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const RESET = 'Durable Object was reset and rolled back to its last known good state because the application left the database in a state where constraints were violated';

let s: TestServer;
before(async () => {
  s = await startTestServer({});
});
after(() => s?.close());

type Protocol = 'rest' | 'raw' | 'workerd' | 'client';
const PROTOCOLS: Protocol[] = ['rest', 'raw', 'workerd', 'client'];

interface Outcome {
  ok: boolean;
  /** The HTTP status (0 for dione/client, which only shows the error). */
  status: number;
  /** The error message ('' on success). */
  message: string;
  /** The session bookmark the answer carried, if any. */
  bookmark: string | null;
}

const clients = new Map<string, D1Database>();
function clientFor(database: string, token: string): D1Database {
  const key = `${database}\n${token}`;
  let client = clients.get(key);
  if (!client) clients.set(key, (client = connect({ url: s.url, token, database })));
  return client;
}

/** One request (a batch when `sql` is an array) to `database` in `protocol`, with `token`. */
async function send(protocol: Protocol, database: string, sql: string | string[], token: string): Promise<Outcome> {
  const batch = Array.isArray(sql);
  if (protocol === 'client') {
    const client = clientFor(database, token);
    const session = client.withSession('first-primary');
    try {
      if (batch) await session.batch(sql.map((q) => session.prepare(q)));
      else await session.prepare(sql).all();
      return { ok: true, status: 0, message: '', bookmark: session.getBookmark() };
    } catch (e) {
      return { ok: false, status: 0, message: (e as Error).message, bookmark: null };
    }
  }
  let response: Response;
  if (protocol === 'workerd') {
    const body = batch ? sql.map((q) => ({ sql: q })) : { sql };
    response = await s.call(`${s.url}/query?resultsFormat=ROWS_AND_COLUMNS`, { method: 'POST', body: JSON.stringify(body), token, headers: { 'x-dione-database': database } });
  } else {
    const body = batch ? { batch: sql.map((q) => ({ sql: q })) } : { sql };
    response = await s.call(`${s.api}/${database}/${protocol === 'raw' ? 'raw' : 'query'}`, { method: 'POST', body: JSON.stringify(body), token });
  }
  const text = await response.text();
  let parsed: any;
  try {
    parsed = JSON.parse(text);
  } catch {
    assert.fail(`${protocol} answered ${response.status} with a body that is not JSON: ${text.slice(0, 300)}`);
  }
  const bookmark = response.headers.get(SESSION_HEADER);
  if (protocol === 'workerd') {
    const ok = response.status === 200 && (Array.isArray(parsed) ? parsed.every((r: { success: boolean }) => r.success) : parsed.success === true);
    return { ok, status: response.status, message: ok ? '' : String(parsed.error ?? (Array.isArray(parsed) ? parsed.find((r: any) => !r.success)?.error : text)), bookmark };
  }
  const ok = response.status === 200 && parsed.success === true;
  return { ok, status: response.status, message: ok ? '' : String(parsed.errors?.[0]?.message ?? text), bookmark };
}

/** The first column of every row `sql` returns, read with the admin token. */
async function column(database: string, sql: string): Promise<unknown[]> {
  const response = await s.call(`${s.api}/${database}/raw`, { method: 'POST', body: JSON.stringify({ sql }) });
  const body = (await response.json()) as any;
  assert.equal(response.status, 200, JSON.stringify(body.errors));
  return (body.result[0].results.rows as unknown[][]).map((r) => r[0]);
}

/** Runs setup SQL (one request) with the admin token. */
async function setup(database: string, sql: string): Promise<void> {
  const outcome = await send('rest', database, sql, s.token);
  assert.ok(outcome.ok, `setup failed: ${outcome.message}`);
}

async function freshDatabase(name: string, sql: string): Promise<string> {
  await s.createDatabase(name);
  await setup(name, sql);
  return name;
}

/** Every schema object (type, name and SQL), read with the admin token. */
const schemaOf = (database: string) => column(database, "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master ORDER BY name");

// ------------------------------------------------------------------ 1. read tokens

/** Writes spelled so that a JS lexer may take them for reads; SQLite knows better. */
const SPELLED_WRITES = [
  'WITH ſelect AS (SELECT 1) DELETE FROM t', // U+017F, which toUpperCase() turns into 'S'
  'WITH x\uFEFFselect AS (SELECT 1) DELETE FROM t', // U+FEFF inside a name
  'WITH ı AS (SELECT 1) INSERT INTO t VALUES (9)', // U+0131, which toUpperCase() turns into 'I'
  '/* c */ WITH ſelect AS (SELECT 1) DELETE FROM t',
  'WITH ſelect AS (SELECT 1) -- c\nDELETE FROM t',
  '\uFEFFWITH ſelect AS (SELECT 1) DELETE FROM t',
  'WITH\tſelect\nAS(SELECT 1)DELETE FROM t',
  "WITH ſelect AS (SELECT 1) UPDATE t SET v = 'changed'",
  'WITH ſelect AS (SELECT 1) INSERT INTO t SELECT 9 FROM ſelect RETURNING *',
  'WITH ſelect AS (SELECT 1) DELETE FROM t RETURNING *',
  'WITH ſelect AS (SELECT 1) REPLACE INTO t (rowid, v) VALUES (1, 9)',
  'SELECT 1; WITH ſelect AS (SELECT 1) DELETE FROM t',
  'WITH x\uFEFFselect AS (SELECT 1) SELECT 1; DELETE FROM t',
];
const WRITE_REFUSED = /write|read-?only/i;

describe('read tokens cannot write, however the SQL is spelled', () => {
  // The old lexer upper-cased with toUpperCase() ('ſelect' became 'SELECT') and ended a name at
  // U+FEFF, so it took most of these for reads and ran them: a read token deleted every row (the
  // request was then answered 503 because the write log found a commit it had not numbered).
  test('each spelling is refused on REST /query, /raw, the workerd protocol and dione/client; every row stays', async () => {
    const db = await freshDatabase('trust-read', "CREATE TABLE t (v); INSERT INTO t VALUES (1), (2), (3)");
    const read = s.tokenFor('read');
    const schema = await schemaOf(db);
    for (const sql of SPELLED_WRITES) {
      for (const protocol of PROTOCOLS) {
        const outcome = await send(protocol, db, sql, read);
        assert.equal(outcome.ok, false, `${protocol}: ${JSON.stringify(sql)} succeeded with a read token`);
        assert.match(outcome.message, WRITE_REFUSED, `${protocol}: ${JSON.stringify(sql)}`);
        if (protocol !== 'client') assert.ok(outcome.status >= 400, `${protocol}: status ${outcome.status}`);
        assert.deepEqual(await column(db, 'SELECT v FROM t ORDER BY rowid'), [1, 2, 3], `${protocol}: ${JSON.stringify(sql)} changed t`);
      }
    }
    // As one write among several statements of a batch.
    for (const sql of SPELLED_WRITES) {
      for (const protocol of PROTOCOLS) {
        const outcome = await send(protocol, db, ['SELECT v FROM t', sql, 'SELECT 1'], read);
        assert.equal(outcome.ok, false, `${protocol}: a batch holding ${JSON.stringify(sql)} succeeded with a read token`);
        assert.match(outcome.message, WRITE_REFUSED);
      }
    }
    const exec = clientFor(db, read).exec(`SELECT 1\n${SPELLED_WRITES[0]}`);
    await assert.rejects(exec, WRITE_REFUSED);
    assert.deepEqual(await column(db, 'SELECT v FROM t ORDER BY rowid'), [1, 2, 3]);
    assert.deepEqual(await schemaOf(db), schema);
    // The read token still reads.
    const reads = await send('rest', db, 'WITH ſelect AS (SELECT v FROM t) SELECT count(*) FROM ſelect', read);
    assert.ok(reads.ok, reads.message);
  });
});

describe('a request too long to lex on the HTTP thread', () => {
  // Over 1 MiB of SQL is not classified on the HTTP thread (an attacker's review held it for 11–14 s
  // with 58 MB of `SELECT 1+1+…`): it goes to a worker, whose SQLite refuses a read token's writes.
  test("a read token's long read runs, its long write is refused by SQLite, every row stays", async () => {
    const db = await freshDatabase('trust-long', 'CREATE TABLE t (v); INSERT INTO t VALUES (1), (2), (3)');
    const read = s.tokenFor('read');
    // A statement holds at most 100 KB (D1's limit): twelve of 95 KB each.
    const padding = `/* ${'x'.repeat(95_000)} */`;
    const longReads = Array.from({ length: 12 }, () => `SELECT count(*) AS n FROM t ${padding}`);
    for (const protocol of PROTOCOLS) {
      const reads = await send(protocol, db, longReads, read);
      assert.ok(reads.ok, `${protocol}: ${reads.message}`);
      const writes = await send(protocol, db, [...longReads.slice(1), `DELETE FROM t ${padding}`], read);
      assert.equal(writes.ok, false, `${protocol}: a long DELETE succeeded with a read token`);
      // SQLite's refusal, not the HTTP thread's (which would have had to lex it all).
      assert.match(writes.message, /attempt to write a readonly database/, protocol);
    }
    assert.deepEqual(await column(db, 'SELECT v FROM t ORDER BY rowid'), [1, 2, 3]);
  });

  // The bound is per HTTP request, not per call: 40 pipelined calls of just under 1 MiB each held
  // the HTTP thread for 8.5 s (an attacker's second review).
  test("the calls of a pipelined request share the bound: a read token's write among them is refused by SQLite", async () => {
    const db = await freshDatabase('trust-long-calls', 'CREATE TABLE t (v); INSERT INTO t VALUES (1), (2), (3)');
    const read = s.tokenFor('read');
    const padding = `/* ${'x'.repeat(95_000)} */`;
    const calls = Array.from({ length: 12 }, (_, i) => ({ queries: [{ sql: `${i === 11 ? 'DELETE FROM t' : 'SELECT count(*) AS n FROM t'} ${padding}`, params: [] }] }));
    const reply = await fetch(`${s.url}/dione/v1/databases/${db}/execute`, {
      method: 'POST',
      headers: { authorization: `Bearer ${read}`, 'content-type': 'application/json' },
      body: JSON.stringify({ version: 2, calls }),
    });
    const { answers } = (await reply.json()) as { answers: { status: number; body: { success: boolean; error?: string } }[] };
    assert.equal(answers.length, 12);
    for (const answer of answers.slice(0, 11)) assert.equal(answer.body.success, true, JSON.stringify(answer.body));
    assert.equal(answers[11]!.body.success, false);
    assert.match(answers[11]!.body.error!, /attempt to write a readonly database/);
    assert.deepEqual(await column(db, 'SELECT v FROM t ORDER BY rowid'), [1, 2, 3]);
  });
});

// ------------------------------------------------------------------ 2. connection state

describe('a read token cannot change the connection state later writers see', () => {
  // The old design let a read token run SELECT * FROM pragma_optimize(65538) (ANALYZE from inside
  // a read: sqlite_stat1 appeared) and SELECT dione_prepare_error('PRAGMA …') (which prepared, and
  // so applied, the PRAGMA on the database's one connection).
  const STATE_CHANGES = [
    'PRAGMA ignore_check_constraints = ON',
    'PRAGMA ignore_check_constraints = 1',
    'PRAGMA foreign_keys = OFF',
    'PRAGMA main.foreign_keys = 0',
    'PRAGMA defer_foreign_keys = ON',
    'PRAGMA case_sensitive_like = ON',
    "SELECT dione_prepare_error(1, 'PRAGMA ignore_check_constraints=1')",
    "SELECT dione_prepare_error('PRAGMA ignore_check_constraints=1')",
    "SELECT dione_prepare_error(0, 'PRAGMA foreign_keys=0')",
    'SELECT * FROM pragma_optimize',
    'SELECT * FROM pragma_optimize(1)',
    'SELECT * FROM pragma_optimize(65538)',
    'SELECT * FROM pragma_optimize(-1)',
    'PRAGMA optimize',
    'PRAGMA optimize(65538)',
    'ANALYZE',
  ];

  test('PRAGMAs, helper calls and pragma_optimize are refused on every protocol; CHECK and foreign keys still hold for writers; no sqlite_stat table', async () => {
    const db = await freshDatabase(
      'trust-state',
      "CREATE TABLE t (v TEXT CHECK (v <> 'bad')); CREATE INDEX t_v ON t (v); INSERT INTO t VALUES ('a'), ('b'); CREATE TABLE parent (id PRIMARY KEY); INSERT INTO parent VALUES (1); CREATE TABLE child (pid REFERENCES parent (id))",
    );
    // A query that uses the index, so PRAGMA optimize would have something to analyze.
    await setup(db, "SELECT * FROM t WHERE v = 'a'");
    const read = s.tokenFor('read');
    for (const sql of STATE_CHANGES) {
      for (const protocol of PROTOCOLS) {
        const outcome = await send(protocol, db, sql, read);
        assert.equal(outcome.ok, false, `${protocol}: ${sql} succeeded with a read token`);
      }
      const batched = await send('rest', db, ['SELECT 1', sql], read);
      assert.equal(batched.ok, false, `a batch with ${sql}`);
    }
    const write = s.tokenFor('write');
    for (const protocol of PROTOCOLS) {
      const check = await send(protocol, db, "INSERT INTO t VALUES ('bad')", write);
      assert.equal(check.ok, false, `${protocol}: a CHECK violation was written`);
      assert.match(check.message, /CHECK constraint failed: v <> 'bad'/);
      const fk = await send(protocol, db, 'INSERT INTO child VALUES (99)', write);
      assert.equal(fk.ok, false, `${protocol}: an FK violation was written`);
      assert.match(fk.message, /FOREIGN KEY constraint failed/);
    }
    assert.deepEqual(await column(db, "SELECT v FROM t ORDER BY rowid"), ['a', 'b']);
    assert.deepEqual(await column(db, 'SELECT count(*) FROM child'), [0]);
    assert.deepEqual(await column(db, 'PRAGMA foreign_keys'), [1]);
    assert.deepEqual(await column(db, 'PRAGMA ignore_check_constraints'), [0]);
    assert.deepEqual(await column(db, 'PRAGMA defer_foreign_keys'), [0]);
    assert.deepEqual(await column(db, "SELECT 'a' LIKE 'A'"), [1]);
    assert.deepEqual(await column(db, "SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'"), []);
  });
});

// ------------------------------------------------------------------ 3. the guard's helpers

describe("the guard extension's helper functions do nothing for user SQL (admin token)", () => {
  // The old extension took no token: dione_commit_sequence(0) answered, and the others failed only
  // by arity or as unknown functions.

  test('each helper fails with "not authorized" on every protocol, dione_claim() answers null, and the database keeps working', async () => {
    const db = await freshDatabase('trust-helpers', "CREATE TABLE t (v); INSERT INTO t VALUES ('first')");
    const first = await send('client', db, "INSERT INTO t VALUES ('before')", s.token);
    assert.ok(first.ok && first.bookmark, first.message);
    for (const sql of HELPER_CALLS) {
      for (const protocol of PROTOCOLS) {
        const outcome = await send(protocol, db, sql, s.token);
        assert.equal(outcome.ok, false, `${protocol}: ${sql} succeeded`);
        assert.match(outcome.message, /not authorized/, `${protocol}: ${sql}`);
      }
      const batched = await send('rest', db, ["INSERT INTO t VALUES ('in batch')", sql], s.token);
      assert.equal(batched.ok, false);
      assert.match(batched.message, /not authorized/);
    }
    for (const protocol of PROTOCOLS) {
      const claim = await send(protocol, db, 'SELECT dione_claim()', s.token);
      assert.ok(claim.ok, `${protocol}: ${claim.message}`);
    }
    assert.deepEqual(await column(db, 'SELECT dione_claim()'), [null]);
    // Writes, reads and bookmarks as usual.
    let last = first.bookmark!;
    for (const protocol of PROTOCOLS) {
      const written = await send(protocol, db, `INSERT INTO t VALUES ('after ${protocol}')`, s.token);
      assert.ok(written.ok, `${protocol}: ${written.message}`);
      if (protocol === 'raw' || protocol === 'rest') continue; // Cloudflare's REST answer has no bookmark
      assert.ok(written.bookmark && written.bookmark > last, `${protocol}: bookmark ${written.bookmark} after ${last}`);
      last = written.bookmark;
    }
    assert.deepEqual(await column(db, 'SELECT v FROM t ORDER BY rowid'), ['first', 'before', 'after rest', 'after raw', 'after workerd', 'after client']);
  });
});

// ------------------------------------------------------------------ 4. temp schema objects

describe('temp schema objects are refused in every spelling (admin token)', () => {
  // The old authorizer refused only the TEMP keyword forms: CREATE TABLE temp.x, [temp].x, VIEW
  // temp.v and TRIGGER temp.tr … ON main.t were created, and that trigger, living on the database's
  // one server-side connection, rewrote every later INSERT by every other client.
  test('alone and inside batches on every protocol, with nothing of the batch kept; a second client’s INSERT is not rewritten', async () => {
    const db = await freshDatabase('trust-temp', "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('original')");
    const schema = await schemaOf(db);
    for (const sql of TEMP_OBJECTS) {
      for (const protocol of PROTOCOLS) {
        const alone = await send(protocol, db, sql, s.token);
        assert.equal(alone.ok, false, `${protocol}: ${sql} succeeded`);
        assert.match(alone.message, /not authorized/, `${protocol}: ${sql}`);
        const batch = await send(protocol, db, ['CREATE TABLE kept (a)', "INSERT INTO t VALUES ('batched')", sql, "INSERT INTO t VALUES ('after')"], s.token);
        assert.equal(batch.ok, false, `${protocol}: a batch with ${sql} succeeded`);
        assert.match(batch.message, /not authorized/);
      }
      const multi = await send('rest', db, `CREATE TABLE kept (a); ${sql}; INSERT INTO t VALUES ('multi')`, s.token);
      assert.equal(multi.ok, false, `multi-statement ${sql}`);
      assert.match(multi.message, /not authorized/);
      assert.deepEqual(await column(db, 'SELECT count(*) FROM temp.sqlite_master'), [0], `a temp object survived ${sql}`);
    }
    assert.deepEqual(await column(db, 'SELECT v FROM t ORDER BY rowid'), ['original']);
    assert.deepEqual(await schemaOf(db), schema);

    // The hidden temp trigger attack: other clients, other tokens, other protocols.
    const write = s.tokenFor('write');
    for (const protocol of PROTOCOLS) {
      const outcome = await send(protocol, db, `INSERT INTO t VALUES ('by ${protocol}')`, write);
      assert.ok(outcome.ok, `${protocol}: ${outcome.message}`);
    }
    assert.deepEqual(await column(db, 'SELECT v FROM t ORDER BY rowid'), ['original', 'by rest', 'by raw', 'by workerd', 'by client']);
  });
});

// ------------------------------------------------------------------ 5. reserved names

describe('reserved _cf_ names are refused, renames and fts5 shadow tables included (admin token)', () => {
  // The old design let ALTER TABLE t RENAME TO _cf_t and ALTER TABLE f RENAME TO _cf through: the
  // authorizer does not see a rename's new name.

  test('each is refused with "not authorized" on every protocol; t and f keep working under their names', async () => {
    const db = await freshDatabase('trust-reserved', "CREATE TABLE t (a); INSERT INTO t VALUES (1); CREATE VIRTUAL TABLE f USING fts5(a); INSERT INTO f VALUES ('needle')");
    const schema = await schemaOf(db);
    for (const sql of RESERVED_NAMES) {
      for (const protocol of PROTOCOLS) {
        const outcome = await send(protocol, db, sql, s.token);
        assert.equal(outcome.ok, false, `${protocol}: ${sql} succeeded`);
        assert.match(outcome.message, /not authorized/, `${protocol}: ${sql}`);
      }
      const batch = await send('workerd', db, ['INSERT INTO t VALUES (2)', sql], s.token);
      assert.equal(batch.ok, false);
      assert.deepEqual(await schemaOf(db), schema, `after ${sql}`);
    }
    assert.deepEqual(await column(db, "SELECT name FROM sqlite_master WHERE name GLOB '_cf*' AND name <> '_cf_METADATA'"), []);
    const written = await send('client', db, 'INSERT INTO t VALUES (3)', s.token);
    assert.ok(written.ok, written.message);
    assert.deepEqual(await column(db, 'SELECT a FROM t ORDER BY rowid'), [1, 3]);
    await setup(db, "INSERT INTO f VALUES ('another needle')");
    assert.deepEqual(await column(db, "SELECT count(*) FROM f WHERE f MATCH 'needle'"), [2]);
  });
});

// ------------------------------------------------------------------ 6. one commit path

describe('one commit path (server)', () => {
  // In the old design a deferred FK violation left by one request of a group failed the group's
  // COMMIT, and with it every request of the group (each answered with SQLite's bare FK error).
  test('~20 concurrent writes, one leaving a deferred FK violated: only that one fails, with the reset error; every other row is there', async () => {
    const db = await freshDatabase(
      'trust-group',
      'CREATE TABLE parent (id PRIMARY KEY); CREATE TABLE child (pid REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED, tag TEXT); INSERT INTO parent VALUES (1)',
    );
    const write = s.tokenFor('write');
    for (let round = 0; round < 5; round++) {
      const bad = (round * 7 + 5) % 20;
      const requests = Array.from({ length: 20 }, (_, i) => {
        const protocol = PROTOCOLS[(i + round) % PROTOCOLS.length]!;
        const tag = `r${round}-${i}`;
        const sql = i === bad ? `INSERT INTO child VALUES (999, '${tag}')` : `INSERT INTO child VALUES (1, '${tag}')`;
        // Some as batches with a good statement first, which must go with the bad one.
        return send(protocol, db, i % 3 === 0 ? [`INSERT INTO child VALUES (1, '${tag}-a')`, sql] : sql, write);
      });
      const outcomes = await Promise.all(requests);
      outcomes.forEach((o, i) => {
        const protocol = PROTOCOLS[(i + round) % PROTOCOLS.length]!;
        if (i === bad) {
          assert.equal(o.ok, false, `round ${round}: the bad request succeeded`);
          assert.ok(o.message.startsWith(RESET), `round ${round} (${protocol}): ${o.message}`);
        } else assert.ok(o.ok, `round ${round}: request ${i} (${protocol}) failed: ${o.message}`);
      });
      const expected: string[] = [];
      for (let i = 0; i < 20; i++) {
        if (i === bad) continue;
        expected.push(`r${round}-${i}`);
        if (i % 3 === 0) expected.push(`r${round}-${i}-a`);
      }
      assert.deepEqual(await column(db, `SELECT tag FROM child WHERE tag LIKE 'r${round}-%' ORDER BY tag`), expected.sort(), `round ${round}`);
    }
  });

  // The seal's schema rules (no temp object, no new reserved name: what the authorizer cannot see)
  // in a group: the old design had no such rules at all (the trigger was created and rewrote the
  // other rows), and a first cut of the new one failed the whole group at the seal.
  test('~20 concurrent writes, one creating a hidden temp trigger or a reserved name: only that one fails, "not authorized"; the others are kept and not rewritten', async () => {
    const db = await freshDatabase('trust-group-schema', 'CREATE TABLE t (tag TEXT, v TEXT); CREATE TABLE r (a)');
    const write = s.tokenFor('write');
    const BAD = [
      "CREATE TRIGGER temp.tr AFTER INSERT ON main.t BEGIN UPDATE t SET v = 'hacked'; END",
      "CREATE TRIGGER [temp].tr AFTER INSERT ON main.t BEGIN UPDATE t SET v = 'hacked'; END",
      'ALTER TABLE r RENAME TO _cf_r',
      'CREATE VIRTUAL TABLE _cf USING fts5(a)',
    ];
    for (let round = 0; round < BAD.length; round++) {
      const bad = (round * 7 + 4) % 20;
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) => {
          const protocol = PROTOCOLS[(i + round) % PROTOCOLS.length]!;
          const insert = `INSERT INTO t VALUES ('r${round}-${i}', 'as written')`;
          return send(protocol, db, i === bad ? [insert, BAD[round]!] : insert, write);
        }),
      );
      outcomes.forEach((o, i) => {
        if (i === bad) {
          assert.equal(o.ok, false, `round ${round}: ${BAD[round]} succeeded`);
          assert.match(o.message, /not authorized/);
        } else assert.ok(o.ok, `round ${round}: request ${i} failed: ${o.message}`);
      });
      const expected = Array.from({ length: 20 }, (_, i) => `r${round}-${i}`).filter((_, i) => i !== bad);
      assert.deepEqual(await column(db, `SELECT tag FROM t WHERE tag LIKE 'r${round}-%' ORDER BY tag`), expected.sort(), `round ${round}`);
      assert.deepEqual(await column(db, 'SELECT count(*) FROM temp.sqlite_master'), [0]);
    }
    const later = await send('client', db, "INSERT INTO t VALUES ('later', 'as written')", write);
    assert.ok(later.ok, later.message);
    assert.deepEqual(await column(db, "SELECT DISTINCT v FROM t"), ['as written']);
    assert.deepEqual(await column(db, "SELECT name FROM sqlite_master WHERE name GLOB '_cf*' AND name <> '_cf_METADATA'"), []);
    assert.deepEqual(await column(db, 'SELECT count(*) FROM r'), [0]);
  });

  // A write reported as failed must leave nothing, one reported as done must be there. The old
  // design ran a write the lexer took for a read outside the logged path: the log then refused the
  // database and the request was answered 503 ("Internal error in D1 DB storage caused object to
  // be reset.") although SQLite had committed it.
  test('a write reported as failed is not applied, one reported as done is (one at a time, then all at once)', async () => {
    const db = await freshDatabase(
      'trust-failed',
      "CREATE TABLE t (v TEXT CHECK (v <> 'bad')); CREATE TABLE parent (id PRIMARY KEY); CREATE TABLE child (pid REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
    );
    const write = s.tokenFor('write');
    const cases = (p: string): { tags: string[]; fails: boolean; sql: string | string[] }[] => [
      { tags: [`${p}1`], fails: false, sql: `INSERT INTO t VALUES ('${p}1')` },
      { tags: [`${p}2`], fails: false, sql: `WITH ſelect AS (SELECT 1) INSERT INTO t VALUES ('${p}2')` },
      { tags: [`${p}3`], fails: false, sql: `WITH x\uFEFFselect AS (SELECT 1) INSERT INTO t SELECT '${p}3'` },
      { tags: [`${p}4`], fails: false, sql: `WITH ı AS (SELECT 1) INSERT INTO t VALUES ('${p}4')` },
      { tags: [`${p}5`], fails: false, sql: `WITH ſelect AS (SELECT 1) INSERT INTO t VALUES ('${p}5') RETURNING v` },
      { tags: [`${p}6`, `${p}7`], fails: true, sql: [`INSERT INTO t VALUES ('${p}6')`, `INSERT INTO t VALUES ('${p}7')`, 'INSERT INTO nosuch VALUES (1)'] },
      { tags: [`${p}8`], fails: true, sql: [`INSERT INTO t VALUES ('${p}8')`, "INSERT INTO t VALUES ('bad')"] },
      { tags: [`${p}9`], fails: true, sql: `INSERT INTO t VALUES ('${p}9'); INSERT INTO child VALUES (999)` },
      { tags: [`${p}10`], fails: true, sql: [`WITH ſelect AS (SELECT 1) INSERT INTO t VALUES ('${p}10')`, "WITH ſelect AS (SELECT 1) INSERT INTO t VALUES ('bad')"] },
      { tags: [`${p}11`], fails: true, sql: `WITH ſelect AS (SELECT 1) INSERT INTO t VALUES ('${p}11') RETURNING nosuch` },
    ];
    const check = async (c: ReturnType<typeof cases>[number], o: Outcome, protocol: Protocol) => {
      const present = await column(db, `SELECT v FROM t WHERE v IN (${c.tags.map((t) => `'${t}'`).join(', ')}) ORDER BY rowid`);
      if (o.ok) assert.deepEqual(present, c.tags, `${protocol}: reported done, but ${c.tags} not all there`);
      else assert.deepEqual(present, [], `${protocol}: reported failed (${o.status} ${o.message}), yet ${present} applied`);
      assert.equal(!o.ok, c.fails, `${protocol} ${c.tags}: ${o.message}`);
    };
    for (const protocol of PROTOCOLS) {
      for (const c of cases(`${protocol}-`)) await check(c, await send(protocol, db, c.sql, write), protocol);
    }
    for (let round = 0; round < 3; round++) {
      const all = PROTOCOLS.flatMap((protocol) => cases(`g${round}-${protocol}-`).map((c) => ({ c, protocol })));
      const outcomes = await Promise.all(all.map(({ c, protocol }) => send(protocol, db, c.sql, write)));
      for (let i = 0; i < all.length; i++) await check(all[i]!.c, outcomes[i]!, all[i]!.protocol);
    }
    assert.deepEqual(await column(db, "SELECT count(*) FROM t WHERE v = 'bad'"), [0]);
  });
});

// ------------------------------------------------------------------ 7. dump

describe('the dump route never returns free pages', () => {
  // POST /dione/v1/databases/:db/dump (what dione/client's dump() calls) is open to read tokens.
  const MARKER = 'SECRET-MARKER-51c2e8';
  test('with a read token, over the route and through dione/client: deleted rows are not in the bytes', async () => {
    const db = await freshDatabase('trust-dump', 'CREATE TABLE s (v TEXT); CREATE TABLE keep (v TEXT)');
    await setup(db, "INSERT INTO keep VALUES ('kept row')");
    for (let i = 0; i < 40; i++) await setup(db, `INSERT INTO s VALUES ('${`${MARKER}-${i}-`.repeat(120)}')`);
    const read = s.tokenFor('read');
    const dump = async () => {
      const response = await s.call(`${s.url}/dione/v1/databases/${db}/dump`, { method: 'POST', token: read });
      assert.equal(response.status, 200);
      return Buffer.from(await response.arrayBuffer());
    };
    assert.ok((await dump()).includes(MARKER), 'the live rows are in the dump');
    await setup(db, 'DELETE FROM s');
    const bytes = await dump();
    assert.ok(bytes.subarray(0, 16).toString('latin1').startsWith('SQLite format 3'));
    assert.ok(!bytes.includes(MARKER), 'POST /dione/v1/databases/:db/dump returned a deleted row (a free page)');
    const viaClient = Buffer.from(await clientFor(db, read).dump());
    assert.ok(!viaClient.includes(MARKER), 'dione/client dump() returned a deleted row (a free page)');
  });

  test('one token with dumps left unread holds at most 2 of the 4 places: another token still dumps', async () => {
    const db = await freshDatabase('dump-per-token', 'CREATE TABLE t (v TEXT)');
    // Larger than what socket buffers take in: a dump not read stays in progress.
    await setup(db, "INSERT INTO t WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) SELECT randomblob(8000) FROM c");
    const greedy = s.tokenFor('read');
    const start = (token?: string) => s.call(`${s.url}/dione/v1/databases/${db}/dump`, { method: 'POST', token });
    const held = [await start(greedy), await start(greedy)];
    for (const response of held) assert.equal(response.status, 200);
    const third = await start(greedy);
    assert.equal(third.status, 429);
    assert.match(await third.text(), /Too many dumps in progress for this token \(at most 2 at a time\)/);
    const other = await start(s.tokenFor('read'));
    assert.equal(other.status, 200);
    assert.ok(Buffer.from(await other.arrayBuffer()).subarray(0, 16).toString('latin1').startsWith('SQLite format 3'));
    // Read to their ends, the greedy token's places are its again.
    for (const response of held) await response.arrayBuffer();
    const again = await start(greedy);
    assert.equal(again.status, 200);
    await again.arrayBuffer();
  });

  test('a dump is streamed with its length, and a dump read to its end frees its place (at most 4 at a time)', async () => {
    const db = await freshDatabase('dump-places', 'CREATE TABLE t (v TEXT)');
    await setup(db, "INSERT INTO t VALUES ('x')");
    for (let i = 0; i < 10; i++) {
      const response = await s.call(`${s.url}/dione/v1/databases/${db}/dump`, { method: 'POST' });
      assert.equal(response.status, 200, `dump ${i}: ${response.status}`);
      const bytes = Buffer.from(await response.arrayBuffer());
      assert.equal(Number(response.headers.get('content-length')), bytes.length);
      assert.ok(bytes.subarray(0, 16).toString('latin1').startsWith('SQLite format 3'));
    }
  });
});
