// Double-quoted string literals, as workerd's SQLite (built with SQLite's default SQLITE_DQS=3)
// takes them and better-sqlite3's (SQLITE_DQS=0) does not: "x" that names no column is the string
// 'x', in DML and DDL (DEFAULT, CHECK, views, triggers, partial indexes), while "x" that names a
// column is that column. Through the embedded binding, on every connection Dione opens to such a
// schema (reopening, read-only, a dump, a fork, an export and import), and over HTTP in every protocol.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from '../src/client.ts';
import { type D1Database, history, open } from '../src/index.ts';
import { snapshot, tempDir } from './helpers/binding.ts';
import { restExport, restImport } from './helpers/rest-transfer.ts';
import { fetchJson, jsonHeaders } from './helpers/server-checks.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

/** A schema that uses double-quoted strings everywhere DDL takes an expression. */
const SCHEMA = [
  'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT DEFAULT "plain", note TEXT, CHECK (name <> "forbidden"))',
  'CREATE TABLE log (item INTEGER, what TEXT)',
  'CREATE INDEX items_special ON items (name) WHERE kind <> "plain"',
  'CREATE VIEW labelled AS SELECT id, name, "label" AS tag FROM items',
  'CREATE TRIGGER items_logged AFTER INSERT ON items BEGIN INSERT INTO log VALUES (new.id, "inserted " || new.name); END',
];

/** DML with double-quoted strings; the trigger and DEFAULT fill in the rest. */
const ROWS = ['INSERT INTO items (id, name) VALUES (1, "ada")', 'INSERT INTO items (id, name, kind) VALUES (2, "bob", "special")'];

/** What the schema and rows above read back as. */
async function assertContent(db: D1Database): Promise<void> {
  assert.deepEqual(await db.prepare('SELECT id, name, kind FROM items ORDER BY id').raw(), [
    [1, 'ada', 'plain'],
    [2, 'bob', 'special'],
  ]);
  assert.deepEqual(await db.prepare('SELECT * FROM log ORDER BY item').raw(), [
    [1, 'inserted ada'],
    [2, 'inserted bob'],
  ]);
  assert.deepEqual(await db.prepare('SELECT tag, name FROM labelled WHERE name = "bob"').raw(), [['label', 'bob']]);
  assert.deepEqual(await db.prepare('SELECT name FROM items INDEXED BY items_special WHERE kind <> "plain"').raw(), [['bob']]);
}

async function build(db: D1Database): Promise<void> {
  for (const sql of [...SCHEMA, ...ROWS]) await db.prepare(sql).run();
}

describe('embedded', () => {
  test('DDL and DML take double-quoted strings; a CHECK on one refuses with D1 text', async () => {
    const db = open(':memory:');
    try {
      await build(db);
      await assertContent(db);
      await db.prepare('UPDATE items SET note = "changed" WHERE name = "ada"').run();
      assert.equal(await db.prepare("SELECT note FROM items WHERE id = 1").first('note'), 'changed');
      await db.prepare('DELETE FROM items WHERE name = "bob"').run();
      assert.equal(await db.prepare('SELECT count(*) AS n FROM items').first('n'), 1);
      await assert.rejects(db.prepare('INSERT INTO items (id, name) VALUES (3, "forbidden")').run(), {
        message: 'D1_ERROR: CHECK constraint failed: name <> "forbidden": SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)',
      });
      assert.deepEqual(await db.batch([db.prepare('SELECT "a" || "b" AS s'), db.prepare('SELECT upper("x") AS u')]).then((r) => r.map((x) => x.results)), [[{ s: 'ab' }], [{ u: 'X' }]]);
    } finally {
      db.close();
    }
  });

  test('a double-quoted name of a column is the column (SQLite rule); elsewhere it is a string', async () => {
    const db = open(':memory:');
    try {
      await db.exec('CREATE TABLE t (name TEXT, other TEXT)');
      // VALUES has no columns in scope: "name" is the string.
      await db.prepare('INSERT INTO t (name, other) VALUES ("name", "x"), ("y", "y")').run();
      assert.deepEqual(await db.prepare('SELECT "name", "other" FROM t ORDER BY rowid').raw(), [
        ['name', 'x'],
        ['y', 'y'],
      ]);
      // Column against column: only the row where both are equal.
      assert.deepEqual(await db.prepare('SELECT name FROM t WHERE "name" = "other"').raw(), [['y']]);
      // "other" names a column: the update copies it; "nope" names none: it is the string.
      await db.prepare('UPDATE t SET name = "other" WHERE other = "x"').run();
      await db.prepare('UPDATE t SET other = "nope" WHERE name = "y"').run();
      assert.deepEqual(await db.prepare('SELECT name, other FROM t ORDER BY rowid').raw(), [
        ['x', 'x'],
        ['y', 'nope'],
      ]);
    } finally {
      db.close();
    }
  });

  test('D1 error texts stay: a bare unknown name, an unknown table, a syntax error', async () => {
    const db = open(':memory:');
    try {
      await db.exec('CREATE TABLE t (a)');
      await assert.rejects(db.prepare('SELECT nope FROM t').all(), { message: 'D1_ERROR: no such column: nope at offset 7: SQLITE_ERROR' });
      await assert.rejects(db.prepare('SELECT "x" FROM nosuch').all(), { message: 'D1_ERROR: no such table: nosuch: SQLITE_ERROR' });
      await assert.rejects(db.prepare('SELECT "x" FROM t WHERE').all(), { message: /^D1_ERROR: incomplete input: SQLITE_ERROR$/ });
    } finally {
      db.close();
    }
  });

  test('every connection to such a database takes them: reopened, read-only, its dump(), a fork', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'quoted.sqlite');
    const first = open(file, { history: true });
    await build(first);
    const forkFile = path.join(dir, 'fork.sqlite');
    history(first).fork({ bookmark: history(first).bookmark() }, forkFile);
    first.close();

    const reopened = open(file);
    await assertContent(reopened);
    await reopened.prepare('INSERT INTO items (id, name) VALUES (3, "cy")').run(); // the trigger compiles on this connection
    assert.equal(await reopened.prepare('SELECT what FROM log WHERE item = 3').first('what'), 'inserted cy');
    // dump() rebuilds a copy (VACUUM recompiles every view and trigger): the copy opens and works.
    const dumped = path.join(dir, 'dumped.sqlite');
    writeFileSync(dumped, Buffer.from(await reopened.dump()));
    const expected = await snapshot(reopened);
    reopened.close();

    for (const [what, db] of [
      ['read-only', open(file, { readonly: true })],
      ['dump', open(dumped)],
    ] as const) {
      try {
        assert.deepEqual(await snapshot(db), expected, what);
        assert.deepEqual(await db.prepare('SELECT tag FROM labelled WHERE id = 3').raw(), [['label']], what);
      } finally {
        db.close();
      }
    }
    const fork = open(forkFile);
    try {
      await assertContent(fork);
      await fork.prepare('INSERT INTO items (id, name) VALUES (4, "dee")').run();
      assert.equal(await fork.prepare('SELECT what FROM log WHERE item = 4').first('what'), 'inserted dee');
    } finally {
      fork.close();
    }
  });
});

describe('over HTTP', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({});
  });
  after(() => s?.close());

  test("workerd's binding protocol, the REST API and dione/client all take them", async () => {
    await s.createDatabase('quoted');
    // Schema through REST /query, one statement per request.
    for (const sql of SCHEMA) {
      const reply = await fetchJson(`${s.api}/quoted/query`, { method: 'POST', headers: jsonHeaders(s.token), body: JSON.stringify({ sql }) });
      assert.equal(reply.status, 200, `${sql}: ${JSON.stringify(reply.body)}`);
    }
    // Rows through workerd's binding protocol, as a batch.
    const binding = await fetchJson(`${s.url}/query`, {
      method: 'POST',
      headers: jsonHeaders(s.token, { 'x-dione-database': 'quoted' }),
      body: JSON.stringify(ROWS.map((sql) => ({ sql, params: [] }))),
    });
    assert.equal(binding.status, 200);
    assert.deepEqual(
      binding.body.map((r: { success: boolean }) => r.success),
      [true, true],
    );
    const read = await fetchJson(`${s.url}/query?resultsFormat=ROWS_AND_COLUMNS`, {
      method: 'POST',
      headers: jsonHeaders(s.token, { 'x-dione-database': 'quoted' }),
      body: JSON.stringify({ sql: 'SELECT "name", "x" AS lit FROM items WHERE kind = "special"', params: [] }),
    });
    assert.deepEqual(read.body.results, { columns: ['name', 'lit'], rows: [['bob', 'x']] });
    const db = connect({ url: s.url, token: s.token, database: 'quoted' });
    await assertContent(db);
    await assert.rejects(db.prepare('INSERT INTO items (id, name) VALUES (3, "forbidden")').run(), {
      message: 'D1_ERROR: CHECK constraint failed: name <> "forbidden": SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_CHECK)',
    });
  });

  test("a REST export of such a database imports into an empty one (the server's import runs them too)", async () => {
    await s.createDatabase('quoted-source');
    const source = connect({ url: s.url, token: s.token, database: 'quoted-source' });
    await build(source);
    const dump = await restExport(s, 'quoted-source');
    assert.match(dump, /DEFAULT "plain"/);
    await s.createDatabase('quoted-copy');
    assert.equal((await restImport(s, 'quoted-copy', dump)).status, 'complete');
    const copy = connect({ url: s.url, token: s.token, database: 'quoted-copy' });
    assert.deepEqual(await snapshot(copy), await snapshot(source));
    await copy.prepare('INSERT INTO items (id, name) VALUES (3, "cy")').run();
    assert.equal(await copy.prepare('SELECT what FROM log WHERE item = 3').first('what'), 'inserted cy');
  });
});
