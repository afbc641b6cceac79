// Table-driven tests for splitStatements (src/sql/statements.ts): statement boundaries, read/write
// classification, parameter numbering and the `executable` rewrite, D1's parameter limits, and the
// statements D1 refuses. Wherever SQLite has an answer, the expectation is checked against real
// SQLite too (test/helpers/sql-oracle.ts): boundaries by preparing each piece on its own,
// numbering from SQLite's VDBE program and bound values, read-only-ness from
// sqlite3_stmt_readonly(), error offsets from sqlite3_error_offset().
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Messages } from '../src/api/errors.ts';
import { type D1Database, open } from '../src/index.ts';
import { isTrivia, tokenize } from '../src/sql/lexer.ts';
import { preparedStatements, splitStatements } from '../src/sql/statements.ts';
import { rawDb, rawGuardDb, rawState, sqliteParameterTruth, sqlitePrepareError } from './helpers/sql-oracle.ts';

const NOT_AUTHORIZED = 'not authorized: SQLITE_AUTH';
const LOAD_EXTENSION = 'not authorized: SQLITE_ERROR';
const SCHEMA_TABLE = 'table sqlite_master may not be modified: SQLITE_ERROR';
const TRANSACTION = Messages.transactionStatement;

const guard = rawGuardDb();
after(() => guard.close());

const opened: D1Database[] = [];
after(async () => {
  for (const db of opened.splice(0)) await db.close();
});

/** A fresh embedded database with `setup` applied (one statement per batch element), closed after the file. */
async function engineDb(setup: string[] = []): Promise<D1Database> {
  const db = open(':memory:');
  opened.push(db);
  if (setup.length > 0) await db.batch(setup.map((s) => db.prepare(s)));
  return db;
}

/** The error message a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
  assert.fail('expected a rejection, but the call succeeded');
}

/** Statement texts concatenated are the input's prefix and only trivia follows: no text lost or moved. */
function assertOffsets(sql: string): void {
  const statements = splitStatements(sql);
  const joined = statements.map((s) => s.text).join('');
  assert.ok(sql.startsWith(joined), 'statement texts are not consecutive slices of the input');
  const rest = sql.slice(joined.length);
  assert.ok(
    tokenize(rest).every(isTrivia),
    `text after the last statement is not only whitespace and comments: ${JSON.stringify(rest)}`,
  );
}

/**
 * `executable` is `text` with each parameter token replaced by `?` and spaces: same length, same
 * characters outside parameters, and exactly `count` plain `?` parameters.
 */
function assertRewrite(text: string, executable: string, count: number): void {
  assert.equal(executable.length, text.length, 'the rewrite changed the length');
  const params = tokenize(text).filter((t) => t.type === 'param');
  let expected = '';
  let from = 0;
  for (const t of params) {
    expected += text.slice(from, t.start) + '?' + ' '.repeat(t.end - t.start - 1);
    from = t.end;
  }
  expected += text.slice(from);
  assert.equal(executable, expected);
  const rewritten = tokenize(executable).filter((t) => t.type === 'param');
  assert.deepEqual(
    rewritten.map((t) => executable.slice(t.start, t.end)),
    new Array(count).fill('?'),
  );
}

// ------------------------------------------------------------------------------------------------
describe('statement boundaries', () => {
  interface SplitCase {
    name: string;
    sql: string;
    /** Expected statement texts, each from just after the previous `;`. */
    texts: string[];
    /** Which statements are empty (only a `;`); all false when omitted. */
    empty?: boolean[];
    /** Schema the statements need (applied before them, both in Dione's split and SQLite's exec). */
    setup?: string;
    /** Valid SQL: cross-check every piece against SQLite. */
    valid?: boolean;
  }

  const triggerSetup = 'CREATE TABLE t(a, b); CREATE TABLE log(m);';
  const cases: SplitCase[] = [
    { name: 'two statements', sql: 'SELECT 1; SELECT 2', texts: ['SELECT 1;', ' SELECT 2'], valid: true },
    { name: 'no space after the semicolon', sql: 'SELECT 1;SELECT 2;', texts: ['SELECT 1;', 'SELECT 2;'], valid: true },
    {
      name: 'semicolons inside strings',
      sql: "SELECT ';' AS a; SELECT 'b;c', 'it'';s'",
      texts: ["SELECT ';' AS a;", " SELECT 'b;c', 'it'';s'"],
      valid: true,
    },
    {
      name: 'semicolons inside quoted identifiers',
      sql: 'SELECT 1 AS "a;b"; SELECT 2 AS [c;d]; SELECT 3 AS `e;f`',
      texts: ['SELECT 1 AS "a;b";', ' SELECT 2 AS [c;d];', ' SELECT 3 AS `e;f`'],
      valid: true,
    },
    {
      name: 'semicolons inside comments',
      sql: 'SELECT 1 /* ; */; SELECT 2 -- ;\n; SELECT 3',
      texts: ['SELECT 1 /* ; */;', ' SELECT 2 -- ;\n;', ' SELECT 3'],
      valid: true,
    },
    { name: 'semicolon inside a blob literal', sql: "SELECT x'3b'; SELECT 2", texts: ["SELECT x'3b';", ' SELECT 2'], valid: true },
    { name: 'trailing comments and whitespace are not a statement', sql: 'SELECT 1; -- done\n  /* c */ \n\t', texts: ['SELECT 1;'], valid: true },
    { name: 'trailing unterminated block comment is not a statement', sql: 'SELECT 1; /* SELECT 2;', texts: ['SELECT 1;'], valid: true },
    { name: 'comment after the last statement without a semicolon', sql: 'SELECT 1 -- c', texts: ['SELECT 1 -- c'], valid: true },
    {
      name: 'leading trivia belongs to the statement',
      sql: '  -- c\n SELECT 1; /* x */ SELECT 2',
      texts: ['  -- c\n SELECT 1;', ' /* x */ SELECT 2'],
      valid: true,
    },
    { name: 'SELECT 1;; ends with an empty statement', sql: 'SELECT 1;;', texts: ['SELECT 1;', ';'], empty: [false, true], valid: true },
    { name: 'empty statement in the middle', sql: 'SELECT 1; ; SELECT 2', texts: ['SELECT 1;', ' ;', ' SELECT 2'], empty: [false, true, false], valid: true },
    { name: 'a lone semicolon', sql: ';', texts: [';'], empty: [true], valid: true },
    { name: 'a comment then a semicolon', sql: '/* c */ ;', texts: ['/* c */ ;'], empty: [true], valid: true },
    { name: 'empty input', sql: '', texts: [] },
    { name: 'only whitespace', sql: ' \n\t ', texts: [] },
    { name: 'only a line comment', sql: '-- nothing', texts: [] },
    { name: 'only a block comment', sql: '/* nothing */', texts: [] },
    { name: 'unterminated string swallows the rest', sql: "SELECT 'a; SELECT 2", texts: ["SELECT 'a; SELECT 2"] },
    { name: 'CASE … END in a plain statement', sql: 'SELECT CASE WHEN 1 THEN 2 END; SELECT 3', texts: ['SELECT CASE WHEN 1 THEN 2 END;', ' SELECT 3'], valid: true },
    { name: 'BEGIN as an alias in a plain statement', sql: 'SELECT 1 AS begin; SELECT 2', texts: ['SELECT 1 AS begin;', ' SELECT 2'], valid: true },
    {
      name: 'CREATE TRIGGER body with two statements',
      setup: triggerSetup,
      sql: "CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('one;'); INSERT INTO log VALUES (new.a); END; INSERT INTO t(a) VALUES (1)",
      texts: ["CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES ('one;'); INSERT INTO log VALUES (new.a); END;", ' INSERT INTO t(a) VALUES (1)'],
      valid: true,
    },
    {
      name: 'CREATE TRIGGER body with CASE … END (nested) in its statements',
      setup: triggerSetup,
      sql:
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET b = CASE WHEN new.a > 0 THEN 'pos' ELSE 'neg' END WHERE rowid = new.rowid; " +
        "INSERT INTO log VALUES (CASE new.a WHEN 1 THEN 'one' ELSE CASE WHEN new.a > 1 THEN 'many' END END); END; INSERT INTO t(a) VALUES (1); INSERT INTO t(a) VALUES (2)",
      texts: [
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET b = CASE WHEN new.a > 0 THEN 'pos' ELSE 'neg' END WHERE rowid = new.rowid; " +
          "INSERT INTO log VALUES (CASE new.a WHEN 1 THEN 'one' ELSE CASE WHEN new.a > 1 THEN 'many' END END); END;",
        ' INSERT INTO t(a) VALUES (1);',
        ' INSERT INTO t(a) VALUES (2)',
      ],
      valid: true,
    },
    {
      name: 'CREATE TRIGGER with CASE … END in its WHEN clause',
      setup: triggerSetup,
      sql: 'CREATE TRIGGER tr BEFORE INSERT ON t WHEN CASE WHEN new.a IS NULL THEN 1 ELSE 0 END BEGIN SELECT RAISE(IGNORE); END; INSERT INTO t(a) VALUES (NULL); INSERT INTO t(a) VALUES (3)',
      texts: [
        'CREATE TRIGGER tr BEFORE INSERT ON t WHEN CASE WHEN new.a IS NULL THEN 1 ELSE 0 END BEGIN SELECT RAISE(IGNORE); END;',
        ' INSERT INTO t(a) VALUES (NULL);',
        ' INSERT INTO t(a) VALUES (3)',
      ],
      valid: true,
    },
    {
      name: 'CREATE TRIGGER body with END and ; inside comments, strings and identifiers',
      setup: triggerSetup,
      sql: "CREATE TRIGGER tr AFTER INSERT ON t BEGIN /* END; */ INSERT INTO log VALUES ('END;'); -- END;\n INSERT INTO log SELECT 1 AS \"end;\"; END; SELECT 2",
      texts: ["CREATE TRIGGER tr AFTER INSERT ON t BEGIN /* END; */ INSERT INTO log VALUES ('END;'); -- END;\n INSERT INTO log SELECT 1 AS \"end;\"; END;", ' SELECT 2'],
      valid: true,
    },
    {
      name: 'lower-case CREATE TRIGGER IF NOT EXISTS',
      setup: triggerSetup,
      sql: 'create trigger if not exists tr after delete on t begin delete from log; end; select 1',
      texts: ['create trigger if not exists tr after delete on t begin delete from log; end;', ' select 1'],
      valid: true,
    },
    {
      name: 'CREATE TEMP TRIGGER',
      setup: triggerSetup,
      sql: 'CREATE TEMP TRIGGER tt AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END; SELECT 3',
      texts: ['CREATE TEMP TRIGGER tt AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END;', ' SELECT 3'],
      valid: true,
    },
    {
      name: 'comment between END and the semicolon',
      setup: triggerSetup,
      sql: 'CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END /* c */ ; SELECT 2',
      texts: ['CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END /* c */ ;', ' SELECT 2'],
      valid: true,
    },
    {
      name: 'EXPLAIN CREATE TRIGGER',
      setup: triggerSetup,
      sql: 'EXPLAIN CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; SELECT 2',
      texts: ['EXPLAIN CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;', ' SELECT 2'],
      valid: true,
    },
    {
      name: 'EXPLAIN QUERY PLAN CREATE TRIGGER (SQLite prepares it as one statement)',
      setup: triggerSetup,
      sql: 'EXPLAIN QUERY PLAN CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END; SELECT 2',
      texts: ['EXPLAIN QUERY PLAN CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;', ' SELECT 2'],
      valid: true,
    },
    {
      name: 'trigger body using a column named "end" (END is a fallback identifier in SQLite)',
      setup: 'CREATE TABLE e(a, "end");',
      sql: 'CREATE TRIGGER tr AFTER INSERT ON e BEGIN UPDATE e SET end = new.a + 1 WHERE rowid = new.rowid; END; INSERT INTO e(a) VALUES (1)',
      texts: ['CREATE TRIGGER tr AFTER INSERT ON e BEGIN UPDATE e SET end = new.a + 1 WHERE rowid = new.rowid; END;', ' INSERT INTO e(a) VALUES (1)'],
      valid: true,
    },
    {
      name: 'unfinished trigger keeps everything',
      sql: 'CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; SELECT 2;',
      texts: ['CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; SELECT 2;'],
    },
  ];

  for (const c of cases) {
    test(`${c.name}: ${JSON.stringify(c.sql)}`, () => {
      const statements = splitStatements(c.sql);
      assert.deepEqual(
        statements.map((s) => s.text),
        c.texts,
      );
      assert.deepEqual(
        statements.map((s) => s.empty),
        c.empty ?? c.texts.map(() => false),
      );
      assertOffsets(c.sql);
      if (!c.valid) return;
      // SQLite: every non-empty piece prepares as exactly one complete statement (better-sqlite3
      // refuses "more than one statement", SQLite "incomplete input"), and running the pieces in
      // order leaves the same database as SQLite running the whole text.
      const pieces = rawDb(c.setup);
      const whole = rawDb(c.setup);
      try {
        for (const s of statements) {
          if (s.empty) continue;
          const stmt = pieces.prepare(s.text);
          if (stmt.reader) stmt.all();
          else stmt.run();
        }
        whole.exec(c.sql);
        assert.deepEqual(rawState(pieces), rawState(whole));
      } finally {
        pieces.close();
        whole.close();
      }
    });
  }

  test('a statement after a `;` is reported with offsets relative to its own text, as D1 prepares the tail (after whitespace)', async () => {
    const db = await engineDb();
    const sql = 'SELECT 1;\n  SELECT nosuch';
    const [, second] = preparedStatements(sql);
    assert.equal(second!.text, 'SELECT nosuch');
    const expected = sqlitePrepareError(guard, second!.text);
    assert.deepEqual(expected, { offset: 7, message: 'no such column: nosuch' });
    assert.equal(await rejection(db.prepare(sql).run()), 'D1_ERROR: no such column: nosuch at offset 7: SQLITE_ERROR');
  });
});

// ------------------------------------------------------------------------------------------------
// How D1's runtime splits a query (the binding-level cases, on both bindings: binding-d1-runtime.test.ts).
describe('statements as D1 prepares them', () => {
  test('each starts after the whitespace after the one before; empty `;`s lead into the next; a leftover comment is an empty statement', () => {
    const shape = (sql: string) => preparedStatements(sql).map((s) => [s.text, s.empty]);
    assert.deepEqual(shape('SELECT 1;\n\t SELECT 2'), [
      ['SELECT 1;', false],
      ['SELECT 2', false],
    ]);
    assert.deepEqual(shape('; ;SELECT 1; /* c */ SELECT 2'), [
      ['; ;SELECT 1;', false],
      ['/* c */ SELECT 2', false],
    ]);
    assert.deepEqual(shape('SELECT 1; -- done\n'), [
      ['SELECT 1;', false],
      ['-- done\n', true],
    ]);
    assert.deepEqual(shape('SELECT 1;\v\f\r\n'), [['SELECT 1;', false]]);
    assert.deepEqual(shape('SELECT 1;\v;'), [
      ['SELECT 1;', false],
      [';', true],
    ]);
    assert.deepEqual(shape('  \n'), []);
  });

  test('splitStatements (the REST API, the CLI) still takes trailing comments for nothing and an empty `;` for an empty statement', () => {
    assert.deepEqual(
      splitStatements('SELECT 1; -- done').map((s) => s.text),
      ['SELECT 1;'],
    );
    assert.deepEqual(
      splitStatements('; SELECT 1').map((s) => [s.text, s.empty]),
      [
        [';', true],
        [' SELECT 1', false],
      ],
    );
  });
});

// ------------------------------------------------------------------------------------------------
describe('read/write classification', () => {
  const schema = 'CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT); CREATE INDEX t_b ON t(b); CREATE TABLE u(x, y);';
  // [sql, kind, verb, sqlite3_stmt_readonly() where it is asserted]
  const cases: [string, 'read' | 'write', string, boolean | undefined][] = [
    ['SELECT 1', 'read', 'SELECT', true],
    ['  select a FROM t', 'read', 'SELECT', true],
    ['/* c */ SELECT b FROM t WHERE a = 1', 'read', 'SELECT', true],
    ['VALUES (1), (2)', 'read', 'VALUES', true],
    ['WITH x AS (SELECT 1 AS n) SELECT n FROM x', 'read', 'SELECT', true],
    ['WITH RECURSIVE c(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM c WHERE n < 3) SELECT n FROM c', 'read', 'SELECT', true],
    ['WITH x AS MATERIALIZED (SELECT 1 AS n) SELECT * FROM x', 'read', 'SELECT', true],
    ['WITH x(n) AS (SELECT 1) VALUES (2)', 'read', 'VALUES', true],
    ['WITH x AS (SELECT 1 AS n) INSERT INTO u SELECT n, n FROM x', 'write', 'INSERT', false],
    ['WITH x AS (SELECT 1 AS n) UPDATE u SET y = (SELECT n FROM x)', 'write', 'UPDATE', false],
    ['WITH x AS (SELECT 1 AS n) DELETE FROM u WHERE x IN (SELECT n FROM x)', 'write', 'DELETE', false],
    ['WITH x AS (SELECT 1 AS n) REPLACE INTO u SELECT n, n FROM x', 'write', 'REPLACE', false],
    ['EXPLAIN SELECT 1', 'read', 'EXPLAIN', true],
    ['EXPLAIN QUERY PLAN SELECT * FROM t', 'read', 'EXPLAIN', true],
    ['PRAGMA foreign_keys', 'read', 'PRAGMA', true],
    ['pragma table_info(t)', 'read', 'PRAGMA', true],
    ['PRAGMA main.index_list(t)', 'read', 'PRAGMA', true],
    ['PRAGMA index_info(t_b)', 'read', 'PRAGMA', true],
    ['PRAGMA quick_check', 'read', 'PRAGMA', true],
    ['PRAGMA data_version', 'read', 'PRAGMA', true],
    ['PRAGMA table_list', 'read', 'PRAGMA', true],
    ['PRAGMA foreign_key_check', 'read', 'PRAGMA', true],
    ['PRAGMA foreign_keys = ON', 'write', 'PRAGMA', undefined],
    ['PRAGMA defer_foreign_keys(1)', 'write', 'PRAGMA', undefined],
    ['PRAGMA optimize', 'write', 'PRAGMA', undefined],
    ['INSERT INTO u VALUES (1, 2)', 'write', 'INSERT', false],
    ['INSERT OR IGNORE INTO u VALUES (1, 2)', 'write', 'INSERT', false],
    ['INSERT INTO u VALUES (1, 2) RETURNING x', 'write', 'INSERT', false],
    ['REPLACE INTO u VALUES (1, 2)', 'write', 'REPLACE', false],
    ['UPDATE u SET y = 3', 'write', 'UPDATE', false],
    ['DELETE FROM u', 'write', 'DELETE', false],
    ['CREATE TABLE v2(a)', 'write', 'CREATE', false],
    ['CREATE INDEX u_x ON u(x)', 'write', 'CREATE', false],
    ['CREATE VIEW vv AS SELECT 1', 'write', 'CREATE', false],
    ['DROP TABLE u', 'write', 'DROP', false],
    ['DROP INDEX t_b', 'write', 'DROP', false],
    ['ALTER TABLE u ADD COLUMN z', 'write', 'ALTER', false],
    ['ANALYZE', 'write', 'ANALYZE', false],
    ['REINDEX', 'write', 'REINDEX', undefined],
    ['VACUUM', 'write', 'VACUUM', false],
  ];
  for (const [sql, kind, verb, readonly] of cases) {
    test(`${sql} → ${kind} (${verb})`, () => {
      const statements = splitStatements(sql);
      assert.equal(statements.length, 1);
      const s = statements[0]!;
      assert.equal(s.kind, kind);
      assert.equal(s.verb, verb);
      assert.equal(s.rejection, undefined);
      const db = rawDb(schema);
      try {
        const prepared = db.prepare(sql);
        if (kind === 'read') assert.equal(prepared.readonly, true, 'classified read, but SQLite says the statement writes');
        if (readonly !== undefined) assert.equal(prepared.readonly, readonly);
      } finally {
        db.close();
      }
    });
  }

  test('EXPLAIN of a write is classified read; SQLite marks it not read-only, yet running it writes nothing', async () => {
    const sql = 'EXPLAIN INSERT INTO u VALUES (1, 2)';
    const [s] = splitStatements(sql);
    assert.equal(s!.kind, 'read');
    assert.equal(s!.verb, 'EXPLAIN');
    const raw = rawDb(schema);
    assert.equal(raw.prepare(sql).readonly, false);
    raw.close();
    const db = await engineDb(['CREATE TABLE u(x, y)']);
    const result = await db.prepare(sql).all();
    assert.ok(result.results.length > 0, 'EXPLAIN returns the program');
    assert.equal(await db.prepare('SELECT count(*) AS n FROM u').first('n'), 0);
  });

  test('readsTables follows FROM', () => {
    assert.deepEqual(
      ['SELECT 1', 'SELECT a FROM t', 'DELETE FROM t', 'INSERT INTO t VALUES (1)', "SELECT 'FROM'"].map((sql) => splitStatements(sql)[0]!.readsTables),
      [false, true, true, false, false],
    );
  });
});

// ------------------------------------------------------------------------------------------------
describe('parameter numbering (checked against SQLite)', () => {
  interface ParamCase {
    name: string;
    /** The parameters, each a result column of `SELECT p1, p2, …` (or a full SELECT). */
    params?: string[];
    sql?: string;
    slots: number[];
    count: number;
  }
  const cases: ParamCase[] = [
    { name: 'anonymous', params: ['?', '?', '?'], slots: [1, 2, 3], count: 3 },
    { name: 'numbered, reversed', params: ['?2', '?1'], slots: [2, 1], count: 2 },
    { name: 'numbered with a gap', params: ['?3'], slots: [3], count: 3 },
    { name: 'anonymous after a numbered one continues from it', params: ['?', '?5', '?'], slots: [1, 5, 6], count: 6 },
    { name: 'numbered, anonymous, numbered', params: ['?2', '?', '?1'], slots: [2, 3, 1], count: 3 },
    { name: 'numbered reuse', params: ['?1', '?2', '?1'], slots: [1, 2, 1], count: 2 },
    { name: 'leading zeros', params: ['?0001', '?1'], slots: [1, 1], count: 1 },
    { name: 'named reuse', params: [':a', ':b', ':a'], slots: [1, 2, 1], count: 2 },
    { name: 'named and anonymous mixed', params: [':a', '?', ':a', '?'], slots: [1, 2, 1, 3], count: 3 },
    { name: 'anonymous, named, numbered reference to the first', params: ['?', ':a', '?1', ':a'], slots: [1, 2, 1, 2], count: 2 },
    { name: 'numbered reference to a named one', params: [':a', '?1'], slots: [1, 1], count: 1 },
    { name: 'named after a numbered one', params: ['?1', ':a'], slots: [1, 2], count: 2 },
    { name: 'named after a higher numbered one', params: ['?2', ':a'], slots: [2, 3], count: 3 },
    { name: 'named after anonymous then numbered', params: ['?3', ':x', '?'], slots: [3, 4, 5], count: 5 },
    { name: 'prefixes make different names', params: [':a', '@a', '$a', ':a'], slots: [1, 2, 3, 1], count: 3 },
    { name: 'names are case-sensitive', params: [':a', ':A'], slots: [1, 2], count: 2 },
    { name: 'unicode names', params: [':é', '?', ':é'], slots: [1, 2, 1], count: 2 },
    { name: 'dollar inside a name', params: ['$a$b', '$a'], slots: [1, 2], count: 2 },
    { name: 'digits as a name', params: ['@1', '?1', '?'], slots: [1, 1, 2], count: 2 },
    { name: 'anonymous then numbered reference', params: ['?', '?1'], slots: [1, 1], count: 1 },
    { name: 'the highest number allowed', params: ['?100'], slots: [100], count: 100 },
    {
      name: 'parameter-like text in strings, comments and blobs is not a parameter',
      sql: "SELECT ?, '?2' AS s, /* :a ?9 */ :a, hex(x'3f') AS b -- ?7 :z\n, ? AS \"?\"",
      slots: [1, 2, 3],
      count: 3,
    },
    { name: '#name is a named parameter in SQLite', params: ['#a', '?'], slots: [1, 2], count: 2 },
  ];

  for (const c of cases) {
    const sql = c.sql ?? `SELECT ${c.params!.join(', ')}`;
    test(`${c.name}: ${sql}`, async () => {
      const raw = rawDb();
      try {
        // The table's expectation is SQLite's own: read from SQLite's program for the statement.
        const sqlite = sqliteParameterTruth(raw, sql);
        assert.deepEqual(sqlite.numbers, c.slots, 'the table disagrees with SQLite');
        assert.equal(sqlite.count, c.count, 'the table disagrees with SQLite');

        const statements = splitStatements(sql);
        assert.equal(statements.length, 1);
        const s = statements[0]!;
        assert.equal(s.rejection, undefined);
        assert.deepEqual(s.bindSlots, c.slots);
        assert.equal(s.parameterCount, c.count);
        assertRewrite(s.text, s.executable, s.bindSlots.length);

        // Values: SQLite bound a distinct label to every parameter of the original; the rewritten
        // statement, bound as the engine binds it (params[slot - 1] for each `?`), must give every
        // column the same value.
        const viaExecutable = raw
          .prepare(s.executable)
          .raw(true)
          .get(...s.bindSlots.map((slot) => sqlite.params[slot - 1]));
        assert.deepEqual(viaExecutable, sqlite.row);

        // And through the engine, with D1's positional bind().
        const db = await engineDb();
        const viaEngine = await db
          .prepare(sql)
          .bind(...sqlite.params)
          .raw();
        assert.deepEqual(viaEngine, [sqlite.row]);
      } finally {
        raw.close();
      }
    });
  }

  test('every parameter becomes a padded `?` and nothing else moves', () => {
    const sql = "SELECT :alpha, ?12, @b, $c$d, ?, 'x:y', ?1 -- :z\n";
    const [s] = splitStatements(sql);
    assert.equal(s!.executable, "SELECT ?     , ?  , ? , ?   , ?, 'x:y', ?  -- :z\n");
    assert.deepEqual(s!.bindSlots, [1, 12, 13, 14, 15, 1]);
    assert.equal(s!.parameterCount, 15);
    const raw = rawDb();
    assert.deepEqual(sqliteParameterTruth(raw, sql.replace("'x:y', ", '')).numbers, s!.bindSlots, 'SQLite numbers them differently');
    raw.close();
  });

  test('an error after the parameters is reported at the same offset for the original and the rewrite', () => {
    const sql = 'SELECT :long_name, @other, ?, nosuch';
    const [s] = splitStatements(sql);
    const original = sqlitePrepareError(guard, sql);
    const rewritten = sqlitePrepareError(guard, s!.executable);
    assert.deepEqual(original, { offset: 30, message: 'no such column: nosuch' });
    assert.deepEqual(rewritten, original);
  });

  test('only the last statement of a multi-statement query may have parameters', async () => {
    const db = await engineDb();
    assert.equal(await rejection(db.prepare('SELECT ?; SELECT 2').bind(1).run()), `D1_ERROR: ${Messages.parametersOnlyInLast}`);
    assert.deepEqual(await db.prepare('SELECT 1; SELECT ?2 AS b, ?1 AS a').bind('x', 'y').raw(), [['y', 'x']]);
  });
});

// ------------------------------------------------------------------------------------------------
describe('parameter limits', () => {
  const list = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join(', ');
  const between = (offset: number) => `variable number must be between ?1 and ?100 at offset ${offset}: SQLITE_ERROR`;
  const tooMany = (offset: number) => `too many SQL variables at offset ${offset}: SQLITE_ERROR`;
  const hundredAnonymous = `SELECT ${list(100, () => '?')}`;
  const hundredNamed = `SELECT ${list(100, (i) => `:p${i}`)}`;

  // [sql, index of the statement, expected rejection (undefined: accepted), parameterCount when accepted]
  const cases: [string, number, string | undefined, number?][] = [
    ['SELECT ?0', 0, between(7)],
    ['SELECT ?101', 0, between(7)],
    ['SELECT ?99999999999999999999', 0, between(7)],
    ['SELECT 1, ?100', 0, undefined, 100],
    ['SELECT ?100, ?', 0, tooMany(13)],
    ['SELECT ?100, :a', 0, tooMany(13)],
    ['SELECT ?100, :a, ?0', 0, tooMany(13)],
    ['SELECT ?0, ?101', 0, between(7)],
    ['SELECT ?, ?0', 0, between(10)],
    [hundredAnonymous, 0, undefined, 100],
    [`${hundredAnonymous}, ?`, 0, tooMany(hundredAnonymous.length + 2)],
    [hundredNamed, 0, undefined, 100],
    [`${hundredNamed}, :p0, ?100`, 0, undefined, 100],
    [`${hundredNamed}, :extra`, 0, tooMany(hundredNamed.length + 2)],
    [`${hundredNamed}, ?101`, 0, between(hundredNamed.length + 2)],
    ['SELECT 1; SELECT ?0', 1, between(8)],
    ['SELECT 1;\n\tSELECT ?, ?101', 1, between(12)],
  ];
  for (const [sql, index, expected, count] of cases) {
    test(`${sql.length > 60 ? `${sql.slice(0, 40)}…${sql.slice(-16)}` : sql} → ${expected ?? `accepted (${count})`}`, () => {
      const s = splitStatements(sql)[index]!;
      assert.equal(s.rejection, expected);
      if (count !== undefined) assert.equal(s.parameterCount, count);
    });
  }

  test('through the engine: the rejection is D1_ERROR with the same text', async () => {
    const db = await engineDb();
    assert.equal(await rejection(db.prepare('SELECT ?0').run()), `D1_ERROR: ${between(7)}`);
    assert.equal(await rejection(db.prepare(`${hundredAnonymous}, ?`).bind(...new Array(101).fill(1)).run()), `D1_ERROR: ${tooMany(hundredAnonymous.length + 2)}`);
  });

  test("matches D1's recorded offset for 101 numbered parameters (conformance param_count_101)", async () => {
    const n = 101;
    const sql = 'SELECT ' + Array.from({ length: n }, (_, i) => `?${i + 1} AS c${i + 1}`).join(', ');
    const db = await engineDb();
    const message = await rejection(
      db
        .prepare(sql)
        .bind(...Array.from({ length: n }, (_, i) => i + 1))
        .raw(),
    );
    assert.equal(message, 'D1_ERROR: variable number must be between ?1 and ?100 at offset 1191: SQLITE_ERROR');
  });

  // SQLite's error offsets are UTF-8 byte offsets (sqlite3_error_offset); Dione reports those for
  // every error SQLite raises, so its own parameter errors must count the same way.
  for (const prefix of ['SELECT ', "SELECT 'é', ", "SELECT '😀' AS \"ü\", "]) {
    const sql = `${prefix}?0`;
    test(`error offsets count UTF-8 bytes as SQLite does: ${sql}`, () => {
      const sqlite = sqlitePrepareError(guard, sql);
      assert.ok(sqlite, 'SQLite prepared it');
      assert.ok(sqlite.message.startsWith('variable number must be between ?1 and ?'), `SQLite: ${JSON.stringify(sqlite)}`);
      assert.equal(splitStatements(sql)[0]!.rejection, between(sqlite.offset));
    });
  }
});

// ------------------------------------------------------------------------------------------------
describe('statements D1 refuses', () => {
  const setup = ['CREATE TABLE t(a)'];
  const cases: [string, string][] = [
    ...[
      'BEGIN',
      'BEGIN TRANSACTION',
      'begin immediate',
      'BEGIN DEFERRED TRANSACTION',
      'BEGIN EXCLUSIVE',
      'COMMIT',
      'COMMIT TRANSACTION',
      'END',
      'end transaction',
      'ROLLBACK',
      'ROLLBACK TRANSACTION',
      'ROLLBACK TO sp',
      'ROLLBACK TRANSACTION TO SAVEPOINT sp',
      'SAVEPOINT sp',
      'RELEASE sp',
      'RELEASE SAVEPOINT sp',
      '/* c */ -- d\n  Commit',
      'EXPLAIN BEGIN',
      'EXPLAIN QUERY PLAN COMMIT',
    ].map((sql): [string, string] => [sql, TRANSACTION]),
    ...[
      "ATTACH 'other.db' AS other",
      "ATTACH DATABASE ':memory:' AS other",
      "attach database 'file:x?mode=memory' as \"other\"",
      'DETACH other',
      'DETACH DATABASE other',
      "EXPLAIN ATTACH ':memory:' AS other",
      "VACUUM INTO '/nonexistent/dir/x.db'",
      "VACUUM main INTO '/nonexistent/dir/x.db'",
      "vacuum \"main\" into '/nonexistent/dir/x.db'",
      "EXPLAIN VACUUM INTO '/nonexistent/dir/x.db'",
    ].map((sql): [string, string] => [sql, NOT_AUTHORIZED]),
    ...[
      "SELECT load_extension('x')",
      "SELECT LOAD_EXTENSION ('x', 'entry')",
      "SELECT 1 WHERE load_extension/* c */('x') IS NULL",
      "VALUES (load_extension('x'))",
      "INSERT INTO t VALUES (load_extension('x'))",
    ].map((sql): [string, string] => [sql, LOAD_EXTENSION]),
    ...[
      "INSERT INTO sqlite_master VALUES ('table', 'x', 'x', 0, 'CREATE TABLE x(a)')",
      "INSERT INTO main.sqlite_master VALUES ('table', 'x', 'x', 0, 'CREATE TABLE x(a)')",
      "INSERT INTO \"sqlite_master\" VALUES ('table', 'x', 'x', 0, 'CREATE TABLE x(a)')",
      "INSERT INTO [main].[sqlite_schema] VALUES ('table', 'x', 'x', 0, 'CREATE TABLE x(a)')",
      "insert into 'sqlite_master' values ('table', 'x', 'x', 0, 'CREATE TABLE x(a)')",
      "UPDATE sqlite_schema SET sql = 'x'",
      "UPDATE OR IGNORE `sqlite_master` SET name = 'y'",
      'DELETE FROM sqlite_master',
      'DELETE FROM main . "SQLITE_MASTER" WHERE 1',
      "REPLACE INTO sqlite_master VALUES ('table', 'x', 'x', 0, 'CREATE TABLE x(a)')",
      "INSERT OR REPLACE INTO sqlite_schema VALUES ('table', 'x', 'x', 0, 'CREATE TABLE x(a)')",
      'WITH x AS (SELECT 1) DELETE FROM sqlite_master',
      "WITH x AS (SELECT 1) INSERT INTO main.sqlite_schema SELECT 'table', 'x', 'x', 0, 'CREATE TABLE x(a)' FROM x",
      "WITH x AS (SELECT 1) UPDATE OR REPLACE sqlite_master SET sql = 'x'",
    ].map((sql): [string, string] => [sql, SCHEMA_TABLE]),
  ];

  for (const [sql, expected] of cases) {
    test(`${JSON.stringify(sql)} → ${expected.slice(0, 40)}`, async () => {
      const statements = splitStatements(sql);
      assert.equal(statements.length, 1);
      assert.equal(statements[0]!.rejection, expected);
      const db = await engineDb(setup);
      assert.equal(await rejection(db.prepare(sql).run()), `D1_ERROR: ${expected}`);
    });
  }

  // Look-alikes that are not refused: [sql, what the engine answers: 'ok', D1's error, or null
  // when the engine's answer is not about refusing (plain VACUUM fails inside a transaction)].
  const accepted: [string, string | null][] = [
    ['SELECT 1 AS begin', 'ok'],
    ["SELECT 'COMMIT', 'ATTACH', 'VACUUM INTO'", 'ok'],
    ['SELECT 1 AS load_extension', 'ok'],
    ['SELECT type, name FROM sqlite_master', 'ok'],
    ['INSERT INTO t SELECT name FROM sqlite_master', 'ok'],
    ['DELETE FROM t WHERE a IN (SELECT name FROM sqlite_schema)', 'ok'],
    ['UPDATE t SET a = (SELECT count(*) FROM sqlite_master)', 'ok'],
    ['WITH sqlite_master AS (SELECT 1) INSERT INTO t SELECT * FROM sqlite_master', 'ok'],
    ['INSERT INTO sqlite_master_copy VALUES (1)', 'D1_ERROR: no such table: sqlite_master_copy: SQLITE_ERROR'],
    ['VACUUM', null],
  ];
  for (const [sql, answer] of accepted) {
    test(`${JSON.stringify(sql)} is not refused`, async () => {
      const [s] = splitStatements(sql);
      assert.equal(s!.rejection, undefined);
      const db = await engineDb(setup);
      if (answer === 'ok') await db.prepare(sql).run();
      else if (answer !== null) assert.equal(await rejection(db.prepare(sql).run()), answer);
    });
  }

  test('exec() and batch() refuse them the same way', async () => {
    const db = await engineDb(setup);
    assert.equal(await rejection(db.exec('BEGIN')), `D1_EXEC_ERROR: Error in line 1: BEGIN: ${TRANSACTION}`);
    assert.equal(await rejection(db.batch([db.prepare('INSERT INTO t VALUES (1)'), db.prepare('COMMIT')])), `D1_ERROR: ${TRANSACTION}`);
    assert.equal(await db.prepare('SELECT count(*) AS n FROM t').first('n'), 0);
  });

  // SQLite's tokenizer reads a UTF-8 byte order mark at the start of a token as whitespace (see
  // sql-lexer.test.ts), so these are plain transaction statements to SQLite.
  test('a transaction statement behind a byte order mark is refused', () => {
    for (const verb of ['BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT sp', 'RELEASE sp', 'END']) {
      assert.equal(splitStatements(`\uFEFF${verb}`)[0]!.rejection, TRANSACTION, verb);
    }
  });

  test('a byte-order-marked ROLLBACK or SAVEPOINT cannot break the atomicity of a batch', async () => {
    const db = await engineDb(setup);
    const batch = db.batch([db.prepare('INSERT INTO t VALUES (1)'), db.prepare('\uFEFFROLLBACK'), db.prepare('INSERT INTO t VALUES (2)')]);
    assert.match(await rejection(batch), /^D1_ERROR: /);
    assert.deepEqual(await db.prepare('SELECT a FROM t').raw(), [], 'a failed batch left rows behind');
    assert.match(await rejection(db.prepare('\uFEFFSAVEPOINT sp').run()), /^D1_ERROR: /);
  });
});

// ------------------------------------------------------------------------------------------------
describe('PRAGMA allowlist', () => {
  const setup = ['CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT)', 'CREATE INDEX t_b ON t(b)', 'CREATE TABLE c(id INTEGER PRIMARY KEY, tid REFERENCES t(a))'];
  const allowed = [
    'PRAGMA table_list',
    'PRAGMA table_info(t)',
    "PRAGMA table_info('t')",
    'PRAGMA table_info = t',
    'PRAGMA table_xinfo(t)',
    'PRAGMA main.table_info(t)',
    'PRAGMA "main".table_info(t)',
    'PRAGMA index_list(t)',
    'PRAGMA index_info(t_b)',
    'PRAGMA index_xinfo(t_b)',
    'PRAGMA foreign_key_list(c)',
    'PRAGMA foreign_key_check',
    'PRAGMA foreign_key_check(c)',
    'PRAGMA quick_check',
    'PRAGMA quick_check(1)',
    'PRAGMA quick_check(t)',
    'PRAGMA optimize',
    'PRAGMA optimize(-1)',
    'PRAGMA optimize = 2',
    // workerd takes optimize's value as a 32-bit integer, decimal or hexadecimal (recorded from miniflare 4.20260426).
    'PRAGMA optimize = 0x10002',
    'PRAGMA optimize(0x10002)',
    'PRAGMA optimize = -0x10',
    'PRAGMA optimize = 2147483647',
    'PRAGMA optimize = -2147483648',
    'PRAGMA optimize = +5',
    "PRAGMA optimize = ' 5'",
    'PRAGMA data_version',
    'PRAGMA foreign_keys',
    'PRAGMA foreign_keys = ON',
    'PRAGMA foreign_keys = off',
    "PRAGMA foreign_keys = 'yes'",
    'PRAGMA foreign_keys = "false"',
    'PRAGMA foreign_keys = 1',
    'PRAGMA foreign_keys = True',
    'pragma   foreign_keys  ',
    // workerd's authorizer takes a boolean by its first letters (SQLite then reads 1.5 as 1, normal as 1, 0x10 as 0).
    'PRAGMA foreign_keys = 1.5',
    'PRAGMA recursive_triggers = normal',
    'PRAGMA case_sensitive_like = 0x10',
    'PRAGMA ignore_check_constraints(1e3)',
    'PRAGMA defer_foreign_keys = +1',
    'PRAGMA defer_foreign_keys = 1',
    'PRAGMA defer_foreign_keys(on)',
    'PRAGMA case_sensitive_like = on',
    'PRAGMA ignore_check_constraints = off',
    'PRAGMA legacy_alter_table',
    'PRAGMA recursive_triggers = 0',
    'PRAGMA reverse_unordered_selects = no',
  ];
  for (const sql of allowed) {
    test(`allowed: ${sql}`, async () => {
      const [s] = splitStatements(sql);
      assert.equal(s!.rejection, undefined);
      assert.equal(s!.verb, 'PRAGMA');
      const db = await engineDb(setup);
      await db.prepare(sql).all();
    });
  }

  const refused = [
    'PRAGMA user_version',
    'PRAGMA user_version = 1',
    'PRAGMA application_id = 5',
    'PRAGMA journal_mode',
    'PRAGMA journal_mode = DELETE',
    'PRAGMA page_size',
    'PRAGMA synchronous = OFF',
    'PRAGMA writable_schema = ON',
    'PRAGMA integrity_check',
    'PRAGMA compile_options',
    'PRAGMA database_list',
    'PRAGMA function_list',
    'PRAGMA query_only = 1',
    'PRAGMA temp.table_info(t)',
    'PRAGMA foreign_keys = maybe',
    'PRAGMA foreign_keys = -1',
    'PRAGMA foreign_keys = full',
    // Names are matched as written, as workerd's authorizer does.
    'PRAGMA FOREIGN_KEYS = True',
    'PRAGMA Table_Info(t)',
    'PRAGMA "TABLE_LIST"',
    'PRAGMA QUICK_CHECK',
    'PRAGMA foreign_keys = 2',
    'PRAGMA data_version = 1',
    'PRAGMA index_list',
    'PRAGMA table_info(_cf_KV)',
    "PRAGMA table_info('_cf_KV')",
    'PRAGMA optimize = abc',
    'PRAGMA optimize = 2147483648',
    'PRAGMA optimize = -2147483649',
    'PRAGMA optimize = 0xFFFFFFFF',
    'PRAGMA optimize = 18446744073709551616',
    'PRAGMA optimize = 1.5',
    "PRAGMA optimize = '0x'",
    "PRAGMA optimize = ''",
    'EXPLAIN PRAGMA user_version',
  ];
  // The lexer leaves a PRAGMA D1 does not run to SQLite (a write, prepared on the write path): the
  // guard's authorizer refuses it once SQLite has parsed it.
  for (const sql of refused) {
    test(`refused: ${sql}`, async () => {
      const [s] = splitStatements(sql);
      assert.equal(s!.rejection, undefined);
      assert.equal(s!.kind, sql.startsWith('EXPLAIN') ? 'read' : 'write');
      const db = await engineDb(setup);
      assert.equal(await rejection(db.prepare(sql).all()), `D1_ERROR: ${NOT_AUTHORIZED}`);
    });
  }

  // What SQLite finds before its authorizer is asked is D1's answer (recorded from miniflare 4.20260426).
  const sqliteErrors: [string, string][] = [
    ['PRAGMA nodb.table_info(t)', 'unknown database nodb at offset 7: SQLITE_ERROR'],
    ['PRAGMA aux.foreign_keys', 'unknown database aux at offset 7: SQLITE_ERROR'],
    ['PRAGMA foreign_keys = NULL', 'near "NULL": syntax error at offset 22: SQLITE_ERROR'],
  ];
  for (const [sql, error] of sqliteErrors) {
    test(`SQLite's error first: ${sql}`, async () => {
      const db = await engineDb(setup);
      assert.equal(await rejection(db.prepare(sql).all()), `D1_ERROR: ${error}`);
    });
  }

  // Quoting the reserved name differently still reaches SQLite's authorizer, which refuses it.
  for (const sql of ['PRAGMA table_info([_cf_KV])', 'PRAGMA table_info(`_cf_KV`)', 'PRAGMA index_list("_cf_KV")']) {
    test(`refused by the engine: ${sql}`, async () => {
      const db = await engineDb(setup);
      assert.equal(await rejection(db.prepare(sql).all()), `D1_ERROR: ${NOT_AUTHORIZED}`);
    });
  }
});
