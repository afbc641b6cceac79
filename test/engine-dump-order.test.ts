// SQL dumps (wrangler's export format) import into an empty database, whatever order the schema was
// made in: every table before any row (a child table created before its parent), a table's rows
// after those of the tables it references (so even statement-by-statement imports pass their
// foreign key checks), views after the views they read (one dropped and recreated included),
// triggers after the views they are on. Through the engine's dump (what the server and the CLI
// write), the REST API's export and import, and `dione d1 export` / `import --local`.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect } from '../src/client.ts';
import { Engine } from '../src/engine/engine.ts';
import { type D1Database, open } from '../src/index.ts';
import { splitStatements } from '../src/sql/statements.ts';
import { snapshot, tempDir } from './helpers/binding.ts';
import { dione, project } from './helpers/cli-d1.ts';
import { restExport, restImport } from './helpers/rest-transfer.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

interface Case {
  name: string;
  sql: string[];
  /** Pairs of schema objects, [first, then], in the order the dump must create them. */
  order?: [string, string][];
  /** Parents' rows have lower rowids: the dump imports even one statement at a time (no deferred keys). */
  statementByStatement?: boolean;
}

const CASES: Case[] = [
  {
    name: 'a foreign key chain created child first, with AUTOINCREMENT',
    sql: [
      'CREATE TABLE comments (id INTEGER PRIMARY KEY, post INTEGER NOT NULL REFERENCES posts(id) ON DELETE CASCADE, body TEXT)',
      'CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT, author INTEGER NOT NULL REFERENCES Users(id), title TEXT)',
      'CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, email TEXT UNIQUE NOT NULL)',
      "INSERT INTO users (email) VALUES ('ada@example.com'), ('bob@example.com')",
      "INSERT INTO posts (author, title) VALUES (2, 'first'), (1, 'second')",
      "INSERT INTO comments (post, body) VALUES (2, 'nice'), (1, 'it''s; ok')",
      'DELETE FROM users WHERE id > 100',
    ],
    order: [
      ['users', 'INSERT INTO "posts"'],
      ['INSERT INTO "users"', 'INSERT INTO "posts"'],
      ['INSERT INTO "posts"', 'INSERT INTO "comments"'],
    ],
    statementByStatement: true,
  },
  {
    name: 'a self-referencing table, a row pointing at a later row',
    sql: [
      'CREATE TABLE staff (id INTEGER PRIMARY KEY, name TEXT, manager INTEGER REFERENCES staff(id))',
      "INSERT INTO staff VALUES (1, 'boss', NULL), (2, 'lead', 1), (5, 'new boss', NULL)",
      "INSERT INTO staff VALUES (4, 'report', 5)",
    ],
  },
  {
    name: 'views over views, one dropped and recreated after its reader, and an INSTEAD OF trigger on a view',
    sql: [
      'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)',
      'CREATE VIEW base AS SELECT id FROM t',
      'CREATE VIEW middle AS SELECT id FROM base',
      'CREATE VIEW "top view" AS SELECT m.id, t.v FROM middle AS m JOIN t USING (id)',
      'DROP VIEW base',
      'CREATE VIEW base AS SELECT id FROM t WHERE v IS NOT NULL',
      'CREATE VIEW middle2 AS SELECT * FROM [top view]',
      'CREATE TRIGGER top_insert INSTEAD OF INSERT ON "top view" BEGIN INSERT INTO t (id, v) VALUES (new.id, new.v); END',
      "INSERT INTO t VALUES (1, 'one'), (2, NULL)",
      "INSERT INTO \"top view\" VALUES (3, 'three')",
    ],
    order: [
      ['CREATE VIEW base', 'CREATE VIEW middle AS'],
      ['CREATE VIEW middle AS', 'CREATE VIEW "top view"'],
      ['CREATE VIEW "top view"', 'CREATE VIEW middle2'],
      ['CREATE VIEW middle2', 'CREATE TRIGGER top_insert'],
    ],
  },
  {
    name: 'triggers do not fire during the import; indexes (unique, partial, on an expression)',
    sql: [
      'CREATE TABLE audit (what TEXT)',
      'CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT, price REAL, note TEXT)',
      'CREATE UNIQUE INDEX items_sku ON items (sku)',
      'CREATE INDEX items_pricey ON items (price) WHERE price > 10',
      'CREATE INDEX items_lower ON items (lower(note))',
      "CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN INSERT INTO audit VALUES ('added ' || new.sku); END",
      "INSERT INTO items VALUES (1, 'a', 5, 'Cheap'), (2, 'b', 50, 'line\nbreak')",
    ],
    order: [
      ['INSERT INTO "items"', 'CREATE UNIQUE INDEX items_sku'],
      ['INSERT INTO "audit"', 'CREATE TRIGGER items_audit'],
    ],
  },
  {
    name: 'quoted table names referencing each other',
    sql: [
      'CREATE TABLE "order lines" (id INTEGER PRIMARY KEY, "order" INTEGER REFERENCES "orders ""x"""(id))',
      'CREATE TABLE "orders ""x""" (id INTEGER PRIMARY KEY)',
      'INSERT INTO "orders ""x""" VALUES (7)',
      'INSERT INTO "order lines" VALUES (1, 7)',
    ],
    order: [['INSERT INTO "orders ""x"""', 'INSERT INTO "order lines"']],
    statementByStatement: true,
  },
  {
    name: 'texts that hold the line-break markers themselves (a backslash and an n), carriage returns and NUL',
    sql: [
      'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)',
      "INSERT INTO notes (body) VALUES ('a\\nb' || char(10) || 'c')",
      "INSERT INTO notes (body) VALUES ('\\n and \\012' || char(10) || '(\\0120)' || char(13) || '\\r' || char(13, 10))",
      "INSERT INTO notes (body) VALUES ('x' || char(0) || 'y' || char(10))",
      "INSERT INTO notes (body) VALUES ('plain' || char(10) || 'lines' || char(13))",
    ],
    statementByStatement: true,
  },
];

/** A database file built by `sql`, and the engine that holds it (its dumpSql is what the server exports). */
function build(sql: string[]): { file: string; engine: Engine } {
  const file = path.join(tempDir(), 'source.sqlite');
  const engine = new Engine(file);
  for (const statement of sql) {
    const response = engine.execute({ queries: [{ sql: statement, params: [] }] });
    assert.ok(response.success, `${statement}: ${response.success ? '' : response.error}`);
  }
  return { file, engine };
}

function dumpOf(sql: string[]): { file: string; dump: string } {
  const { file, engine } = build(sql);
  try {
    return { file, dump: [...engine.dumpSql()].join('\n') };
  } finally {
    engine.close();
  }
}

const statementsOf = (dump: string) => splitStatements(dump).filter((s) => !s.empty);

/** Everything a dump must carry over: schema, rows, and AUTOINCREMENT counters. */
async function content(db: D1Database) {
  const sequence = await db
    .prepare("SELECT name, seq FROM sqlite_sequence WHERE EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence') ORDER BY name")
    .raw()
    .catch(() => []);
  return { ...(await snapshot(db)), sequence };
}

function assertOrder(dump: string, order: [string, string][] = []): void {
  const lines = dump.split('\n');
  const at = (prefix: string) => {
    const i = lines.findIndex((l) => l.startsWith(prefix) || l.startsWith(`CREATE TABLE ${prefix} `) || l.startsWith(`CREATE TABLE ${prefix}(`));
    assert.ok(i >= 0, `no line for ${prefix} in:\n${dump}`);
    return i;
  };
  for (const [first, then] of order) assert.ok(at(first) < at(then), `${first} must come before ${then} in:\n${dump}`);
}

describe('the engine dump', () => {
  for (const c of CASES) {
    test(`${c.name}: imports into an empty database as one batch${c.statementByStatement ? ' and statement by statement' : ''}`, async () => {
      const { file, dump } = dumpOf(c.sql);
      assert.ok(dump.startsWith('PRAGMA defer_foreign_keys=TRUE;\n'));
      const lines = dump.split('\n');
      const firstInsert = lines.findIndex((l) => l.startsWith('INSERT INTO'));
      assert.ok(lines.slice(firstInsert).every((l) => !l.startsWith('CREATE TABLE')), `every table comes before any row:\n${dump}`);
      assertOrder(dump, c.order);

      const source = open(file, { readonly: true });
      const expected = await content(source);
      source.close();
      const batched = open(':memory:');
      await batched.batch(statementsOf(dump).map((s) => batched.prepare(s.text)));
      assert.deepEqual(await content(batched), expected);
      batched.close();
      if (c.statementByStatement) {
        const oneByOne = open(':memory:');
        for (const s of statementsOf(dump)) await oneByOne.prepare(s.text).run();
        assert.deepEqual(await content(oneByOne), expected);
        oneByOne.close();
      }
    });
  }

  test('--no-data, --no-schema and --table keep their meaning', () => {
    const { engine } = build(CASES[0]!.sql);
    try {
      const all = [...engine.dumpSql()].join('\n');
      const noData = [...engine.dumpSql({ noData: true })];
      assert.deepEqual(
        noData,
        all.split('\n').filter((l) => !l.startsWith('INSERT INTO')),
      );
      const noSchema = [...engine.dumpSql({ noSchema: true })];
      assert.deepEqual(noSchema, ['PRAGMA defer_foreign_keys=TRUE;', ...all.split('\n').filter((l) => l.startsWith('INSERT INTO'))]);
      assert.deepEqual([...engine.dumpSql({ tables: ['posts'] })], [
        'PRAGMA defer_foreign_keys=TRUE;',
        'CREATE TABLE posts (id INTEGER PRIMARY KEY AUTOINCREMENT, author INTEGER NOT NULL REFERENCES Users(id), title TEXT);',
        `INSERT INTO "posts" ("id","author","title") VALUES(1,2,'first');`,
        `INSERT INTO "posts" ("id","author","title") VALUES(2,1,'second');`,
      ]);
    } finally {
      engine.close();
    }
  });

  test('a virtual table (FTS5) is refused as D1 refuses it, before any line is written', () => {
    const { engine } = build(['CREATE TABLE notes (id INTEGER PRIMARY KEY)', 'CREATE VIRTUAL TABLE docs USING fts5(title, body)', "INSERT INTO docs VALUES ('a', 'b')"]);
    try {
      const lines = engine.dumpSql();
      assert.throws(() => lines.next(), { message: 'D1 Export error: cannot export databases with Virtual Tables (fts5)' });
      // The tables beside it can still be exported on their own.
      assert.deepEqual([...engine.dumpSql({ tables: ['notes'] })], ['PRAGMA defer_foreign_keys=TRUE;', 'CREATE TABLE notes (id INTEGER PRIMARY KEY);']);
    } finally {
      engine.close();
    }
  });
});

describe('over the REST API and the CLI', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({});
  });
  after(() => s?.close());

  const everything = CASES.flatMap((c) => c.sql);

  test('a REST export imports through the REST import into an empty database', async () => {
    await s.createDatabase('order-source');
    const source = connect({ url: s.url, token: s.token, database: 'order-source' });
    for (const sql of everything) await source.prepare(sql).run();
    const dump = await restExport(s, 'order-source');
    for (const c of CASES) assertOrder(dump, c.order);
    await s.createDatabase('order-copy');
    const imported = await restImport(s, 'order-copy', dump);
    assert.equal(imported.status, 'complete', JSON.stringify(imported));
    assert.deepEqual(await content(connect({ url: s.url, token: s.token, database: 'order-copy' })), await content(source));
  });

  test('dione d1 export --local, then import --local one statement per chunk', async (t) => {
    const p = project({
      'wrangler.toml': `name = "app"\ncompatibility_date = "2025-01-01"\n\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "shop"\ndatabase_id = "shop-id"\n\n[[d1_databases]]\nbinding = "COPY"\ndatabase_name = "copy"\ndatabase_id = "copy-id"\n`,
      // Only the cases whose rows import without deferred keys: each chunk is its own transaction.
      'schema.sql': `${CASES.filter((c) => c.statementByStatement)
        .flatMap((c) => c.sql)
        .map((sql) => `${sql};`)
        .join('\n')}\n`,
    });
    t.after(p.cleanup);
    const run = async (args: string[]) => {
      const r = await dione(p.dir, args);
      assert.equal(r.code, 0, `dione ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
    };
    await run(['d1', 'execute', 'shop', '--local', '--file', 'schema.sql', '-y']);
    await run(['d1', 'export', 'shop', '--local', '--output', 'dump.sql']);
    const dump = readFileSync(path.join(p.dir, 'dump.sql'), 'utf8');
    assertOrder(dump, CASES[0]!.order);
    await run(['d1', 'import', 'copy', 'dump.sql', '--local', '--chunk-size', '1', '-y']);
    const selectAll = 'SELECT * FROM comments JOIN posts ON posts.id = comments.post JOIN users ON users.id = posts.author ORDER BY comments.id';
    writeFileSync(path.join(p.dir, 'check.sql'), `${selectAll};\n`);
    const read = async (database: string) => {
      const r = await dione(p.dir, ['d1', 'execute', database, '--local', '--json', '--file', 'check.sql', '-y']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout)[0].results;
    };
    const copied = await read('copy');
    assert.equal(copied.length, 2);
    assert.deepEqual(copied, await read('shop'));
  });
});
