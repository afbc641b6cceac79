// npm run bench:server: point selects and durable single-row writes over HTTP at 1, 8 and 64
// concurrent clients against `dione serve` (its own process; the load comes from this one), with
// the embedded binding measured in the same run. Prints requests/s and latency p50/p99.
// Reproduce: npm run bench:server [-- --seconds 5]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { open } from '../src/index.ts';
import { Catalog } from '../src/server/catalog.ts';
import { createToken } from '../src/server/tokens.ts';

const argument = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = argument('seconds', 5);
const ROWS = 10_000;
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-bench-server-'));

const server = spawn(process.execPath, [path.join(root, 'bin/dione.js'), 'serve', '--port', '0', '--data', dir], {
  stdio: ['ignore', 'ignore', 'pipe'],
  env: { ...process.env, DIONE_LOG_LEVEL: 'warn' },
});
const { url, accountId } = await new Promise<{ url: string; accountId: string }>((resolve, reject) => {
  let err = '';
  server.stderr!.on('data', (chunk: Buffer) => {
    err += chunk;
    const u = /listening on (http:\/\/\S+)/.exec(err)?.[1];
    const a = /account id (\w+)/.exec(err)?.[1];
    if (u && a) resolve({ url: u, accountId: a });
  });
  server.once('exit', (code) => reject(new Error(`dione serve exited ${code}: ${err}`)));
});

const catalog = new Catalog(dir);
const token = createToken(catalog, 'admin', null).token;
catalog.close();
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const api = `${url}/client/v4/accounts/${accountId}/d1/database`;
await fetch(api, { method: 'POST', headers, body: JSON.stringify({ name: 'bench' }) });
const seedSql = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS}) INSERT INTO items SELECT i, 'item ' || i, i * 0.25 FROM n`;
for (const sql of ['CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)', seedSql, 'CREATE TABLE log (id INTEGER PRIMARY KEY, at INTEGER, note TEXT)']) {
  const r = await fetch(`${api}/bench/query`, { method: 'POST', headers, body: JSON.stringify({ sql }) });
  if (!r.ok) throw new Error(await r.text());
}

let seq = 0;
async function load(kind: 'read' | 'write', connections: number) {
  const result = await autocannon({
    url: `${url}/query?resultsFormat=ROWS_AND_COLUMNS`,
    method: 'POST',
    headers: { ...headers, 'x-dione-database': 'bench' },
    connections,
    duration: SECONDS,
    requests: [
      {
        setupRequest: (request) => {
          const i = seq++;
          (request as { body?: string }).body =
            kind === 'read'
              ? JSON.stringify({ sql: 'SELECT * FROM items WHERE id = ?', params: [(i % ROWS) + 1] })
              : JSON.stringify({ sql: 'INSERT INTO log (at, note) VALUES (?, ?)', params: [i, 'bench'] });
          return request;
        },
      },
    ],
  });
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx };
}

async function embedded(kind: 'read' | 'write'): Promise<number> {
  const file = path.join(dir, `embedded-${kind}.sqlite`);
  const db = open(file);
  {
    await db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)\nCREATE TABLE log (id INTEGER PRIMARY KEY, at INTEGER, note TEXT)');
    await db.prepare(seedSql).run();
    let n = 0;
    const start = performance.now();
    const deadline = start + SECONDS * 1000;
    while (performance.now() < deadline) {
      if (kind === 'read') await db.prepare('SELECT * FROM items WHERE id = ?').bind((n % ROWS) + 1).first();
      else await db.prepare('INSERT INTO log (at, note) VALUES (?, ?)').bind(n, 'bench').run();
      n++;
    }
    db.close();
    return (n / (performance.now() - start)) * 1000;
  }
}

console.log(`dione bench:server: ${SECONDS}s per run, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
console.log('server: dione serve (HTTP loop + one host process for the database); load: autocannon in this process; WAL, synchronous=FULL');
console.log(`${'workload'.padEnd(34)} ${'req/s'.padStart(9)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'errors'.padStart(7)}`);
for (const kind of ['read', 'write'] as const) {
  const label = kind === 'read' ? 'point select' : 'durable single-row insert';
  console.log(`${`${label}, embedded (1 caller)`.padEnd(34)} ${(await embedded(kind)).toFixed(0).padStart(9)}`);
  for (const connections of [1, 8, 64]) {
    const r = await load(kind, connections);
    console.log(
      `${`${label}, HTTP, ${connections} clients`.padEnd(34)} ${r.rps.toFixed(0).padStart(9)} ${String(r.p50).padStart(7)} ${String(r.p99).padStart(7)} ${String(r.errors).padStart(7)}`,
    );
  }
}
console.log('reproduce: npm run bench:server -- --seconds 5');
server.kill('SIGTERM');
await new Promise((r) => server.once('exit', r));
rmSync(dir, { recursive: true, force: true });
