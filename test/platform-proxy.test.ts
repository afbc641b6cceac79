// getPlatformProxy from dione/platform against the real wrangler 4.86 (offline): env.DB is the very
// file `wrangler d1 … --local` and wrangler's own getPlatformProxy use (both ways, with two bindings
// whose names cross, with an environment, with persist), env's vars are exactly wrangler's, other
// binding kinds get one warning, DIONE_URL puts bindings on a Dione server, and `dione dev
// --binding` opens the file `wrangler dev` would.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { connect } from '../src/client.ts';
import { getPlatformProxy, type GetPlatformProxyOptions } from '../src/platform/index.ts';
import { project } from './helpers/cli-d1.ts';
import { root } from './helpers/paths.ts';
import { startTestServer } from './helpers/server.ts';

type Env = Record<string, unknown> & { DB: import('../src/index.ts').D1Database };

const wranglerBin = path.join(root, 'node_modules/.bin/wrangler');
const home = mkdtempSync(path.join(tmpdir(), 'dione-platform-home-'));
after(() => rmSync(home, { recursive: true, force: true }));

// workerd's Durable Object id for the name "11111111-2222-4333-8444-555555555555", as a file name.
const SHOP_ID = '11111111-2222-4333-8444-555555555555';
const SHOP_FILE = '.wrangler/state/v3/d1/miniflare-D1DatabaseObject/b5eda56a38763a98a69bc728a6399e62c5e53ff443806d5b2a991719e628f0ba.sqlite';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, input = ''): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** wrangler with its own HOME, no telemetry, and every non-loopback connection refused. */
function wranglerEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: home,
    CI: 'true',
    WRANGLER_SEND_METRICS: 'false',
    NODE_OPTIONS: `--require ${path.join(root, 'test/fixtures/wrangler/no-network.cjs')}`,
  };
}

/** `wrangler d1 execute <database> --local --json --command <sql> …`: the results of each statement. */
async function wrangler(cwd: string, database: string, sql: string, extra: string[] = []): Promise<unknown[][]> {
  const r = await run(wranglerBin, ['d1', 'execute', database, '--local', '--json', '--command', sql, ...extra], cwd, wranglerEnv());
  assert.equal(r.code, 0, `wrangler d1 execute ${database} failed:\n${r.stdout}\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { results: unknown[] }[]).map((s) => s.results);
}

/** `dione dev …` with SQL piped in. */
function dioneDev(cwd: string, args: string[], sql: string, env: Record<string, string> = {}): Promise<Run> {
  return run(process.execPath, [path.join(root, 'bin/dione.js'), 'dev', ...args], cwd, { ...process.env, NO_COLOR: '1', ...env }, sql);
}

/** getPlatformProxy as called from `dir` (wrangler's getPlatformProxy keeps its data under the working directory). */
async function proxyIn(dir: string, options?: GetPlatformProxyOptions) {
  const before = process.cwd();
  process.chdir(dir);
  try {
    return await getPlatformProxy<Env>(options);
  } finally {
    process.chdir(before);
  }
}

async function bodies(db: Env['DB']): Promise<string[]> {
  return (await db.prepare('SELECT body FROM notes ORDER BY id').raw<[string]>()).map(([b]) => b);
}

const SHOP_TOML = `name = "app"
compatibility_date = "2025-01-01"

[[d1_databases]]
binding = "DB"
database_name = "shop"
database_id = "${SHOP_ID}"
`;

test('env.DB is the file wrangler d1 --local uses: each sees what the other wrote, while both are in use', async (t) => {
  const p = project({ 'wrangler.toml': SHOP_TOML });
  t.after(p.cleanup);
  await wrangler(p.dir, 'shop', "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('from wrangler')");
  assert.ok(existsSync(path.join(p.dir, SHOP_FILE)));

  const { env, dispose } = await proxyIn(p.dir);
  assert.deepEqual(await bodies(env.DB), ['from wrangler']);
  await env.DB.prepare('INSERT INTO notes (body) VALUES (?)').bind('from dione').run();
  assert.deepEqual(await wrangler(p.dir, 'DB', 'SELECT body FROM notes ORDER BY id'), [[{ body: 'from wrangler' }, { body: 'from dione' }]]);
  await wrangler(p.dir, 'shop', "INSERT INTO notes (body) VALUES ('wrangler again')");
  assert.deepEqual(await bodies(env.DB), ['from wrangler', 'from dione', 'wrangler again']);
  await env.DB.prepare('INSERT INTO notes (body) VALUES (?)').bind('dione again').run();
  assert.deepEqual((await wrangler(p.dir, 'shop', 'SELECT count(*) AS n FROM notes'))[0], [{ n: 4 }]);
  assert.deepEqual(readdirSync(path.join(p.dir, '.wrangler/state/v3/d1/miniflare-D1DatabaseObject')).filter((f) => f.endsWith('.sqlite')).sort(), [
    path.basename(SHOP_FILE),
    'metadata.sqlite',
  ]);

  await dispose();
  await dispose(); // a second call is harmless
  await assert.rejects(env.DB.prepare('SELECT 1').first());
});

test('a database Dione opened before wrangler first wrote to it takes writes after wrangler', async (t) => {
  const p = project({ 'wrangler.toml': SHOP_TOML });
  t.after(p.cleanup);
  const { env, dispose } = await proxyIn(p.dir);
  t.after(dispose);
  await env.DB.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
  await wrangler(p.dir, 'shop', "INSERT INTO notes (body) VALUES ('from wrangler')");
  await env.DB.prepare('INSERT INTO notes (body) VALUES (?)').bind('from dione').run();
  assert.deepEqual(await bodies(env.DB), ['from wrangler', 'from dione']);
});

test('two bindings whose names cross: each binding is its own file, as wrangler dev has it', async (t) => {
  // wrangler d1 looks databases up by database_name first: `ANALYTICS` is binding DB's database.
  const p = project({
    'wrangler.toml': `name = "app"

[[d1_databases]]
binding = "DB"
database_name = "ANALYTICS"

[[d1_databases]]
binding = "ANALYTICS"
database_name = "main"
database_id = "00000000-0000-4000-8000-00000000a1a1"
preview_database_id = "00000000-0000-4000-8000-0000000000b2"
`,
  });
  t.after(p.cleanup);
  await wrangler(p.dir, 'ANALYTICS', "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('binding DB')");
  await wrangler(p.dir, 'main', "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('binding ANALYTICS')");

  const { env, dispose } = await proxyIn(p.dir);
  t.after(dispose);
  assert.deepEqual(await bodies(env.DB), ['binding DB']);
  assert.deepEqual(await bodies(env.ANALYTICS as Env['DB']), ['binding ANALYTICS']);
  await (env.ANALYTICS as Env['DB']).prepare("INSERT INTO notes (body) VALUES ('via env.ANALYTICS')").run();
  assert.deepEqual(await wrangler(p.dir, 'main', 'SELECT body FROM notes ORDER BY id'), [[{ body: 'binding ANALYTICS' }, { body: 'via env.ANALYTICS' }]]);
  assert.deepEqual(await wrangler(p.dir, 'ANALYTICS', 'SELECT body FROM notes ORDER BY id'), [[{ body: 'binding DB' }]]);

  const dev = await dioneDev(p.dir, ['--binding', 'ANALYTICS'], 'SELECT body FROM notes ORDER BY id;\n');
  assert.equal(dev.code, 0, dev.stderr);
  assert.match(dev.stdout, /binding ANALYTICS/);
  assert.match(dev.stdout, /via env\.ANALYTICS/);
  assert.doesNotMatch(dev.stdout, /binding DB/);

  const wrong = await dioneDev(p.dir, ['--binding', 'main'], 'SELECT 1;\n');
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /no D1 binding main in d1_databases: "main" is the database_name of binding ANALYTICS; pass --binding ANALYTICS\. Its bindings: DB, ANALYTICS\./);
});

test('an environment: its own d1_databases, vars and .dev.vars.<env>, for wrangler --env, getPlatformProxy and dione dev --env', async (t) => {
  const p = project({
    'wrangler.toml': `${SHOP_TOML}
[vars]
STAGE = "top"

[env.staging]
vars = { STAGE = "staging", LIMIT = 5 }
d1_databases = [{ binding = "DB", database_name = "shop-staging", database_id = "00000000-0000-4000-8000-0000000057a9" }]
`,
    '.dev.vars': 'SECRET=top secret\n',
    '.dev.vars.staging': 'SECRET=staging secret\n',
  });
  t.after(p.cleanup);
  await wrangler(p.dir, 'shop', "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('top level')");
  await wrangler(p.dir, 'shop-staging', "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('staging')", ['--env', 'staging']);

  const staging = await proxyIn(p.dir, { environment: 'staging' });
  t.after(staging.dispose);
  assert.deepEqual(await bodies(staging.env.DB), ['staging']);
  const { DB: _db, ...vars } = staging.env;
  assert.deepEqual(vars, { STAGE: 'staging', LIMIT: 5, SECRET: 'staging secret' });

  const top = await proxyIn(p.dir);
  t.after(top.dispose);
  assert.deepEqual(await bodies(top.env.DB), ['top level']);
  assert.equal(top.env.SECRET, 'top secret');

  const dev = await dioneDev(p.dir, ['--binding', 'DB', '--env', 'staging'], 'SELECT body FROM notes;\n');
  assert.equal(dev.code, 0, dev.stderr);
  assert.match(dev.stdout, /│ staging/);
  const unknown = await dioneDev(p.dir, ['--binding', 'DB', '--env', 'prod'], 'SELECT 1;\n');
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /no environment "prod"/);

  // With no environment given, CLOUDFLARE_ENV names it, as wrangler reads it; an empty one is the top level.
  const saved = process.env.CLOUDFLARE_ENV;
  try {
    process.env.CLOUDFLARE_ENV = 'staging';
    const byVariable = await proxyIn(p.dir);
    t.after(byVariable.dispose);
    assert.deepEqual(await bodies(byVariable.env.DB), ['staging']);
    assert.equal(byVariable.env.STAGE, 'staging');
    // (wrangler's getPlatformProxy reads .dev.vars.<env> only for the environment its options name.)
    assert.equal(byVariable.env.SECRET, 'top secret');
    process.env.CLOUDFLARE_ENV = '';
    const empty = await proxyIn(p.dir);
    t.after(empty.dispose);
    assert.equal(empty.env.STAGE, 'top');
  } finally {
    if (saved === undefined) delete process.env.CLOUDFLARE_ENV;
    else process.env.CLOUDFLARE_ENV = saved;
  }
  const devByVariable = await dioneDev(p.dir, ['--binding', 'DB'], 'SELECT body FROM notes;\n', { CLOUDFLARE_ENV: 'staging' });
  assert.equal(devByVariable.code, 0, devByVariable.stderr);
  assert.match(devByVariable.stdout, /│ staging/);
  // --env wins over the variable.
  const devFlag = await dioneDev(p.dir, ['--binding', 'DB', '--env', ''], 'SELECT body FROM notes;\n', { CLOUDFLARE_ENV: 'staging' });
  assert.equal(devFlag.code, 0, devFlag.stderr);
  assert.match(devFlag.stdout, /│ top level/);
});

test('persist: the same files as wrangler d1 --persist-to and dione dev --persist-to; false keeps nothing', async (t) => {
  const p = project({ 'wrangler.toml': SHOP_TOML });
  t.after(p.cleanup);
  await wrangler(p.dir, 'DB', "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('kept elsewhere')", ['--persist-to', 'state']);
  // wrangler's --persist-to names the state folder; getPlatformProxy's persist.path the v3 folder in it.
  const { env, dispose } = await proxyIn(p.dir, { persist: { path: 'state/v3' } });
  t.after(dispose);
  assert.deepEqual(await bodies(env.DB), ['kept elsewhere']);
  const dev = await dioneDev(p.dir, ['--binding', 'DB', '--persist-to', 'state'], 'SELECT body FROM notes;\n');
  assert.equal(dev.code, 0, dev.stderr);
  assert.match(dev.stdout, /kept elsewhere/);

  const memory = await proxyIn(p.dir, { persist: false });
  await memory.env.DB.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
  await memory.dispose();
  assert.ok(!existsSync(path.join(p.dir, '.wrangler')), 'nothing was written to .wrangler');
});

test("env's vars and local files are exactly those of wrangler's own getPlatformProxy", async (t) => {
  const base = mkdtempSync(path.join(tmpdir(), 'dione-platform-vars-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const dir = (name: string, files: Record<string, string>) => {
    const d = path.join(base, name);
    mkdirSync(d, { recursive: true });
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(d, file)), { recursive: true });
      writeFileSync(path.join(d, file), text);
    }
    return d;
  };
  const vars = `name = "app"\ncompatibility_date = "2025-01-01"\n\n[vars]\nGREETING = "hello"\nRETRIES = 3\nFEATURES = { beta = true, list = [1, "two"] }\n`;
  const withEnv = `${vars}\n[env.staging.vars]\nGREETING = "hi from staging"\n`;
  interface Scenario {
    name: string;
    cwd: string;
    options?: GetPlatformProxyOptions;
    env?: Record<string, string>;
    d1?: string[];
    sql?: Record<string, string[]>;
  }
  const scenarios: Scenario[] = [
    { name: 'vars and .dev.vars', cwd: dir('a', { 'wrangler.toml': vars, '.dev.vars': 'GREETING=overridden\nTOKEN="multi\\nline"\n# comment\nQUOTED=\'single\'\n' }) },
    {
      name: '.dev.vars.<env> wins over .dev.vars; top-level vars are not inherited',
      cwd: dir('b', { 'wrangler.toml': withEnv, '.dev.vars': 'A=plain\n', '.dev.vars.staging': 'A=staging\nB=only here\n' }),
      options: { environment: 'staging' },
    },
    { name: '.dev.vars when there is no .dev.vars.<env>', cwd: dir('c', { 'wrangler.toml': withEnv, '.dev.vars': 'A=plain\n' }), options: { environment: 'staging' } },
    {
      name: '.env files, later ones win, references expanded',
      cwd: dir('d', {
        'wrangler.toml': withEnv,
        '.env': 'A=1\nB=from .env\nHOST=example.com\n',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a dotenv-expand reference, not a template
        '.env.local': 'B=from .env.local\nURL=https://${HOST}/x\n',
        '.env.staging': 'C=staging\n',
        '.env.staging.local': 'C=staging local\n',
      }),
      options: { environment: 'staging' },
    },
    {
      name: 'CLOUDFLARE_ENV names the environment when the options do not',
      cwd: dir('j', { 'wrangler.toml': withEnv, '.dev.vars': 'A=plain\n', '.dev.vars.staging': 'A=staging\n', '.env.staging': 'C=staging\n' }),
      env: { CLOUDFLARE_ENV: 'staging' },
    },
    { name: 'CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV=false', cwd: dir('e', { 'wrangler.toml': vars, '.env': 'A=1\n' }), env: { CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: 'false' } },
    {
      name: 'envFiles replaces .dev.vars',
      cwd: dir('f', { 'wrangler.toml': vars, '.dev.vars': 'A=dev vars\n', 'config/one.env': 'A=one\nB=one\n', 'config/two.env': 'B=two\n' }),
      options: { envFiles: ['config/one.env', 'config/two.env'] },
    },
    {
      name: 'secrets.required: only those names from the files',
      cwd: dir('s', { 'wrangler.toml': `secrets = { required = ["API_KEY", "NOT_SET"] }\n${vars}`, '.dev.vars': 'API_KEY=k-123\nOTHER=left out\n' }),
    },
    {
      name: 'configPath in another folder: .dev.vars beside the config',
      cwd: dir('g', { 'project/wrangler.json': JSON.stringify({ name: 'app', vars: { FROM: 'json' } }), 'project/.dev.vars': 'A=beside the config\n', '.dev.vars': 'A=in the working directory\n' }),
      options: { configPath: 'project/wrangler.json' },
    },
    {
      name: 'default persist: .wrangler/state/v3 of the working directory, not of the config',
      cwd: dir('h', { 'project/wrangler.toml': SHOP_TOML }),
      options: { configPath: 'project/wrangler.toml' },
      d1: ['DB'],
      sql: { DB: ['CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)', "INSERT INTO notes (body) VALUES ('by wrangler getPlatformProxy')"] },
    },
    {
      name: 'persist.path',
      cwd: dir('i', { 'wrangler.toml': SHOP_TOML }),
      options: { persist: { path: 'elsewhere/v3' } },
      d1: ['DB'],
      sql: { DB: ['CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)', "INSERT INTO notes (body) VALUES ('by wrangler getPlatformProxy')"] },
    },
  ];
  const real = await run(process.execPath, [path.join(root, 'test/fixtures/platform/wrangler-proxy.mjs'), JSON.stringify(scenarios)], root, wranglerEnv());
  assert.equal(real.code, 0, real.stderr);
  const theirs = real.stdout
    .split('\n')
    .filter((line) => line.startsWith('RESULT '))
    .map((line) => (JSON.parse(line.slice('RESULT '.length)) as { vars: Record<string, unknown> }).vars);
  assert.equal(theirs.length, scenarios.length);

  t.mock.method(console, 'warn', () => {}); // the secrets scenario warns of NOT_SET, as wrangler does
  for (const [i, scenario] of scenarios.entries()) {
    const saved = { ...process.env };
    Object.assign(process.env, scenario.env);
    try {
      const { env, dispose } = await proxyIn(scenario.cwd, scenario.options);
      try {
        const ours = Object.fromEntries(Object.entries(env).filter(([name]) => !(scenario.d1 ?? []).includes(name)));
        assert.deepEqual(ours, theirs[i], scenario.name);
        if (scenario.d1) assert.deepEqual(await bodies(env.DB), ['by wrangler getPlatformProxy'], scenario.name);
      } finally {
        await dispose();
      }
    } finally {
      for (const name of Object.keys(scenario.env ?? {})) if (saved[name] === undefined) delete process.env[name];
      Object.assign(process.env, saved);
    }
  }
});

test('bindings Dione does not provide are named in one warning; env still gets D1 and vars', async (t) => {
  const p = project({
    'wrangler.toml': `${SHOP_TOML}
[vars]
MODE = "dev"

[[kv_namespaces]]
binding = "CACHE"
id = "abc"

[[r2_buckets]]
binding = "FILES"
bucket_name = "files"

[durable_objects]
bindings = [{ name = "ROOMS", class_name = "Room" }]

[[services]]
binding = "AUTH"
service = "auth-worker"

[[queues.producers]]
binding = "JOBS"
queue = "jobs"

[ai]
binding = "AI"
`,
  });
  t.after(p.cleanup);
  const warn = t.mock.method(console, 'warn', () => {});
  const { env, dispose } = await proxyIn(p.dir);
  t.after(dispose);
  assert.equal(warn.mock.callCount(), 1);
  assert.equal(
    warn.mock.calls[0]!.arguments[0],
    "dione/platform: env has no CACHE (kv_namespaces), FILES (r2_buckets), AUTH (services), AI (ai), ROOMS (durable_objects), JOBS (queues): Dione provides the D1 databases and vars of wrangler.toml only (use wrangler's getPlatformProxy for the others).",
  );
  assert.deepEqual(Object.keys(env).sort(), ['DB', 'MODE']);
  assert.equal(await env.DB.prepare('SELECT 1 AS one').first('one'), 1);
});

test('DIONE_URL puts D1 bindings on a Dione server; the d1 option places bindings one by one', async (t) => {
  const server = await startTestServer();
  t.after(() => server.close());
  await server.createDatabase('shop');
  await server.createDatabase('other');
  const p = project({ 'wrangler.toml': `${SHOP_TOML}\n[[d1_databases]]\nbinding = "LOCAL"\ndatabase_name = "local-only"\n` });
  t.after(p.cleanup);
  const saved = { url: process.env.DIONE_URL, token: process.env.DIONE_TOKEN };
  t.after(() => {
    for (const [name, value] of [['DIONE_URL', saved.url], ['DIONE_TOKEN', saved.token]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  const onServer = (database: string) => connect({ url: server.url, token: server.token, database });

  process.env.DIONE_URL = server.url;
  process.env.DIONE_TOKEN = server.token;
  const remote = await proxyIn(p.dir, { d1: { LOCAL: 'local' } });
  await remote.env.DB.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
  await remote.env.DB.prepare('INSERT INTO notes (body) VALUES (?)').bind('on the server').run();
  assert.deepEqual(await bodies(onServer('shop')), ['on the server']);
  await (remote.env.LOCAL as Env['DB']).exec('CREATE TABLE kept (x)');
  await remote.dispose();
  assert.ok(!existsSync(path.join(p.dir, SHOP_FILE)), 'DB is not a local file');
  assert.equal(readdirSync(path.join(p.dir, '.wrangler/state/v3/d1/miniflare-D1DatabaseObject')).length, 1, 'LOCAL is');

  delete process.env.DIONE_URL;
  delete process.env.DIONE_TOKEN;
  const one = await proxyIn(p.dir, { d1: { DB: { url: server.url, token: server.token, database: 'other' } } });
  await one.env.DB.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
  await one.env.DB.prepare('INSERT INTO notes (body) VALUES (?)').bind('in other').run();
  await one.dispose();
  assert.deepEqual(await bodies(onServer('other')), ['in other']);

  await assert.rejects(proxyIn(p.dir, { d1: { DB: {} } }), /D1 binding DB is to be served by a Dione server, but neither d1\.DB\.url nor DIONE_URL says where it is/);
  await assert.rejects(proxyIn(p.dir, { d1: { SHOP: 'local' } }), /d1\.SHOP names no D1 binding of .*wrangler\.toml \(its bindings: DB, LOCAL\)/);
});

test('dione dev: --binding and --db are one or the other; the wrangler flags need --binding', async (t) => {
  const p = project({ 'wrangler.toml': SHOP_TOML });
  t.after(p.cleanup);
  const both = await dioneDev(p.dir, ['--binding', 'DB', '--db', 'x'], '');
  assert.notEqual(both.code, 0);
  assert.match(both.stderr, /--db and --binding name two databases: give one/);
  const stray = await dioneDev(p.dir, ['--persist-to', 'state'], '');
  assert.notEqual(stray.code, 0);
  assert.match(stray.stderr, /--persist-to works with --binding only/);
  const none = mkdtempSync(path.join(tmpdir(), 'dione-no-config-'));
  t.after(() => rmSync(none, { recursive: true, force: true }));
  const noConfig = await dioneDev(none, ['--binding', 'DB'], '');
  assert.notEqual(noConfig.code, 0);
  assert.match(noConfig.stderr, /No wrangler\.toml, wrangler\.json or wrangler\.jsonc found/);
  const created = await dioneDev(p.dir, ['--binding', 'DB'], 'CREATE TABLE t (x);\n');
  assert.equal(created.code, 0, created.stderr);
  assert.ok(existsSync(path.join(p.dir, SHOP_FILE)), 'the file wrangler dev would use');
  assert.deepEqual(await wrangler(p.dir, 'DB', "SELECT name FROM sqlite_master WHERE name = 't'"), [[{ name: 't' }]]);
});
