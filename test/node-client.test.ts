// `dione`'s connect() for Node (src/node-client.ts): dione/client's binding over node:http with
// keep-alive (the wire and the binding are dione/client's, whose answers test/conformance.test.ts checks);
// here: the calls through a real server, and what the transport itself does — network failures in D1's words with the cause, one retry on
// a kept-alive connection the server dropped, and the fetch() subset it implements.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { connect, nodeFetch } from '../src/index.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer();
  await s.createDatabase('node-client');
});
after(() => s?.close());

const listen = async (server: net.Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
};

describe('connect() over node:http', () => {
  test('reads, writes, batches and sessions against a real server, pipelined calls sharing requests', async () => {
    const db = connect({ url: s.url, token: s.token, database: 'node-client' });
    await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const inserted = await db.prepare('INSERT INTO t (v) VALUES (?)').bind('a').run();
    assert.equal(inserted.meta.changes, 1);
    const rows = await Promise.all(Array.from({ length: 20 }, (_, i) => db.prepare('SELECT ? + 1 AS n, (SELECT count(*) FROM t) AS c').bind(i).first()));
    assert.deepEqual(
      rows,
      Array.from({ length: 20 }, (_, i) => ({ n: i + 1, c: 1 })),
    );
    const [, counted] = await db.batch([db.prepare('INSERT INTO t (v) VALUES (?)').bind('b'), db.prepare('SELECT count(*) AS c FROM t')]);
    assert.deepEqual(counted!.results, [{ c: 2 }]);
    const session = db.withSession('first-primary');
    assert.equal(await session.prepare('SELECT v FROM t WHERE id = 2').first('v'), 'b');
    assert.match(session.getBookmark() ?? '', /^[0-9a-f]{8}-/);
    await assert.rejects(db.prepare('SELECT * FROM missing').all(), /D1_ERROR: no such table: missing/);
  });

  test("a network failure is D1's 'Network connection lost.', then the request and its cause", async (t) => {
    const closed = net.createServer();
    const closedPort = await listen(closed);
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const rude = net.createServer((socket) => socket.once('data', () => socket.destroy()));
    const rudePort = await listen(rude);
    t.after(() => rude.close());
    for (const [port, cause] of [
      [closedPort, `connect ECONNREFUSED 127.0.0.1:${closedPort}`],
      [rudePort, 'socket hang up'],
    ] as const) {
      const db = connect({ url: `http://127.0.0.1:${port}`, token: s.token, database: 'any' });
      const lost = { message: `D1_ERROR: Network connection lost. (POST http://127.0.0.1:${port}/dione/v1/databases/any/execute failed: ${cause})` };
      await assert.rejects(db.prepare('SELECT 1').all(), lost);
      await assert.rejects(db.batch([db.prepare('SELECT 1'), db.prepare('SELECT 2')]), lost);
    }
  });
});

describe('connect() over node:http against a server that misbehaves', () => {
  test('an answer trickled a byte at a time fails at timeoutMs, as a lost connection', { timeout: 60_000 }, async (t) => {
    const trickling = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"success":true,"results":[ ');
        const timer = setInterval(() => res.write(' '), 100);
        res.on('close', () => clearInterval(timer));
      });
    });
    const port = await listen(trickling);
    t.after(() => {
      trickling.closeAllConnections();
      trickling.close();
    });
    const db = connect({ url: `http://127.0.0.1:${port}`, database: 'slow', timeoutMs: 500 });
    await assert.rejects(db.prepare('SELECT 1').first(), {
      message: `D1_ERROR: Network connection lost. (POST http://127.0.0.1:${port}/dione/v1/databases/slow/execute failed: no complete answer within 500 ms (connect()'s timeoutMs))`,
    });
  });

  test('a redirect is refused, and nothing is sent where it points', async (t) => {
    let hijacked = 0;
    const other = http.createServer((_req, res) => {
      hijacked++;
      res.end('{}');
    });
    const otherPort = await listen(other);
    const moving = http.createServer((req, res) => {
      req.resume();
      res.writeHead(307, { location: `http://127.0.0.1:${otherPort}/dione/v1/databases/x/execute` });
      res.end();
    });
    const port = await listen(moving);
    t.after(() => {
      other.close();
      moving.close();
    });
    const db = connect({ url: `http://127.0.0.1:${port}`, token: s.token, database: 'moved' });
    await assert.rejects(db.prepare('SELECT 1').all(), {
      message: `D1_ERROR: The server answered POST http://127.0.0.1:${port}/dione/v1/databases/moved/execute with a redirect (HTTP 307 to http://127.0.0.1:${otherPort}/dione/v1/databases/x/execute), which dione/client does not follow: nothing was sent on. connect() to the URL that serves the database.`,
    });
    assert.equal(hijacked, 0);
  });
});

describe('nodeFetch', () => {
  // Found by an attacker's review: a request the server read (and ran) before its kept-alive
  // connection was reset went again on a new connection, so a write could be applied twice.
  test('a request on a kept-alive connection the server drops after reading it is not sent again: the caller hears of it', async (t) => {
    let requests = 0;
    const server = http.createServer((req, res) => {
      requests++;
      // Each connection answers its first request only; the next one is read whole, then the connection is reset.
      const socket = req.socket as net.Socket & { answered?: boolean };
      req.resume();
      req.on('end', () => {
        if (socket.answered) return socket.resetAndDestroy();
        socket.answered = true;
        res.end('ok');
      });
    });
    const port = await listen(server);
    t.after(() => server.close());
    const url = `http://127.0.0.1:${port}/`;
    assert.equal(await (await nodeFetch(url, { method: 'POST', body: 'one' })).text(), 'ok');
    await assert.rejects(nodeFetch(url, { method: 'POST', body: 'two' }), { code: 'ECONNRESET' });
    assert.equal(requests, 2, 'the second request was sent once');
    // Through connect(): a write on such a connection is a lost connection, not a write run twice.
    const db = connect({ url: `http://127.0.0.1:${port}`, database: 'd' });
    await db.prepare('SELECT 1').all().catch(() => {});
    const before = requests;
    await assert.rejects(db.prepare("INSERT INTO payments VALUES ('once')").run(), { message: /^D1_ERROR: Network connection lost\. \(POST .* failed: .*ECONNRESET/ });
    assert.equal(requests, before + 1);
  });

  test('a connection idle for 4 s is not used again (Node servers, Dione among them, close theirs after 5 s)', async (t) => {
    const connections = new Set<net.Socket>();
    const server = http.createServer((req, res) => {
      connections.add(req.socket);
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    const port = await listen(server);
    t.after(() => server.close());
    const url = `http://127.0.0.1:${port}/`;
    for (let i = 0; i < 3; i++) assert.equal(await (await nodeFetch(url, { method: 'POST', body: 'x' })).text(), 'ok');
    assert.equal(connections.size, 1, 'kept alive between requests');
    await new Promise((r) => setTimeout(r, 4300));
    assert.equal(await (await nodeFetch(url, { method: 'POST', body: 'x' })).text(), 'ok');
    assert.equal(connections.size, 2, 'after 4.3 s idle, a new connection');
  });

  test('headers in any form, byte bodies, statuses without a body, and abort', async (t) => {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/empty') {
          res.writeHead(204).end();
          return;
        }
        if (req.url === '/slow') return; // never answers
        res.writeHead(201, { 'content-type': 'application/octet-stream', 'x-seen': String(req.headers['x-test']) });
        res.end(Buffer.concat(chunks));
      });
    });
    const port = await listen(server);
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    const base = `http://127.0.0.1:${port}`;
    for (const headers of [{ 'x-test': 'plain' }, new Headers({ 'x-test': 'plain' }), [['x-test', 'plain']] as [string, string][]]) {
      const response = await nodeFetch(`${base}/echo`, { method: 'POST', headers, body: new Uint8Array([1, 2, 3]) });
      assert.equal(response.status, 201);
      assert.equal(response.headers.get('x-seen'), 'plain');
      assert.deepEqual([...new Uint8Array(await response.arrayBuffer())], [1, 2, 3]);
    }
    const empty = await nodeFetch(`${base}/empty`, { method: 'DELETE' });
    assert.equal(empty.status, 204);
    assert.equal(await empty.text(), '');
    const controller = new AbortController();
    const pending = nodeFetch(`${base}/slow`, { method: 'POST', body: 'x', signal: controller.signal });
    controller.abort(new Error('stopped by the caller'));
    await assert.rejects(pending, /stopped by the caller/);
    await assert.rejects(nodeFetch(`${base}/echo`, { signal: AbortSignal.abort(new Error('already')) }), /already/);
  });
});
