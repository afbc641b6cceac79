// dione/client's connect() against a real server: values travel losslessly (compared with the
// embedded binding, in both int modes), sessions carry bookmarks by themselves, a batch is one HTTP
// request, errors are the embedded binding's, and a lost connection is D1's 'Network connection lost.'.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { type ConnectOptions, connect } from '../src/client.ts';
import { type D1Database, open } from '../src/index.ts';
import { snapshot } from './helpers/binding.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let s: TestServer;
let counter = 0;
before(async () => {
  s = await startTestServer({});
});
after(() => s?.close());

/** A fresh database on the server, and a client for it. */
async function remote(options: Partial<ConnectOptions> = {}): Promise<{ db: D1Database; name: string; uuid: string }> {
  const name = `client-${++counter}`;
  const uuid = await s.createDatabase(name);
  return { db: connect({ url: s.url, token: s.token, database: name, ...options }), name, uuid };
}

interface Recorded {
  requests: { url: string; body: any }[];
  responses: { status: number; bookmark?: string }[];
}

/** A fetch that records what the client sends and receives, then passes the request on unchanged. */
function recordingFetch(): { fetch: typeof fetch; log: Recorded } {
  const log: Recorded = { requests: [], responses: [] };
  const wrapped = async (input: string | URL | Request, init?: RequestInit) => {
    log.requests.push({ url: String(input), body: typeof init?.body === 'string' ? JSON.parse(init.body) : init?.body });
    const response = await fetch(input, init);
    const text = await response.clone().text();
    let bookmark: string | undefined;
    try {
      bookmark = JSON.parse(text).bookmark;
    } catch {
      bookmark = undefined;
    }
    log.responses.push({ status: response.status, bookmark });
    return response;
  };
  return { fetch: wrapped as typeof fetch, log };
}

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;
const BEYOND_2_53 = 9007199254740993n;

/** SQL literals of every storage class and edge value. */
const LITERALS = [
  '0',
  '-1',
  '9007199254740991',
  String(BEYOND_2_53),
  `-${BEYOND_2_53}`,
  String(INT64_MAX),
  String(INT64_MIN),
  '1.0',
  '-0.0',
  '1.5',
  '0.1',
  '1e308',
  '9e999',
  '-9e999',
  '5e-324',
  '123456789012345678901234567890.0',
  "'text'",
  "''",
  "'ünïcödé 😀 中文 עברית'",
  "'a' || char(0) || 'b'",
  "x''",
  "x'00ff7f80'",
  'NULL',
  'zeroblob(3)',
];

const RANDOM_BLOB = new Uint8Array(randomBytes(65_536));

/** Bound parameters of every kind (bigints only where the mode accepts them). */
function parameters(intMode: 'number' | 'bigint'): unknown[] {
  const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
  const values: unknown[] = [
    'plain',
    '',
    '😀👩‍👩‍👧‍👦 e\u0301 中文 \u202e rtl',
    'nul\u0000inside',
    'lone \ud800 surrogate',
    'x'.repeat(100_000),
    allBytes,
    allBytes.buffer,
    RANDOM_BLOB,
    [0, 1, 254, 255],
    new Uint8Array(0),
    0,
    -0,
    7,
    1.5,
    -2.25,
    Number.MAX_SAFE_INTEGER,
    2 ** 60,
    1e-300,
    Number.MAX_VALUE,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    true,
    false,
    null,
  ];
  if (intMode === 'bigint') values.push(0n, 1n, -1n, BEYOND_2_53, -BEYOND_2_53, INT64_MAX, INT64_MIN);
  return values;
}

/** Fills table v through `db` and reads it back every way the binding can. */
async function roundTrip(db: D1Database, intMode: 'number' | 'bigint') {
  await db.exec('CREATE TABLE v (id INTEGER PRIMARY KEY, x)');
  await db.batch(LITERALS.map((literal) => db.prepare(`INSERT INTO v (x) VALUES (${literal})`)));
  for (const value of parameters(intMode)) await db.prepare('INSERT INTO v (x) VALUES (?)').bind(value).run();
  const select = db.prepare('SELECT id, x, typeof(x) AS type, length(x) AS len, hex(x) AS hex FROM v ORDER BY id');
  return {
    all: (await select.all()).results,
    raw: await select.raw({ columnNames: true }),
    batch: (await db.batch([select, db.prepare('SELECT x FROM v WHERE id = ?').bind(4)])).map((r) => r.results),
    first: await db.prepare('SELECT x FROM v WHERE id = 6').first(),
    firstColumn: await db.prepare('SELECT x FROM v WHERE id = 7').first('x'),
    direct: await db.prepare(`SELECT ${LITERALS.map((l, i) => `${l} AS c${i}`).join(', ')}`).first(),
  };
}

describe('values travel losslessly', () => {
  for (const intMode of ['number', 'bigint'] as const) {
    test(`every storage class and edge value reads back as the embedded binding gives it (intMode ${intMode})`, async () => {
      const embedded = open(':memory:', { intMode });
      const { db } = await remote({ intMode });
      try {
        const expected = await roundTrip(embedded, intMode);
        const actual = await roundTrip(db, intMode);
        assert.deepStrictEqual(actual, expected);
        assert.ok(expected.all.length >= LITERALS.length + 20);
      } finally {
        embedded.close();
      }
    });
  }

  test('bigint mode: exact 64-bit integers, and REAL stays REAL even when integral', async () => {
    const { db } = await remote({ intMode: 'bigint' });
    await db.exec('CREATE TABLE n (i INTEGER, r REAL, x)');
    await db.prepare('INSERT INTO n VALUES (?, ?, ?)').bind(INT64_MAX, 3, BEYOND_2_53).run();
    await db.prepare('INSERT INTO n VALUES (?, ?, ?)').bind(INT64_MIN, 2.5, 1).run();
    const rows = await db.prepare('SELECT i, r, x, typeof(i) AS ti, typeof(r) AS tr, typeof(x) AS tx, i - 1 AS less FROM n ORDER BY rowid').all();
    assert.deepStrictEqual(rows.results, [
      { i: INT64_MAX, r: 3, x: BEYOND_2_53, ti: 'integer', tr: 'real', tx: 'integer', less: INT64_MAX - 1n },
      { i: INT64_MIN, r: 2.5, x: 1, ti: 'integer', tr: 'real', tx: 'real', less: -(2 ** 63) },
    ]);
    assert.equal(typeof rows.results[0]!.r, 'number', 'an integral REAL is a number, not a bigint');
    assert.equal(typeof rows.results[1]!.x, 'number', 'a number parameter binds as REAL, as D1');
    assert.equal(typeof rows.results[1]!.less, 'number', 'INT64_MIN - 1 overflows to REAL in SQLite');
    // A bigint key finds its row; a neighbour does not.
    assert.equal(await db.prepare('SELECT count(*) AS c FROM n WHERE x = ?').bind(BEYOND_2_53).first('c'), 1n);
    assert.equal(await db.prepare('SELECT count(*) AS c FROM n WHERE x = ?').bind(BEYOND_2_53 - 1n).first('c'), 0n);
    // The default mode reads the same row lossily, as D1 does.
    const lossy = connect({ url: s.url, token: s.token, database: `client-${counter}` });
    assert.equal(await lossy.prepare('SELECT x FROM n WHERE typeof(x) = ?').bind('integer').first('x'), 9007199254740992);
    await assert.rejects(async () => lossy.prepare('SELECT ?').bind(1n), /^Error: D1_TYPE_ERROR: Type 'bigint' not supported/);
  });

  test('BLOBs of every byte value and up to 1 MiB come back byte for byte; unicode text exactly', async () => {
    const { db } = await remote();
    await db.exec('CREATE TABLE b (id INTEGER PRIMARY KEY, data BLOB, t TEXT)');
    const blobs = [new Uint8Array(0), Uint8Array.from({ length: 256 }, (_, i) => i), new Uint8Array(randomBytes(1024 * 1024))];
    const texts = ['', '😀'.repeat(1000), 'null\u0000byte', '\u{10ffff}\u{1f600}\u00e9e\u0301', 'a'.repeat(200_000)];
    for (const [i, blob] of blobs.entries()) await db.prepare('INSERT INTO b (id, data, t) VALUES (?, ?, ?)').bind(i, blob, texts[i]!).run();
    const rows = await db.prepare('SELECT id, data, typeof(data) AS type, length(data) AS len, t FROM b ORDER BY id').all<{ data: number[]; type: string; len: number; t: string }>();
    assert.equal(rows.results.length, blobs.length);
    for (const [i, row] of rows.results.entries()) {
      assert.equal(row.type, 'blob');
      assert.equal(row.len, blobs[i]!.length);
      assert.ok(Array.isArray(row.data), 'BLOBs reach code as number[], as D1 gives them');
      assert.ok(Buffer.from(row.data).equals(Buffer.from(blobs[i]!)), `blob ${i} differs`);
      assert.equal(row.t, texts[i]);
    }
    // Byte-exact in SQL too: the server stored what was sent.
    const hex = await db.prepare('SELECT hex(data) AS h FROM b WHERE id = 1').first('h');
    assert.equal(hex, Buffer.from(blobs[1]!).toString('hex').toUpperCase());
    const utf8 = await db.prepare("SELECT hex(CAST(t AS BLOB)) AS h FROM b WHERE id = 2").first('h');
    assert.equal(utf8, Buffer.from(texts[2]!, 'utf8').toString('hex').toUpperCase());
  });

  test('the database can be named by its id', async () => {
    const { db, uuid } = await remote();
    await db.exec("CREATE TABLE t (v)\nINSERT INTO t VALUES ('by-name')");
    const byId = connect({ url: `${s.url}/`, token: s.token, database: uuid });
    assert.equal(await byId.prepare('SELECT v FROM t').first('v'), 'by-name');
  });
});

describe('round trips', () => {
  test('a batch is one HTTP request; so are exec(), run(), all(), first() and raw()', async () => {
    const name = `client-${++counter}`;
    await s.createDatabase(name);
    const { fetch: counting, log } = recordingFetch();
    const db = connect({ url: s.url, token: s.token, database: name, fetch: counting });
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)\nCREATE INDEX tv ON t (v)\nINSERT INTO t (v) VALUES (\'e\')');
    assert.equal(log.requests.length, 1, 'exec');
    const statements = Array.from({ length: 25 }, (_, i) => db.prepare('INSERT INTO t (v) VALUES (?)').bind(`row ${i}`));
    const results = await db.batch([...statements, db.prepare('SELECT count(*) AS n FROM t')]);
    assert.equal(log.requests.length, 2, 'batch');
    assert.equal(log.requests[1]!.body.queries.length, 26);
    assert.deepEqual(results.at(-1)!.results, [{ n: 26 }]);
    await db.prepare('SELECT 1').run();
    await db.prepare('SELECT 1').all();
    await db.prepare('SELECT 1').first();
    await db.prepare('SELECT 1').raw();
    assert.equal(log.requests.length, 6);
    // A failing batch is one request too, and atomic.
    await assert.rejects(db.batch([db.prepare("INSERT INTO t (v) VALUES ('lost')"), db.prepare('INSERT INTO t (id) VALUES (1)')]), /UNIQUE constraint failed/);
    assert.equal(log.requests.length, 7);
    assert.equal(await db.prepare("SELECT count(*) AS n FROM t WHERE v = 'lost'").first('n'), 0);
    for (const r of log.requests) assert.match(r.url, new RegExp(`/dione/v1/databases/${name}/execute$`));
  });

  test('sessions carry their bookmark on every request; getBookmark() grows with writes', async () => {
    const name = `client-${++counter}`;
    await s.createDatabase(name);
    const { fetch: recording, log } = recordingFetch();
    const db = connect({ url: s.url, token: s.token, database: name, fetch: recording });
    const other = connect({ url: s.url, token: s.token, database: name });
    await db.exec('CREATE TABLE t (v INTEGER)');
    assert.equal(log.requests[0]!.body.bookmark, undefined, 'the database itself sends no bookmark');

    const session = db.withSession('first-primary');
    assert.equal(session.getBookmark(), null);
    await session.prepare('SELECT count(*) FROM t').all();
    const afterRead = session.getBookmark();
    assert.match(afterRead!, /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/);
    assert.equal(log.requests.at(-1)!.body.bookmark, 'first-primary');
    assert.equal(afterRead, log.responses.at(-1)!.bookmark);

    const seen = [afterRead!];
    for (let i = 0; i < 3; i++) {
      await session.prepare('INSERT INTO t VALUES (?)').bind(i).run();
      assert.equal(log.requests.at(-1)!.body.bookmark, seen.at(-1), 'the newest bookmark is sent');
      const now = session.getBookmark()!;
      assert.ok(now > seen.at(-1)!, `bookmark did not grow after a write: ${seen.at(-1)} -> ${now}`);
      seen.push(now);
    }
    // A read does not move it; a batch carries it too.
    await session.prepare('SELECT * FROM t').all();
    assert.equal(session.getBookmark(), seen.at(-1));
    await session.batch([session.prepare('INSERT INTO t VALUES (10)'), session.prepare('INSERT INTO t VALUES (11)')]);
    assert.equal(log.requests.at(-1)!.body.bookmark, seen.at(-1));
    assert.ok(session.getBookmark()! > seen.at(-1)!);
    seen.push(session.getBookmark()!);

    // Another client's write: the session's next read reports the newer commit.
    await other.prepare('INSERT INTO t VALUES (99)').run();
    await session.prepare('SELECT count(*) AS n FROM t').first();
    assert.ok(session.getBookmark()! > seen.at(-1)!);
    assert.equal(await session.prepare('SELECT count(*) AS n FROM t').first('n'), 6);

    // A session started from a bookmark sends it with its first request.
    const resumed = db.withSession(seen[1]);
    assert.equal(resumed.getBookmark(), seen[1]);
    await resumed.prepare('SELECT 1').all();
    assert.equal(log.requests.at(-1)!.body.bookmark, seen[1]);
    assert.ok(resumed.getBookmark()! >= session.getBookmark()!);
  });
});

// Found by a differential review: JSON.stringify() of a statement printed the client's executor,
// token included (and threw on the embedded binding's bigints); console.log() showed it too.
test('a statement, a session and a database print as data only: no token, no executor, no throw', async () => {
  const { db } = await remote();
  const embedded = open(':memory:');
  try {
    for (const [name, binding] of [
      ['over HTTP', db],
      ['embedded', embedded],
    ] as const) {
      const statement = binding.prepare('SELECT ? AS a').bind(1);
      const inSession = binding.withSession('first-primary').prepare('SELECT 1');
      assert.equal(JSON.stringify(statement), '{"dbSession":{},"statement":"SELECT ? AS a","params":[1]}', name);
      assert.equal(JSON.stringify(inSession), '{"dbSession":{},"statement":"SELECT 1","params":[]}', name);
      for (const value of [statement, inSession, binding, binding.withSession()]) {
        const shown = `${JSON.stringify(value)} ${inspect(value, { depth: 20, showHidden: true })}`;
        assert.ok(!shown.includes(s.token) && !/authorization|executor|dione_/i.test(shown), `${name}: ${shown}`);
      }
      assert.deepEqual(await statement.first(), { a: 1 }, `${name}: the statement still runs`);
    }
  } finally {
    embedded.close();
  }
});

describe('errors', () => {
  const SETUP = [
    'CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, n INTEGER CHECK (n >= 0))',
    'CREATE TABLE c (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p (id))',
    'CREATE TABLE d (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED)',
    "INSERT INTO p VALUES (1, 'one', 1)",
  ];
  const FAILING: [string, (db: D1Database) => Promise<unknown>][] = [
    ['syntax error', (db) => db.prepare('SELEC 1').all()],
    ['no such table', (db) => db.prepare('SELECT * FROM nope').first()],
    ['no such column', (db) => db.prepare('SELECT nope FROM p').raw()],
    ['unique', (db) => db.prepare("INSERT INTO p (name) VALUES ('one')").run()],
    ['primary key', (db) => db.prepare("INSERT INTO p VALUES (1, 'x', 0)").run()],
    ['not null', (db) => db.prepare('INSERT INTO p (name) VALUES (NULL)').run()],
    ['check', (db) => db.prepare("INSERT INTO p (name, n) VALUES ('neg', -1)").run()],
    ['foreign key', (db) => db.prepare('INSERT INTO c (pid) VALUES (42)').run()],
    ['deferred foreign key at commit', (db) => db.batch([db.prepare('INSERT INTO d (pid) VALUES (42)'), db.prepare("INSERT INTO p (name) VALUES ('two')")])],
    ['wrong parameter count', (db) => db.prepare('SELECT ?, ?').bind(1).all()],
    ['too many parameters', (db) => db.prepare(`SELECT ${Array.from({ length: 101 }, () => '?').join(',')}`).bind(...Array.from({ length: 101 }, () => 1)).all()],
    ['parameters not in the last statement', (db) => db.prepare('SELECT ?; SELECT 1').bind(1).all()],
    ['empty', (db) => db.prepare('').all()],
    ['only a comment', (db) => db.prepare('-- nothing').all()],
    ['BEGIN', (db) => db.prepare('BEGIN TRANSACTION').run()],
    ['function not allowed', (db) => db.prepare('SELECT sqlite_version()').first()],
    ['_cf_KV', (db) => db.prepare('SELECT * FROM _cf_KV').all()],
    ['batch, second fails', (db) => db.batch([db.prepare("INSERT INTO p (name) VALUES ('b1')"), db.prepare('INSERT INTO nope VALUES (1)'), db.prepare("INSERT INTO p (name) VALUES ('b3')")])],
    ['exec, a later line fails', (db) => db.exec("INSERT INTO p (name) VALUES ('e1')\nINSERT INTO p (name) VALUES ('one')")],
    ['exec, empty', (db) => db.exec('')],
    ['first(column) missing', (db) => db.prepare('SELECT 1 AS a').first('b')],
    ['unsupported bind value', async (db) => db.prepare('SELECT ?').bind({})],
    ['bigint in number mode', async (db) => db.prepare('SELECT ?').bind(5n)],
    ['bad session bookmark', (db) => db.withSession('not-a-bookmark').prepare('SELECT 1').all()],
    ['batch with an unsupported statement', (db) => db.batch([db.prepare('SELECT 1'), db.prepare('VACUUM')])],
  ];

  test("every failure is the embedded binding's: same message, same cause, same class", async () => {
    const embedded = open(':memory:');
    const { db } = await remote();
    try {
      for (const target of [embedded, db]) await target.batch(SETUP.map((sql) => target.prepare(sql)));
      for (const [name, run] of FAILING) {
        const capture = async (target: D1Database) => {
          try {
            await run(target);
          } catch (e) {
            const error = e as Error;
            return { class: error.constructor.name, message: error.message, cause: (error.cause as Error | undefined)?.message };
          }
          return 'resolved';
        };
        const expected = await capture(embedded);
        assert.notEqual(expected, 'resolved', `${name}: the embedded binding did not fail`);
        assert.deepStrictEqual(await capture(db), expected, name);
      }
      assert.deepStrictEqual(await snapshot(db), await snapshot(embedded), 'the failures left different contents');
    } finally {
      embedded.close();
    }
  });

  test("a network failure is D1's 'Network connection lost.', then the request and its cause", async (t) => {
    // A port nothing listens on.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    // A server that hangs up as soon as a request arrives, and one that sends half a response.
    const rude = net.createServer((socket) => socket.once('data', () => socket.destroy()));
    const half = net.createServer((socket) =>
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"success": tr');
        setTimeout(() => socket.destroy(), 20);
      }),
    );
    for (const server of [rude, half]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      rude.close();
      half.close();
    });
    const port = (server: net.Server) => (server.address() as net.AddressInfo).port;
    const causes = new Map([
      [closedPort, `connect ECONNREFUSED 127.0.0.1:${closedPort}`],
      [port(rude), 'other side closed'],
      [port(half), 'other side closed'],
    ]);
    for (const [p, cause] of causes) {
      const db = connect({ url: `http://127.0.0.1:${p}`, token: s.token, database: 'any' });
      const lost = { message: `D1_ERROR: Network connection lost. (POST http://127.0.0.1:${p}/dione/v1/databases/any/execute failed: ${cause})` };
      await assert.rejects(db.prepare('SELECT 1').all(), lost, `port ${p}`);
      await assert.rejects(db.prepare('SELECT 1').first(), lost);
      await assert.rejects(db.prepare('INSERT INTO t VALUES (1)').run(), lost);
      await assert.rejects(db.batch([db.prepare('SELECT 1'), db.prepare('SELECT 2')]), lost);
      await assert.rejects(db.withSession('first-primary').prepare('SELECT 1').raw(), lost);
    }
    // And the real server, reached the same way, answers.
    const { db } = await remote();
    assert.equal(await db.prepare('SELECT 1 AS one').first('one'), 1);
  });
});
