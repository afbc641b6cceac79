// A D1 project (wrangler.toml + migrations from the real drizzle-kit and in Prisma's form) through
// create → migrations apply → execute → export → import, locally (the file the real wrangler then
// reads) and against a real Dione server.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { connect } from '../src/client.ts';
import { open } from '../src/index.ts';
import { contents, dione, project } from './helpers/cli-d1.ts';
import { root } from './helpers/paths.ts';
import { startTestServer } from './helpers/server.ts';

const run = promisify(execFile);
const fixtures = path.join(root, 'test/fixtures/cli-d1');
const LOCAL_FILE = '.wrangler/state/v3/d1/miniflare-D1DatabaseObject/45dce40ac5f9a9425fdd1654672ac059ebe86a639eaaa8f809a4dca045024f4b.sqlite';
const SHOP_ID = '8c1a3e52-6f0d-4b7a-9e21-5d4c3b2a1f00';
const COPY_ID = '0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b';

const WRANGLER_TOML = `name = "app"
main = "src/index.js"
compatibility_date = "2025-01-01"

[[d1_databases]]
binding = "DB"
database_name = "shop"
database_id = "my-database-id"

[[d1_databases]]
binding = "COPY"
database_name = "copy"
database_id = "other-id"
`;

/** A project whose migrations/ holds one drizzle-kit generate output and two Prisma-form files. */
async function d1Project(): Promise<{ dir: string; cleanup: () => void; drizzleFile: string }> {
  const p = project({ 'wrangler.toml': WRANGLER_TOML });
  const gen = mkdtempSync(path.join(tmpdir(), 'dione-drizzle-'));
  try {
    symlinkSync(path.join(root, 'node_modules'), path.join(gen, 'node_modules'), 'dir');
    writeFileSync(
      path.join(gen, 'schema.ts'),
      `import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';\nexport const users = sqliteTable('users', { id: integer('id').primaryKey(), email: text('email').notNull().unique(), name: text('name') });\n`,
    );
    writeFileSync(path.join(gen, 'drizzle.config.ts'), `export default { dialect: 'sqlite', schema: './schema.ts', out: './migrations' };\n`);
    await run(path.join(root, 'node_modules/.bin/drizzle-kit'), ['generate'], { cwd: gen, timeout: 120_000 });
    const generated = readdirSync(path.join(gen, 'migrations')).filter((f) => f.endsWith('.sql'));
    assert.equal(generated.length, 1);
    const text = readFileSync(path.join(gen, 'migrations', generated[0]!), 'utf8');
    assert.match(text, /--> statement-breakpoint/); // the real drizzle-kit output, applied unchanged
    mkdirSync(path.join(p.dir, 'migrations'));
    copyFileSync(path.join(gen, 'migrations', generated[0]!), path.join(p.dir, 'migrations', generated[0]!));
    for (const f of readdirSync(fixtures)) copyFileSync(path.join(fixtures, f), path.join(p.dir, 'migrations', f));
    return { ...p, drizzleFile: generated[0]! };
  } finally {
    rmSync(gen, { recursive: true, force: true });
  }
}

const SEED = `INSERT INTO users (id, email, name) VALUES (1, 'ada@example.com', 'Ada'), (2, 'bob@example.com', 'it''s; Bob');
INSERT INTO "Post" (title, "authorId", published) VALUES ('first
post', 1, true), ('second', 2, false);
INSERT INTO users (id, email, name) VALUES (3, 'blob@example.com', NULL);
`;

function ok(r: { code: number; stdout: string; stderr: string }, what: string) {
  assert.equal(r.code, 0, `${what} failed:\n${r.stdout}\n${r.stderr}`);
}

test('local: migrations from drizzle-kit and Prisma apply, execute, export, import; the real wrangler reads the same file', async (t) => {
  const p = await d1Project();
  t.after(p.cleanup);
  const list = await dione(p.dir, ['d1', 'migrations', 'list', 'shop', '--local', '--json']);
  ok(list, 'migrations list');
  assert.deepEqual(JSON.parse(list.stdout), [{ name: p.drizzleFile }, { name: '0001_prisma_posts.sql' }, { name: '0002_prisma_published.sql' }]);
  ok(await dione(p.dir, ['d1', 'migrations', 'apply', 'shop', '--local']), 'migrations apply');
  assert.ok(existsSync(path.join(p.dir, LOCAL_FILE)), 'the database is where wrangler keeps it');
  const again = await dione(p.dir, ['d1', 'migrations', 'apply', 'shop']);
  ok(again, 'second apply');
  assert.match(again.stdout, /No migrations to apply/);

  writeFileSync(path.join(p.dir, 'seed.sql'), SEED);
  ok(await dione(p.dir, ['d1', 'execute', 'shop', '--local', '--file', 'seed.sql']), 'execute --file');
  const blob = await dione(p.dir, ['d1', 'execute', 'DB', '--command', "UPDATE users SET name = NULL WHERE id = 3; SELECT count(*) AS n FROM users"]);
  ok(blob, 'execute --command');
  // stdout is no terminal: as wrangler, the status lines and then the results as JSON.
  assert.match(blob.stdout, /^🚣 2 commands executed successfully\.\n\[/m);
  assert.deepEqual(JSON.parse(blob.stdout.slice(blob.stdout.indexOf('\n[') + 1))[1].results, [{ n: 3 }]);

  const applied = open(path.join(p.dir, LOCAL_FILE));
  t.after(() => void applied.close());
  const migrations = await applied.prepare('SELECT id, name FROM d1_migrations ORDER BY id').raw();
  assert.deepEqual(migrations, [[1, p.drizzleFile], [2, '0001_prisma_posts.sql'], [3, '0002_prisma_published.sql']]);

  // The real wrangler 4.86.0 reads the file Dione wrote.
  const home = mkdtempSync(path.join(tmpdir(), 'dione-wrangler-home-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const wrangler = await run(path.join(root, 'node_modules/.bin/wrangler'), ['d1', 'execute', 'shop', '--local', '--json', '--command', 'SELECT u.name, p.title, p.published FROM "Post" p JOIN users u ON u.id = p."authorId" ORDER BY p.id'], {
    cwd: p.dir,
    timeout: 120_000,
    env: { ...process.env, HOME: home, WRANGLER_SEND_METRICS: 'false', CI: 'true', npm_config_registry: 'http://127.0.0.1:1/', npm_registry: 'http://127.0.0.1:1/' },
  });
  assert.deepEqual(JSON.parse(wrangler.stdout)[0].results, [
    { name: 'Ada', title: 'first\npost', published: 1 },
    { name: "it's; Bob", title: 'second', published: 0 },
  ]);

  // export → import into the other database → identical, table by table.
  ok(await dione(p.dir, ['d1', 'export', 'shop', '--local', '--output', 'dump.sql']), 'export');
  const dump = readFileSync(path.join(p.dir, 'dump.sql'), 'utf8');
  assert.ok(dump.startsWith('PRAGMA defer_foreign_keys=TRUE;\n'));
  assert.match(dump, /INSERT INTO "Post" \("id","title","published","authorId"\) VALUES\(1,replace\('first\\npost','\\n',char\(10\)\),1,1\);/);
  const imported = await dione(p.dir, ['d1', 'import', 'copy', 'dump.sql', '--local', '--chunk-size', '3']);
  ok(imported, 'import');
  const copy = open(findCopy(p.dir));
  t.after(() => void copy.close());
  const original = await contents(applied);
  assert.deepEqual(Object.keys(original), ['Post', 'd1_migrations', 'sqlite_sequence', 'users']);
  assert.deepEqual(await contents(copy), original);

  // Schema only and data only, one table.
  ok(await dione(p.dir, ['d1', 'export', 'shop', '--output', 'users.sql', '--table', 'users', '--no-schema']), 'export --table --no-schema');
  const users = readFileSync(path.join(p.dir, 'users.sql'), 'utf8').split('\n');
  assert.deepEqual(users.slice(0, 2), ['PRAGMA defer_foreign_keys=TRUE;', `INSERT INTO "users" ("id","email","name") VALUES(1,'ada@example.com','Ada');`]);
  assert.equal(users.length, 4);
});

function findCopy(dir: string): string {
  const folder = path.join(dir, '.wrangler/state/v3/d1/miniflare-D1DatabaseObject');
  const file = readdirSync(folder).find((f) => /^b76be25c[0-9a-f]{53}291\.sqlite$/.test(f));
  assert.ok(file, 'the copy lives at the file name wrangler derives for other-id');
  return path.join(folder, file);
}

test('remote: create, migrations apply, execute, export, import, list, info, delete against a real server', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  const p = await d1Project();
  t.after(p.cleanup);
  // Cloudflare's ids in wrangler.toml: the server's databases get the same ones.
  writeFileSync(path.join(p.dir, 'wrangler.toml'), WRANGLER_TOML.replace('my-database-id', SHOP_ID).replace('other-id', COPY_ID));
  const env = { DIONE_URL: server.url, DIONE_TOKEN: server.token };
  const created = await dione(p.dir, ['d1', 'create', 'shop', '--id', SHOP_ID], env);
  ok(created, 'create');
  assert.match(created.stdout, /Successfully created DB 'shop'/);
  assert.ok(created.stdout.includes(`[[d1_databases]]\nbinding = "shop"\ndatabase_name = "shop"\ndatabase_id = "${SHOP_ID}"`), created.stdout);
  const duplicate = await dione(p.dir, ['d1', 'create', 'shop'], env);
  assert.equal(duplicate.code, 1);
  assert.match(duplicate.stderr, /A database with that name already exists/);

  ok(await dione(p.dir, ['d1', 'migrations', 'apply', 'shop', '--remote'], env), 'migrations apply --remote');
  writeFileSync(path.join(p.dir, 'seed.sql'), SEED);
  const seeded = await dione(p.dir, ['d1', 'execute', 'shop', '--remote', '--file', 'seed.sql', '--json'], env);
  ok(seeded, 'execute --remote --file');
  assert.equal(JSON.parse(seeded.stdout)[0].results[0]['Total queries executed'], 3);
  const selected = await dione(p.dir, ['d1', 'execute', 'shop', '--remote', '--json', '--command', 'SELECT name FROM users ORDER BY id'], env);
  ok(selected, 'execute --remote --command');
  assert.deepEqual(JSON.parse(selected.stdout)[0].results, [{ name: 'Ada' }, { name: "it's; Bob" }, { name: null }]);

  ok(await dione(p.dir, ['d1', 'export', 'shop', '--remote', '--output', 'remote.sql'], env), 'export --remote');
  assert.match(readFileSync(path.join(p.dir, 'remote.sql'), 'utf8'), /^PRAGMA defer_foreign_keys=TRUE;\n[\s\S]*INSERT INTO "users"/);
  const fromConfig = await dione(p.dir, ['d1', 'create', '--from-config'], env);
  ok(fromConfig, 'create --from-config');
  assert.match(fromConfig.stdout, new RegExp(`'shop' \\(${SHOP_ID}\\) is there already`));
  assert.match(fromConfig.stdout, new RegExp(`Created DB 'copy' \\(${COPY_ID}\\)`));
  ok(await dione(p.dir, ['d1', 'import', 'copy', 'remote.sql', '--remote'], env), 'import --remote');
  const shop = connect({ url: server.url, token: server.token, database: 'shop' });
  const copy = connect({ url: server.url, token: server.token, database: 'copy' });
  const original = await contents(shop);
  assert.deepEqual(Object.keys(original), ['Post', 'd1_migrations', 'sqlite_sequence', 'users']);
  assert.deepEqual(await contents(copy), original);

  const list = await dione(p.dir, ['d1', 'list', '--json'], env);
  ok(list, 'list');
  assert.deepEqual(JSON.parse(list.stdout).map((d: { name: string }) => d.name).sort(), ['copy', 'shop']);
  const info = await dione(p.dir, ['d1', 'info', 'copy', '--json'], env);
  ok(info, 'info');
  const described = JSON.parse(info.stdout);
  assert.equal(described.name, 'copy');
  assert.ok(described.database_size > 0 && !('version' in described) && !('file_size' in described));
  ok(await dione(p.dir, ['d1', 'delete', 'copy', '-y'], env), 'delete');
  const after = await dione(p.dir, ['d1', 'list', '--json'], env);
  assert.deepEqual(JSON.parse(after.stdout).map((d: { name: string }) => d.name), ['shop']);
  const gone = await dione(p.dir, ['d1', 'info', 'copy'], env);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /Couldn't find a D1 DB named 'copy'/);
});
