// A flood of idle connections (no token needed: a TCP connect is enough) must not take the file
// descriptors databases need. Before `--max-connections`, 1,100 idle sockets against a server whose
// open-file limit was 1,024 made every write fail with EMFILE (its WAL and log could not be opened).
// The server runs as `dione serve` in its own process, with its limit lowered by the shell (ulimit).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { type SpawnedServer, spawnServer } from './helpers/server.ts';

const children: SpawnedServer[] = [];
const dirs: string[] = [];
after(() => {
  for (const server of children) server.child.kill('SIGKILL');
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Served {
  url: URL;
  api: string;
  log: () => string;
}

/** `dione serve --dev` with the given open-file limit (ulimit -n) and flags. */
async function serve(openFiles: number | undefined, args: string[] = []): Promise<Served> {
  const dir = mkdtempSync(path.join(tmpdir(), 'dione-flood-'));
  dirs.push(dir);
  const server = await spawnServer(dir, ['--dev', ...args], { openFiles });
  children.push(server);
  return { url: new URL(server.url), api: `/client/v4/accounts/${server.accountId}/d1/database`, log: server.stdout };
}

/** A POST of JSON over `agent` (one kept-alive connection), answered with its status and body. */
function post(server: Served, agent: http.Agent | undefined, route: string, body: unknown): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: server.url.hostname, port: server.url.port, path: route, method: 'POST', agent, headers: { 'content-type': 'application/json' }, timeout: 10_000 },
      (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode!, body: JSON.parse(text) }));
      },
    );
    request.on('error', reject);
    request.on('timeout', () => request.destroy(new Error(`${route}: no answer in 10 s`)));
    request.end(JSON.stringify(body));
  });
}

/** `count` idle connections to the server; resolves once they have had time to be accepted or closed. */
async function flood(server: Served, count: number): Promise<net.Socket[]> {
  const sockets: net.Socket[] = [];
  for (let i = 0; i < count; i++) {
    const socket = net.connect(Number(server.url.port), server.url.hostname);
    socket.on('error', () => {});
    sockets.push(socket);
  }
  await new Promise((resolve) => setTimeout(resolve, 1500));
  return sockets;
}

const stillOpen = (sockets: net.Socket[]) => sockets.filter((s) => !s.destroyed && s.readyState === 'open').length;

test('with an open-file limit of 512, 700 idle connections leave the databases their descriptors: writes and a new database work', async () => {
  const server = await serve(512);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    assert.equal((await post(server, agent, server.api, { name: 'flooded' })).status, 200);
    assert.equal((await post(server, agent, `${server.api}/flooded/query`, { sql: "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('before')" })).status, 200);

    const sockets = await flood(server, 700);
    // A quarter of the limit are taken; the rest were closed as they came.
    assert.ok(stillOpen(sockets) <= 128, `${stillOpen(sockets)} flood connections stayed open`);
    for (let i = 0; i < 3; i++) {
      const written = await post(server, agent, `${server.api}/flooded/query`, { sql: 'INSERT INTO t VALUES (?)', params: [`during ${i}`] });
      assert.equal(written.status, 200, JSON.stringify(written.body));
    }
    // Opening another database needs descriptors of its own (file, WAL, -shm, log).
    assert.equal((await post(server, agent, server.api, { name: 'during-flood' })).status, 200);
    const other = await post(server, agent, `${server.api}/during-flood/query`, { sql: "CREATE TABLE u (v); INSERT INTO u VALUES ('ok')" });
    assert.equal(other.status, 200, JSON.stringify(other.body));
    assert.match(server.log(), /128 connections are open \(--max-connections\): new ones are closed as they come/);
    assert.equal(server.log().match(/new ones are closed/g)!.length, 1, 'said once, not once per connection');

    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 500));
    // A new client (a new connection) is served again.
    const read = await post(server, undefined, `${server.api}/flooded/query`, { sql: 'SELECT v FROM t ORDER BY rowid' });
    assert.deepEqual(read.body.result[0].results.map((r: { v: string }) => r.v), ['before', 'during 0', 'during 1', 'during 2']);
  } finally {
    agent.destroy();
  }
});

test('--max-connections bounds the connections open at once', async () => {
  const server = await serve(undefined, ['--max-connections', '20']);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    assert.equal((await post(server, agent, server.api, { name: 'bounded' })).status, 200);
    const sockets = await flood(server, 60);
    // The agent's connection is one of the 20.
    assert.equal(stillOpen(sockets), 19);
    assert.equal((await post(server, agent, `${server.api}/bounded/query`, { sql: 'SELECT 1 AS one' })).body.result[0].results[0].one, 1);
    for (const socket of sockets) socket.destroy();
  } finally {
    agent.destroy();
  }
});
