// SQLite, not Dione's JS lexer, is the authority on what a request may do: embedded regressions
// through the public `open()` binding, on real files. The guard's helper functions answer no user
// SQL; temp schema objects and reserved `_cf_` names are refused in every spelling (also as part of
// a batch, which then leaves nothing behind); concurrent writes, two handles on one file and
// failing batches all go through the one commit path (a write reported as failed is not applied,
// every commit advances the bookmark); dump() returns no free page; and, checked directly with
// better-sqlite3, the guard's commit hook refuses any write commit Dione did not seal.
// The same rules over the server's protocols: trust-sql-server.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { openSqlite } from '../src/engine/sqlite.ts';
import { type D1Database, type D1DatabaseSession, open } from '../src/index.ts';
import { HELPER_CALLS, RESERVED_NAMES, TEMP_OBJECTS } from './helpers/attacks.ts';
import { assertWorks, rejectsWith, snapshot, tempDir } from './helpers/binding.ts';
import { root } from './helpers/paths.ts';

const EXTENSION = path.join(root, 'build', process.platform === 'darwin' ? 'dione_guard.dylib' : 'dione_guard.so');
const NOT_AUTHORIZED = /^D1_ERROR: not authorized/;
/** fts5 words its refusal "fts5: error creating shadow table _cf_data: not authorized". */
const MENTIONS_NOT_AUTHORIZED = /^D1_ERROR: .*not authorized/;
const RESET = 'Durable Object was reset and rolled back to its last known good state because the application left the database in a state where constraints were violated';

/** A new database file holding t (a INTEGER, v TEXT CHECK (v <> 'bad')) with one row (1, 'original'). */
async function fixture(options: { history?: boolean } = {}): Promise<{ db: D1Database; file: string }> {
  const file = path.join(tempDir(), 'trust.db');
  const db = open(file, options);
  await db.exec("CREATE TABLE t (a INTEGER, v TEXT CHECK (v <> 'bad'))\nINSERT INTO t VALUES (1, 'original')");
  return { db, file };
}

/** The bookmark the database hands out after one more write through a fresh session. */
async function writeAndBookmark(db: D1Database, sql: string): Promise<string> {
  const session = db.withSession('first-primary');
  await session.prepare(sql).run();
  const bookmark = session.getBookmark();
  assert.ok(bookmark, `no bookmark after ${sql}`);
  return bookmark;
}

const values = async (db: D1Database, sql = 'SELECT v FROM t ORDER BY rowid') => (await db.prepare(sql).raw()).map((r) => r[0]);

// ------------------------------------------------------------------ 3. the guard's helpers

describe("the guard extension's helper functions do nothing for user SQL", () => {
  // The old extension had none of the token checks: dione_commit_sequence(0) answered the header's
  // commit number, the others failed only by arity or as unknown functions (no 'not authorized').
  // Former helpers and the old tokenless forms (dione_release() used to finalize Dione's own
  // statements for anyone): refused, or gone, are both fine.
  const GONE_OR_REFUSED = /^D1_ERROR: (not authorized|no such function|wrong number of arguments)/;
  const formerHelpers = ['SELECT dione_deferred_fks(0)', 'SELECT dione_used_bytes()', 'SELECT dione_release()', 'SELECT dione_data_version()', 'SELECT dione_data_version(0)', "SELECT dione_prepare_error('x')"];

  for (const history of [false, true]) {
    test(`embedded${history ? ' with history' : ''}: each helper fails with "not authorized", dione_claim() answers null, the database keeps working`, async () => {
      const { db, file } = await fixture({ history });
      const first = await writeAndBookmark(db, "INSERT INTO t VALUES (2, 'before')");
      for (const sql of HELPER_CALLS) {
        await rejectsWith(() => db.prepare(sql).all(), NOT_AUTHORIZED);
        // Also inside a write request: the whole request fails.
        await rejectsWith(() => db.batch([db.prepare("INSERT INTO t VALUES (3, 'in batch')"), db.prepare(sql)]), NOT_AUTHORIZED);
      }
      for (const sql of formerHelpers) await rejectsWith(() => db.prepare(sql).all(), GONE_OR_REFUSED);
      assert.equal(await db.prepare('SELECT dione_claim() AS c').first('c'), null);
      assert.deepEqual(await db.prepare('SELECT dione_claim() AS c, dione_claim() AS d').raw(), [[null, null]]);

      // Writes and reads work, nothing of the refused batches is there, and bookmarks advance.
      const second = await writeAndBookmark(db, "INSERT INTO t VALUES (4, 'after')");
      assert.ok(second > first, `bookmark ${second} after ${first}`);
      const third = await writeAndBookmark(db, "UPDATE t SET v = 'updated' WHERE a = 4");
      assert.ok(third > second, `bookmark ${third} after ${second}`);
      assert.deepEqual(await values(db), ['original', 'before', 'updated']);
      await assertWorks(db);
      // Still a normal WAL database that another connection can read (dione_keep_wal / release did nothing).
      db.close();
      const again = open(file);
      assert.deepEqual(await values(again), ['original', 'before', 'updated']);
      again.close();
    });
  }
});

// ------------------------------------------------------------------ 4. temp schema objects

/** SQLite itself refuses a temp index on a main table (before any authorizer): any failure will do. */
const TEMP_INDEX = 'CREATE INDEX temp.i ON t(a)';

describe('temp schema objects are refused in every spelling', () => {
  // The old authorizer refused only the TEMP keyword forms: CREATE TABLE temp.x, CREATE VIEW
  // temp.v and CREATE TRIGGER temp.tr … ON main.t were created (and the trigger rewrote every later
  // INSERT on that connection).
  for (const history of [false, true]) {
    test(`embedded${history ? ' with history' : ''}: alone, in a batch, in exec() and in a multi-statement query; later INSERTs are not rewritten`, async () => {
      const { db, file } = await fixture({ history });
      const before = await snapshot(db);
      for (const sql of TEMP_OBJECTS) {
        await rejectsWith(() => db.prepare(sql).run(), NOT_AUTHORIZED);
        await rejectsWith(() => db.batch([db.prepare('CREATE TABLE kept (a)'), db.prepare("INSERT INTO t VALUES (5, 'batched')"), db.prepare(sql)]), NOT_AUTHORIZED);
        await rejectsWith(() => db.batch([db.prepare(sql), db.prepare("INSERT INTO t VALUES (6, 'after temp')")]), NOT_AUTHORIZED);
        await rejectsWith(() => db.prepare(`CREATE TABLE kept2 (a); ${sql}; INSERT INTO t VALUES (7, 'multi')`).run(), NOT_AUTHORIZED);
        await assert.rejects(db.exec(`CREATE TABLE kept3 (a)\n${sql.replaceAll('\n', ' ')}\nINSERT INTO t VALUES (8, 'exec')`), /not authorized/);
        assert.deepEqual(await snapshot(db), before, `after ${sql}`);
        assert.equal(await db.prepare('SELECT count(*) AS n FROM temp.sqlite_master').first('n'), 0, `a temp object survived ${sql}`);
      }
      await rejectsWith(() => db.prepare(TEMP_INDEX).run(), /not authorized|TEMP index/);
      // The hidden temp trigger attack: an INSERT by the same handle, and by a second one, keeps its value.
      await db.prepare("INSERT INTO t VALUES (10, 'written')").run();
      const other = open(file);
      await other.prepare("INSERT INTO t VALUES (11, 'second client')").run();
      other.close();
      assert.deepEqual(await values(db), ['original', 'written', 'second client']);
      assert.equal(await db.prepare("SELECT count(*) AS n FROM t WHERE v = 'hacked'").first('n'), 0);
      await assertWorks(db);
      db.close();
    });
  }
});

// ------------------------------------------------------------------ 5. reserved names


describe('reserved _cf_ names are refused, renames and fts5 shadow tables included', () => {
  // The old design let ALTER TABLE t RENAME TO _cf_t and ALTER TABLE f RENAME TO _cf (whose fts5
  // shadow tables become _cf_data, _cf_idx…) through: the authorizer never sees a rename's new name.
  test('embedded: each is refused with "not authorized"; t and the fts5 table f keep working under their names', async () => {
    const { db } = await fixture();
    await db.exec("CREATE VIRTUAL TABLE f USING fts5(a)\nINSERT INTO f VALUES ('needle in a haystack')");
    // (helpers' snapshot() reads every table by rowid; fts5's f_config has none.)
    const state = async () => ({
      schema: await db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name').raw(),
      t: await values(db),
      f: await values(db, 'SELECT a FROM f ORDER BY rowid'),
    });
    const before = await state();
    for (const sql of RESERVED_NAMES) {
      await rejectsWith(() => db.prepare(sql).run(), MENTIONS_NOT_AUTHORIZED);
      await rejectsWith(() => db.batch([db.prepare("INSERT INTO t VALUES (5, 'batched')"), db.prepare(sql)]), MENTIONS_NOT_AUTHORIZED);
      assert.deepEqual(await state(), before, `after ${sql}`);
    }
    const reserved = await db.prepare("SELECT name FROM sqlite_master WHERE name GLOB '_cf*' AND name <> '_cf_METADATA'").raw();
    assert.deepEqual(reserved, []);
    await db.prepare("INSERT INTO t VALUES (2, 'still t')").run();
    assert.deepEqual(await values(db), ['original', 'still t']);
    await db.prepare("INSERT INTO f VALUES ('another needle')").run();
    assert.equal(await db.prepare("SELECT count(*) AS n FROM f WHERE f MATCH 'needle'").first('n'), 2);
    // A legitimate rename still works.
    await db.prepare('ALTER TABLE t RENAME TO t2').run();
    assert.deepEqual(await values(db, 'SELECT v FROM t2 ORDER BY rowid'), ['original', 'still t']);
    db.close();
  });
});

// ------------------------------------------------------------------ 6. one commit path

const CHILD_SCHEMA = 'CREATE TABLE parent (id PRIMARY KEY)\nCREATE TABLE child (pid REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED, tag TEXT)\nINSERT INTO parent VALUES (1)';

describe('one commit path (embedded)', () => {
  // Embedded requests run one at a time (no group commit in process), so the old design also
  // failed only the bad request here; what it got wrong is the spelled INSERTs among them: it ran
  // them as reads, outside the commit path, so they committed without a commit number (their
  // bookmark did not advance) and, with history, the log then refused the database.
  for (const history of [false, true]) {
    test(`concurrent run()/batch() calls in one tick${history ? ' with history' : ''}: only the one leaving a deferred FK violated fails, with D1's reset error`, async () => {
      const db = open(path.join(tempDir(), 'group.db'), { history });
      await db.exec(CHILD_SCHEMA);
      for (let round = 0; round < 3; round++) {
        const start = await writeAndBookmark(db, `INSERT INTO child VALUES (1, 'r${round}-start')`);
        const bad = (round * 7 + 3) % 20;
        const sessions = Array.from({ length: 20 }, () => db.withSession('first-primary'));
        const calls = sessions.map((session, i) => {
          const pid = i === bad ? 999 : 1;
          const tag = `r${round}-${i}`;
          if (i % 3 === 2) return session.prepare('WITH ſelect AS (SELECT 1) INSERT INTO child VALUES (?, ?)').bind(pid, tag).run();
          if (i % 3 === 0) return session.prepare('INSERT INTO child VALUES (?, ?)').bind(pid, tag).run();
          return session.batch([session.prepare('INSERT INTO child VALUES (1, ?)').bind(`${tag}-a`), session.prepare('INSERT INTO child VALUES (?, ?)').bind(pid, tag)]);
        });
        const settled = await Promise.allSettled(calls);
        settled.forEach((s, i) => {
          if (i === bad) {
            assert.equal(s.status, 'rejected', `round ${round}: the bad request ${i} succeeded`);
            assert.ok((s.reason as Error).message.startsWith(RESET), (s.reason as Error).message);
          } else {
            assert.equal(s.status, 'fulfilled', `round ${round}: request ${i} failed: ${s.status === 'rejected' ? (s.reason as Error).message : ''}`);
            const bookmark = sessions[i]!.getBookmark();
            assert.ok(bookmark !== null && bookmark > start, `round ${round}: request ${i} committed at ${bookmark}, not after ${start}`);
          }
        });
        const tags = await values(db, `SELECT tag FROM child WHERE tag LIKE 'r${round}-%' AND tag <> 'r${round}-start' ORDER BY tag`);
        const expected = [];
        for (let i = 0; i < 20; i++) {
          if (i === bad) continue;
          expected.push(`r${round}-${i}`);
          if (i % 3 === 1) expected.push(`r${round}-${i}-a`);
        }
        assert.deepEqual(tags, expected.sort(), `round ${round}`);
      }
      await db.close();
    });
  }

  test('two handles on one file without history (and a writer in another process): every write succeeds or fails cleanly, bookmarks advance, no transaction is left open', async () => {
    const file = path.join(tempDir(), 'two.db');
    const a = open(file);
    const b = open(file);
    await a.exec("CREATE TABLE t (who TEXT, n INTEGER, v TEXT CHECK (v <> 'bad'))");

    // A third writer in another process, contending for the write lock for real.
    const script = path.join(tempDir(), 'writer.mjs');
    writeFileSync(
      script,
      `const { open } = await import(${JSON.stringify(pathToFileURL(path.join(root, 'src/index.ts')).href)});
const db = open(process.argv[2]);
let ok = 0, busy = 0;
for (let i = 0; i < 150; i++) {
  try { await db.prepare("INSERT INTO t VALUES ('proc', ?, 'x')").bind(i).run(); ok++; }
  catch (e) { if (!/SQLITE_BUSY|database is locked/.test(e.message)) { console.error(e.message); process.exit(2); } busy++; }
}
db.close();
console.log(JSON.stringify({ ok, busy }));`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script, file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

    // Interleaved writes through both handles: plain, spelled so the lexer once took them for
    // reads, batches, and some that fail. Each success must advance the bookmark.
    const written: Record<string, number[]> = { a: [], b: [] };
    let last = '';
    let clean = 0;
    for (let i = 0; i < 300; i++) {
      const [name, db] = i % 2 === 0 ? (['a', a] as const) : (['b', b] as const);
      const kind = i % 5;
      const session = db.withSession('first-primary');
      const insert = (n: number, v = 'x') => session.prepare(`INSERT INTO t VALUES ('${name}', ${n}, '${v}')`);
      let expectedToFail = false;
      let rows: number[] = [i];
      let call: Promise<unknown>;
      if (kind === 0) call = insert(i).run();
      else if (kind === 1) call = session.prepare(`WITH ſelect AS (SELECT 1) INSERT INTO t VALUES ('${name}', ${i}, 'x')`).run();
      else if (kind === 2) call = session.prepare(`WITH x\uFEFFselect AS (SELECT 1) INSERT INTO t SELECT '${name}', ${i}, 'x'`).run();
      else if (kind === 3) {
        rows = [i, i + 1000];
        call = session.batch([insert(i), insert(i + 1000)]);
      } else {
        expectedToFail = true;
        call = session.batch([insert(i), insert(i + 1000, 'bad')]);
      }
      try {
        await call;
        assert.ok(!expectedToFail, `write ${i} should have failed`);
        written[name]!.push(...rows);
        const bookmark = session.getBookmark()!;
        assert.ok(bookmark > last, `write ${i} (${kind}) did not advance the bookmark: ${bookmark} after ${last}`);
        last = bookmark;
      } catch (e) {
        const message = (e as Error).message;
        if (expectedToFail) assert.match(message, /CHECK constraint failed/);
        else assert.match(message, /SQLITE_BUSY|database is locked/, `write ${i} failed: ${message}`);
        clean++;
      }
      if (i % 25 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    assert.equal(await exited, 0, err);
    const { ok } = JSON.parse(out) as { ok: number; busy: number };
    assert.ok(clean >= 60, 'the failing batches failed');

    // Both handles see everything every writer committed, and nothing of the failed writes.
    for (const db of [a, b]) {
      for (const who of ['a', 'b'] as const) {
        const ns = (await values(db, `SELECT n FROM t WHERE who = '${who}' ORDER BY n`)) as number[];
        assert.deepEqual(ns, [...written[who]!].sort((x, y) => x - y), `${who}'s rows`);
      }
      assert.equal(await db.prepare("SELECT count(*) AS n FROM t WHERE who = 'proc'").first('n'), ok);
      assert.equal(await db.prepare("SELECT count(*) AS n FROM t WHERE v = 'bad'").first('n'), 0);
    }
    // No handle holds a transaction: another connection takes the write lock at once.
    const probe = openSqlite(file, { timeout: 0 });
    probe.exec('BEGIN IMMEDIATE');
    probe.exec('ROLLBACK');
    probe.close();
    // And both still write and read each other's rows.
    await a.prepare("INSERT INTO t VALUES ('a', -1, 'final a')").run();
    await b.prepare("INSERT INTO t VALUES ('b', -1, 'final b')").run();
    assert.deepEqual(await values(b, "SELECT v FROM t WHERE n = -1 ORDER BY who"), ['final a', 'final b']);
    assert.deepEqual(await values(a, "SELECT v FROM t WHERE n = -1 ORDER BY who"), ['final a', 'final b']);
    const afterA = await writeAndBookmark(a, "INSERT INTO t VALUES ('a', -2, 'x')");
    const afterB = await writeAndBookmark(b, "INSERT INTO t VALUES ('b', -2, 'x')");
    assert.ok(afterA > last && afterB > afterA, `bookmarks ${last} < ${afterA} < ${afterB}`);
    a.close();
    b.close();
  });

  // A write that reports failure must leave nothing; one that reports success must be there, with
  // a bookmark of its own. The old design ran a write the lexer took for a read (the U+017F /
  // U+FEFF spellings) outside the commit path: it committed without a commit number (the bookmark
  // stood still) and, with history, the log then refused the database, so the caller was told it
  // failed although SQLite had committed it.
  for (const history of [false, true]) {
    test(`a write reported as failed is not applied, one reported as done is${history ? ' (with history)' : ''}`, async () => {
      const { db } = await fixture({ history });
      await db.exec(CHILD_SCHEMA);
      let last = '';
      type Call = (s: D1DatabaseSession) => Promise<unknown>;
      const cases: { tags: string[]; fails: boolean; call: Call }[] = [
        { tags: ['c1'], fails: false, call: (s) => s.prepare("INSERT INTO t VALUES (1, 'c1')").run() },
        { tags: ['c2'], fails: false, call: (s) => s.prepare("WITH ſelect AS (SELECT 1) INSERT INTO t VALUES (1, 'c2')").run() },
        { tags: ['c3'], fails: false, call: (s) => s.prepare("WITH x\uFEFFselect AS (SELECT 1) INSERT INTO t SELECT 1, 'c3'").run() },
        { tags: ['c4'], fails: false, call: (s) => s.prepare("WITH ı AS (SELECT 1) INSERT INTO t VALUES (1, 'c4')").run() },
        {
          tags: ['c5', 'c6'],
          fails: true,
          call: (s) => s.batch([s.prepare("INSERT INTO t VALUES (1, 'c5')"), s.prepare("INSERT INTO t VALUES (1, 'c6')"), s.prepare('INSERT INTO nosuch VALUES (1)')]),
        },
        { tags: ['c7'], fails: true, call: (s) => s.batch([s.prepare("INSERT INTO t VALUES (1, 'c7')"), s.prepare("INSERT INTO t VALUES (1, 'bad')")]) },
        { tags: ['c8'], fails: true, call: (s) => s.prepare("INSERT INTO t VALUES (1, 'c8'); INSERT INTO child VALUES (999, 'c8')").run() },
        {
          tags: ['c9'],
          fails: true,
          call: (s) => s.batch([s.prepare("WITH ſelect AS (SELECT 1) INSERT INTO t VALUES (1, 'c9')"), s.prepare("WITH ſelect AS (SELECT 1) INSERT INTO t VALUES (1, 'bad')")]),
        },
        { tags: ['c10'], fails: true, call: () => db.exec("INSERT INTO t VALUES (1, 'c10')\nWITH ſelect AS (SELECT 1) INSERT INTO t VALUES (1, 'bad')") },
        { tags: ['c11'], fails: true, call: (s) => s.prepare("WITH ſelect AS (SELECT 1) INSERT INTO t VALUES (1, 'c11') RETURNING nosuch").all() },
        { tags: ['c12'], fails: false, call: (s) => s.prepare("WITH ſelect AS (SELECT 1) INSERT INTO t VALUES (1, 'c12') RETURNING v").all() },
      ];
      for (const c of cases) {
        const session = db.withSession('first-primary');
        const outcome = await c.call(session).then(
          () => 'ok',
          (e: Error) => e.message,
        );
        const present = await values(db, `SELECT v FROM t WHERE v IN (${c.tags.map((t) => `'${t}'`).join(', ')}) ORDER BY rowid`);
        if (outcome === 'ok') {
          assert.deepEqual(present, c.tags, `reported done, but ${c.tags} not all there`);
          const bookmark = session.getBookmark()!;
          assert.ok(bookmark > last, `${c.tags} committed at ${bookmark}, not after ${last}`);
          last = bookmark;
        } else assert.deepEqual(present, [], `reported failed (${outcome}), yet ${present} applied`);
        assert.equal(outcome !== 'ok', c.fails, `${c.tags}: ${outcome}`);
      }
      assert.deepEqual(await values(db), ['original', 'c1', 'c2', 'c3', 'c4', 'c12']);
      await assertWorks(db);
      await db.close();
    });
  }
});

// ------------------------------------------------------------------ 7. dump()

describe('dump() never returns free pages', () => {
  // The old dump() copied the file as it was (SQLite's backup API), free pages and all: deleted
  // rows came back in the bytes.
  const MARKER = 'SECRET-MARKER-7f3a9c';
  for (const history of [false, true]) {
    test(`embedded${history ? ' with history' : ''}: deleted rows are not in the dumped bytes, which are a valid database`, async () => {
      const dir = tempDir();
      const db = open(path.join(dir, 'dump.db'), { history });
      await db.exec('CREATE TABLE s (v TEXT)\nCREATE TABLE keep (v TEXT)');
      await db.prepare("INSERT INTO keep VALUES ('kept row')").run();
      for (let i = 0; i < 40; i++) await db.prepare('INSERT INTO s VALUES (?)').bind(`${MARKER}-${i}-`.repeat(120)).run();
      // The marker really is in a dump while the rows exist (so its absence below means something).
      assert.ok(Buffer.from(await db.dump()).includes(MARKER), 'the live rows are in the dump');
      await db.prepare('DELETE FROM s').run();
      const bytes = Buffer.from(await db.dump());
      assert.ok(!bytes.includes(MARKER), 'a deleted row is in the dump');
      assert.ok(!bytes.includes(Buffer.from(MARKER, 'utf16le')));
      const copy = path.join(dir, 'copy.db');
      writeFileSync(copy, bytes);
      const check = openSqlite(copy, { readonly: true });
      assert.deepEqual(check.prepare('SELECT v FROM keep').pluck().all(), ['kept row']);
      assert.equal(check.prepare('SELECT count(*) FROM s').pluck().get(), 0);
      check.close();
      await db.close();
    });
  }
});

// ------------------------------------------------------------------ 8. the commit hook

describe("the guard's commit hook refuses every write commit Dione did not seal (better-sqlite3 directly)", () => {
  // The old extension had no commit hook: any connection that loaded it committed freely.
  const tables = (file: string) => {
    const plain = openSqlite(file, { readonly: true });
    try {
      return plain.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all();
    } finally {
      plain.close();
    }
  };

  test('after dione_claim(), exec("CREATE TABLE z(a); INSERT INTO z VALUES (1)") fails and leaves no table z', () => {
    const file = path.join(tempDir(), 'hook.db');
    const db = openSqlite(file);
    db.pragma('journal_mode = WAL');
    db.loadExtension(EXTENSION);
    const token = db.prepare('SELECT dione_claim()').pluck().safeIntegers(true).get();
    assert.equal(typeof token, 'bigint');
    assert.equal(db.prepare('SELECT dione_claim()').pluck().get(), null, 'a second claim');
    assert.throws(() => db.exec('CREATE TABLE z(a); INSERT INTO z VALUES (1)'), { code: 'SQLITE_CONSTRAINT_COMMITHOOK' });
    assert.equal(db.inTransaction, false);
    // An explicit transaction is refused at COMMIT as well.
    db.exec('BEGIN');
    db.exec('CREATE TABLE y(a)');
    assert.throws(() => db.exec('COMMIT'), { code: 'SQLITE_CONSTRAINT_COMMITHOOK' });
    if (db.inTransaction) db.exec('ROLLBACK');
    // A read commits as usual.
    assert.equal(db.prepare('SELECT 1').pluck().get(), 1);
    db.close();
    assert.deepEqual(tables(file), []);

    // Positive control: sealed with the token, the same transaction commits.
    const sealed = openSqlite(file);
    sealed.loadExtension(EXTENSION);
    const t = sealed.prepare('SELECT dione_claim()').pluck().safeIntegers(true).get();
    sealed.exec('BEGIN; CREATE TABLE z(a); INSERT INTO z VALUES (1)');
    assert.equal(sealed.prepare('SELECT dione_seal(?)').pluck().get(t), 1);
    sealed.exec('COMMIT');
    // The seal lets one commit through, not the next.
    assert.throws(() => sealed.exec('INSERT INTO z VALUES (2)'), { code: 'SQLITE_CONSTRAINT_COMMITHOOK' });
    sealed.close();
    assert.deepEqual(tables(file), ['z']);
    const plain = openSqlite(file, { readonly: true });
    assert.deepEqual(plain.prepare('SELECT a FROM z').pluck().all(), [1]);
    plain.close();
  });

  test('without a claim, and with a wrong token, writes are refused too', () => {
    const file = path.join(tempDir(), 'hook2.db');
    const db = openSqlite(file);
    db.loadExtension(EXTENSION);
    assert.throws(() => db.exec('CREATE TABLE z(a)'), { code: 'SQLITE_CONSTRAINT_COMMITHOOK' });
    db.prepare('SELECT dione_claim()').get();
    db.exec('BEGIN; CREATE TABLE z(a)');
    assert.throws(() => db.prepare('SELECT dione_seal(?)').get(12345), /not authorized/);
    assert.throws(() => db.exec('COMMIT'), { code: 'SQLITE_CONSTRAINT_COMMITHOOK' });
    if (db.inTransaction) db.exec('ROLLBACK');
    db.close();
    assert.deepEqual(tables(file), []);
  });
});
