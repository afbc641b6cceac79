// The newest wrangler the registry serves (4.164.0 when written; it needs Node >= 22.12) against a
// Dione server, one project's whole life: create, info by name, migrations, execute, import
// (execute --file), export and re-import, Time Travel info and restore, insights, delete. Each effect
// is checked through the REST API. It uses the toolchains `npm run toolchains -- node@24 wrangler`
// installs (DIONE_TOOLCHAINS, default node_modules/.cache/dione-toolchains), or DIONE_WRANGLER_LATEST
// (bin/wrangler.js) and DIONE_WRANGLER_NODE; without them it is skipped, saying so. .ci/run installs
// them. (server-wrangler.test.ts and server-insights.test.ts run against it too in .ci/run, with
// DIONE_WRANGLER.) docs/rest-api.md lists what it sends differently from 4.86.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { root } from './helpers/paths.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { jsonOf, type RunOptions, show, type WranglerRun, type WranglerRunner, wranglerFor, wranglerTool } from './helpers/wrangler.ts';

const cache = process.env.DIONE_TOOLCHAINS || path.join(root, 'node_modules/.cache/dione-toolchains');

/** A node that runs the newest wrangler (>= 22.12): the one given, this one, or one from the cache. */
function nodeForWrangler(): string | undefined {
  const atLeast = (version: string) => {
    const [major, minor] = version.replace(/^v/, '').split('.').map(Number) as [number, number];
    return major > 22 || (major === 22 && minor >= 12);
  };
  if (process.env.DIONE_WRANGLER_NODE) return process.env.DIONE_WRANGLER_NODE;
  if (atLeast(process.version)) return process.execPath;
  for (const major of [24, 22]) {
    const binary = path.join(cache, `node-${major}`, 'bin', 'node');
    if (existsSync(binary) && atLeast(execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim())) return binary;
  }
  return undefined;
}

const bin = process.env.DIONE_WRANGLER_LATEST || path.join(cache, 'wrangler/node_modules/wrangler/bin/wrangler.js');
const node = nodeForWrangler();
const missing = !existsSync(bin)
  ? `no newest wrangler at ${bin}: run \`npm run toolchains -- node@24 wrangler\``
  : !node
    ? 'no Node >= 22.12 to run the newest wrangler: run `npm run toolchains -- node@24 wrangler`'
    : undefined;

let srv: TestServer;
let runner: WranglerRunner;

before(async () => {
  if (missing) return;
  srv = await startTestServer();
  runner = wranglerFor(srv, wranglerTool(bin, node));
});

after(async () => {
  await srv?.close();
  runner?.close();
});

async function wrangler(args: string[], options: RunOptions & { cwd: string }): Promise<WranglerRun> {
  const run = await runner.run(args, options);
  assert.equal(run.code, 0, show(run));
  assert.deepEqual(run.refused, [], `wrangler reached beyond 127.0.0.1\n${show(run)}`);
  return run;
}

async function rest<T>(pathname: string, init?: RequestInit): Promise<{ status: number; result: T }> {
  const response = await srv.call(`${srv.api}${pathname}`, init);
  const body = (await response.json()) as { result: T };
  return { status: response.status, result: body.result };
}

async function rows(database: string, sql: string): Promise<Record<string, unknown>[]> {
  const { status, result } = await rest<{ results: Record<string, unknown>[] }[]>(`/${database}/query`, { method: 'POST', body: JSON.stringify({ sql }) });
  assert.equal(status, 200, `${sql} on ${database}`);
  return result.at(-1)!.results;
}

function project(name: string, uuid: string, files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(runner.dir, 'project-'));
  const toml = `name = "app"\ncompatibility_date = "2026-11-01"\n\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "${name}"\ndatabase_id = "${uuid}"\n`;
  for (const [file, text] of Object.entries({ 'wrangler.toml': toml, ...files })) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

test('the newest wrangler: create, info, migrations, execute, import, export, Time Travel, insights, delete', { skip: missing }, async (t) => {
  t.diagnostic(`wrangler ${runner ? wranglerTool(bin, node).version : '?'} on ${node ? execFileSync(node, ['--version'], { encoding: 'utf8' }).trim() : '?'}`);
  const blank = mkdtempSync(path.join(runner.dir, 'blank-'));

  // create, then info by name (4.164 asks GET …/database/<name>?fields=uuid,name).
  await wrangler(['d1', 'create', 'tc-shop'], { cwd: blank });
  const listed = await rest<{ uuid: string; name: string }[]>('?name=tc-shop');
  const uuid = listed.result.find((d) => d.name === 'tc-shop')?.uuid;
  assert.ok(uuid, 'the database wrangler created is listed');
  const info = jsonOf(await wrangler(['d1', 'info', 'tc-shop', '--json'], { cwd: blank })) as { uuid: string; name: string };
  assert.equal(info.uuid, uuid);
  assert.equal(info.name, 'tc-shop');

  const cwd = project('tc-shop', uuid, {
    'migrations/0001_items.sql': '-- the first table\nCREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, note TEXT);\n',
    'migrations/0002_index.sql': 'CREATE INDEX items_name ON items (name);\n',
    'seed.sql': "INSERT INTO items (name, note) VALUES ('a', 'x; y');\nINSERT INTO items (name, note) VALUES ('b', NULL);\nINSERT INTO items (name, note) VALUES ('c', 'it''s');\n",
  });

  // migrations (4.164 quotes "d1_migrations").
  await wrangler(['d1', 'migrations', 'apply', 'DB', '--remote'], { cwd });
  assert.deepEqual(await rows('tc-shop', 'SELECT name FROM d1_migrations ORDER BY id'), [{ name: '0001_items.sql' }, { name: '0002_index.sql' }]);
  const pending = await wrangler(['d1', 'migrations', 'list', 'DB', '--remote'], { cwd });
  assert.match(pending.stdout + pending.stderr, /No migrations to apply/);

  // import (execute --file) and execute --command.
  await wrangler(['d1', 'execute', 'DB', '--remote', '--file', 'seed.sql'], { cwd });
  const counted = jsonOf(await wrangler(['d1', 'execute', 'DB', '--remote', '--json', '--command', 'SELECT count(*) AS n FROM items'], { cwd }));
  assert.deepEqual(counted[0].results, [{ n: 3 }]);

  // export, then the dump imported into another database gives the same rows.
  await wrangler(['d1', 'export', 'DB', '--remote', '--output', 'dump.sql'], { cwd });
  const dump = readFileSync(path.join(cwd, 'dump.sql'), 'utf8');
  assert.match(dump, /CREATE TABLE items/);
  assert.match(dump, /INSERT INTO "?items"?/);
  const copyId = (await rest<{ uuid: string }>('', { method: 'POST', body: JSON.stringify({ name: 'tc-copy' }) })).result.uuid;
  const copy = project('tc-copy', copyId, { 'dump.sql': dump });
  await wrangler(['d1', 'execute', 'DB', '--remote', '--file', 'dump.sql'], { cwd: copy });
  const all = 'SELECT id, name, note FROM items ORDER BY id';
  assert.deepEqual(await rows('tc-copy', all), await rows('tc-shop', all));

  // Time Travel: the bookmark before a delete, restored, then the restore undone.
  const before = jsonOf(await wrangler(['d1', 'time-travel', 'info', 'DB', '--json'], { cwd })) as { bookmark: string };
  assert.ok(before.bookmark);
  await wrangler(['d1', 'execute', 'DB', '--remote', '--command', "DELETE FROM items WHERE name = 'b'"], { cwd });
  assert.equal((await rows('tc-shop', all)).length, 2);
  const restored = jsonOf(await wrangler(['d1', 'time-travel', 'restore', 'DB', '--bookmark', before.bookmark, '--json'], { cwd })) as { previous_bookmark: string };
  assert.equal((await rows('tc-shop', all)).length, 3);
  await wrangler(['d1', 'time-travel', 'restore', 'DB', '--bookmark', restored.previous_bookmark, '--json'], { cwd });
  assert.equal((await rows('tc-shop', all)).length, 2);
  const at = await wrangler(['d1', 'time-travel', 'info', 'DB', '--timestamp', new Date(Date.now() - 1000).toISOString()], { cwd });
  assert.match(at.stdout, /corresponds with bookmark/);

  // insights (4.164 also asks for the databaseId dimension) and info's counters.
  const insights = jsonOf(await wrangler(['d1', 'insights', 'DB', '--json', '--sort-by', 'reads'], { cwd })) as { query: string }[];
  assert.ok(
    insights.some((q) => /SELECT count\(\*\) AS n FROM items/.test(q.query)),
    JSON.stringify(insights),
  );
  const withCounters = jsonOf(await wrangler(['d1', 'info', 'DB', '--json'], { cwd })) as Record<string, unknown>;
  assert.equal(withCounters.uuid, uuid);
  assert.ok(Number(withCounters.read_queries_24h) > 0, JSON.stringify(withCounters));

  // delete.
  await wrangler(['d1', 'delete', 'tc-copy', '--skip-confirmation'], { cwd: blank });
  assert.equal((await srv.call(`${srv.api}/tc-copy`)).status, 404);
});
