// dione/cloudflare-api: tools with Cloudflare's API address built in (here the real drizzle-kit with
// its d1-http driver) run against a Dione server when the preload redirects them.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { connect } from '../src/client.ts';
import { root } from './helpers/paths.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer;
let project: string;

before(async () => {
  server = await startTestServer();
  project = mkdtempSync(path.join(tmpdir(), 'dione-drizzle-kit-'));
  symlinkSync(path.join(root, 'node_modules'), path.join(project, 'node_modules'), 'dir');
  writeFileSync(
    path.join(project, 'schema.ts'),
    [
      "import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';",
      "export const authors = sqliteTable('authors', { id: integer('id').primaryKey(), name: text('name').notNull() });",
      "export const books = sqliteTable('books', { id: integer('id').primaryKey(), title: text('title').notNull(), authorId: integer('author_id').references(() => authors.id) });",
    ].join('\n'),
  );
});

after(async () => {
  await server?.close();
  if (project) rmSync(project, { recursive: true, force: true });
});

/** A child process, asynchronously: the server under test runs in this process and must keep answering. */
function run(args: string[], options: { cwd?: string; env: NodeJS.ProcessEnv }): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { ...options, encoding: 'utf8', timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

/** drizzle-kit as a user runs it: a config with Cloudflare credentials, and the preload in NODE_OPTIONS. */
function drizzleKit(args: string[], databaseId: string) {
  const config = `drizzle-${databaseId}.config.ts`;
  writeFileSync(
    path.join(project, config),
    [
      "import { defineConfig } from 'drizzle-kit';",
      'export default defineConfig({',
      "  dialect: 'sqlite', driver: 'd1-http', schema: './schema.ts', out: './drizzle',",
      `  dbCredentials: { accountId: 'a-cloudflare-account', databaseId: '${databaseId}', token: 'a-cloudflare-token' },`,
      '});',
    ].join('\n'),
  );
  return run([path.join(root, 'node_modules/drizzle-kit/bin.cjs'), ...args, '--config', config], {
    cwd: project,
    env: {
      ...process.env,
      NODE_OPTIONS: `--require ${path.join(root, 'preload/cloudflare-api.cjs')}`,
      DIONE_URL: server.url,
      DIONE_TOKEN: server.token,
      DIONE_ACCOUNT_ID: server.accountId,
    },
  });
}

async function tables(database: string): Promise<string[]> {
  const db = connect({ url: server.url, token: server.token, database });
  // As on D1, every database also holds the reserved _cf_METADATA table.
  const rows = await db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name")
    .raw();
  return rows.map((r) => r[0] as string);
}

test('drizzle-kit push (d1-http) creates the schema on a Dione server through the preload', async () => {
  const uuid = await server.createDatabase('pushed');
  const pushed = await drizzleKit(['push', '--force'], uuid);
  assert.equal(pushed.status, 0, `${pushed.stdout}\n${pushed.stderr}`);
  assert.deepEqual(await tables('pushed'), ['authors', 'books']);
  const db = connect({ url: server.url, token: server.token, database: 'pushed' });
  const fk = await db.prepare("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('books')").all();
  assert.deepEqual(fk.results, [{ table: 'authors', from: 'author_id', to: 'id' }]);
});

test('drizzle-kit generate, then migrate (d1-http) applies the migrations on a Dione server', async () => {
  const uuid = await server.createDatabase('migrated');
  const generated = await drizzleKit(['generate', '--name', 'init'], uuid);
  assert.equal(generated.status, 0, `${generated.stdout}\n${generated.stderr}`);
  const migrated = await drizzleKit(['migrate'], uuid);
  assert.equal(migrated.status, 0, `${migrated.stdout}\n${migrated.stderr}`);
  assert.deepEqual(await tables('migrated'), ['__drizzle_migrations', 'authors', 'books']);
  const db = connect({ url: server.url, token: server.token, database: 'migrated' });
  assert.equal(await db.prepare('SELECT count(*) AS n FROM __drizzle_migrations').first('n'), 1);
  // Migrating again applies nothing twice.
  const again = await drizzleKit(['migrate'], uuid);
  assert.equal(again.status, 0, `${again.stdout}\n${again.stderr}`);
  assert.equal(await db.prepare('SELECT count(*) AS n FROM __drizzle_migrations').first('n'), 1);
});

test('the preload sends fetch calls for api.cloudflare.com to the Dione server, with its token', async () => {
  const probe = await run(
    ['--import', path.join(root, 'preload/cloudflare-api.mjs'), '-e', 'fetch("https://api.cloudflare.com/client/v4/memberships").then(r => r.json()).then(b => console.log(JSON.stringify(b.result[0].id)))'],
    { env: { ...process.env, DIONE_URL: server.url, DIONE_TOKEN: server.token } },
  );
  assert.equal(probe.status, 0, probe.stderr);
  assert.equal(JSON.parse(probe.stdout), server.accountId);
});
