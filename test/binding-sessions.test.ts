// Sessions through the public binding: withSession() variants, bookmark format and ordering,
// sessions continued from a bookmark, atomic session batches, malformed bookmarks.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { type D1Database, type D1DatabaseSession, open } from '../src/index.ts';
import { assertWorks, rejectsWith, snapshot, tempDir } from './helpers/binding.ts';

const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

async function withTable(db: D1Database): Promise<D1Database> {
  await db.prepare('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)').run();
  return db;
}

function assertBookmark(value: string | null): string {
  assert.equal(typeof value, 'string');
  assert.equal(value!.length, 59);
  assert.match(value!, BOOKMARK);
  return value!;
}

/** Records the session's bookmark after each step and checks it never decreases. */
class BookmarkLog {
  readonly seen: string[] = [];
  constructor(readonly session: D1DatabaseSession) {}
  record(): string {
    const current = assertBookmark(this.session.getBookmark());
    const last = this.seen.at(-1);
    if (last !== undefined) assert.ok(current >= last, `bookmark went backwards: ${last} -> ${current}`);
    this.seen.push(current);
    return current;
  }
}

describe('withSession()', () => {
  test('every constraint form starts without a bookmark and gets a 59-character 8-8-8-32 hex one after the first query', async () => {
    const db = open(':memory:');
    try {
      const variants: [string, D1DatabaseSession][] = [
        ['no argument', db.withSession()],
        ['undefined', db.withSession(undefined)],
        ["''", db.withSession('')],
        ['whitespace', db.withSession('  \t ')],
        ['first-unconstrained', db.withSession('first-unconstrained')],
        ['first-primary', db.withSession('first-primary')],
      ];
      for (const [name, session] of variants) {
        assert.equal(session.getBookmark(), null, `${name}: null before the first query`);
        assert.deepEqual(await session.prepare('SELECT 1 AS one').first(), { one: 1 }, name);
        assertBookmark(session.getBookmark());
        assert.notEqual(session.getBookmark(), 'first-primary');
        assert.notEqual(session.getBookmark(), 'first-unconstrained');
      }
      // A failed first query returns no bookmark.
      const failed = db.withSession('first-primary');
      await rejectsWith(() => failed.prepare('SELECT * FROM nope').all(), /^D1_ERROR: no such table: nope/);
      assert.equal(failed.getBookmark(), null);
    } finally {
      db.close();
    }
  });

  test('sessions expose prepare, batch and getBookmark only', () => {
    const db = open(':memory:');
    try {
      const session = db.withSession() as unknown as Record<string, unknown>;
      assert.equal(typeof session.prepare, 'function');
      assert.equal(typeof session.batch, 'function');
      assert.equal(typeof session.getBookmark, 'function');
      assert.equal(session.exec, undefined);
      assert.equal(session.dump, undefined);
      assert.equal(session.withSession, undefined);
    } finally {
      db.close();
    }
  });

  test('bookmarks never decrease within a session and grow after its writes', async () => {
    const db = await withTable(open(':memory:'));
    try {
      const session = db.withSession();
      const log = new BookmarkLog(session);
      await session.prepare('SELECT count(*) FROM t').all();
      const start = log.record();
      await session.prepare('SELECT 1').raw();
      assert.equal(log.record(), start, 'a read does not move the bookmark');

      await session.prepare('INSERT INTO t (v) VALUES (?)').bind('one').run();
      const afterInsert = log.record();
      assert.ok(afterInsert > start, 'a write moves the bookmark forward');

      await session.batch([session.prepare("INSERT INTO t (v) VALUES ('two')"), session.prepare("UPDATE t SET v = 'uno' WHERE v = 'one'")]);
      const afterBatch = log.record();
      assert.ok(afterBatch > afterInsert);

      // Writes outside the session (the database itself, another session) are seen by its next query.
      await db.prepare("INSERT INTO t (v) VALUES ('outside')").run();
      const other = db.withSession('first-primary');
      await other.prepare("DELETE FROM t WHERE v = 'two'").run();
      await session.prepare('SELECT count(*) AS n FROM t').first();
      const afterOthers = log.record();
      assert.ok(afterOthers > afterBatch);
      assert.ok(afterOthers >= assertBookmark(other.getBookmark()));

      // Failures never move it backwards.
      await rejectsWith(() => session.prepare('INSERT INTO nope VALUES (1)').run(), /^D1_ERROR: /);
      await rejectsWith(() => session.batch([session.prepare("INSERT INTO t (v) VALUES ('x')"), session.prepare('SELEC')]), /^D1_ERROR: /);
      assert.equal(log.record(), afterOthers);

      // Read-your-writes inside the session.
      await session.prepare("INSERT INTO t (v) VALUES ('mine')").run();
      log.record();
      assert.equal(await session.prepare("SELECT count(*) AS n FROM t WHERE v = 'mine'").first('n'), 1);
      assert.ok(log.seen.length >= 7);
    } finally {
      db.close();
    }
  });

  test('a session created from a bookmark returns it immediately and continues the chain', async () => {
    const db = await withTable(open(':memory:'));
    try {
      const first = db.withSession();
      await first.prepare("INSERT INTO t (v) VALUES ('a')").run();
      const bookmark = assertBookmark(first.getBookmark());

      const continued = db.withSession(bookmark);
      assert.equal(continued.getBookmark(), bookmark, 'before any query');
      assert.equal(await continued.prepare("SELECT v FROM t WHERE v = 'a'").first('v'), 'a');
      assert.ok(assertBookmark(continued.getBookmark()) >= bookmark);
      await continued.prepare("INSERT INTO t (v) VALUES ('b')").run();
      assert.ok(assertBookmark(continued.getBookmark()) > bookmark);

      // An older bookmark is still accepted, and the session moves forward from it.
      const older = db.withSession(bookmark);
      await older.prepare('SELECT 1').all();
      assert.equal(older.getBookmark(), continued.getBookmark());
    } finally {
      db.close();
    }
  });

  test('a bookmark carried across a close and reopen of the file keeps growing with new writes', async () => {
    const dir = tempDir();
    // Reopening quickly (within the same wall-clock second) is the usual case; a few rounds.
    for (let attempt = 0; attempt < 3; attempt++) {
      const file = path.join(dir, `carry-${attempt}.db`);
      const first = await withTable(open(file));
      const session = first.withSession();
      for (let i = 0; i < 3; i++) await session.prepare('INSERT INTO t (v) VALUES (?)').bind(`before ${i}`).run();
      const carried = assertBookmark(session.getBookmark());
      first.close();

      const second = open(file);
      try {
        const continued = second.withSession(carried);
        assert.equal(continued.getBookmark(), carried);
        await continued.prepare("INSERT INTO t (v) VALUES ('after reopen')").run();
        const next = assertBookmark(continued.getBookmark());
        assert.ok(next > carried, `a write after reopening must move the bookmark past ${carried}; got ${next}`);
        const fresh = second.withSession();
        await fresh.prepare('SELECT count(*) FROM t').all();
        assert.ok(assertBookmark(fresh.getBookmark()) >= next, 'a new session starts at least at the latest commit');
        assert.equal(await continued.prepare('SELECT count(*) AS n FROM t').first('n'), 4);
      } finally {
        second.close();
      }
    }
  });

  test('session.batch is atomic', async () => {
    const db = await withTable(open(':memory:'));
    try {
      await db.prepare("INSERT INTO t (v) VALUES ('kept')").run();
      const session = db.withSession('first-primary');
      const before = await snapshot(db);
      await rejectsWith(
        () =>
          session.batch([
            session.prepare("INSERT INTO t (v) VALUES ('x')"),
            session.prepare('CREATE TABLE u (x)'),
            session.prepare("INSERT INTO t (id, v) VALUES (1, 'dup')"),
          ]),
        /^D1_ERROR: UNIQUE constraint failed: t\.id/,
      );
      assert.deepEqual(await snapshot(db), before);
      const results = await session.batch([
        session.prepare("INSERT INTO t (v) VALUES ('y') RETURNING id"),
        session.prepare('SELECT count(*) AS n FROM t'),
      ]);
      assert.deepEqual(
        results.map((r) => r.results),
        [[{ id: 2 }], [{ n: 2 }]],
      );
      assertBookmark(session.getBookmark());
      // Statements prepared elsewhere run on the session.
      const fromDb = db.prepare("INSERT INTO t (v) VALUES ('z')");
      await session.batch([fromDb]);
      assert.equal(await session.prepare('SELECT count(*) AS n FROM t').first('n'), 3);
    } finally {
      db.close();
    }
  });

  test('a malformed bookmark gives a D1_ERROR when used and changes nothing', async () => {
    const db = await withTable(open(':memory:'));
    try {
      await db.prepare("INSERT INTO t (v) VALUES ('kept')").run();
      const before = await snapshot(db);
      for (const bad of [
        'not-a-bookmark',
        '00000000-00000001-00000000-0000000000000000000000000000000A',
        '00000000-00000001-00000000',
        '00000000-00000001-00000000-00000000000000000000000000000000-extra',
        'first_primary',
      ]) {
        const session = db.withSession(bad);
        assert.equal(session.getBookmark(), bad, 'returned as given until used');
        await rejectsWith(() => session.prepare("INSERT INTO t (v) VALUES ('no')").run(), /^D1_ERROR: .*bookmark/i);
        await rejectsWith(() => session.prepare('SELECT 1').first(), /^D1_ERROR: .*bookmark/i);
        await rejectsWith(() => session.batch([session.prepare("INSERT INTO t (v) VALUES ('no')")]), /^D1_ERROR: .*bookmark/i);
        assert.equal(session.getBookmark(), bad);
      }
      assert.deepEqual(await snapshot(db), before);
      await assertWorks(db);
    } finally {
      db.close();
    }
  });

  test('sessions in bigint mode accept bigint parameters', async () => {
    const db = await withTable(open(':memory:', { intMode: 'bigint' }));
    try {
      const session = db.withSession();
      await session.prepare('INSERT INTO t (id, v) VALUES (?, ?)').bind(9007199254740993n, 'big').run();
      assert.equal(await session.prepare('SELECT id FROM t').first('id'), 9007199254740993n);
      assertBookmark(session.getBookmark());
    } finally {
      db.close();
    }
  });
});
