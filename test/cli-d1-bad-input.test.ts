// `dione d1` on bad input: clear errors, non-zero exits, and nothing half-applied.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { open } from '../src/index.ts';
import { dione, project } from './helpers/cli-d1.ts';

const TOML = '[[d1_databases]]\nbinding = "DB"\ndatabase_name = "shop"\ndatabase_id = "my-database-id"\n';
const FILE = '.wrangler/state/v3/d1/miniflare-D1DatabaseObject/45dce40ac5f9a9425fdd1654672ac059ebe86a639eaaa8f809a4dca045024f4b.sqlite';

function migrations(dir: string, files: Record<string, string>) {
  mkdirSync(path.join(dir, 'migrations'), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, 'migrations', name), text);
}

test('a failing migration stops the run, names the file, line and statement, and leaves nothing of itself', async (t) => {
  const p = project({ 'wrangler.toml': TOML });
  t.after(p.cleanup);
  migrations(p.dir, {
    '0001_ok.sql': 'CREATE TABLE a (x);\nINSERT INTO a VALUES (1);\n',
    '0002_bad.sql': '-- two tables\nCREATE TABLE b (x);\nINSERT INTO b VALUES (1);\n\nINSERT INTO missing VALUES (2);\nCREATE TABLE c (x);\n',
    '0003_later.sql': 'CREATE TABLE d (x);\n',
  });
  const r = await dione(p.dir, ['d1', 'migrations', 'apply', 'shop', '--local']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /Migration 0002_bad\.sql failed and was rolled back.*the 1 later migration did not run/);
  assert.match(r.stderr, /migrations[/\\]0002_bad\.sql:5: .*no such table: missing/);
  assert.match(r.stderr, /in: INSERT INTO missing VALUES \(2\)/);
  // The progress lines (stderr is no terminal here) say where it stopped, never that it is done.
  assert.match(r.stderr, /^Applying migrations: stopped at 1\/3 migrations: 0002_bad\.sql failed$/m);
  assert.doesNotMatch(r.stderr, /done/);
  const db = open(path.join(p.dir, FILE));
  t.after(() => void db.close());
  assert.deepEqual(await db.prepare('SELECT name FROM d1_migrations ORDER BY id').raw(), [['0001_ok.sql']]);
  assert.deepEqual(await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('a', 'b', 'c', 'd') ORDER BY name").raw(), [['a']]);
  const list = await dione(p.dir, ['d1', 'migrations', 'list', 'shop', '--json']);
  assert.deepEqual(JSON.parse(list.stdout), [{ name: '0002_bad.sql' }, { name: '0003_later.sql' }]);
});

test('bad SQL in a file names the file and line; an interrupted import keeps the chunks before and says how to resume', async (t) => {
  const p = project({ 'wrangler.toml': TOML });
  t.after(p.cleanup);
  const lines = ['CREATE TABLE t (n INTEGER PRIMARY KEY);'];
  for (let n = 1; n <= 25; n++) lines.push(n === 23 ? 'INSERT INTO t VALUES (23, oops);' : `INSERT INTO t VALUES (${n});`);
  writeFileSync(path.join(p.dir, 'dump.sql'), lines.join('\n'));
  // Chunks of 10 statements: lines 1-10, 11-20, 21-26 (line 24 is the bad one).
  const r = await dione(p.dir, ['d1', 'import', 'shop', 'dump.sql', '--local', '--chunk-size', '10']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /dump\.sql:24: .*no such column: oops/);
  assert.match(r.stderr, /The 20 statement\(s\) before line 21 are imported; the chunk from line 21 on was rolled back.*--from-line 21/s);
  const db = open(path.join(p.dir, FILE));
  t.after(() => void db.close());
  assert.deepEqual(await db.prepare('SELECT count(*), max(n) FROM t').raw(), [[19, 19]]);
  lines[23] = 'INSERT INTO t VALUES (23);';
  writeFileSync(path.join(p.dir, 'dump.sql'), lines.join('\n'));
  const resumed = await dione(p.dir, ['d1', 'import', 'shop', 'dump.sql', '--local', '--chunk-size', '10', '--from-line', '21']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.deepEqual(await db.prepare('SELECT count(*), sum(n) FROM t').raw(), [[25, 325]]);

  // Without --chunk-size, execute --file is one transaction: all or nothing, as wrangler's.
  writeFileSync(path.join(p.dir, 'bad.sql'), 'INSERT INTO t VALUES (100);\n\nSELEC 1;\n');
  const bad = await dione(p.dir, ['d1', 'execute', 'shop', '--file', 'bad.sql']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad\.sql:3: .*syntax error/);
  assert.match(bad.stderr, /Nothing was imported/);
  assert.deepEqual(await db.prepare('SELECT count(*) FROM t WHERE n = 100').raw(), [[0]]);

  // A hostile file's escape sequences are not sent to the terminal (an attacker's review: they
  // recoloured it and set its title): the failing statement and SQLite's message show them as \xNN.
  writeFileSync(path.join(p.dir, 'esc.sql'), 'SELECT 1 FROM nosuch_\x1b[31mRED\x1b[0m_\x1b]0;TITLE\x07;\n');
  const esc = await dione(p.dir, ['d1', 'execute', 'shop', '--file', 'esc.sql']);
  assert.equal(esc.code, 1);
  assert.ok(!/[\x00-\x08\x0b-\x1f\x7f]/.test(esc.stderr), JSON.stringify(esc.stderr));
  assert.match(esc.stderr, /in: SELECT 1 FROM nosuch_\\x1b\[31mRED/);
});

test('usage errors: exit 1 with what to do next', async (t) => {
  const p = project({ 'wrangler.toml': TOML, 'db.sqlite': 'SQLite format 3\u0000' });
  t.after(p.cleanup);
  const cases: [string[], RegExp][] = [
    [['d1', 'execute', 'shop'], /Error: must provide --command or --file\.\nPass the SQL with --command/],
    [['d1', 'execute', 'shop', '--command', 'SELECT 1', '--file', 'x.sql'], /can't provide both --command and --file/],
    [['d1', 'execute', 'shop', '--local', '--remote', '--command', 'SELECT 1'], /can't use --local and --remote at the same time/],
    [['d1', 'execute', 'nope', '--command', 'SELECT 1'], /Couldn't find a D1 DB with the name or binding 'nope' in your wrangler\.toml file/],
    [['d1', 'execute', 'shop', '--config', 'other.toml', '--command', 'SELECT 1'], /other\.toml \(--config\) does not exist/],
    [['d1', 'execute', 'shop', '--file', 'db.sqlite'], /Provided file is a binary SQLite database file instead of an SQL text file\.[^\n]*\ndb\.sqlite is a SQLite database: export it as SQL first/],
    [['d1', 'execute', 'shop', '--remote', '--command', 'SELECT 1'], /No Dione server given for --remote: pass --url/],
    [['d1', 'list', '--url', 'http://127.0.0.1:1'], /Could not reach the Dione server at http:\/\/127\.0\.0\.1:1/],
    [['d1', 'create', 'x', '--local'], /works on a server only, as in wrangler/],
    [['d1', 'time-travel', 'info', 'shop', '--local'], /`d1 time-travel info` works on a Dione server only/],
    [['d1', 'time-travel', 'restore', 'shop', '--bookmark', 'b', '--timestamp', '1700000000'], /Cannot use --timestamp and --bookmark together/],
  ];
  for (const [args, expected] of cases) {
    const r = await dione(p.dir, args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, expected, args.join(' '));
  }
  // A person reads where the failing statement is; --json says what wrangler says, D1's message alone.
  const human = await dione(p.dir, ['d1', 'execute', 'shop', '--command', 'SELECT 1; SELECT * FROM nowhere']);
  assert.equal(human.code, 1);
  assert.match(human.stderr, /--command:1: no such table: nowhere: SQLITE_ERROR\n {2}in: SELECT \* FROM nowhere/);
  const json = await dione(p.dir, ['d1', 'execute', 'shop', '--json', '--command', 'SELECT 1; SELECT * FROM nowhere']);
  assert.equal(json.code, 1);
  assert.deepEqual(JSON.parse(json.stdout), { error: { text: 'no such table: nowhere: SQLITE_ERROR' } });
});

// Recorded against wrangler 4.86.0 --local (miniflare 4.20260426) on 2026-12-06: wrangler drops only the
// exact `BEGIN TRANSACTION;` and `COMMIT;`; any other transaction statement reaches D1 and fails.
const TRANSACTION_REFUSED =
  "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.";
const FOREIGN_KEY_AT_END =
  'Durable Object was reset and rolled back to its last known good state because the application left the database in a state where constraints were violated: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_FOREIGNKEY)';

test('transaction statements other than a BEGIN TRANSACTION; … COMMIT; wrapper fail as D1 fails them, in --command, --file and migrations, and nothing is kept', async (t) => {
  const p = project({ 'wrangler.toml': TOML, 'lower.sql': 'begin transaction;\ncreate table f (a);\ncommit;\n' });
  t.after(p.cleanup);
  const command = await dione(p.dir, ['d1', 'execute', 'shop', '--local', '--json', '--command', 'create table t(a); begin; insert into t values(1); commit;']);
  assert.equal(command.code, 1);
  assert.deepEqual(JSON.parse(command.stdout), { error: { text: TRANSACTION_REFUSED } });
  const file = await dione(p.dir, ['d1', 'execute', 'shop', '--local', '--json', '--file', 'lower.sql']);
  assert.equal(file.code, 1);
  assert.deepEqual(JSON.parse(file.stdout), { error: { text: TRANSACTION_REFUSED } });

  migrations(p.dir, { '0001_ok.sql': 'CREATE TABLE a (x);\n', '0002_begin.sql': 'begin;\ncreate table m(a);\ncommit;\n' });
  const applied = await dione(p.dir, ['d1', 'migrations', 'apply', 'shop', '--local', '--json']);
  assert.equal(applied.code, 1);
  // One JSON document: the error, and what was applied before it.
  assert.deepEqual(JSON.parse(applied.stdout), {
    error: {
      text: TRANSACTION_REFUSED,
      migrations: [
        { name: '0001_ok.sql', status: '✅' },
        { name: '0002_begin.sql', status: '❌' },
      ],
    },
  });
  const db = open(path.join(p.dir, FILE));
  t.after(() => void db.close());
  assert.deepEqual(await db.prepare('SELECT name FROM d1_migrations ORDER BY id').raw(), [['0001_ok.sql']]);
  assert.deepEqual(await db.prepare("SELECT name FROM sqlite_master WHERE name IN ('t', 'f', 'm')").raw(), []);
});

test("a deferred foreign key still violated at the end of a file or a migration fails with D1's reset error, and the migration's own record is not blamed", async (t) => {
  const schema = 'PRAGMA defer_foreign_keys = ON;\nCREATE TABLE parent (id INTEGER PRIMARY KEY);\nCREATE TABLE child (p INTEGER REFERENCES parent(id));\nINSERT INTO child VALUES (7);\n';
  const p = project({ 'wrangler.toml': TOML, 'fk.sql': schema });
  t.after(p.cleanup);
  const file = await dione(p.dir, ['d1', 'execute', 'shop', '--local', '--json', '--file', 'fk.sql']);
  assert.equal(file.code, 1);
  assert.deepEqual(JSON.parse(file.stdout), { error: { text: FOREIGN_KEY_AT_END } });

  migrations(p.dir, { '0001_fk.sql': schema });
  const applied = await dione(p.dir, ['d1', 'migrations', 'apply', 'shop', '--local']);
  assert.equal(applied.code, 1);
  assert.match(applied.stderr, new RegExp(`migrations[/\\\\]0001_fk\\.sql: ${FOREIGN_KEY_AT_END.replace(/[()]/g, '\\$&')}\\n`));
  assert.doesNotMatch(applied.stderr, /d1_migrations|0001_fk\.sql:0/);
});

test('statements of several go to D1 without their final `;`, as wrangler sends them: a statement cut short is "incomplete input"', async (t) => {
  const p = project({ 'wrangler.toml': TOML, 'cut.sql': 'SELECT 1;\nSELECT * FROM t WHERE;\n' });
  t.after(p.cleanup);
  const several = await dione(p.dir, ['d1', 'execute', 'shop', '--local', '--json', '--command', 'select 1; select * from t where;']);
  assert.equal(several.code, 1);
  assert.deepEqual(JSON.parse(several.stdout), { error: { text: 'incomplete input: SQLITE_ERROR' } });
  const file = await dione(p.dir, ['d1', 'execute', 'shop', '--local', '--json', '--file', 'cut.sql']);
  assert.deepEqual(JSON.parse(file.stdout), { error: { text: 'incomplete input: SQLITE_ERROR' } });
  // One statement is sent as it is.
  const one = await dione(p.dir, ['d1', 'execute', 'shop', '--local', '--json', '--command', 'select * from t where;']);
  assert.deepEqual(JSON.parse(one.stdout), { error: { text: 'near ";": syntax error at offset 21: SQLITE_ERROR' } });
});

test('an export that fails (a virtual table, which D1 cannot export) leaves no file, and an earlier dump at --output as it was', async (t) => {
  const p = project({ 'wrangler.toml': TOML });
  t.after(p.cleanup);
  const created = await dione(p.dir, ['d1', 'execute', 'shop', '--local', '--command', 'CREATE TABLE t (a); CREATE VIRTUAL TABLE f USING fts5(a);']);
  assert.equal(created.code, 0, created.stderr);
  const refused = await dione(p.dir, ['d1', 'export', 'shop', '--local', '--output', 'new.sql']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /D1 Export error: cannot export databases with Virtual Tables \(fts5\)/);
  writeFileSync(path.join(p.dir, 'kept.sql'), 'an earlier dump\n');
  assert.equal((await dione(p.dir, ['d1', 'export', 'shop', '--local', '--output', 'kept.sql'])).code, 1);
  assert.deepEqual(readdirSync(p.dir).filter((f) => f.endsWith('.sql') || f.includes('partial')), ['kept.sql']);
  assert.equal(readFileSync(path.join(p.dir, 'kept.sql'), 'utf8'), 'an earlier dump\n');
});
