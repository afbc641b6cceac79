// Damage reported by name. Bytes flipped in the middle of a write-log segment:
//   - embedded: reopening reports it at error level, naming the segment file and the damaged byte
//     range; a bookmark or timestamp in the lost commits is refused as damage (not as "made while
//     the write log was off"), and so is a later point that could only be rebuilt across the loss;
//     points before the loss restore exactly, and from the snapshot taken on reopening on, later
//     points do too (new writes included);
//   - through `dione serve`: the database's host reports it on stderr as an error-level JSON line,
//     and Time Travel refuses the lost point over the REST API while an earlier one restores.
// A catalogue overwritten with garbage stops `dione serve` with one line naming the file and what
// to do, a non-zero exit, no stack trace, and the file left as it was.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { D1Database, HistoryError } from '../src/index.ts';
import { LoggedExecutor } from '../src/log/executor.ts';
import { setHistoryReporter } from '../src/log/report.ts';
import { tempDir } from './helpers/binding.ts';
import { root } from './helpers/paths.ts';
import { type Envelope, fetchJson, jsonHeaders, poll, tokenIn } from './helpers/server-checks.ts';
import { spawnServer } from './helpers/server.ts';

interface Frame {
  offset: number;
  /** Frame head plus body. */
  length: number;
  seq: number;
}

/** The records of a segment file, as framed: length, CRC-32, body (kind u8, seq f64, …). */
function framesOf(segment: string): Frame[] {
  const bytes = readFileSync(segment);
  const frames: Frame[] = [];
  for (let at = 0; at + 8 <= bytes.length; ) {
    const length = bytes.readUInt32LE(at);
    if (length === 0 || at + 8 + length > bytes.length) break;
    frames.push({ offset: at, length: 8 + length, seq: bytes.readDoubleLE(at + 9) });
    at += 8 + length;
  }
  return frames;
}

/** Flips 8 bytes in the middle of the body of the record of commit `seq`; returns that record's frame. */
function damage(segment: string, seq: number): Frame {
  const frame = framesOf(segment).find((f) => f.seq === seq);
  assert.ok(frame, `no record ${seq} in ${segment}`);
  const bytes = readFileSync(segment);
  const middle = frame.offset + Math.floor(frame.length / 2);
  for (let i = middle; i < middle + 8; i++) bytes[i] = bytes[i]! ^ 0xff;
  writeFileSync(segment, bytes);
  return frame;
}

const segmentsIn = (historyDir: string) =>
  readdirSync(path.join(historyDir, 'segments'))
    .filter((n) => n.endsWith('.log'))
    .map((n) => path.join(historyDir, 'segments', n));

test('a damaged segment: reported by file and range; lost points and points rebuilt across the loss are refused as damage; earlier points and points from a later snapshot restore', async (t) => {
  const reports: { level: string; message: string }[] = [];
  setHistoryReporter((level, message) => reports.push({ level, message }));
  t.after(() => setHistoryReporter((level, message) => process.stderr.write(`dione: ${level}: ${message}\n`)));
  let now = Date.parse('2026-03-01T00:00:00.000Z');
  const clock = () => now;
  const file = path.join(tempDir(), 'damaged.sqlite');
  const openIt = () => {
    const executor = new LoggedExecutor(file, {}, { clock });
    return { executor, db: new D1Database(executor) };
  };

  let { executor, db } = openIt();
  await db.exec('CREATE TABLE t (v INTEGER)');
  const points = new Map<number, { bookmark: string; time: number }>();
  for (let v = 1; v <= 40; v++) {
    now += 1000;
    await db.prepare('INSERT INTO t VALUES (?)').bind(v).run();
    points.set(v, { bookmark: executor.database.bookmark, time: now });
  }
  const seqOf = (v: number) => Number.parseInt(points.get(v)!.bookmark.slice(9, 17), 16);
  await db.close();

  // Damage the record of the 20th row, in the middle of the only segment.
  const [segment] = segmentsIn(`${file}-history`);
  const hit = damage(segment!, seqOf(20));
  assert.ok(hit.offset > 0 && hit.offset + hit.length < readFileSync(segment!).length, 'the damaged record is in the middle of the segment');

  ({ executor, db } = openIt());
  const logged = executor.database;
  try {
    // Reported at error level, naming the file and the damaged byte range.
    const error = reports.find((r) => r.level === 'error');
    assert.ok(error, `no error reported: ${JSON.stringify(reports)}`);
    assert.ok(error.message.includes(`${segment} bytes ${hit.offset}-${hit.offset + hit.length}`), error.message);
    assert.ok(error.message.includes(`Commit ${seqOf(20)} is lost`), error.message);
    // The database itself is whole: every row.
    assert.equal(await db.prepare('SELECT count(*) AS n FROM t').first('n'), 40);
    await logged.snapshot();

    const refusedAs = (point: Parameters<typeof logged.resolve>[0], pattern: RegExp) =>
      assert.throws(
        () => logged.resolve(point),
        (e: unknown) => e instanceof HistoryError && pattern.test(e.message) && !/write log was off/.test(e.message),
      );
    // In the lost range.
    refusedAs({ bookmark: points.get(20)!.bookmark }, /the history was damaged there/);
    refusedAs({ timestamp: new Date(points.get(20)!.time) }, /the history was damaged around that time/);
    refusedAs({ timestamp: new Date(points.get(19)!.time + 500) }, /the history was damaged around that time/);
    // After it, but only reachable by replaying across it from the snapshot before it.
    refusedAs({ bookmark: points.get(30)!.bookmark }, /damaged before it, so it cannot be rebuilt exactly/);
    refusedAs({ timestamp: new Date(points.get(30)!.time) }, /damaged before it/);

    // Before it: exact.
    await logged.restore({ bookmark: points.get(10)!.bookmark });
    assert.deepEqual(await values(db), range(1, 10));
    assert.equal(logged.bookmarkAt(new Date(points.get(5)!.time)), points.get(5)!.bookmark);
    // From the snapshot taken on reopening on (the last commit before it), and new writes: exact.
    await logged.restore({ bookmark: points.get(40)!.bookmark });
    assert.deepEqual(await values(db), range(1, 40));
    now += 1000;
    await db.prepare('INSERT INTO t VALUES (41)').run();
    const later = logged.bookmark;
    await db.prepare('DELETE FROM t').run();
    await logged.restore({ bookmark: later });
    assert.deepEqual(await values(db), range(1, 41));
    logged.fork({ bookmark: points.get(15)!.bookmark }, path.join(path.dirname(file), 'fork.sqlite'));
  } finally {
    await db.close();
  }
});

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const values = async (db: D1Database) => (await db.prepare('SELECT v FROM t ORDER BY v').raw<[number]>()).map(([v]) => v);

test('dione serve: a damaged segment is an error-level line naming the file and range; the lost point is refused as damage, an earlier one restores', { timeout: 60_000 }, async (t) => {
  const data = tempDir();
  const token = tokenIn(data, 'admin');
  let server = await spawnServer(data);
  t.after(() => {
    if (server.child.exitCode === null && server.child.signalCode === null) process.kill(server.child.pid!, 'SIGKILL');
  });
  const api = () => `${server.url}/client/v4/accounts/${server.accountId}/d1/database`;
  const send = (method: string, url: string, body?: unknown) => fetchJson<Envelope>(url, { method, headers: jsonHeaders(token), body: body === undefined ? undefined : JSON.stringify(body) });
  const query = (sql: string, params: unknown[] = []) => send('POST', `${api()}/hurt/query`, { sql, params });
  const created = await send('POST', api(), { name: 'hurt' });
  assert.equal(created.status, 200);
  const uuid = created.body.result.uuid as string;
  assert.equal((await query('CREATE TABLE t (v INTEGER)')).status, 200);
  const bookmarks: string[] = [];
  for (let v = 1; v <= 30; v++) {
    assert.equal((await query('INSERT INTO t VALUES (?)', [v])).status, 200);
    bookmarks[v] = (await send('GET', `${api()}/hurt/time_travel/bookmark`)).body.result.bookmark;
  }
  server.child.kill('SIGTERM');
  await new Promise((resolve) => server.child.once('exit', resolve));

  const [segment] = segmentsIn(path.join(data, 'databases', `${uuid}.sqlite-history`));
  const hit = damage(segment!, Number.parseInt(bookmarks[15]!.slice(9, 17), 16));
  server = await spawnServer(data);
  assert.equal((await query('SELECT count(*) AS n FROM t')).body.result[0].results[0].n, 30);
  const line = await poll(
    async () => server.stderr().split('\n').find((l) => l.includes('"level":50') && l.includes(`${segment} bytes ${hit.offset}-${hit.offset + hit.length}`)),
    50,
    100,
  );
  assert.ok(line, `no error-level line naming the damage on stderr:\n${server.stderr()}`);
  assert.equal(JSON.parse(line).file, path.join(data, 'databases', `${uuid}.sqlite`));

  const lost = await send('POST', `${api()}/hurt/time_travel/restore?bookmark=${bookmarks[15]}`);
  assert.equal(lost.status, 400, JSON.stringify(lost.body));
  assert.match(lost.body.errors[0].message, /the history was damaged there/);
  const earlier = await send('POST', `${api()}/hurt/time_travel/restore?bookmark=${bookmarks[7]}`);
  assert.equal(earlier.status, 200, JSON.stringify(earlier.body));
  assert.deepEqual(
    (await query('SELECT v FROM t ORDER BY v')).body.result[0].results.map((r: { v: number }) => r.v),
    range(1, 7),
  );
});

test('a damaged catalogue stops dione serve with one line naming the file and what to do; the file is left as it was', async () => {
  const data = tempDir();
  tokenIn(data, 'admin');
  const catalogue = path.join(data, 'catalog.sqlite');
  const garbage = Buffer.alloc(16 * 1024);
  for (let i = 0; i < garbage.length; i++) garbage[i] = (i * 7919 + 13) & 0xff;
  writeFileSync(catalogue, garbage);
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    execFile(process.execPath, [path.join(root, 'bin/dione.js'), 'serve', '--port', '0', '--data', data], { timeout: 30_000, encoding: 'utf8' }, (error, _stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stderr }),
    );
  });
  assert.notEqual(code, 0, 'dione serve went on with a damaged catalogue');
  assert.notEqual(code, null, 'dione serve did not stop by itself');
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`);
  assert.ok(lines[0]!.includes(catalogue), lines[0]);
  assert.match(lines[0]!, /restore it from a backup/);
  assert.match(lines[0]!, /move it away/);
  assert.doesNotMatch(stderr, /\n\s+at /);
  assert.deepEqual(readFileSync(catalogue), garbage, 'the catalogue was not recreated');
});
