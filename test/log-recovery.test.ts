// A history outlives runs without it: commits made with the log off (and checkpointed away) are not
// in the log, so reopening with the log starts the history again from the database as it is;
// bookmarks from before stay restorable, and the gap is refused with its reason.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { type D1Database, HistoryError, history, open } from '../src/index.ts';
import { changedSinceClose, readCloseStamp, removeCloseStamp, writeCloseStamp } from '../src/log/close-stamp.ts';
import { setHistoryReporter } from '../src/log/report.ts';
import { tempDir } from './helpers/binding.ts';

test('commits made without the log are picked up as a new starting point, older bookmarks still restore', async () => {
  const file = path.join(tempDir(), 'gap.sqlite');
  const logged = open(file, { history: true });
  await logged.exec('CREATE TABLE t (v INTEGER)');
  await logged.prepare('INSERT INTO t VALUES (1)').run();
  const early = history(logged).bookmark();
  await logged.close();

  // Without the log: enough writes that SQLite checkpoints on its own, then a close that checkpoints.
  const plain = open(file);
  const blob = 'x'.repeat(3000);
  for (let i = 0; i < 30; i++) {
    await plain.batch(Array.from({ length: 50 }, () => plain.prepare('INSERT INTO t VALUES (?)').bind(blob.length + i)));
  }
  const plainSession = plain.withSession();
  await plainSession.prepare('SELECT 1').first();
  const gapBookmark = plainSession.getBookmark()!;
  await plain.close();

  const again = open(file, { history: true });
  const resumed = history(again).bookmark();
  assert.equal(resumed.slice(0, 17), gapBookmark.slice(0, 17), 'the history continues at the commit the database reached');
  assert.equal(resumed.slice(27), early.slice(27), 'same history, same tag');
  assert.equal((await again.prepare('SELECT count(*) AS n FROM t').first('n')) as number, 1501);
  await again.prepare('INSERT INTO t VALUES (2)').run();

  const midGap = `${gapBookmark.slice(0, 9)}${(Number.parseInt(gapBookmark.slice(9, 17), 16) - 10).toString(16).padStart(8, '0')}${resumed.slice(17)}`;
  await assert.rejects(history(again).restore({ bookmark: midGap }), (e: unknown) => e instanceof HistoryError && /does not hold that commit/.test(e.message));
  assert.equal((await again.prepare('SELECT count(*) AS n FROM t').first('n')) as number, 1502);

  await history(again).restore({ bookmark: early });
  assert.deepEqual((await again.prepare('SELECT v FROM t').all()).results, [{ v: 1 }]);
  await again.close();
});

/** Rows of t as served, and as the history rebuilds the current bookmark (a fork there). */
async function servedAndRebuilt(db: D1Database, dir: string, name: string): Promise<[unknown, unknown]> {
  const fork = path.join(dir, `${name}.sqlite`);
  history(db).fork({ bookmark: history(db).bookmark() }, fork);
  const forked = open(fork);
  try {
    return [await valuesOf(db), await valuesOf(forked)];
  } finally {
    await forked.close();
  }
}

test("another program's commits while the database is open are undone, even once its connection checkpointed them into the file; the history stays exact", async () => {
  const dir = tempDir();
  for (const closesFirst of [true, false]) {
    const file = path.join(dir, `online-${closesFirst}.sqlite`);
    const db = await openWithOneRow(file);
    // Another program (its own SQLite connection, no Dione commit number) writes two transactions.
    const other = new Database(file);
    other.prepare('INSERT INTO t VALUES (100)').run();
    other.prepare('INSERT INTO t VALUES (101)').run();
    // Closing the last-but-one connection checkpoints the WAL into the file (Dione's stays open).
    if (closesFirst) other.close();
    await assert.rejects(db.prepare('SELECT count(*) FROM t').first(), /another program committed a transaction to it .* which is undone/);
    assert.deepEqual(await valuesOf(db, 'SELECT v FROM t'), [1]);
    await db.prepare('INSERT INTO t VALUES (2)').run();
    assert.deepEqual(await servedAndRebuilt(db, dir, `online-fork-${closesFirst}`), [[1, 2], [1, 2]]);
    await db.close();
    if (!closesFirst) other.close();
  }
});

test("another program's commits made while the database was closed, still in its WAL, are kept as the history's new starting point", async () => {
  const dir = tempDir();
  const file = path.join(dir, 'offline.sqlite');
  const db = await openWithOneRow(file);
  const before = history(db).bookmark();
  await db.close();
  // Its connection stays open while Dione opens: its commits are still in the WAL.
  const other = new Database(file);
  other.prepare('INSERT INTO t VALUES (100)').run();
  const again = open(file, { history: true });
  try {
    const resumed = history(again).bookmark();
    assert.ok(resumed > before, `the history goes on past ${before}: ${resumed}`);
    assert.deepEqual(await valuesOf(again), [1, 100]);
    await again.prepare('INSERT INTO t VALUES (2)').run();
    assert.deepEqual(await servedAndRebuilt(again, dir, 'offline-fork'), [[1, 100, 2], [1, 100, 2]]);
    await history(again).restore({ bookmark: before });
    assert.deepEqual(await valuesOf(again, 'SELECT v FROM t'), [1]);
    await history(again).restore({ bookmark: resumed });
    assert.deepEqual(await valuesOf(again), [1, 100]);
  } finally {
    await again.close();
    other.close();
  }
});

test("another program's commits made while the database was closed, checkpointed into the file, start the history anew: forks and restores hold them", async () => {
  const dir = tempDir();
  const file = path.join(dir, 'closed.sqlite');
  const db = open(file, { history: true });
  await db.exec('CREATE TABLE t (v INTEGER); CREATE TABLE u (v INTEGER)');
  await db.prepare('INSERT INTO t VALUES (1)').run();
  await db.prepare('INSERT INTO u VALUES (10)').run();
  const before = history(db).bookmark();
  await db.close();
  // Another program writes a table Dione's next commits do not touch, and its close checkpoints
  // the WAL into the file: nothing is left in a WAL for the next opening to find.
  const other = new Database(file);
  other.prepare('INSERT INTO u VALUES (11)').run();
  other.close();
  const again = open(file, { history: true });
  try {
    const resumed = history(again).bookmark();
    assert.ok(resumed > before, `the history goes on past ${before}: ${resumed}`);
    await again.prepare('INSERT INTO t VALUES (2)').run();
    const uRows = async (d: D1Database) => (await d.prepare('SELECT v FROM u ORDER BY rowid').raw()).flat();
    assert.deepEqual(await uRows(again), [10, 11]);
    const fork = path.join(dir, 'closed-fork.sqlite');
    history(again).fork({ bookmark: history(again).bookmark() }, fork);
    const forked = open(fork);
    try {
      assert.deepEqual(await uRows(forked), [10, 11], "a fork at the newest bookmark holds the other program's row");
      assert.equal((await forked.prepare('PRAGMA quick_check').first('quick_check')) as string, 'ok');
    } finally {
      await forked.close();
    }
    await history(again).restore({ bookmark: before });
    assert.deepEqual(await uRows(again), [10]);
    await history(again).restore({ bookmark: resumed });
    assert.deepEqual(await uRows(again), [10, 11]);
    assert.deepEqual(await valuesOf(again, 'SELECT v FROM t'), [1]);
  } finally {
    await again.close();
  }
});

test('a database file replaced while closed (an older copy put back) is taken as it is, and the history goes on from it', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'replaced.sqlite');
  const db = await openWithOneRow(file);
  await db.close();
  copyFileSync(file, `${file}.backup`);
  const second = open(file, { history: true });
  await second.prepare('INSERT INTO t VALUES (2)').run();
  const later = history(second).bookmark();
  await second.close();
  copyFileSync(`${file}.backup`, file);
  const again = open(file, { history: true });
  try {
    assert.deepEqual(await valuesOf(again, 'SELECT v FROM t'), [1], 'the copy put back is what is served, not rebuilt over');
    const resumed = history(again).bookmark();
    assert.ok(resumed > later, `the history goes on past ${later}: ${resumed}`);
    await history(again).restore({ bookmark: later });
    assert.deepEqual(await valuesOf(again), [1, 2]);
  } finally {
    await again.close();
  }
});

test('reopening a database nobody changed while it was closed starts nothing anew', async () => {
  const file = path.join(tempDir(), 'untouched.sqlite');
  const db = await openWithOneRow(file);
  const bookmark = history(db).bookmark();
  await db.close();
  for (let i = 0; i < 3; i++) {
    const again = open(file, { history: true });
    assert.equal(history(again).bookmark(), bookmark);
    assert.deepEqual(await valuesOf(again, 'SELECT v FROM t'), [1]);
    await again.close();
  }
});

test('a connection still open on the file when the history closes (its WAL kept) is no change: the next opening starts nothing anew', async () => {
  const file = path.join(tempDir(), 'kept-wal.sqlite');
  const db = await openWithOneRow(file);
  // Another handle (a plain one, as an app's second connection) reads, so the close cannot move the WAL into the file.
  const reader = open(file);
  assert.equal((await reader.prepare('SELECT count(*) AS n FROM t').first('n')) as number, 1);
  await db.prepare('INSERT INTO t VALUES (2)').run();
  const bookmark = history(db).bookmark();
  await db.close();
  assert.ok(existsSync(`${file}-wal`), "the reader's connection keeps the WAL");
  // Its close moves Dione's own commits into the file.
  await reader.close();
  const reports = captureReports();
  const again = open(file, { history: true });
  try {
    assert.equal(history(again).bookmark(), bookmark);
    assert.deepEqual(await valuesOf(again), [1, 2]);
  } finally {
    await again.close();
    reports.stop();
  }
  assert.deepEqual(reports.lines, []);
});

test("another program's commits taken as a new start while its connection keeps the WAL: a close without writes finds nothing more", async () => {
  const file = path.join(tempDir(), 'held.sqlite');
  const db = await openWithOneRow(file);
  await db.close();
  // Another process commits and keeps its connection (and so the WAL) open.
  const other = spawn(
    process.execPath,
    ['-e', `const db = new (require('better-sqlite3'))(${JSON.stringify(file)}); db.prepare('INSERT INTO t VALUES (100)').run(); console.log('ready'); process.stdin.on('end', () => { db.close(); process.exit(0); }); process.stdin.resume();`],
    { cwd: process.cwd(), stdio: ['pipe', 'pipe', 'inherit'] },
  );
  try {
    await once(other.stdout!, 'data');
    const reports = captureReports();
    const again = open(file, { history: true });
    const resumed = history(again).bookmark();
    assert.deepEqual(await valuesOf(again), [1, 100]);
    await again.close();
    reports.stop();
    assert.deepEqual(
      reports.lines.filter((line) => line.startsWith('error')),
      [],
      'the frames left in the WAL are the ones the new start holds, not another commit',
    );
    other.stdin!.end();
    await once(other, 'exit');
    const last = open(file, { history: true });
    try {
      assert.equal(history(last).bookmark(), resumed);
      assert.deepEqual(await valuesOf(last), [1, 100]);
    } finally {
      await last.close();
    }
  } finally {
    other.kill();
  }
});

test('a database file emptied while closed is rebuilt from the log, as a missing one', async () => {
  const file = path.join(tempDir(), 'emptied.sqlite');
  const db = await openWithOneRow(file);
  const bookmark = history(db).bookmark();
  await db.close();
  truncateSync(file, 0);
  const again = open(file, { history: true });
  try {
    assert.equal(history(again).bookmark(), bookmark);
    assert.deepEqual(await valuesOf(again, 'SELECT v FROM t'), [1]);
  } finally {
    await again.close();
  }
});

test("a close stamp is kept only once the filesystem's clock has passed the file's times", () => {
  const dir = tempDir();
  const file = path.join(dir, 'racy.sqlite');
  writeFileSync(file, 'x');
  // A file whose times are ahead of the clock (as a write in the close's own tick looks on a coarse filesystem).
  const ahead = new Date(Date.now() + 400);
  utimesSync(file, ahead, ahead);
  const started = Date.now();
  writeCloseStamp(dir, file, 7, 5000);
  const waited = Date.now() - started;
  assert.ok(waited >= 300, `waited ${waited} ms for the clock to pass the file's modification time`);
  assert.equal(changedSinceClose(readCloseStamp(dir), file, 7), undefined);
  // Bounded: a file whose times stay ahead gets no stamp (nothing is checked at the next opening).
  const far = new Date(Date.now() + 60_000);
  utimesSync(file, far, far);
  removeCloseStamp(dir);
  writeCloseStamp(dir, file, 8, 100);
  assert.equal(readCloseStamp(dir), undefined);
  // A write after the stamp is seen.
  const past = new Date(Date.now() - 10_000);
  utimesSync(file, past, past);
  writeCloseStamp(dir, file, 9, 5000);
  assert.notEqual(readCloseStamp(dir), undefined);
  writeFileSync(file, 'y');
  assert.equal(changedSinceClose(readCloseStamp(dir), file, 9), 'it was written');
});

/** Collects the write log's reports until stop(). */
function captureReports(): { lines: string[]; stop(): void } {
  const lines: string[] = [];
  setHistoryReporter((level, message) => lines.push(`${level}: ${message}`));
  return { lines, stop: () => setHistoryReporter((level, message) => process.stderr.write(`dione: ${level}: ${message}\n`)) };
}

test('a close stamp that cannot be written fails nothing: the close completes, and the next opening checks nothing', async () => {
  const file = path.join(tempDir(), 'no-stamp.sqlite');
  const db = await openWithOneRow(file);
  const bookmark = history(db).bookmark();
  // Where the stamp is written, a directory: the write fails.
  mkdirSync(path.join(`${file}-history`, 'closed-stamp.json'));
  await db.close();
  assert.equal(readCloseStamp(`${file}-history`), undefined);
  const again = open(file, { history: true });
  try {
    assert.equal(history(again).bookmark(), bookmark);
    assert.deepEqual(await valuesOf(again, 'SELECT v FROM t'), [1]);
  } finally {
    await again.close();
  }
});

/** A database with a history, its table t holding one row (1). */
async function openWithOneRow(file: string): Promise<D1Database> {
  const db = open(file, { history: true });
  await db.exec('CREATE TABLE t (v INTEGER)');
  await db.prepare('INSERT INTO t VALUES (1)').run();
  return db;
}

/** The values of t's column v as `sql` reads them (by default in rowid order). */
async function valuesOf(db: D1Database, sql = 'SELECT v FROM t ORDER BY rowid'): Promise<unknown[]> {
  return (await db.prepare(sql).raw()).flat();
}
