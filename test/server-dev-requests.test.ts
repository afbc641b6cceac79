// `dione serve --dev`: a request without a token acts as admin for the developer's tools, never for a
// web page of another site (cross-site request forgery) nor one whose name was rebound to 127.0.0.1
// (DNS rebinding). Real server on 127.0.0.1, raw HTTP requests with the headers browsers send.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer } from './helpers/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer({ allowUnauthenticated: true });
  await s.createDatabase('dev');
});
after(() => s?.close());

/** POSTs a write with exactly these headers (no token unless given); status and body. */
function write(headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const body = JSON.stringify({ queries: [{ sql: 'CREATE TABLE IF NOT EXISTS pwned (x)', params: [] }] });
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: '127.0.0.1', port: s.server.port, method: 'POST', path: '/dione/v1/databases/dev/execute', headers: { 'content-type': 'text/plain;charset=UTF-8', 'content-length': Buffer.byteLength(body), ...headers } },
      (response) => {
        let text = '';
        response.on('data', (d) => (text += d));
        response.on('end', () => resolve({ status: response.statusCode!, body: text }));
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function pwned(): Promise<boolean> {
  const reply = await s.call(`${s.api}/dev/query`, { method: 'POST', body: JSON.stringify({ sql: "SELECT count(*) AS n FROM sqlite_master WHERE name = 'pwned'" }) });
  return ((await reply.json()) as { result: { results: { n: number }[] }[] }).result[0]!.results[0]!.n === 1;
}

test('a page of another site, or a name rebound to 127.0.0.1, is refused without a token; nothing is written', async () => {
  const port = s.server.port;
  const pages: Record<string, string>[] = [
    { host: `127.0.0.1:${port}`, origin: 'http://evil.example' },
    { host: `127.0.0.1:${port}`, origin: 'null' },
    { host: `attacker.example:${port}` },
    { host: `attacker.example:${port}`, origin: `http://attacker.example:${port}` },
    // An empty or blank Authorization header is no token either (an attacker's review got admin with one).
    { host: `attacker.example:${port}`, origin: `http://attacker.example:${port}`, authorization: '' },
    { host: `attacker.example:${port}`, authorization: '   ' },
  ];
  for (const headers of pages) {
    const reply = await write(headers);
    assert.equal(reply.status, 403, JSON.stringify(headers));
    assert.match(JSON.parse(reply.body).errors[0].message, /^--dev serves requests without a token only/);
  }
  assert.equal(await pwned(), false);
});

test("the developer's tools and the server's own pages are served without a token, and any request with a token as it says", async () => {
  const port = s.server.port;
  const tools: Record<string, string>[] = [{ host: `127.0.0.1:${port}` }, { host: `localhost:${port}` }, { host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` }, { host: `[::1]:${port}` }];
  for (const headers of tools) {
    assert.equal((await write(headers)).status, 200, JSON.stringify(headers));
  }
  // A token is no ambient authority a page can borrow: with one, Host and Origin are not asked about.
  assert.equal((await write({ host: `attacker.example:${port}`, origin: 'http://evil.example', authorization: `Bearer ${s.token}` })).status, 200);
  assert.equal(await pwned(), true);
});
