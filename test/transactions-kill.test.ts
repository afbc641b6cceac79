// Durability of interactive transactions under SIGKILL: a process killed while it holds a
// transaction with acknowledged statements comes back with every committed transaction and nothing
// of the open one — embedded (a child process with a write log) and a `dione serve` child.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { after, test } from 'node:test';
import { beginTransaction, connect, withTransaction } from '../src/client.ts';
import { open } from '../src/index.ts';
import { tempDir } from './helpers/binding.ts';
import { root } from './helpers/paths.ts';
import { type SpawnedServer, spawnServer } from './helpers/server.ts';
import { tokenIn } from './helpers/server-checks.ts';

const children: { pid?: number; exitCode: number | null; signalCode: NodeJS.Signals | null }[] = [];
after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
});

const committedValues = (n: number) => Array.from({ length: n }, (_, i) => [(i + 1) * 10, (i + 1) * 10 + 1]).flat();

test('embedded: SIGKILL with a transaction open keeps every committed transaction and nothing of the open one', async () => {
  const file = path.join(tempDir(), 'killed.sqlite');
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/fixtures/transaction-writer.ts'), file, '5'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c));
  const ended = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_, signal) => resolve(signal)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the writer never opened its transaction:\n${err}`)), 60_000);
    child.stdout.on('data', (c: Buffer) => {
      out += c;
      if (out.includes('open\n')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => reject(new Error(`the writer ended early:\n${err}`)));
  });
  process.kill(child.pid!, 'SIGKILL');
  assert.equal(await ended, 'SIGKILL');
  const db = open(file, { history: true });
  try {
    const rows = (await db.prepare('SELECT v FROM t ORDER BY id').raw<[number]>()).map((r) => r[0]);
    assert.deepEqual(rows, committedValues(5));
  } finally {
    await db.close();
  }
});

test('dione serve: SIGKILL with transactions open keeps every committed transaction and nothing of the open ones', async () => {
  const data = tempDir();
  const token = tokenIn(data, 'admin');
  let server: SpawnedServer = await spawnServer(data, ['--transaction-timeout', '60000']);
  children.push(server.child);
  const api = (s: SpawnedServer) => `${s.url}/client/v4/accounts/${s.accountId}/d1/database`;
  const created = await fetch(api(server), { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'shop' }) });
  assert.equal(created.status, 200, await created.text());
  const db = connect({ url: server.url, token, database: 'shop', transactions: true });
  await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)');
  for (let i = 1; i <= 5; i++) {
    await withTransaction(db, async (tx) => {
      await tx.prepare('INSERT INTO t (v) VALUES (?)').bind(i * 10).run();
      await tx.prepare('INSERT INTO t (v) VALUES (?)').bind(i * 10 + 1).run();
    });
  }
  const pending = await beginTransaction(db);
  for (let v = 1000; v < 1010; v++) await pending.db.prepare('INSERT INTO t (v) VALUES (?)').bind(v).run();
  assert.equal(await pending.db.prepare('SELECT count(*) AS n FROM t').first('n'), 20);
  const died = new Promise<NodeJS.Signals | null>((resolve) => server.child.once('exit', (_, signal) => resolve(signal)));
  process.kill(server.child.pid!, 'SIGKILL');
  assert.equal(await died, 'SIGKILL');

  server = await spawnServer(data);
  children.push(server.child);
  const again = connect({ url: server.url, token, database: 'shop' });
  const rows = (await again.prepare('SELECT v FROM t ORDER BY id').raw<[number]>()).map((r) => r[0]);
  assert.deepEqual(rows, committedValues(5));
  // A client still inside the dead transaction is told, and what it sends is not run on its own.
  const continued = await fetch(`${server.url}/dione/v1/databases/shop/execute`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ queries: [{ sql: 'INSERT INTO t (v) VALUES (3000)', params: [] }], transaction: 'dead-handle', held: true }),
  });
  const answer = (await continued.json()) as { success: boolean; error: string };
  assert.equal(answer.success, false);
  assert.match(answer.error, /^Transaction rolled back: the database was closed while it was open/);
  // The database takes writes at once: no lock of the dead transaction is left.
  await again.prepare('INSERT INTO t (v) VALUES (7)').run();
  assert.equal(await again.prepare('SELECT count(*) AS n FROM t WHERE v = 3000').first('n'), 0);
  const died2 = new Promise((resolve) => server.child.once('exit', resolve));
  process.kill(server.child.pid!, 'SIGTERM');
  await died2;
});
