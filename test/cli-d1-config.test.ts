// The pieces under `dione d1`: wrangler config reading, wrangler's local file names, migration
// discovery/order/numbering, and SQL files as statements with their lines.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CliError } from '../src/cli/d1/output.ts';
import { durableObjectIdFromName, localDatabaseFile } from '../src/cli/local-state.ts';
import { applyOrder, createMigration, discoverMigrations, migrationsTableSql } from '../src/cli/migrations.ts';
import { statementsOf, streamStatements } from '../src/cli/sql-stream.ts';
import { lookupDatabase, migrationsDir, migrationsTable, readWranglerConfig, requireDatabase } from '../src/cli/wrangler-config.ts';
import { project } from './helpers/cli-d1.ts';

test('local file names are workerd idFromName values, as wrangler derives them', () => {
  assert.equal(durableObjectIdFromName('miniflare-D1DatabaseObject', 'my-database-id'), '45dce40ac5f9a9425fdd1654672ac059ebe86a639eaaa8f809a4dca045024f4b');
  const other = durableObjectIdFromName('miniflare-D1DatabaseObject', 'other-id');
  assert.match(other, /^b76be25c[0-9a-f]{53}291$/);
  // The spec's vectors (workerd's own tests and runs of wrangler 4.86.0).
  assert.equal(durableObjectIdFromName('miniflare-D1DatabaseObject', 'DB'), 'e7352547963de7050bd7d94658afc4fe78b61811b7815da12d90be8e863abf4d');
  assert.equal(durableObjectIdFromName('miniflare-D1DatabaseObject', 'xxxx'), '37a497df36b79f1a5a11839858b18e217f7022d2d72cb40b9de9e89363bc39bb');
});

test('wrangler.toml, wrangler.json and wrangler.jsonc give the same d1_databases; the file picks the local path', (t) => {
  const toml = project({
    'wrangler.toml': `name = "app"\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "shop"\ndatabase_id = "my-database-id"\nmigrations_dir = "db/migrations"\nmigrations_table = "schema_history"\n\n[[d1_databases]]\nbinding = "PREVIEWED"\ndatabase_name = "prev"\ndatabase_id = "x"\npreview_database_id = "other-id"\n\n[env.staging]\n[[env.staging.d1_databases]]\nbinding = "DB"\ndatabase_name = "shop-staging"\n`,
  });
  const jsonc = project({
    'wrangler.jsonc': `{\n // comment\n "d1_databases": [ { "binding": "DB", "database_name": "shop", "database_id": "my-database-id", "migrations_dir": "db/migrations", "migrations_table": "schema_history" }, ],\n}`,
  });
  t.after(() => {
    toml.cleanup();
    jsonc.cleanup();
  });
  for (const dir of [toml.dir, jsonc.dir]) {
    const nested = path.join(dir, 'src', 'deep');
    mkdirSync(nested, { recursive: true });
    const config = readWranglerConfig({ cwd: nested }); // found from a subdirectory, as wrangler does
    assert.equal(config.dir, dir);
    const db = requireDatabase(config, 'shop');
    assert.equal(requireDatabase(config, 'DB'), db);
    assert.equal(migrationsDir(config, db), path.join(dir, 'db', 'migrations'));
    assert.equal(migrationsTable(db), 'schema_history');
    assert.equal(
      localDatabaseFile(config, db, undefined, nested),
      path.join(dir, '.wrangler/state/v3/d1/miniflare-D1DatabaseObject/45dce40ac5f9a9425fdd1654672ac059ebe86a639eaaa8f809a4dca045024f4b.sqlite'),
    );
    assert.equal(
      localDatabaseFile(config, db, 'elsewhere', nested),
      path.join(nested, 'elsewhere/v3/d1/miniflare-D1DatabaseObject/45dce40ac5f9a9425fdd1654672ac059ebe86a639eaaa8f809a4dca045024f4b.sqlite'),
    );
  }
  const config = readWranglerConfig({ cwd: toml.dir });
  assert.match(localDatabaseFile(config, requireDatabase(config, 'prev')), /b76be25c[0-9a-f]{53}291\.sqlite$/);
  const staging = readWranglerConfig({ cwd: toml.dir, env: 'staging' });
  assert.equal(lookupDatabase(staging, 'shop'), undefined);
  assert.equal(requireDatabase(staging, 'shop-staging').binding, 'DB');
  assert.equal(migrationsTable(requireDatabase(staging, 'DB')), 'd1_migrations');
  assert.throws(() => readWranglerConfig({ cwd: toml.dir, env: 'nope' }), /no environment "nope"/);
});

test('clear errors: missing --config file, unknown database, invalid files', (t) => {
  const p = project({ 'wrangler.toml': '[[d1_databases]]\nbinding = "DB"\ndatabase_name = "shop"\n', 'bad.json': '{ "d1_databases": [ } ', 'nobinding.toml': '[[d1_databases]]\ndatabase_name = "x"\n' });
  t.after(p.cleanup);
  assert.throws(() => readWranglerConfig({ cwd: p.dir, config: 'missing.toml' }), /missing\.toml \(--config\) does not exist/);
  // wrangler's message (what --json prints), then what a person can do.
  const explained = (message: RegExp, hint: RegExp) => (e: unknown) => {
    assert.ok(e instanceof CliError);
    assert.match(e.message, message);
    assert.match(e.hint ?? '', hint);
    return true;
  };
  assert.throws(
    () => requireDatabase(readWranglerConfig({ cwd: p.dir }), 'other'),
    explained(/^Couldn't find a D1 DB with the name or binding 'other' in your wrangler\.toml file\.$/, /wrangler\.toml has: shop\./),
  );
  assert.throws(() => readWranglerConfig({ cwd: p.dir, config: 'bad.json' }), /bad\.json:1 is not valid JSON/);
  assert.throws(() => readWranglerConfig({ cwd: p.dir, config: 'nobinding.toml' }), /d1_databases\[0\] has no "binding"/);
  const none = project({});
  t.after(none.cleanup);
  assert.throws(
    () => requireDatabase(readWranglerConfig({ cwd: none.dir }), 'shop'),
    explained(/^Couldn't find a D1 DB with the name or binding 'shop' in your Wrangler configuration file\.$/, /No wrangler\.toml, wrangler\.json or wrangler\.jsonc found/),
  );
});

test('migrations: wrangler 4.86\'s files, list and apply orders, numbering of create, the exact table DDL', (t) => {
  const p = project({});
  t.after(p.cleanup);
  const dir = path.join(p.dir, 'migrations');
  assert.throws(() => discoverMigrations(dir), /No migrations present at/);
  assert.equal(createMigration(dir, 'first one').name, '0001_first_one.sql');
  writeFileSync(path.join(dir, '0007_manual.sql'), '');
  writeFileSync(path.join(dir, 'notes.txt'), '');
  writeFileSync(path.join(dir, '.hidden.sql'), '');
  writeFileSync(path.join(dir, 'unnumbered.sql'), '');
  assert.equal(createMigration(dir, 'next').name, '0008_next.sql');
  assert.throws(() => createMigration(dir, 'a/b'), /cannot contain/);
  // Every .sql file, hidden ones too, in plain name order; gaps and repeats are wrangler's to accept.
  assert.deepEqual(discoverMigrations(dir), ['.hidden.sql', '0001_first_one.sql', '0007_manual.sql', '0008_next.sql', 'unnumbered.sql']);
  // Applied by number, names without one left where name order put them (wrangler's stable sort).
  assert.deepEqual(applyOrder(['.hidden.sql', '0002_b.sql', '0002_c.sql', '10_z.sql', '2024-01-01_x.sql', '20240101120000_init.sql', '9_b.sql', 'noprefix.sql']), [
    '.hidden.sql',
    '0002_b.sql',
    '0002_c.sql',
    '9_b.sql',
    '10_z.sql',
    '2024-01-01_x.sql',
    '20240101120000_init.sql',
    'noprefix.sql',
  ]);
  // Timestamp-numbered: the next one after the highest.
  writeFileSync(path.join(dir, '20240102093000_users.sql'), '');
  assert.equal(createMigration(dir, 'later').name, '20240102093001_later.sql');
  assert.equal(
    migrationsTableSql('d1_migrations'),
    'CREATE TABLE IF NOT EXISTS d1_migrations(\n\t\tid         INTEGER PRIMARY KEY AUTOINCREMENT,\n\t\tname       TEXT UNIQUE,\n\t\tapplied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL\n);',
  );
  // A name SQLite would not read bare (where wrangler's SQL fails) is quoted.
  assert.match(migrationsTableSql('my-migs'), /^CREATE TABLE IF NOT EXISTS "my-migs"\(/);
  assert.match(migrationsTableSql('order'), /^CREATE TABLE IF NOT EXISTS "order"\(/);
  assert.match(migrationsTableSql('key'), /^CREATE TABLE IF NOT EXISTS key\(/);
});

test('SQL files become statements with their first line, across read boundaries and trigger bodies', async (t) => {
  const sql = [
    '-- header',
    'BEGIN TRANSACTION;',
    'CREATE TABLE t (a TEXT);',
    '--> statement-breakpoint',
    "INSERT INTO t VALUES ('x;',",
    "  'multi\nline');",
    'CREATE TRIGGER tr AFTER INSERT ON t BEGIN',
    "  INSERT INTO t VALUES ('in trigger');",
    'END;',
    '/* c */ SELECT 1;',
    'COMMIT;',
    'SELECT 2',
  ].join('\n');
  const expected = [
    { line: 3, start: 'CREATE TABLE t' },
    { line: 5, start: 'INSERT INTO t' },
    { line: 8, start: 'CREATE TRIGGER' },
    { line: 11, start: 'SELECT 1' },
    { line: 13, start: 'SELECT 2' },
  ];
  const check = (got: { sql: string; line: number }[]) =>
    assert.deepEqual(
      got.map((s) => ({ line: s.line, start: s.sql.slice(0, expected[got.indexOf(s)]!.start.length) })),
      expected,
    );
  check(statementsOf(sql));
  const p = project({ 'f.sql': sql });
  t.after(p.cleanup);
  for (const pieceSize of [1, 3, 7, 64, 1 << 20]) {
    const got = [];
    for await (const s of streamStatements(path.join(p.dir, 'f.sql'), { pieceSize })) got.push(s);
    check(got);
  }
  assert.throws(
    () => statementsOf('BEGIN TRANSACTION; SELECT 1; COMMIT; BEGIN TRANSACTION; SELECT 2; COMMIT;', 'x.sql'),
    (e: Error & { hint?: string }) => /^Wrangler could not process the provided SQL file, as it contains several transactions\./.test(e.message) && /^x\.sql:1: /.test(e.hint ?? ''),
  );
});

test("only wrangler's exact `BEGIN TRANSACTION;` and the `COMMIT;` after it are dropped: other transaction statements reach D1, which refuses them", () => {
  const texts = (sql: string) => statementsOf(sql).map((s) => (s.controlsTransaction ? `control: ${s.sql}` : s.sql));
  // (A text of one statement keeps its `;`; of several, each goes without it, as wrangler sends them.)
  assert.deepEqual(texts('BEGIN TRANSACTION;\nSELECT 1;\nCOMMIT;'), ['SELECT 1;']);
  assert.deepEqual(texts('begin;\ncreate table t(a);\ncommit;'), ['control: begin', 'create table t(a)', 'control: commit']);
  assert.deepEqual(texts('begin transaction;\nSELECT 1;\ncommit;'), ['control: begin transaction', 'SELECT 1', 'control: commit']);
  assert.deepEqual(texts('BEGIN IMMEDIATE;\nSELECT 1;\nEND;'), ['control: BEGIN IMMEDIATE', 'SELECT 1', 'control: END']);
  assert.deepEqual(texts('BEGIN TRANSACTION;\nSELECT 1;\nEND;'), ['SELECT 1', 'control: END']);
  // A COMMIT with no BEGIN TRANSACTION before it is D1's to refuse; text inside a string is data.
  assert.deepEqual(texts('SELECT 1;\nCOMMIT;'), ['SELECT 1', 'control: COMMIT']);
  assert.deepEqual(texts("INSERT INTO t VALUES ('BEGIN TRANSACTION;');"), ["INSERT INTO t VALUES ('BEGIN TRANSACTION;');"]);
  assert.deepEqual(texts('CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END;\nSELECT 2;'), ['CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END', 'SELECT 2']);
});
