// dione/client's interactive transactions when the answer to COMMIT never arrives: a proxy on
// 127.0.0.1 in front of a real server forwards every request, and after forwarding a COMMIT drops
// the connection (or holds the answer past the call's deadline). The server has committed; the
// client must say the outcome is unknown, never that the transaction was rolled back. And with a
// deadline set, transactions work as before.
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, type TestContext, test } from 'node:test';
import { beginTransaction, connect, withTransaction } from '../src/client.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let s: TestServer;
let counter = 0;
before(async () => {
  s = await startTestServer({});
});
after(() => s?.close());

type CommitAnswer = 'drop' | 'hold';

/** A proxy to the test server that forwards everything, and loses the answer to every COMMIT as `commit` says. */
async function lossyProxy(t: TestContext, commit: CommitAnswer): Promise<string> {
  const target = new URL(s.url);
  const proxy = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const upstream = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        let text = '';
        answer.on('data', (chunk) => (text += chunk));
        answer.on('end', () => {
          if (!/"sql":"COMMIT"/.test(body)) {
            res.writeHead(answer.statusCode!, answer.headers);
            res.end(text);
          } else if (commit === 'drop') req.socket.destroy();
          // 'hold': never answer; the client's deadline ends the call.
        });
      });
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    proxy.closeAllConnections();
    proxy.close();
  });
  return `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
}

/** A fresh database with `acct (id, bal)` holding (1, 100), and a handle straight to the server. */
async function account() {
  const name = `lost-commit-${++counter}`;
  await s.createDatabase(name);
  const direct = connect({ url: s.url, token: s.token, database: name });
  await direct.exec('CREATE TABLE acct (id INTEGER PRIMARY KEY, bal INTEGER)\nINSERT INTO acct VALUES (1, 100)');
  return { name, balance: () => direct.prepare('SELECT bal FROM acct WHERE id = 1').first<number>('bal') };
}

const unknownOutcome =
  /^D1_ERROR: Network connection lost\. \(POST http:\/\/127\.0\.0\.1:\d+\/dione\/v1\/databases\/[\w-]+\/execute failed: .+\) The COMMIT's outcome is unknown: the server may have committed the transaction before the answer was lost\.$/;

describe('a COMMIT whose answer is lost', () => {
  test('as SQL on the handle: the error says the outcome is unknown (and the server did commit)', async (t) => {
    const url = await lossyProxy(t, 'drop');
    const { name, balance } = await account();
    const db = connect({ url, token: s.token, database: name, transactions: true, maxCallsPerRequest: 1 });
    await db.prepare('BEGIN').run();
    await db.prepare('UPDATE acct SET bal = bal + 10 WHERE id = 1').run();
    const error = await db
      .prepare('COMMIT')
      .run()
      .catch((e: Error) => e);
    assert.ok(error instanceof Error);
    assert.match(error.message, unknownOutcome);
    assert.doesNotMatch(error.message, /rolled back/i);
    assert.match((error.cause as Error).message, /The COMMIT's outcome is unknown/);
    assert.equal(await balance(), 110, 'the server committed: the message must not say otherwise');
  });

  test("through beginTransaction() and withTransaction(): commit's error says the outcome is unknown", async (t) => {
    const url = await lossyProxy(t, 'drop');
    const { name, balance } = await account();
    const db = connect({ url, token: s.token, database: name, transactions: true });
    const tx = await beginTransaction(db);
    await tx.db.prepare('UPDATE acct SET bal = bal + 1 WHERE id = 1').run();
    await assert.rejects(tx.commit(), { message: unknownOutcome });
    assert.equal(await balance(), 101);
    await assert.rejects(
      withTransaction(db, async (inner) => {
        await inner.prepare('UPDATE acct SET bal = bal + 1 WHERE id = 1').run();
      }),
      { message: unknownOutcome },
    );
    assert.equal(await balance(), 102);
  });

  test('a COMMIT that outlives the deadline says the same, naming the timeout', { timeout: 60_000 }, async (t) => {
    const url = await lossyProxy(t, 'hold');
    const { name, balance } = await account();
    const db = connect({ url, token: s.token, database: name, transactions: true, timeoutMs: 1000 });
    const tx = await beginTransaction(db);
    await tx.db.prepare('UPDATE acct SET bal = 7 WHERE id = 1').run();
    const error = await tx.commit().catch((e: Error) => e);
    assert.ok(error instanceof Error);
    assert.match(error.message, unknownOutcome);
    assert.match(error.message, /no complete answer within 1000 ms \(connect\(\)'s timeoutMs\)/);
    assert.equal(await balance(), 7);
  });
});

describe('transactions with a deadline set work as before', () => {
  test('withTransaction, savepoints and SQL transactions commit and roll back', async () => {
    const { name, balance } = await account();
    const db = connect({ url: s.url, token: s.token, database: name, transactions: true, timeoutMs: 30_000 });
    await withTransaction(db, async (tx) => {
      await tx.prepare('UPDATE acct SET bal = bal + 5 WHERE id = 1').run();
      await withTransaction(tx, async (inner) => {
        await inner.prepare('UPDATE acct SET bal = bal + 5 WHERE id = 1').run();
      });
      await assert.rejects(
        withTransaction(tx, async (inner) => {
          await inner.prepare('UPDATE acct SET bal = 0 WHERE id = 1').run();
          throw new Error('undo');
        }),
        { message: 'undo' },
      );
    });
    assert.equal(await balance(), 110);
    await db.prepare('BEGIN').run();
    await db.prepare('UPDATE acct SET bal = 1 WHERE id = 1').run();
    await db.prepare('ROLLBACK').run();
    assert.equal(await balance(), 110);
    await db.prepare('BEGIN').run();
    await db.prepare('UPDATE acct SET bal = 2 WHERE id = 1').run();
    await db.prepare('COMMIT').run();
    assert.equal(await balance(), 2);
  });
});
