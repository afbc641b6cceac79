// A full disk, for real: a small tmpfs (8 MiB) holds the data, with a filler file on it that leaves
// less room than the write log's largest preallocation (4 MiB; each extension adds as much as the log
// holds, from 16 KiB). Writes are made until the disk is full:
//   - through a real `dione serve` (its --data on the tmpfs): writes fail with SQLite's wording for
//     SQLITE_FULL, every acknowledged row is there, reads answer 200, the server and the database's
//     host stay up; once the filler is deleted, writes succeed and Time Travel works (bookmark,
//     restore); a restarted server has every acknowledged row;
//   - embedded (open(file, { history: true }) on a tmpfs): the same, and the log rebuilds the
//     database exactly, quick_check passes.
// Mounting needs root (the machines and CI run as root); otherwise the tests are skipped, saying why.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type TestContext, test } from 'node:test';
import { openSqlite } from '../src/engine/sqlite.ts';
import { history, open } from '../src/index.ts';
import { LoggedExecutor } from '../src/log/executor.ts';
import { materialize } from '../src/log/pages.ts';
import { D1Database } from '../src/index.ts';
import { alive, type Envelope, fetchJson, jsonHeaders, poll, tokenIn } from './helpers/server-checks.ts';
import { type SpawnedServer, spawnServer } from './helpers/server.ts';

const FULL = 'database or disk is full: SQLITE_FULL';
const MiB = 1024 * 1024;
const ROW_BYTES = 3000;

/** A fresh directory with an 8 MiB tmpfs mounted on it, unmounted and removed after the test; undefined when not root. */
function smallDisk(t: TestContext): string | undefined {
  if (process.getuid?.() !== 0) {
    t.skip(`mounting a tmpfs needs root and this runs as uid ${process.getuid?.()}: the disk-full test cannot make a small disk`);
    return undefined;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'dione-disk-full-'));
  const disk = path.join(dir, 'disk');
  mkdirSync(disk);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', disk]);
  t.after(async () => {
    // Processes that still hold files on it (a host finishing) can keep it busy for a moment.
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        execFileSync('umount', [disk], { stdio: 'ignore' });
        break;
      } catch {
        if (attempt === 49) execFileSync('umount', ['-l', disk]);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return disk;
}

/** Fills the disk so that less than the log's largest preallocation (4 MiB) is left; returns the filler's path. */
function filler(disk: string): string {
  const file = path.join(disk, 'filler');
  writeFileSync(file, Buffer.alloc(5 * MiB, 1));
  return file;
}

const exited = (child: SpawnedServer['child']) =>
  new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

test('dione serve on a full disk: SQLITE_FULL, nothing acknowledged lost, reads and the server go on, writes and Time Travel resume when space returns', { timeout: 120_000 }, async (t) => {
  const data = smallDisk(t);
  if (!data) return;
  const token = tokenIn(data, 'admin');
  const fill = filler(data);
  let server = await spawnServer(data);
  t.after(async () => {
    if (server.child.exitCode === null && server.child.signalCode === null) {
      process.kill(server.child.pid!, 'SIGKILL');
      await exited(server.child);
    }
  });
  const api = () => `${server.url}/client/v4/accounts/${server.accountId}/d1/database`;
  const send = (method: string, url: string, body?: unknown) => fetchJson<Envelope>(url, { method, headers: jsonHeaders(token), body: body === undefined ? undefined : JSON.stringify(body) });
  const query = (sql: string, params: unknown[] = []) => send('POST', `${api()}/full/query`, { sql, params });
  const ids = async () => {
    const reply = await query('SELECT id FROM rows ORDER BY id');
    assert.equal(reply.status, 200, `a read while the disk is full: ${JSON.stringify(reply.body)}`);
    return (reply.body.result[0].results as { id: number }[]).map((r) => r.id);
  };

  assert.equal((await send('POST', api(), { name: 'full' })).status, 200);
  assert.equal((await query('CREATE TABLE rows (id INTEGER PRIMARY KEY, payload BLOB)')).status, 200);

  // Fill it: bounded by the disk's size (8 MiB / 3 KB rows, with the WAL and the log's copies).
  const acknowledged: number[] = [];
  let failure: { status: number; message: string } | undefined;
  for (let id = 1; id <= 3000 && !failure; id++) {
    const reply = await query('INSERT INTO rows (id, payload) VALUES (?, randomblob(?))', [id, ROW_BYTES]);
    if (reply.status === 200) acknowledged.push(id);
    else failure = { status: reply.status, message: reply.body.errors?.[0]?.message ?? JSON.stringify(reply.body) };
  }
  assert.ok(acknowledged.length > 0, 'no write succeeded before the disk was full');
  assert.deepEqual(failure, { status: 400, message: FULL }, 'the first write that did not fit');
  t.diagnostic(`${acknowledged.length} rows of ${ROW_BYTES} bytes acknowledged before the disk was full`);

  // While it stays full: writes keep failing the same way, reads answer, the server is up.
  for (let i = 0; i < 5; i++) {
    const reply = await query('INSERT INTO rows (id, payload) VALUES (?, randomblob(?))', [100_000 + i, ROW_BYTES]);
    assert.equal(reply.status, 400, JSON.stringify(reply.body));
    assert.equal(reply.body.errors[0].message, FULL);
    assert.deepEqual(await ids(), acknowledged, 'the rows are exactly the acknowledged ones');
  }
  assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
  assert.ok(alive(server.child.pid!), 'the server is up');
  assert.doesNotMatch(server.stderr(), /stopping this database's host|cannot open/);
  // Which side met the full disk first: SQLite writing the WAL, or the log (reported by the host at error level).
  t.diagnostic(`write-log failures reported by the host: ${server.stderr().match(/"level":50[^\n]*could not take a commit/g)?.length ?? 0}`);

  // Space returns: writes succeed again (no restart, no reopen).
  rmSync(fill);
  const resumed = await poll(async () => ((await query('INSERT INTO rows (id, payload) VALUES (?, randomblob(10))', [200_000])).status === 200 ? true : undefined), 20, 100);
  assert.ok(resumed, 'writes did not resume once space returned');
  acknowledged.push(200_000);
  assert.deepEqual(await ids(), acknowledged);

  // Time Travel still works: a bookmark, a change, a restore to the bookmark.
  const bookmark = await send('GET', `${api()}/full/time_travel/bookmark`);
  assert.equal(bookmark.status, 200, JSON.stringify(bookmark.body));
  assert.equal((await query('DELETE FROM rows WHERE id > 10')).status, 200);
  const restored = await send('POST', `${api()}/full/time_travel/restore?bookmark=${bookmark.body.result.bookmark}`);
  assert.equal(restored.status, 200, JSON.stringify(restored.body));
  assert.deepEqual(await ids(), acknowledged);

  // A new server on the same data: every acknowledged row.
  server.child.kill('SIGTERM');
  await exited(server.child);
  server = await spawnServer(data);
  assert.deepEqual(await ids(), acknowledged);
  assert.equal((await query('PRAGMA quick_check')).body.result[0].results[0].quick_check, 'ok');
});

test('embedded with history on a full disk: SQLITE_FULL, nothing acknowledged lost, reads go on, writes resume when space returns, the log agrees', { timeout: 60_000 }, async (t) => {
  const disk = smallDisk(t);
  if (!disk) return;
  const fill = filler(disk);
  const file = path.join(disk, 'app.sqlite');
  const db = open(file, { history: true });
  await db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, payload BLOB)');
  const ids = async () => (await db.prepare('SELECT id FROM rows ORDER BY id').raw<[number]>()).map(([id]) => id);

  const acknowledged: number[] = [];
  let failure: string | undefined;
  for (let id = 1; id <= 3000 && failure === undefined; id++) {
    try {
      await db.prepare('INSERT INTO rows (id, payload) VALUES (?, randomblob(?))').bind(id, ROW_BYTES).run();
      acknowledged.push(id);
    } catch (e) {
      failure = (e as Error).message;
    }
  }
  assert.ok(acknowledged.length > 0);
  assert.equal(failure, `D1_ERROR: ${FULL}`);
  for (let i = 0; i < 5; i++) {
    await assert.rejects(db.prepare('INSERT INTO rows (id, payload) VALUES (?, randomblob(?))').bind(100_000 + i, ROW_BYTES).run(), (e: Error) => e.message === `D1_ERROR: ${FULL}`);
    assert.deepEqual(await ids(), acknowledged);
  }

  rmSync(fill);
  await db.prepare('INSERT INTO rows (id, payload) VALUES (?, randomblob(10))').bind(200_000).run();
  acknowledged.push(200_000);
  const before = history(db).bookmark();
  await db.prepare('DELETE FROM rows').run();
  await history(db).restore({ bookmark: before });
  assert.deepEqual(await ids(), acknowledged);
  await db.close();

  // Reopened: the same rows; the log rebuilds the database exactly; both pass quick_check.
  const executor = new LoggedExecutor(file, {}, {});
  const again = new D1Database(executor);
  try {
    assert.deepEqual((await again.prepare('SELECT id FROM rows ORDER BY id').raw<[number]>()).map(([id]) => id), acknowledged);
    assert.equal(await again.prepare('PRAGMA quick_check').first('quick_check'), 'ok');
    const logged = executor.database;
    const rebuilt = path.join(disk, 'rebuilt.sqlite');
    materialize(logged.log, logged.snapshots, logged.engine.commitSequence, rebuilt);
    const read = (f: string) => {
      const c = openSqlite(f, { readonly: true });
      try {
        assert.equal(c.pragma('quick_check', { simple: true }), 'ok');
        return c.prepare('SELECT id, hex(payload) FROM rows ORDER BY id').raw().all();
      } finally {
        c.close();
      }
    };
    assert.deepEqual(read(rebuilt), read(file), 'the log rebuilds the live database');
  } finally {
    await again.close();
  }
});
