// `dione d1 … --local` and the real wrangler (the devDependency, 4.86) on copies of the same
// project: the same files are taken as migrations and applied in the same order into the same
// table; a file is one transaction; CLOUDFLARE_ENV, the d1_databases lookup, --cwd and .env files
// choose the same database; stdout, --json errors and empty input are wrangler's; exports of edge
// cases are the same. wrangler runs offline (no metrics, its update check at 127.0.0.1:1, and the
// no-network guard preloaded).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { Messages } from '../src/api/errors.ts';
import { durableObjectIdFromName } from '../src/cli/local-state.ts';
import { open } from '../src/index.ts';
import { type CliRun, dione } from './helpers/cli-d1.ts';
import { root } from './helpers/paths.ts';

const scratch = mkdtempSync(path.join(tmpdir(), 'dione-d1-parity-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let projects = 0;

const SHOP_ID = '11111111-2222-3333-4444-555555555555';
const TOML = `name = "app"\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "shop"\ndatabase_id = "${SHOP_ID}"\n`;

/** A project folder with these files (folders made as needed). */
function project(files: Record<string, string>): string {
  const dir = path.join(scratch, `p${++projects}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

function wrangler(cwd: string, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const home = path.join(scratch, 'home');
  mkdirSync(path.join(home, 'tmp'), { recursive: true });
  const netLog = path.join(scratch, 'refused.log');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(root, 'node_modules/wrangler/bin/wrangler.js'), ...args], {
      cwd,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: home,
        XDG_CONFIG_HOME: path.join(home, '.config'),
        TMPDIR: path.join(home, 'tmp'),
        CI: 'true',
        NO_COLOR: '1',
        WRANGLER_SEND_METRICS: 'false',
        WRANGLER_SEND_ERROR_REPORTS: 'false',
        npm_registry: 'http://127.0.0.1:1/',
        npm_config_registry: 'http://127.0.0.1:1/',
        NODE_OPTIONS: `--require ${path.join(root, 'test/fixtures/wrangler/no-network.cjs')}`,
        DIONE_NET_LOG: netLog,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

interface Pair {
  w: CliRun;
  d: CliRun;
  /** The two copies of the project: wrangler's and dione's. */
  wDir: string;
  dDir: string;
}

/** Copies `dir` twice and runs `wrangler d1 <args>` in one copy and `dione d1 <args>` in the other, at the same time. */
async function both(dir: string, args: string[], env: Record<string, string> = {}, { sub = '' } = {}): Promise<Pair> {
  const wDir = `${dir}-w${++projects}`;
  const dDir = `${dir}-d${projects}`;
  cpSync(dir, wDir, { recursive: true });
  cpSync(dir, dDir, { recursive: true });
  let [w, d] = await Promise.all([wrangler(path.join(wDir, sub), ['d1', ...args], env), dione(path.join(dDir, sub), ['d1', ...args], env)]);
  if (wranglerCrashed(w)) {
    // The reference failed inside itself (not an answer of D1's): once more, on a fresh copy.
    rmSync(wDir, { recursive: true, force: true });
    cpSync(dir, wDir, { recursive: true });
    w = await wrangler(path.join(wDir, sub), ['d1', ...args], env);
  }
  return { w, d, wDir, dDir };
}

/**
 * wrangler's local runtime tripping one of its own assertions under load (seen once in CI, wrangler
 * 4.86 on Node 24: "The expression evaluated to a falsy value: (message?.id === id)").
 */
function wranglerCrashed(run: CliRun): boolean {
  return run.code !== 0 && `${run.stdout}${run.stderr}`.includes('The expression evaluated to a falsy value');
}

const show = ({ w, d }: Pair) => `--- wrangler (${w.code})\n${w.stdout}\n${w.stderr}\n--- dione (${d.code})\n${d.stdout}\n${d.stderr}`;

/** stdout without wrangler's banner, with durations zeroed and "your wrangler command" as dione says it. */
function comparable(stdout: string): string {
  return stdout
    .split('\n')
    .filter((l) => !/^\s*(⛅️ wrangler|─{3,}|Resource location|Use --remote if)/.test(l))
    .join('\n')
    .replace(/^\n+/, '')
    .replace(/"duration": [\d.e-]+/g, '"duration": 0')
    .replaceAll('your wrangler command', 'your command');
}

/** The last line wrangler's and dione's error reports start with "✘ [ERROR] " on. */
const errorLine = (stderr: string) =>
  stderr
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .find((l) => l.startsWith('✘ [ERROR] '));

const localFile = (dir: string, key: string) => path.join(dir, '.wrangler/state/v3/d1/miniflare-D1DatabaseObject', `${durableObjectIdFromName('miniflare-D1DatabaseObject', key)}.sqlite`);

async function query(file: string, sql: string): Promise<unknown[][]> {
  const db = open(file, { readonly: true });
  try {
    return await db.prepare(sql).raw();
  } finally {
    db.close();
  }
}

/** What both databases answer to `sql`, asserted equal, and returned. */
async function same(pair: Pair, sql: string, key = SHOP_ID): Promise<unknown[][]> {
  const [w, d] = await Promise.all([query(localFile(pair.wDir, key), sql), query(localFile(pair.dDir, key), sql)]);
  assert.deepEqual(d, w, `${sql}\n${show(pair)}`);
  return w;
}

test('migrations: timestamps, gaps, repeated and date-like numbers, hidden and unnumbered files are listed and applied as wrangler does, into its table', async () => {
  const names = [
    '20240101120000_init.sql',
    '20240102093000_users.sql',
    '20240103000000_more.sql',
    '0001_a.sql',
    '0005_gap.sql',
    '0002_b.sql',
    '0002_c.sql',
    '2024-01-01_x.sql',
    '2024-01-02_y.sql',
    '.hidden.sql',
    'noprefix.sql',
    '9_b.sql',
    '10_z.sql',
  ];
  const files: Record<string, string> = { 'wrangler.toml': TOML, 'migrations/notes.txt': 'not a migration' };
  for (const [i, name] of names.entries()) files[`migrations/${name}`] = `CREATE TABLE t${i} (x);\n`;
  const dir = project(files);

  const listed = await both(dir, ['migrations', 'list', 'DB', '--local']);
  assert.equal(listed.w.code, 0, show(listed));
  assert.equal(listed.d.code, 0, show(listed));
  const rows = (stdout: string) => [...stdout.matchAll(/^│ (\S+) +│$/gm)].map((m) => m[1]).filter((name) => name !== 'Name');
  assert.deepEqual(rows(listed.d.stdout), rows(listed.w.stdout));
  assert.deepEqual(rows(listed.d.stdout), [...names].sort()); // plain name order

  const applied = await both(dir, ['migrations', 'apply', 'DB', '--local']);
  assert.equal(applied.w.code, 0, show(applied));
  assert.equal(applied.d.code, 0, show(applied));
  const order = await same(applied, 'SELECT id, name FROM d1_migrations ORDER BY id');
  assert.equal(order.length, names.length);
  assert.deepEqual(
    order.map((r) => r[1]).slice(0, 6),
    ['.hidden.sql', '0001_a.sql', '0002_b.sql', '0002_c.sql', '0005_gap.sql', '9_b.sql'], // by number, stably
  );
  // The table's DDL as SQLite keeps it, so an export is the same whichever tool made the table.
  const [[ddl]] = (await same(applied, "SELECT sql FROM sqlite_schema WHERE name = 'd1_migrations'")) as [[string]];
  assert.match(ddl, /^CREATE TABLE d1_migrations\(/);
});

test('migrations: an empty migrations_dir and migrations_table mean ./migrations and d1_migrations, and folders are no migrations, as in wrangler', async () => {
  const dir = project({
    'wrangler.toml': `${TOML}migrations_dir = ""\nmigrations_table = ""\n`,
    'migrations/0001_a.sql': 'CREATE TABLE a (x);\n',
  });
  const applied = await both(dir, ['migrations', 'apply', 'DB', '--local']);
  assert.equal(applied.d.code, 0, show(applied));
  assert.equal(applied.w.code, 0, show(applied));
  assert.deepEqual(await same(applied, "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name"), [
    ['a'],
    ['d1_migrations'],
    ['sqlite_sequence'],
  ]);

  // Only folders of migrations (Prisma's layout): none to apply, as wrangler says, and a warning on how to take them.
  const nested = project({ 'wrangler.toml': TOML, 'migrations/0001_init/migration.sql': 'CREATE TABLE n (x);\n' });
  const listed = await dione(nested, ['d1', 'migrations', 'list', 'DB', '--local']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout, /No migrations to apply!/);
  assert.match(listed.stderr, /^▲ \[WARNING\] .*holds no \.sql file but has \*\/migration\.sql files: set migrations_pattern = "migrations\/\*\/migration\.sql"/m);
});

test('execute --file is one transaction: a failure keeps nothing, deferred foreign keys are checked at its end', async () => {
  const failing = ['CREATE TABLE t (n INTEGER PRIMARY KEY);'];
  for (let n = 2; n <= 2000; n++) failing.push(n === 1501 ? `INSERT INTO t VALUES (${n}, oops);` : `INSERT INTO t VALUES (${n});`);
  const deferred = ['PRAGMA defer_foreign_keys=TRUE;', 'CREATE TABLE parent (id INTEGER PRIMARY KEY);', 'CREATE TABLE child (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL REFERENCES parent(id));'];
  for (let n = 1; n <= 1200; n++) deferred.push(`INSERT INTO child VALUES (${n}, ${n});`);
  for (let n = 1; n <= 1200; n++) deferred.push(`INSERT INTO parent VALUES (${n});`);
  const dir = project({
    'wrangler.toml': TOML,
    'failing.sql': `${failing.join('\n')}\n`,
    'deferred.sql': `${deferred.join('\n')}\n`,
    'savepoint.sql': 'CREATE TABLE s (x);\nSAVEPOINT a;\nINSERT INTO s VALUES (1);\nRELEASE a;\n',
  });

  const failed = await both(dir, ['execute', 'DB', '--local', '--json', '--file', 'failing.sql']);
  assert.equal(failed.w.code, 1, show(failed));
  assert.equal(failed.d.code, 1, show(failed));
  assert.deepEqual(await same(failed, "SELECT count(*) FROM sqlite_schema WHERE name = 't'"), [[0]]);
  assert.deepEqual(JSON.parse(failed.d.stdout), JSON.parse(failed.w.stdout));

  const kept = await both(dir, ['execute', 'DB', '--local', '--json', '--file', 'deferred.sql']);
  assert.equal(kept.w.code, 0, show(kept));
  assert.equal(kept.d.code, 0, show(kept));
  assert.equal(comparable(kept.d.stdout), comparable(kept.w.stdout));
  assert.deepEqual(await same(kept, 'SELECT (SELECT count(*) FROM parent), (SELECT count(*) FROM child)'), [[1200, 1200]]);

  // A transaction statement in the file is refused as D1 refuses it, and cannot end the file's transaction.
  const savepoint = await both(dir, ['execute', 'DB', '--local', '--json', '--file', 'savepoint.sql']);
  assert.equal(savepoint.d.code, 1, show(savepoint));
  assert.deepEqual(JSON.parse(savepoint.d.stdout), JSON.parse(savepoint.w.stdout));
  assert.deepEqual(JSON.parse(savepoint.d.stdout), { error: { text: Messages.transactionStatement } });
  assert.deepEqual(await same(savepoint, "SELECT count(*) FROM sqlite_schema WHERE name = 's'"), [[0]]);

  // `import` too; --chunk-size asks for chunks that commit (the rows before the failing chunk stay).
  const imported = await dione(failed.dDir, ['d1', 'import', 'DB', 'failing.sql', '--local']);
  assert.equal(imported.code, 1, imported.stderr);
  assert.match(imported.stderr, /failing\.sql:1501: no such column: oops.*\n {2}in: INSERT INTO t VALUES \(1501, oops\)\nNothing was imported: the file runs as one transaction/);
  assert.deepEqual(await query(localFile(failed.dDir, SHOP_ID), "SELECT count(*) FROM sqlite_schema WHERE name = 't'"), [[0]]);
  const chunked = await dione(failed.dDir, ['d1', 'execute', 'DB', '--local', '--file', 'failing.sql', '--chunk-size', '1000']);
  assert.equal(chunked.code, 1, chunked.stderr);
  assert.match(chunked.stderr, /The 1000 statement\(s\) before line 1001 are imported.*--from-line 1001/s);
  assert.deepEqual(await query(localFile(failed.dDir, SHOP_ID), 'SELECT count(*), max(n) FROM t'), [[999, 1000]]);
});

test('CLOUDFLARE_ENV chooses the environment when --env does not, for execute and migrations', async () => {
  const dir = project({
    'wrangler.toml': `${TOML}\n[env.staging]\n[[env.staging.d1_databases]]\nbinding = "DB"\ndatabase_name = "shop-stg"\ndatabase_id = "22222222-2222-3333-4444-555555555555"\nmigrations_dir = "mig-staging"\n`,
    'migrations/0001_top.sql': 'CREATE TABLE top (x);\n',
    'mig-staging/0001_stg.sql': 'CREATE TABLE stg (x);\n',
  });
  const staging = '22222222-2222-3333-4444-555555555555';
  const applied = await both(dir, ['migrations', 'apply', 'DB', '--local'], { CLOUDFLARE_ENV: 'staging' });
  assert.equal(applied.d.code, 0, show(applied));
  assert.deepEqual(await same(applied, 'SELECT name FROM d1_migrations', staging), [['0001_stg.sql']]);
  assert.ok(!existsSync(localFile(applied.dDir, SHOP_ID)), 'the top-level database is left alone');
  // --env wins over it; an empty one is the top level.
  const top = await dione(applied.dDir, ['d1', 'execute', 'DB', '--local', '--env', '', '--command', 'CREATE TABLE marker (x)'], { CLOUDFLARE_ENV: 'staging' });
  assert.equal(top.code, 0, top.stderr);
  assert.deepEqual(await query(localFile(applied.dDir, SHOP_ID), "SELECT name FROM sqlite_schema WHERE name = 'marker'"), [['marker']]);
});

test('a name is looked up as wrangler does: the first d1_databases entry whose binding or database_name it is', async () => {
  const dir = project({
    'wrangler.jsonc': JSON.stringify({
      d1_databases: [
        { binding: 'DB', database_name: 'shop', database_id: 'aaaaaaaa-0000-0000-0000-000000000001' },
        { binding: 'shop2', database_name: 'DB', database_id: 'aaaaaaaa-0000-0000-0000-000000000002' },
      ],
    }),
  });
  const pair = await both(dir, ['execute', 'DB', '--local', '--command', 'CREATE TABLE marker (x)']);
  assert.equal(pair.d.code, 0, show(pair));
  assert.equal(comparable(pair.d.stdout).split('\n')[0], comparable(pair.w.stdout).split('\n')[0]);
  for (const copy of [pair.wDir, pair.dDir]) {
    assert.ok(existsSync(localFile(copy, 'aaaaaaaa-0000-0000-0000-000000000001')), copy);
    assert.ok(!existsSync(localFile(copy, 'aaaaaaaa-0000-0000-0000-000000000002')), copy);
  }
});

const noScript = spawnSync('script', ['--version']).status !== 0;

test('execute prints result tables on a terminal only: elsewhere wrangler\'s JSON after its status lines, BLOBs as "[1, 2]"', async (t) => {
  const dir = project({ 'wrangler.toml': TOML });
  const sql = "CREATE TABLE b (v BLOB); INSERT INTO b VALUES (x'0102'); SELECT v, zeroblob(2) AS z, unhex('ff') AS u, x'' AS e, NULL AS n FROM b";
  const plain = await both(dir, ['execute', 'DB', '--local', '--command', sql]);
  assert.equal(plain.d.code, 0, show(plain));
  assert.equal(comparable(plain.d.stdout), comparable(plain.w.stdout));
  assert.deepEqual(JSON.parse(plain.d.stdout.slice(plain.d.stdout.indexOf('\n[') + 1))[2].results, [{ v: '[1, 2]', z: '[0, 0]', u: '[255]', e: '[]', n: null }]);
  const json = await both(dir, ['execute', 'DB', '--local', '--json', '--command', sql]);
  assert.equal(comparable(json.d.stdout), comparable(json.w.stdout));

  if (noScript) return t.diagnostic('no `script` to run dione under a terminal: the terminal half is not checked');
  const command = `${process.execPath} ${path.join(root, 'bin/dione.js')} d1 execute DB --local --command "SELECT 1 AS n"`;
  const r = spawnSync('script', ['-qec', command, '/dev/null'], { cwd: plain.dDir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /│ n │\r?\n├───┤\r?\n│ 1 │/);
  assert.doesNotMatch(r.stdout, /"results"/);
});

test('--json errors are wrangler\'s: D1\'s message alone, and its texts for a missing option, file, database or config', async () => {
  const dir = project({ 'wrangler.toml': TOML });
  const none = project({ 'readme.txt': 'no wrangler config here' });
  const cases: [string, string[]][] = [
    [dir, ['execute', 'DB', '--local', '--json', '--command', 'SELECT x FROM nope']],
    [dir, ['execute', 'DB', '--local', '--json']],
    [dir, ['execute', 'DB', '--local', '--json', '--file', 'missing.sql']],
    [dir, ['execute', 'nope', '--local', '--json', '--command', 'SELECT 1']],
    [none, ['execute', 'DB', '--local', '--json', '--command', 'SELECT 1']],
  ];
  for (const [where, args] of cases) {
    const pair = await both(where, args);
    assert.equal(pair.d.code, 1, show(pair));
    assert.equal(pair.w.code, 1, show(pair));
    assert.deepEqual(JSON.parse(pair.d.stdout), JSON.parse(pair.w.stdout), args.join(' '));
  }
});

test('SQL without a statement fails as in wrangler, and creates no local state', async () => {
  const dir = project({ 'wrangler.toml': TOML, 'empty.sql': '', 'comments.sql': '-- just a comment\n/* another */\n   \n', 'semis.sql': ';\n;;\n' });
  const cases = [['--file', 'empty.sql'], ['--file', 'comments.sql'], ['--file', 'semis.sql'], ['--command', ';;'], ['--command', '/* hi */'], ['--command', '']];
  const expected = [Messages.noStatements, Messages.emptyStatement, Messages.emptyStatement, Messages.emptyStatement, Messages.emptyStatement, 'Error: must provide --command or --file.'];
  for (const [i, input] of cases.entries()) {
    const pair = await both(dir, ['execute', 'DB', '--local', ...input]);
    assert.equal(pair.d.code, 1, show(pair));
    assert.equal(pair.w.code, 1, show(pair));
    assert.equal(errorLine(pair.d.stderr), errorLine(pair.w.stderr), show(pair));
    assert.equal(errorLine(pair.d.stderr), `✘ [ERROR] ${expected[i]}`);
    assert.ok(!existsSync(path.join(pair.dDir, '.wrangler')), `${input.join(' ')} created local state`);
  }
});

test('export: --table of a missing table, a view, or another case, and a database never created, as wrangler writes them', async () => {
  const setup = 'CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);\nCREATE VIEW v1 AS SELECT * FROM parent;\nINSERT INTO parent VALUES (1, \'a\');\n';
  const never = project({ 'wrangler.toml': TOML });
  const fresh = await both(never, ['export', 'DB', '--local', '--output', 'out.sql']);
  assert.equal(fresh.d.code, 0, show(fresh));
  assert.equal(readFileSync(path.join(fresh.dDir, 'out.sql'), 'utf8'), readFileSync(path.join(fresh.wDir, 'out.sql'), 'utf8'));
  assert.equal(readFileSync(path.join(fresh.dDir, 'out.sql'), 'utf8'), 'PRAGMA defer_foreign_keys=TRUE;');
  assert.ok(existsSync(localFile(fresh.dDir, SHOP_ID)), 'the database is created, as wrangler creates it');

  const made = await both(project({ 'wrangler.toml': TOML, 'setup.sql': setup }), ['execute', 'DB', '--local', '--file', 'setup.sql']);
  assert.equal(made.d.code, 0, show(made));
  for (const tables of [['nope'], ['v1'], ['PARENT']]) {
    const args = ['d1', 'export', 'DB', '--local', '--output', 'out.sql', ...tables.flatMap((t) => ['--table', t])];
    const [w, d] = await Promise.all([wrangler(made.wDir, args), dione(made.dDir, args)]);
    assert.equal(d.code, 0, `${tables}: ${d.stderr}`);
    assert.equal(w.code, 0, `${tables}: ${w.stderr}`);
    assert.equal(readFileSync(path.join(made.dDir, 'out.sql'), 'utf8'), readFileSync(path.join(made.wDir, 'out.sql'), 'utf8'), tables.join());
  }
});

test('--persist-to without --local is refused as in wrangler; --cwd and .env files choose as wrangler does', async () => {
  const dir = project({ 'wrangler.toml': TOML, 'migrations/0001_a.sql': 'CREATE TABLE a (x);\n' });
  for (const args of [
    ['execute', 'DB', '--persist-to', 'elsewhere', '--command', 'SELECT 1'],
    ['migrations', 'apply', 'DB', '--persist-to', 'elsewhere'],
  ]) {
    const pair = await both(dir, args);
    assert.equal(pair.d.code, 1, show(pair));
    assert.equal(pair.w.code, 1, show(pair));
    assert.equal(errorLine(pair.d.stderr), errorLine(pair.w.stderr));
    assert.equal(errorLine(pair.d.stderr), "✘ [ERROR] Error: can't use --persist-to without --local");
    assert.ok(!existsSync(path.join(pair.dDir, 'elsewhere')));
  }

  // From a parent folder, --cwd runs in the app; the app's .env sets CLOUDFLARE_ENV.
  const staging = '22222222-2222-3333-4444-555555555555';
  const parent = project({
    'app/wrangler.toml': `${TOML}\n[env.staging]\n[[env.staging.d1_databases]]\nbinding = "DB"\ndatabase_name = "shop-stg"\ndatabase_id = "${staging}"\n`,
    'app/.env': 'CLOUDFLARE_ENV=staging\n',
    'top.env': 'CLOUDFLARE_ENV=\n',
  });
  const pair = await both(parent, ['execute', 'DB', '--cwd', 'app', '--command', 'CREATE TABLE marker (x)']);
  assert.equal(pair.d.code, 0, show(pair));
  for (const copy of [pair.wDir, pair.dDir]) {
    assert.ok(existsSync(localFile(path.join(copy, 'app'), staging)), `${copy}\n${show(pair)}`);
    assert.ok(!existsSync(localFile(path.join(copy, 'app'), SHOP_ID)), copy);
  }
  // --env-file replaces the default files (an absolute path: Node 20 itself reads an --env-file it sees, from the folder it started in).
  const top = await dione(pair.dDir, ['d1', 'execute', 'DB', '--cwd', 'app', '--env-file', path.join(pair.dDir, 'top.env'), '--command', 'CREATE TABLE marker (x)']);
  assert.equal(top.code, 0, top.stderr);
  assert.ok(existsSync(localFile(path.join(pair.dDir, 'app'), SHOP_ID)));
  // The environment the command starts with wins over the files.
  const given = await dione(pair.dDir, ['d1', 'execute', 'DB', '--cwd', 'app', '--command', 'SELECT 1'], { CLOUDFLARE_ENV: 'nope' });
  assert.equal(given.code, 1);
  assert.match(given.stderr, /has no environment "nope"/);
});
