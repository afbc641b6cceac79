// Time Travel and forks through the public embedded API (open(file, { history }), history(db),
// withSession().getBookmark()): bookmarks count commits and carry the history's tag; reads and
// failed requests do not move them; bookmark(timestamp) names the newest commit at or before the
// time; restore (by bookmark or timestamp) changes the content, answers a previous_bookmark that
// undoes it, is itself a later bookmark and survives a reopen; a fork is an equal, independent
// database with its own history; bad points are refused with a HistoryError that says why and
// change nothing; retention drops old snapshots and log segments from disk and old bookmarks from
// Time Travel while restores inside the window keep working, across a reopen too.
//
// Most tests use the `clock` option (a fake clock, ms since the epoch) so times are exact; one uses
// real time with short sleeps. The last group holds regressions for bugs these tests found in src/log.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { D1Database, type HistoryOptions, HistoryError, history, open } from '../src/index.ts';
import { LoggedExecutor } from '../src/log/executor.ts';
import { assertWorks, rejectsWith, snapshot, tempDir } from './helpers/binding.ts';

const DAY = 24 * 60 * 60 * 1000;
const TAG = /^[0-9a-f]{32}$/;

const hex8 = (n: number) => n.toString(16).padStart(8, '0');
/** The bookmark of commit `seq` in the history tagged `tag`, written out by hand (not with src's formatter). */
const bookmarkOf = (seq: number, tag: string) => `${hex8(Math.floor(seq / 2 ** 32))}-${hex8(seq % 2 ** 32)}-00000000-${tag}`;
const seqOf = (bookmark: string) => Number.parseInt(bookmark.slice(0, 8), 16) * 2 ** 32 + Number.parseInt(bookmark.slice(9, 17), 16);
const tagOf = (bookmark: string) => bookmark.slice(27);
const tagFile = (file: string) => readFileSync(`${file}-history/tag`, 'utf8').trim();

/** A clock the test moves by hand: every commit is stamped with its current value. */
class FakeClock {
  now = Date.parse('2026-01-01T00:00:00.000Z');
  readonly read = () => this.now;
  tick(ms: number): number {
    this.now += ms;
    return this.now;
  }
}

/** What a user sees of a database: every schema object, every row, and the AUTOINCREMENT counters. */
async function content(db: D1Database): Promise<unknown> {
  const whole = await snapshot(db);
  let sequence: unknown[] = [];
  try {
    sequence = await db.prepare('SELECT name, seq FROM sqlite_sequence ORDER BY name').raw();
  } catch {
    // no AUTOINCREMENT table at this point
  }
  return { ...whole, sequence };
}

/** Every file under `dir`, with its size (what a refused request must leave as it was). */
function listing(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const full = path.join(entry.parentPath, entry.name);
      out[path.relative(dir, full)] = statSync(full).size;
    }
  }
  return out;
}

function bytesUnder(dir: string): number {
  return Object.values(listing(dir)).reduce((a, b) => a + b, 0);
}

/**
 * Runs `attempt`, which must fail with a HistoryError whose message matches `message`, and checks
 * that nothing changed: content, current bookmark, the history's files, the directory's files.
 */
async function assertRefused(db: D1Database, file: string, attempt: () => unknown, message: RegExp): Promise<HistoryError> {
  const before = { content: await content(db), bookmark: history(db).bookmark(), history: listing(`${file}-history`), dir: readdirSync(path.dirname(file)).sort() };
  let error: unknown;
  try {
    await attempt();
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof HistoryError, `expected a HistoryError matching ${message}, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
  assert.match(error.message, message);
  assert.deepEqual(await content(db), before.content, `content changed after: ${error.message}`);
  assert.equal(history(db).bookmark(), before.bookmark, `bookmark changed after: ${error.message}`);
  assert.deepEqual(listing(`${file}-history`), before.history, `history files changed after: ${error.message}`);
  assert.deepEqual(readdirSync(path.dirname(file)).sort(), before.dir, `files appeared or vanished after: ${error.message}`);
  return error;
}

async function withTables(db: D1Database): Promise<void> {
  await db.exec(
    ['CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, added TEXT DEFAULT CURRENT_TIMESTAMP)', 'CREATE TABLE tags (item INTEGER, tag TEXT)'].join('\n'),
  );
}

async function add(db: D1Database, ...names: string[]): Promise<void> {
  await db.batch(names.map((n) => db.prepare('INSERT INTO items (name) VALUES (?)').bind(n)));
}

// ------------------------------------------------------------------------------------------------

describe('bookmarks', () => {
  test('every commit moves the bookmark by exactly one; reads and failed requests do not; all carry the history tag', async () => {
    const file = path.join(tempDir(), 'app.sqlite');
    const db = open(file, { history: true });
    try {
      const h = history(db);
      const tag = tagFile(file);
      assert.match(tag, TAG);
      assert.equal(h.bookmark(), bookmarkOf(0, tag), 'a new database is at commit 0');

      const session = db.withSession();
      const seen: string[] = [h.bookmark()];
      const expectAt = (seq: number, what: string) => {
        assert.equal(h.bookmark(), bookmarkOf(seq, tag), `${what}: history(db).bookmark()`);
        const b = session.getBookmark();
        assert.equal(b, bookmarkOf(seq, tag), `${what}: session.getBookmark()`);
        seen.push(b!);
      };

      await session.prepare('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)').run();
      expectAt(1, 'CREATE TABLE');
      await session.prepare("INSERT INTO t (v) VALUES ('a')").run();
      expectAt(2, 'one INSERT');
      await session.batch([session.prepare("INSERT INTO t (v) VALUES ('b')"), session.prepare("INSERT INTO t (v) VALUES ('c')"), session.prepare("UPDATE t SET v = 'cc' WHERE v = 'c'")]);
      expectAt(3, 'a batch of three writes is one commit');
      await db.exec("INSERT INTO t (v) VALUES ('d')\nDELETE FROM t WHERE v = 'a'");
      await session.prepare('SELECT 1').first();
      expectAt(4, 'an exec of two lines is one commit');

      // Reads, through the session and around it, leave it where it is.
      assert.equal((await session.prepare('SELECT * FROM t').all()).results.length, 3);
      await session.prepare('SELECT count(*) FROM t').raw();
      await db.prepare('SELECT * FROM t WHERE v = ?').bind('b').first();
      await db.batch([db.prepare('SELECT 1'), db.prepare('SELECT 2')]);
      expectAt(4, 'after reads');

      // Failed requests roll back and commit nothing.
      await rejectsWith(() => session.prepare("INSERT INTO t (v) VALUES ('b')").run(), /UNIQUE constraint failed/);
      await rejectsWith(() => db.batch([db.prepare("INSERT INTO t (v) VALUES ('e')"), db.prepare('INSERT INTO nope VALUES (1)')]), /no such table: nope/);
      await rejectsWith(() => db.exec("INSERT INTO t (v) VALUES ('f')\nINSERT INTO t (v) VALUES ('b')"), /UNIQUE constraint failed/);
      await session.prepare('SELECT 1').first();
      expectAt(4, 'after failed requests');
      assert.deepEqual(await db.prepare('SELECT v FROM t ORDER BY v').raw(), [['b'], ['cc'], ['d']]);

      // A session continued from an older bookmark catches up on its first query.
      const continued = db.withSession(seen[1]!);
      await continued.prepare('SELECT 1').first();
      assert.equal(continued.getBookmark(), bookmarkOf(4, tag));

      // Strings sort in commit order.
      const distinct = [...new Set(seen)];
      assert.deepEqual([...distinct].sort(), distinct);
      assert.equal(distinct.length, 5);

      // Another database's history has another tag.
      const other = open(path.join(tempDir(), 'other.sqlite'), { history: true });
      try {
        assert.match(tagOf(history(other).bookmark()), TAG);
        assert.notEqual(tagOf(history(other).bookmark()), tag);
      } finally {
        await other.close();
      }
    } finally {
      await db.close();
    }
  });

  test('history(db) needs a database opened with a history, and a history needs a writable file', () => {
    const plain = open(':memory:');
    try {
      assert.throws(() => history(plain), /not opened with \{ history: true \}/);
    } finally {
      plain.close();
    }
    assert.throws(() => open(':memory:', { history: true }), /history needs a writable database file/);
  });

  test('bookmark(timestamp) names the newest commit at or before the time (fake clock)', async () => {
    const clock = new FakeClock();
    const start = clock.now;
    const file = path.join(tempDir(), 'app.sqlite');
    const db = open(file, { history: { clock: clock.read } });
    try {
      const h = history(db);
      const tag = tagFile(file);
      clock.tick(1000);
      await withTables(db); // 1 at +1000
      clock.tick(1000);
      await add(db, 'a'); // 2 at +2000
      await add(db, 'b'); // 3 at +2000 too
      clock.tick(3000);
      await add(db, 'c'); // 4 at +5000
      clock.tick(5000); // now +10000

      const at = (ms: number) => h.bookmark(new Date(start + ms));
      assert.equal(at(0), bookmarkOf(0, tag), 'the start of the history');
      assert.equal(at(999), bookmarkOf(0, tag));
      assert.equal(at(1000), bookmarkOf(1, tag), 'exactly at a commit');
      assert.equal(at(1999), bookmarkOf(1, tag));
      assert.equal(at(2000), bookmarkOf(3, tag), 'two commits in one millisecond: the newer');
      assert.equal(at(4999), bookmarkOf(3, tag));
      assert.equal(at(5000), bookmarkOf(4, tag));
      assert.equal(at(10_000), bookmarkOf(4, tag), 'now');
      assert.equal(at(2500), at(2500), 'the same time, the same bookmark');
      assert.equal(h.bookmark(), bookmarkOf(4, tag));

      await assertRefused(db, file, () => h.bookmark(new Date(start - 1)), /^Invalid timestamp '2025-12-31T23:59:59\.999Z': the database's history starts at 2026-01-01T00:00:00\.000Z/);
      await assertRefused(db, file, () => h.bookmark(new Date(start + 10_001)), /^Invalid timestamp '2026-01-01T00:00:10\.001Z': it is in the future/);
      await assertRefused(db, file, () => h.bookmark(new Date(Number.NaN)), /^Invalid timestamp/);
    } finally {
      await db.close();
    }
  });

  test('bookmark(timestamp) with the real clock', async () => {
    const db = open(path.join(tempDir(), 'app.sqlite'), { history: true });
    try {
      const h = history(db);
      await withTables(db);
      await add(db, 'a');
      const afterA = h.bookmark();
      await sleep(15);
      const between = new Date();
      await sleep(15);
      await add(db, 'b');
      assert.equal(h.bookmark(between), afterA);
      assert.equal(h.bookmark(new Date()), h.bookmark());
      assert.notEqual(h.bookmark(), afterA);
      await assert.rejects(
        h.restore({ timestamp: new Date(Date.now() + 60_000) }),
        (e: unknown) => e instanceof HistoryError && /in the future/.test(e.message),
      );
    } finally {
      await db.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('restore', () => {
  test('by bookmark: the content goes back, the restore is a later bookmark, previous_bookmark undoes it', async () => {
    const file = path.join(tempDir(), 'app.sqlite');
    const db = open(file, { history: true });
    try {
      const h = history(db);
      const tag = tagFile(file);
      const empty = await content(db);
      const b0 = h.bookmark();
      await withTables(db);
      await add(db, 'a', 'b', 'c');
      await db.prepare("INSERT INTO tags VALUES (1, 'x'), (2, 'y')").run();
      const bA = h.bookmark();
      const stateA = await content(db);

      await add(db, 'd', 'e');
      await db.prepare('DELETE FROM items WHERE id = 1').run();
      await db.exec('ALTER TABLE tags ADD COLUMN weight REAL DEFAULT 1.5\nCREATE INDEX tags_tag ON tags (tag)\nCREATE TABLE later (x)');
      const bB = h.bookmark();
      const stateB = await content(db);
      assert.notDeepEqual(stateB, stateA);

      const session = db.withSession();
      await session.prepare('SELECT 1').first();
      assert.equal(session.getBookmark(), bB);

      const r = await h.restore({ bookmark: bA });
      assert.deepEqual(Object.keys(r).sort(), ['bookmark', 'message', 'previous_bookmark']);
      assert.equal(r.previous_bookmark, bB);
      assert.equal(r.bookmark, bookmarkOf(seqOf(bB) + 1, tag), 'a restore is the next commit');
      assert.ok(r.bookmark > bB);
      assert.match(r.message, new RegExp(bA));
      assert.equal(h.bookmark(), r.bookmark);
      assert.deepEqual(await content(db), stateA, 'the content is back at bA (schema, rows, AUTOINCREMENT counter)');
      // The session moves on to the restore's bookmark, which is later than anything it saw.
      await session.prepare('SELECT count(*) FROM items').first();
      assert.equal(session.getBookmark(), r.bookmark);

      // Undo.
      const u = await h.restore({ bookmark: r.previous_bookmark });
      assert.equal(u.previous_bookmark, r.bookmark);
      assert.equal(u.bookmark, bookmarkOf(seqOf(r.bookmark) + 1, tag));
      assert.deepEqual(await content(db), stateB, 'undone');

      // The restore is a point of the history like any other; so is the very beginning.
      await h.restore({ bookmark: r.bookmark });
      assert.deepEqual(await content(db), stateA);
      const toEmpty = await h.restore({ bookmark: b0 });
      assert.deepEqual(await content(db), empty);
      await h.restore({ bookmark: toEmpty.previous_bookmark });
      assert.deepEqual(await content(db), stateA);

      // Writing goes on from the restored state: AUTOINCREMENT continues from bA's counter.
      await add(db, 'f');
      assert.equal(await db.prepare("SELECT id FROM items WHERE name = 'f'").first('id'), 4);
      assert.equal(seqOf(h.bookmark()), seqOf(toEmpty.bookmark) + 2);
      await assertWorks(db);
    } finally {
      await db.close();
    }
  });

  test('commits of megabytes (their pages logged in pieces; past 16 MiB, read again from the WAL) restore and fork exactly, after a reopen too', async () => {
    const file = path.join(tempDir(), 'big.sqlite');
    // Random blobs: pages that do not compress, ~750 of them in the first commit, ~5,000 (20 MiB) in the third.
    const digest = async (db: D1Database) => {
      const rows = await db.prepare('SELECT id, hex(v) FROM big ORDER BY id').raw();
      return createHash('sha256').update(JSON.stringify(rows)).digest('hex');
    };
    let db = open(file, { history: true });
    let bA: string;
    let bB: string;
    let stateA: string;
    let stateB: string;
    try {
      await db.exec('CREATE TABLE big (id INTEGER PRIMARY KEY, v BLOB)');
      await db.prepare('WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO big SELECT i, randomblob(1000) FROM n').run();
      bA = history(db).bookmark();
      stateA = await digest(db);
      await db.prepare('UPDATE big SET v = randomblob(900) WHERE id % 2 = 0').run();
      await db.prepare('WITH RECURSIVE n(i) AS (SELECT 3001 UNION ALL SELECT i + 1 FROM n WHERE i < 23000) INSERT INTO big SELECT i, randomblob(1000) FROM n').run();
      bB = history(db).bookmark();
      stateB = await digest(db);
      assert.notEqual(stateA, stateB);
      const fork = path.join(path.dirname(file), 'fork.sqlite');
      history(db).fork({ bookmark: bA }, fork);
      const forked = open(fork);
      try {
        assert.equal(await digest(forked), stateA);
      } finally {
        await forked.close();
      }
    } finally {
      await db.close();
    }
    // The records as they lie in the log: the large ones in pieces (kind 4).
    const kinds = new Set<number>();
    let largest = 0;
    for (const name of readdirSync(`${file}-history/segments`).filter((n) => n.endsWith('.log'))) {
      const bytes = readFileSync(path.join(`${file}-history/segments`, name));
      for (let at = 0; at + 8 < bytes.length && bytes.readUInt32LE(at) > 0; at += 8 + bytes.readUInt32LE(at)) {
        kinds.add(bytes[at + 8]!);
        // A pages record's page size and page count, after kind, sequence and time.
        if (bytes[at + 8] === 4) largest = Math.max(largest, bytes.readUInt32LE(at + 8 + 17) * bytes.readUInt32LE(at + 8 + 25));
      }
    }
    assert.ok(kinds.has(4), `kinds in the log: ${[...kinds]}`);
    assert.ok(largest > 16 * 1024 * 1024, `the largest commit logged holds ${largest} bytes of pages`);
    db = open(file, { history: true });
    try {
      await history(db).restore({ bookmark: bA });
      assert.equal(await digest(db), stateA);
      await history(db).restore({ bookmark: bB });
      assert.equal(await digest(db), stateB);
      await assertWorks(db);
    } finally {
      await db.close();
    }
  });

  test('by timestamp (fake clock): the state at that time; previous_bookmark undoes it', async () => {
    const clock = new FakeClock();
    const file = path.join(tempDir(), 'app.sqlite');
    const db = open(file, { history: { clock: clock.read } });
    try {
      const h = history(db);
      clock.tick(1000);
      await withTables(db);
      await add(db, 'a');
      const stateA = await content(db);
      const tA = new Date(clock.tick(60_000) - 30_000); // half a minute after a, half a minute before b
      await add(db, 'b');
      await db.prepare("UPDATE items SET name = 'A' WHERE name = 'a'").run();
      const bLatest = h.bookmark();
      const stateLatest = await content(db);
      clock.tick(60_000);

      const expected = h.bookmark(tA);
      const r = await h.restore({ timestamp: tA });
      assert.equal(r.previous_bookmark, bLatest);
      assert.match(r.message, new RegExp(expected));
      assert.deepEqual(await content(db), stateA);
      // The restore is the newest commit now: a timestamp after it names it.
      clock.tick(1000);
      assert.equal(h.bookmark(new Date(clock.now)), r.bookmark);

      await h.restore({ bookmark: r.previous_bookmark });
      assert.deepEqual(await content(db), stateLatest);
      // The timestamp still names the same (older) commit afterwards.
      assert.equal(h.bookmark(tA), expected);
    } finally {
      await db.close();
    }
  });

  test('a restore survives close and reopen, and its previous_bookmark still undoes it', async () => {
    const file = path.join(tempDir(), 'app.sqlite');
    let db = open(file, { history: true });
    const tag = tagFile(file);
    await withTables(db);
    await add(db, 'a');
    const bA = history(db).bookmark();
    const stateA = await content(db);
    await add(db, 'b', 'c');
    await db.exec('DROP TABLE tags');
    const stateB = await content(db);
    const r = await history(db).restore({ bookmark: bA });
    await db.close();

    db = open(file, { history: true });
    try {
      assert.equal(tagFile(file), tag);
      assert.equal(history(db).bookmark(), r.bookmark);
      assert.deepEqual(await content(db), stateA);
      const s = db.withSession();
      await s.prepare('SELECT 1').first();
      assert.equal(s.getBookmark(), r.bookmark);
      await history(db).restore({ bookmark: r.previous_bookmark });
      assert.deepEqual(await content(db), stateB);
    } finally {
      await db.close();
    }
  });

  test('a reopen keeps the history: same tag, bookmarks continue, old bookmarks restore and fork', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'app.sqlite');
    let db = open(file, { history: true });
    const tag = tagFile(file);
    await withTables(db);
    await add(db, 'a', 'b');
    const bA = history(db).bookmark();
    const stateA = await content(db);
    await add(db, 'c');
    const last = history(db).bookmark();
    await db.close();

    for (let round = 0; round < 2; round++) {
      db = open(file, { history: true });
      try {
        assert.equal(history(db).bookmark(), round === 0 ? last : bookmarkOf(seqOf(last) + 1, tag), 'the bookmark after a reopen');
        if (round === 0) {
          const s = db.withSession();
          await s.prepare("INSERT INTO items (name) VALUES ('after reopen')").run();
          assert.equal(s.getBookmark(), bookmarkOf(seqOf(last) + 1, tag), 'the next commit continues the count');
        } else {
          const forked = history(db).fork({ bookmark: bA }, path.join(dir, 'fork.sqlite'));
          assert.equal(forked.bookmark, bA);
          const r = await history(db).restore({ bookmark: bA });
          assert.deepEqual(await content(db), stateA);
          assert.equal(seqOf(r.bookmark), seqOf(last) + 2);
          const fork = open(path.join(dir, 'fork.sqlite'), { history: true });
          try {
            assert.deepEqual(await content(fork), stateA);
          } finally {
            await fork.close();
          }
        }
      } finally {
        await db.close();
      }
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('fork', () => {
  test('an equal database with a history of its own; the two then go their own ways', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'source.sqlite');
    const db = open(file, { history: true });
    const forkFile = path.join(dir, 'copy.sqlite');
    let fork: D1Database | undefined;
    try {
      const h = history(db);
      const tag = tagFile(file);
      await withTables(db);
      await add(db, 'a', 'b');
      const bA = h.bookmark();
      const stateA = await content(db);
      await add(db, 'c');
      await db.exec('DROP TABLE tags');
      const stateB = await content(db);

      const forked = h.fork({ bookmark: bA }, forkFile);
      assert.deepEqual(Object.keys(forked).sort(), ['bookmark', 'forkBookmark']);
      assert.equal(forked.bookmark, bA, "the point, as the source's bookmark");
      const forkTag = tagFile(forkFile);
      assert.match(forkTag, TAG);
      assert.notEqual(forkTag, tag);
      assert.equal(forked.forkBookmark, bookmarkOf(seqOf(bA), forkTag), "the point, as the fork's first bookmark");
      assert.deepEqual(await content(db), stateB, 'the source is untouched');

      fork = open(forkFile, { history: true });
      const hf = history(fork);
      assert.equal(hf.bookmark(), forked.forkBookmark);
      assert.deepEqual(await content(fork), stateA);

      // Independent from here on, both ways.
      await add(db, 'only in source');
      await add(fork, 'only in fork');
      const names = async (d: D1Database) => (await d.prepare('SELECT name FROM items ORDER BY id').raw()).flat();
      assert.deepEqual(await names(db), ['a', 'b', 'c', 'only in source']);
      assert.deepEqual(await names(fork), ['a', 'b', 'only in fork']);
      assert.equal(await fork.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'tags'").first('n'), 1, 'the fork still has the table the source dropped');
      const fs = fork.withSession();
      await fs.prepare('SELECT 1').first();
      assert.equal(fs.getBookmark(), bookmarkOf(seqOf(bA) + 1, forkTag), "the fork's commits carry its tag");
      assert.equal(h.bookmark(), bookmarkOf(seqOf(bA) + 3, tag));

      // Each history knows only its own bookmarks.
      await assertRefused(fork, forkFile, () => hf.restore({ bookmark: bA }), /another database/);
      await assertRefused(db, file, () => h.restore({ bookmark: forked.forkBookmark }), /another database/);
      const r = await hf.restore({ bookmark: forked.forkBookmark });
      assert.deepEqual(await content(fork), stateA);
      assert.equal(tagOf(r.bookmark), forkTag);

      // A fork of the current state, by timestamp, while the source goes on.
      const now = h.fork({ timestamp: new Date() }, path.join(dir, 'now.sqlite'));
      assert.equal(now.bookmark, h.bookmark());
      const latest = await content(db);
      await add(db, 'after the second fork');
      const second = open(path.join(dir, 'now.sqlite'), { history: true });
      try {
        assert.deepEqual(await content(second), latest);
      } finally {
        await second.close();
      }
    } finally {
      await fork?.close();
      await db.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('bad input is refused with the reason and changes nothing', () => {
  test('malformed bookmarks, another database, the future, bad timestamps, an existing fork target', async () => {
    const clock = new FakeClock();
    const dir = tempDir();
    const file = path.join(dir, 'app.sqlite');
    const db = open(file, { history: { clock: clock.read } });
    const other = open(path.join(tempDir(), 'other.sqlite'), { history: true });
    try {
      const h = history(db);
      clock.tick(1000);
      await withTables(db);
      await add(db, 'a', 'b');
      clock.tick(1000);
      const current = h.bookmark();
      const tag = tagOf(current);
      await other.exec('CREATE TABLE x (y)\nINSERT INTO x VALUES (1)\nINSERT INTO x VALUES (2)');
      const target = path.join(dir, 'fork.sqlite');

      const malformed = ['', 'nope', 'first-primary', current.toUpperCase(), `${current} `, current.slice(1), current.replace(/-/g, ''), `${current.slice(0, -1)}g`];
      for (const bookmark of malformed) {
        await assertRefused(db, file, () => h.restore({ bookmark }), /^Invalid bookmark '.*': a bookmark is four groups of hex digits, 8-8-8-32/);
        await assertRefused(db, file, () => h.fork({ bookmark }, target), /^Invalid bookmark/);
      }
      // Another database's bookmark, even at a commit number this one has.
      const foreign = bookmarkOf(1, tagOf(history(other).bookmark()));
      await assertRefused(db, file, () => h.restore({ bookmark: foreign }), /^Invalid bookmark '[0-9a-f-]+': it belongs to another database$/);
      await assertRefused(db, file, () => h.fork({ bookmark: foreign }, target), /another database/);
      // The future, near and far (the high group).
      for (const bookmark of [bookmarkOf(seqOf(current) + 1, tag), bookmarkOf(2 ** 32 + 1, tag)]) {
        await assertRefused(db, file, () => h.restore({ bookmark }), new RegExp(`^Invalid bookmark '${bookmark}': it is in the future \\(the newest is '${current}'\\)`));
        await assertRefused(db, file, () => h.fork({ bookmark }, target), /in the future/);
      }
      // Timestamps: in the future, not a time, before the history began.
      const future = new Date(clock.now + 1);
      await assertRefused(db, file, () => h.restore({ timestamp: future }), /^Invalid timestamp '2026-01-01T00:00:02\.001Z': it is in the future/);
      await assertRefused(db, file, () => h.fork({ timestamp: future }, target), /in the future/);
      await assertRefused(db, file, () => h.restore({ timestamp: new Date('not a date') }), /^Invalid timestamp/);
      await assertRefused(db, file, () => h.restore({ timestamp: new Date(clock.now - 60_000) }), /history starts at/);

      // An existing file is never overwritten by a fork: not another file, not the database itself.
      writeFileSync(target, 'precious');
      await assertRefused(db, file, () => h.fork({ bookmark: current }, target), /^cannot fork into .*fork\.sqlite: it exists/);
      assert.equal(readFileSync(target, 'utf8'), 'precious');
      assert.equal(existsSync(`${target}-history`), false);
      await assertRefused(db, file, () => h.fork({ bookmark: current }, file), /it exists/);
      // …nor is a history left at the target's history path (another database's log and snapshots).
      const leftover = path.join(dir, 'leftover.sqlite');
      mkdirSync(`${leftover}-history`);
      writeFileSync(`${leftover}-history/tag`, 'f'.repeat(32));
      await assertRefused(db, file, () => h.fork({ bookmark: current }, leftover), /^cannot fork into .*leftover\.sqlite: a history is already at .*leftover\.sqlite-history/);
      assert.deepEqual(readdirSync(`${leftover}-history`), ['tag']);

      // restore reports failures as rejections, never synchronously.
      await rejectsWith(() => h.restore({ bookmark: 'nope' }), /Invalid bookmark/);
      await assertWorks(db);
    } finally {
      await other.close();
      await db.close();
    }
  });

  test('points whose state ended before the retention window are refused; the state at the window start is not (fake clock, one day)', async () => {
    const clock = new FakeClock();
    const file = path.join(tempDir(), 'app.sqlite');
    // No daily snapshot: one finishing in the background would change the files assertRefused compares.
    const db = open(file, { history: { clock: clock.read, retentionDays: 1, snapshotIntervalMs: 1000 * DAY } });
    try {
      const h = history(db);
      clock.tick(1000);
      await withTables(db);
      await add(db, 'old1');
      const old1 = h.bookmark();
      const old1Time = new Date(clock.now);
      clock.tick(1000);
      await add(db, 'old2'); // the state from here on lasts until 'new', two days later
      const old2 = h.bookmark();
      clock.tick(2 * DAY);
      await add(db, 'new');
      const bNew = h.bookmark();
      clock.tick(1000);
      await add(db, 'newer');
      const names = async () => (await db.prepare('SELECT name FROM items ORDER BY id').raw()).flat();
      await assertRefused(db, file, () => h.restore({ bookmark: old1 }), /^Invalid bookmark '.*': it is older than the Time Travel window of 1 days/);
      await assertRefused(db, file, () => h.fork({ bookmark: old1 }, path.join(path.dirname(file), 'f.sqlite')), /older than the Time Travel window/);
      await assertRefused(db, file, () => h.restore({ timestamp: old1Time }), /^Invalid timestamp '.*': it is older than the Time Travel window of 1 days/);
      await assertRefused(db, file, () => h.bookmark(old1Time), /older than the Time Travel window/);
      await assertRefused(db, file, () => h.restore({ timestamp: new Date(clock.now - DAY - 1) }), /older than the Time Travel window/);
      // The window starts inside old2's state: a time there names old2, and old2 can be restored.
      assert.equal(h.bookmark(new Date(clock.now - DAY + 1)), old2);
      const r = await h.restore({ bookmark: old2 });
      assert.deepEqual(await names(), ['old1', 'old2']);
      await h.restore({ bookmark: r.previous_bookmark });
      assert.deepEqual(await names(), ['old1', 'old2', 'new', 'newer']);
      await h.restore({ bookmark: bNew });
      assert.deepEqual(await names(), ['old1', 'old2', 'new']);
    } finally {
      await db.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------

describe('retention', () => {
  test('the daily snapshot drops old snapshots and log segments from disk and old bookmarks from Time Travel; the window keeps working, after a reopen too', { timeout: 60_000 }, async () => {
    const clock = new FakeClock();
    const dir = tempDir();
    const file = path.join(dir, 'app.sqlite');
    const historyDir = `${file}-history`;
    // No snapshot by size (1 GiB); the daily one (snapshotIntervalMs, default a day) and the one the test takes.
    const options: HistoryOptions = { clock: clock.read, retentionDays: 1, snapshotBytes: 1 << 30, checkpointBytes: 8 << 20 };
    let executor: LoggedExecutor | undefined = new LoggedExecutor(file, {}, options);
    const ld = executor.database;
    const db = new D1Database(executor);
    const segments = () =>
      readdirSync(path.join(historyDir, 'segments'))
        .filter((n) => n.endsWith('.log'))
        .sort();
    const snapshotFiles = () => readdirSync(path.join(historyDir, 'snapshots')).sort();
    try {
      clock.tick(1000);
      await withTables(db);
      await db.exec('CREATE TABLE filler (id INTEGER PRIMARY KEY, b BLOB)\nINSERT INTO filler (b) VALUES (NULL), (NULL)');
      await add(db, 'oldest');
      const oldest = ld.bookmark;
      // More than one 64 MiB log segment, all at old times: two rows of ~1.9 MB per commit.
      let commits = 0;
      let inFiller = '';
      while (segments().length < 2) {
        assert.ok(++commits < 60, `no second log segment after ${commits} commits of ~3.8 MB`);
        clock.tick(1000);
        await db.prepare('UPDATE filler SET b = randomblob(1900000)').run();
        if (commits === 3) inFiller = ld.bookmark;
      }
      await db.prepare('UPDATE filler SET b = NULL').run();
      clock.tick(1000);
      await ld.snapshot(); // the snapshot the window will start from: after the second segment began
      const startFiles = { snapshots: snapshotFiles(), segments: segments() };
      assert.equal(startFiles.snapshots.length, 2);
      clock.tick(1000);
      await add(db, 'old'); // its state lasts into the window
      const old = ld.bookmark;
      const stateOld = await content(db);
      const bytesBefore = bytesUnder(historyDir);

      // Two days later: the first write starts the daily snapshot, which applies retention.
      clock.tick(2 * DAY);
      await add(db, 'new');
      const bNew = ld.bookmark;
      const stateNew = await content(db);
      clock.tick(1000);
      await add(db, 'newer');
      const stateNewer = await content(db);
      await executor.close(); // waits for the snapshot
      executor = undefined;

      assert.deepEqual(snapshotFiles().slice(0, 1), startFiles.snapshots.slice(1), `the first snapshot is gone, the window's base is first: ${snapshotFiles().join(', ')}`);
      assert.equal(snapshotFiles().length, 2, `the base and the daily snapshot: ${snapshotFiles().join(', ')}`);
      assert.deepEqual(segments(), startFiles.segments.slice(1), 'the first log segment is gone');
      const indexes = readdirSync(path.join(historyDir, 'segments')).filter((n) => n.endsWith('.idx'));
      assert.deepEqual(indexes, [], 'the index of the sealed segment went with it (the other segment takes appends: none)');
      const bytesAfter = bytesUnder(historyDir);
      assert.ok(bytesAfter < bytesBefore - 50 * 1024 * 1024, `the history shrank on disk: ${bytesBefore} -> ${bytesAfter} bytes`);

      // Through the public API, after a reopen: the same history, the same window.
      for (let round = 0; round < 2; round++) {
        const reopened = open(file, { history: options });
        try {
          const h = history(reopened);
          assert.deepEqual(await content(reopened), stateNewer, `round ${round}`);
          for (const bookmark of [oldest, inFiller]) {
            await assertRefused(reopened, file, () => h.restore({ bookmark }), /older than the Time Travel window of 1 days/);
          }
          await assertRefused(reopened, file, () => h.restore({ timestamp: new Date(clock.now - 1.5 * DAY) }), /older than the Time Travel window/);
          assert.equal(h.bookmark(new Date(clock.now - DAY + 1000)), old, 'the window starts in the state of "old"');
          const r = await h.restore({ bookmark: round === 0 ? old : bNew });
          assert.deepEqual(await content(reopened), round === 0 ? stateOld : stateNew);
          await h.restore({ bookmark: r.previous_bookmark });
          assert.deepEqual(await content(reopened), stateNewer);
          assert.deepEqual(segments(), startFiles.segments.slice(1));
        } finally {
          await reopened.close();
        }
      }
    } finally {
      await executor?.close();
    }
  });
});

// ------------------------------------------------------------------------------------------------
// Found by these tests while src/log was being written (and fixed there since): kept as regressions.

describe('regressions', () => {
  test(
    "wrangler's restore --timestamp flow: the bookmark of a time inside the window can be restored after an idle spell",
    async () => {
      const clock = new FakeClock();
      const db = open(path.join(tempDir(), 'app.sqlite'), { history: { clock: clock.read, retentionDays: 1 } });
      try {
        const h = history(db);
        clock.tick(1000);
        await withTables(db);
        await add(db, 'a', 'b');
        const before = await content(db);
        clock.tick(2 * DAY); // nothing written for two days (the window is one)
        await db.exec('DROP TABLE items'); // a mistake
        clock.tick(60_000);
        // wrangler d1 time-travel restore --timestamp: GET …/bookmark?timestamp=, then POST …/restore?bookmark=.
        const bookmark = h.bookmark(new Date(clock.now - 3_600_000)); // an hour ago, inside the window
        await h.restore({ bookmark });
        assert.deepEqual(await content(db), before);
      } finally {
        await db.close();
      }
    },
  );

  test(
    'the current bookmark of a database idle for longer than the window can be forked, restored, and a restore undone',
    async () => {
      const clock = new FakeClock();
      const dir = tempDir();
      const db = open(path.join(dir, 'app.sqlite'), { history: { clock: clock.read, retentionDays: 1 } });
      try {
        const h = history(db);
        clock.tick(1000);
        await withTables(db);
        await add(db, 'a');
        clock.tick(2 * DAY);
        const current = h.bookmark();
        const problems: string[] = [];
        const attempt = async (what: string, call: () => unknown) => {
          try {
            await call();
          } catch (e) {
            problems.push(`${what}: ${(e as Error).message}`);
          }
        };
        await attempt('fork at the current bookmark', () => h.fork({ bookmark: current }, path.join(dir, 'copy.sqlite')));
        await attempt('restore to the current bookmark', () => h.restore({ bookmark: current }));
        const r = await h.restore({ timestamp: new Date(clock.now - 60_000) }); // accepted: same point, by time
        await attempt("undo with the restore's previous_bookmark", () => h.restore({ bookmark: r.previous_bookmark }));
        assert.deepEqual(problems, []);
      } finally {
        await db.close();
      }
    },
  );

  test(
    "a fork never takes over a history directory left at its target's path",
    async () => {
      const dir = tempDir();
      const db = open(path.join(dir, 'source.sqlite'), { history: true });
      const target = path.join(dir, 'copy.sqlite');
      try {
        const h = history(db);
        await withTables(db);
        await add(db, 'a');
        const bA = h.bookmark();
        const stateA = await content(db);
        await add(db, 'b');
        // A first fork lives its life, then its file (not its history) is deleted.
        h.fork({ bookmark: h.bookmark() }, target);
        const first = open(target, { history: true });
        await add(first, 'written in the first fork');
        await first.close();
        rmSync(target);

        let forked: { bookmark: string; forkBookmark: string } | undefined;
        try {
          forked = h.fork({ bookmark: bA }, target);
        } catch (e) {
          // Refusing is fine too, if it says why and leaves nothing behind.
          assert.ok(e instanceof HistoryError, String(e));
          assert.match(e.message, /copy\.sqlite/);
          assert.equal(existsSync(target), false);
          return;
        }
        const second = open(target, { history: true });
        try {
          assert.equal(history(second).bookmark(), forked.forkBookmark, "the fork's bookmark is where it opens");
          assert.deepEqual(await content(second), stateA, 'the fork has the content at bA');
        } finally {
          await second.close();
        }
      } finally {
        await db.close();
      }
    },
  );
});
