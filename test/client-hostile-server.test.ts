// dione/client against servers that misbehave on purpose (small node:http servers on 127.0.0.1):
// a call has a deadline that covers reading the whole answer, the handle's signal aborts it,
// answers that are not Dione's wire format fail with a D1_ERROR saying what was wrong, redirects are
// refused rather than followed, and an error page is quoted only in part.
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { beginTransaction, connect } from '../src/client.ts';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

/** A server on 127.0.0.1 that answers every request with `handler`, closed after the test. */
async function misbehaving(t: TestContext, handler: Handler): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => handler(req, res, body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, requests: () => requests };
}

const BOOKMARK = `00000000-00000001-00000000-${'0'.repeat(32)}`;
const META = { duration: 0, changes: 0, last_row_id: 0, changed_db: false, size_after: 0, rows_read: 0, rows_written: 0 };
/** A well-formed version 1 answer with these results. */
const answer = (results: unknown[], extra: Record<string, unknown> = {}) => JSON.stringify({ success: true, bookmark: BOOKMARK, results, ...extra });
const oneRow = (value: unknown) => ({ columns: ['a'], rows: [[value]], meta: META });

/** Starts an answer and then sends one space every `everyMs`, never finishing it. */
const trickle =
  (everyMs: number): Handler =>
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"success":true,"results":[ ');
    const timer = setInterval(() => res.write(' '), everyMs);
    res.on('close', () => clearInterval(timer));
  };

const lost = (url: string, database: string, cause: string) =>
  new RegExp(`^D1_ERROR: Network connection lost\\. \\(POST ${url}/dione/v1/databases/${database}/execute failed: ${cause}\\)$`);

describe('a call has a deadline', () => {
  test('an answer trickled a byte at a time fails at timeoutMs, whatever the call', { timeout: 60_000 }, async (t) => {
    const { url } = await misbehaving(t, trickle(100));
    const db = connect({ url, database: 'slow', timeoutMs: 500 });
    const expected = { message: lost(url, 'slow', "no complete answer within 500 ms \\(connect\\(\\)'s timeoutMs\\)") };
    await assert.rejects(db.prepare('SELECT 1').first(), expected);
    await assert.rejects(db.batch([db.prepare('SELECT 1'), db.prepare('SELECT 2')]), expected);
    await assert.rejects(db.exec('SELECT 1'), { message: /^D1_EXEC_ERROR: Error in line 1: SELECT 1: Network connection lost\..*no complete answer within 500 ms/ });
    // Calls sharing one request share its deadline.
    const pipelined = await Promise.allSettled([1, 2, 3].map((n) => db.prepare(`SELECT ${n}`).all()));
    for (const r of pipelined) assert.match(((r as PromiseRejectedResult).reason as Error).message, expected.message);
    await assert.rejects(db.withSession('first-primary').prepare('SELECT 1').all(), expected);
  });

  test('a caller\'s fetch that never settles and ignores the signal still fails at the deadline', { timeout: 60_000 }, async () => {
    const stuck = (() => new Promise<Response>(() => {})) as typeof fetch;
    const db = connect({ url: 'http://127.0.0.1:9', database: 'stuck', timeoutMs: 200, fetch: stuck });
    await assert.rejects(db.prepare('SELECT 1').all(), { message: lost('http://127.0.0.1:9', 'stuck', 'no complete answer within 200 ms .*') });
  });

  test("aborting connect()'s signal fails the call in flight and every later one", { timeout: 60_000 }, async (t) => {
    let arrived!: () => void;
    const arrival = new Promise<void>((resolve) => (arrived = resolve));
    const { url, requests } = await misbehaving(t, () => arrived());
    const controller = new AbortController();
    const db = connect({ url, database: 'held', signal: controller.signal, timeoutMs: 0 });
    const inFlight = db.prepare('SELECT 1').all();
    await arrival;
    controller.abort(new Error('shutting down'));
    const aborted = { message: lost(url, 'held', "aborted by connect\\(\\)'s signal: shutting down") };
    await assert.rejects(inFlight, aborted);
    await assert.rejects(db.prepare('SELECT 2').all(), aborted);
    assert.equal(requests(), 1, 'nothing is sent once the signal has aborted');
  });

  test('timeoutMs 0 or Infinity sets no deadline; other values that are not a delay are refused', async (t) => {
    const { url } = await misbehaving(t, (_req, res) => setTimeout(() => res.end(answer([oneRow(1)])), 300));
    for (const timeoutMs of [0, Number.POSITIVE_INFINITY]) {
      assert.deepEqual(await connect({ url, database: 'late', timeoutMs }).prepare('SELECT 1 AS a').first(), { a: 1 });
    }
    for (const timeoutMs of [-1, Number.NaN, 2 ** 31, '500']) {
      assert.throws(() => connect({ url, database: 'late', timeoutMs: timeoutMs as number }), {
        name: 'TypeError',
        message: /^connect\(\): timeoutMs must be a number of milliseconds/,
      });
    }
    assert.throws(() => connect({ url, database: 'late', signal: 'stop' as unknown as AbortSignal }), { name: 'TypeError', message: 'connect(): signal must be an AbortSignal' });
  });

  test('a transaction of a handle with transactions: true has the same deadline', { timeout: 60_000 }, async (t) => {
    const { url } = await misbehaving(t, trickle(100));
    const db = connect({ url, database: 'slow', transactions: true, timeoutMs: 500 });
    await assert.rejects(beginTransaction(db), { message: lost(url, 'slow', 'no complete answer within 500 ms .*') });
  });
});

describe("an answer that is not Dione's wire format is a D1_ERROR saying what is wrong", () => {
  const malformed = (detail: string) => new RegExp(`^D1_ERROR: The server's answer to POST http://127\\.0\\.0\\.1:\\d+/dione/v1/databases/\\w+/execute is malformed: ${detail}$`);
  const cases: [name: string, body: string, detail: string][] = [
    ['noResults', JSON.stringify({ success: true, bookmark: BOOKMARK }), '"results" is missing\\.'],
    ['resultsNotArray', answer('nope' as unknown as unknown[]), '"results" is "nope", not an array\\.'],
    ['emptyResult', answer([{}]), 'results\\[0\\]\\.columns is undefined, not an array of names\\.'],
    ['rowsNotArray', answer([{ columns: ['a'], rows: 'nope', meta: META }]), 'results\\[0\\]\\.rows is "nope", not an array\\.'],
    ['shortRow', answer([{ columns: ['a', 'b'], rows: [[1]], meta: META }]), 'results\\[0\\]\\.rows\\[0\\] is \\[1\\], not an array of 2 values\\.'],
    ['noMeta', answer([{ columns: ['a'], rows: [[1]] }]), 'results\\[0\\]\\.meta is undefined, not an object\\.'],
    ['badMeta', answer([{ columns: ['a'], rows: [[1]], meta: { ...META, changes: 'many' } }]), 'results\\[0\\]\\.meta\\.changes is "many", not a number\\.'],
    ['badInteger', answer([oneRow({ $i: 'abc' })]), 'results\\[0\\]\\.rows\\[0\\]\\[0\\] is \\{"\\$i":"abc"\\}, not a value of the wire format\\.'],
    ['hugeInteger', answer([oneRow({ $i: '9223372036854775808' })]), 'results\\[0\\]\\.rows\\[0\\]\\[0\\] is .*, not a value of the wire format\\.'],
    ['emptyObject', answer([oneRow({})]), 'results\\[0\\]\\.rows\\[0\\]\\[0\\] is \\{\\}, not a value of the wire format\\.'],
    ['badBase64', answer([oneRow({ $b: '!!!*' })]), 'results\\[0\\]\\.rows\\[0\\]\\[0\\] is \\{"\\$b":"!!!\\*"\\}, not a value of the wire format\\.'],
    ['badReal', answer([oneRow({ $f: 'NaN' })]), 'results\\[0\\]\\.rows\\[0\\]\\[0\\] is \\{"\\$f":"NaN"\\}, not a value of the wire format\\.'],
    ['twoTags', answer([oneRow({ $i: '1', $f: '1' })]), 'results\\[0\\]\\.rows\\[0\\]\\[0\\] is .*, not a value of the wire format\\.'],
    ['boolean', answer([oneRow(true)]), 'results\\[0\\]\\.rows\\[0\\]\\[0\\] is true, not a value of the wire format\\.'],
    ['badBookmark', answer([oneRow(1)], { bookmark: 42 }), '"bookmark" is 42, not a bookmark\\.'],
    ['badInTransaction', answer([oneRow(1)], { inTransaction: 'yes' }), '"inTransaction" is "yes", not true or false\\.'],
    ['errorNotString', JSON.stringify({ success: false, error: { x: 1 } }), '"error" is \\{"x":1\\}, not a string\\.'],
    ['successString', JSON.stringify({ success: 'true', results: [] }), '"success" is "true", neither true nor false\\.'],
    ['noSuccess', JSON.stringify({ results: [] }), '"success" is missing\\.'],
    ['notObject', '[1,2]', 'it is \\[1,2\\], not a JSON object\\.'],
    // Found by an attacker's review: showing it threw a RangeError out of the call instead.
    ['deeplyNested', answer([oneRow('NESTED')]).replace('"NESTED"', `${'['.repeat(10_000)}${']'.repeat(10_000)}`), 'results\\[0\\]\\.rows\\[0\\]\\[0\\] is a value nested too deeply to show, not a value of the wire format\\.'],
  ];
  for (const [name, body, detail] of cases) {
    test(name, async (t) => {
      const { url } = await misbehaving(t, (_req, res) => res.end(body));
      const db = connect({ url, database: name });
      await assert.rejects(db.prepare('SELECT 1 AS a').all(), { message: malformed(detail) });
    });
  }

  test('a batch answered with fewer results than its statements', async (t) => {
    const { url } = await misbehaving(t, (_req, res) => res.end(answer([oneRow(1)])));
    const db = connect({ url, database: 'fewer' });
    await assert.rejects(db.batch([db.prepare('SELECT 1'), db.prepare('SELECT 2'), db.prepare('INSERT INTO t VALUES (1)')]), {
      message: malformed('3 results are due \\(one per statement sent\\), but it holds 1\\.'),
    });
    await assert.rejects(db.exec('SELECT 1\nSELECT 2'), { message: /^D1_EXEC_ERROR: Error in line 1: SELECT 1: .*is malformed: 2 results are due \(one per statement sent\), but it holds 1\.$/ });
  });

  test('a pipelined request answered with fewer answers than its calls, answers that are no objects, or no version 2 answer', async (t) => {
    const { url } = await misbehaving(t, (req, res, body) => {
      const calls = (JSON.parse(body) as { calls: unknown[] }).calls;
      if (req.url!.includes('/fewer/')) res.end(JSON.stringify({ version: 2, answers: [{ status: 200, body: JSON.parse(answer([oneRow(1)])) }] }));
      else if (req.url!.includes('/plain/')) res.end(answer([]));
      else res.end(JSON.stringify({ version: 2, answers: calls.map(() => ({ status: 200, body: 'x' })) }));
    });
    const fewer = connect({ url, database: 'fewer' });
    for (const r of await Promise.allSettled([1, 2, 3].map((n) => fewer.prepare(`SELECT ${n}`).first()))) {
      assert.match(((r as PromiseRejectedResult).reason as Error).message, malformed('3 calls were sent, but it holds 1 answer\\.'));
    }
    const strings = connect({ url, database: 'strings' });
    for (const r of await Promise.allSettled([1, 2].map((n) => strings.prepare(`SELECT ${n}`).first()))) {
      assert.match(((r as PromiseRejectedResult).reason as Error).message, malformed('it is "x", not a JSON object\\.'));
    }
    const plain = connect({ url, database: 'plain' });
    for (const r of await Promise.allSettled([1, 2].map((n) => plain.prepare(`SELECT ${n}`).first()))) {
      assert.match(((r as PromiseRejectedResult).reason as Error).message, malformed('it is no version 2 answer, with one answer per call\\.'));
    }
  });

  test("a session keeps its bookmark when an answer's is not one, and goes on working", async (t) => {
    let bookmark: unknown = 42;
    const { url } = await misbehaving(t, (_req, res) => res.end(answer([oneRow(1)], { bookmark })));
    const session = connect({ url, database: 'bookmarks' }).withSession('first-primary');
    await assert.rejects(session.prepare('SELECT 1 AS a').first(), { message: malformed('"bookmark" is 42, not a bookmark\\.') });
    assert.equal(session.getBookmark(), null);
    bookmark = BOOKMARK;
    assert.deepEqual(await session.prepare('SELECT 1 AS a').first(), { a: 1 });
    assert.equal(session.getBookmark(), BOOKMARK);
  });

  test('a failure status without an error message says so, and a server error is still given as it is', async (t) => {
    const { url } = await misbehaving(t, (req, res) => {
      res.writeHead(req.url!.includes('/bare/') ? 503 : 500);
      res.end(req.url!.includes('/bare/') ? '{"errors":[]}' : '{"success":false,"error":"no such table: t: SQLITE_ERROR"}');
    });
    const bare = connect({ url, database: 'bare' });
    await assert.rejects(bare.prepare('SELECT 1').all(), {
      message: /^D1_ERROR: HTTP 503 from POST http:\/\/127\.0\.0\.1:\d+\/dione\/v1\/databases\/bare\/execute, with no error message in its answer: \{"errors":\[\]\}$/,
    });
    const sqlError = connect({ url, database: 'sql' });
    await assert.rejects(sqlError.prepare('SELECT 1').all(), { message: 'D1_ERROR: no such table: t: SQLITE_ERROR' });
  });

  test('a huge error page is read and quoted only in part', async (t) => {
    const { url } = await misbehaving(t, (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('E'.repeat(5_000_000));
    });
    const db = connect({ url, database: 'huge' });
    const error = await db.prepare('SELECT 1').all().catch((e: Error) => e);
    assert.ok(error instanceof Error);
    assert.match(error.message, /^D1_ERROR: Failed to parse body as JSON, got: E{2048}… \(cut\) \(HTTP 502\)$/);
  });
});

describe('redirects are refused, not followed', () => {
  for (const status of [302, 307, 308]) {
    test(`HTTP ${status} to another origin: nothing goes there, and the call fails saying so`, async (t) => {
      const other = await misbehaving(t, (_req, res) => res.end(answer([{ columns: ['hijacked'], rows: [[1]], meta: META }])));
      const { url } = await misbehaving(t, (_req, res) => {
        res.writeHead(status, { location: `${other.url}/dione/v1/databases/x/execute` });
        res.end();
      });
      const db = connect({ url, database: 'moved', token: 'secret' });
      const refused = new RegExp(
        `^D1_ERROR: The server answered POST ${url}/dione/v1/databases/moved/execute with a redirect \\(HTTP ${status} to ${other.url}/dione/v1/databases/x/execute\\), which dione/client does not follow: nothing was sent on\\. connect\\(\\) to the URL that serves the database\\.$`,
      );
      await assert.rejects(db.prepare('SELECT 1').all(), { message: refused });
      await assert.rejects(db.batch([db.prepare('SELECT 1'), db.prepare('SELECT 2')]), { message: refused });
      assert.equal(other.requests(), 0);
    });
  }

  test('dump() refuses a redirect too', async (t) => {
    const other = await misbehaving(t, (_req, res) => res.end('SQLite format 3\0'));
    const { url } = await misbehaving(t, (_req, res) => {
      res.writeHead(307, { location: `${other.url}/dump` });
      res.end();
    });
    await assert.rejects(connect({ url, database: 'moved' }).dump(), { message: /^D1_DUMP_ERROR: The server answered POST .*\/dump with a redirect \(HTTP 307 to / });
    assert.equal(other.requests(), 0);
  });
});
