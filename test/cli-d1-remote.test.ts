// `dione d1` against a real server, run as a process: an import reports the real totals and, when
// a statement fails, its line and where to resume, the same on a server as on a local file; a
// refused token gets a hint naming the scope the command needs; `d1 list` shows what wrangler shows;
// `execute --remote --json` prints what the real wrangler prints against the same server.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from '../src/client.ts';
import { dione, failed, ok, project } from './helpers/cli-d1.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';
import { jsonOf, show, type WranglerRunner, wranglerFor } from './helpers/wrangler.ts';

let srv: TestServer;
let cwd: string;
let cleanup: () => void;
let wrangler: WranglerRunner;

const DB_ID = '6c5b4a39-2817-4f60-8e5d-4c3b2a190817';

before(async () => {
  // Imports answer 'active' at once and are polled until they end, as D1's large ones are.
  srv = await startTestServer({ importWaitMs: 0 });
  ({ dir: cwd, cleanup } = project({ 'wrangler.toml': `[[d1_databases]]\nbinding = "DB"\ndatabase_name = "rows"\ndatabase_id = "${DB_ID}"\n` }));
});

after(async () => {
  await srv?.close();
  cleanup?.();
  wrangler?.close();
});

const remote = (token = srv.token) => ({ DIONE_URL: srv.url, DIONE_TOKEN: token });

/** One single-row INSERT per line, `count` of them, line `bad` (1-based) naming a missing column. */
function insertsFile(name: string, count: number, bad?: number): string {
  const lines = Array.from({ length: count }, (_, i) => (i + 1 === bad ? `INSERT INTO r VALUES (${i + 1}, oops);` : `INSERT INTO r VALUES (${i + 1}, 'row ${i + 1}');`));
  writeFileSync(path.join(cwd, name), `${lines.join('\n')}\n`);
  return name;
}

describe('dione d1 on a server', { concurrency: false }, () => {
  it('import: the summary counts every row written, on a server and on a local file alike', async () => {
    ok(await dione(cwd, ['d1', 'create', '--from-config'], remote()), 'create');
    const file = insertsFile('rows.sql', 2500);
    const summaries = [];
    for (const where of ['--remote', '--local']) {
      ok(await dione(cwd, ['d1', 'execute', 'DB', where, '--command', 'CREATE TABLE r (n INTEGER PRIMARY KEY, v TEXT)'], remote()), `create table ${where}`);
      const imported = ok(await dione(cwd, ['d1', 'import', 'DB', file, where, '--json'], remote()), `import ${where}`);
      const [summary] = JSON.parse(imported.stdout) as { results: Record<string, unknown>[]; meta: { rows_written: number } }[];
      summaries.push(summary!.results[0]);
      assert.equal(summary!.meta.rows_written, 2500);
    }
    for (const summary of summaries) {
      assert.equal(summary!['Total queries executed'], 2500);
      assert.equal(summary!['Rows written'], 2500, 'every row, not the last statement’s');
    }
    const db = connect({ url: srv.url, token: srv.token, database: DB_ID });
    assert.deepEqual(await db.prepare('SELECT count(*) AS n FROM r').all().then((r) => r.results), [{ n: 2500 }]);

    writeFileSync(path.join(cwd, 'three.sql'), "CREATE TABLE h (v TEXT);\nINSERT INTO h VALUES ('a');\nINSERT INTO h VALUES ('b');\nINSERT INTO h VALUES ('c');\n");
    const chunked = ok(await dione(cwd, ['d1', 'execute', 'DB', '--remote', '--file', 'three.sql', '--chunk-size', '2'], remote()), 'execute --file');
    assert.match(chunked.stdout, /^🚣 4 commands executed successfully\.$/m);
    const [summary] = JSON.parse(chunked.stdout.slice(chunked.stdout.indexOf('\n[') + 1)) as { results: Record<string, unknown>[] }[];
    // CREATE TABLE counts as D1 counts it (README: 1 or 2), then one row per INSERT.
    assert.equal(summary!.results[0]!['Total queries executed'], 4);
    assert.ok([4, 5].includes(summary!.results[0]!['Rows written'] as number), chunked.stdout);
  });

  it('a remote import is one transaction; with --chunk-size a failing statement is reported with its line, the chunks before it stay, and --from-line resumes', async () => {
    const db = connect({ url: srv.url, token: srv.token, database: DB_ID });
    await db.prepare('CREATE TABLE resumed (n INTEGER PRIMARY KEY, v TEXT)').run();
    const lines = Array.from({ length: 2500 }, (_, i) => `INSERT INTO resumed VALUES (${i + 1}, ${i + 1 === 1203 ? 'oops' : `'ok'`});`);
    writeFileSync(path.join(cwd, 'broken.sql'), `${lines.join('\n')}\n`);
    for (const command of [['import', 'DB', 'broken.sql'], ['execute', 'DB', '--file', 'broken.sql']]) {
      const atomic = await dione(cwd, ['d1', ...command, '--remote'], remote());
      failed(atomic, /^✘ \[ERROR\] no such column: oops at offset \d+: SQLITE_ERROR\nNothing of broken\.sql was applied: the import is one transaction\./, `${command[0]} --remote`);
      assert.deepEqual(await db.prepare('SELECT count(*) AS n FROM resumed').all().then((x) => x.results), [{ n: 0 }]);
    }

    const r = await dione(cwd, ['d1', 'import', 'DB', 'broken.sql', '--remote', '--chunk-size', '1000'], remote());
    failed(r, /broken\.sql:1203: .*no such column: oops/, 'remote import with a bad line');
    assert.match(r.stderr, /in: INSERT INTO resumed VALUES \(1203, oops\)\n/);
    assert.match(r.stderr, /The 1000 statement\(s\) before line 1001 are imported.*--from-line 1001/s);
    assert.deepEqual(await db.prepare('SELECT count(*) AS n, max(n) AS top FROM resumed').all().then((x) => x.results), [{ n: 1000, top: 1000 }]);

    lines[1202] = "INSERT INTO resumed VALUES (1203, 'fixed');";
    writeFileSync(path.join(cwd, 'broken.sql'), `${lines.join('\n')}\n`);
    ok(await dione(cwd, ['d1', 'import', 'DB', 'broken.sql', '--remote', '--chunk-size', '1000', '--from-line', '1001'], remote()), 'resumed import');
    assert.deepEqual(await db.prepare('SELECT count(*) AS n, sum(n) AS total FROM resumed').all().then((x) => x.results), [{ n: 2500, total: (2500 * 2501) / 2 }]);
  });

  it('a refused token gets a hint naming the scope the command needs', async () => {
    const read = srv.tokenFor('read');
    const unknown = 'dione_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    const cases: [string[], string, RegExp][] = [
      [['d1', 'create', 'hint-new'], read, /needs scope admin/],
      [['d1', 'delete', 'DB', '-y'], read, /needs scope admin/],
      [['d1', 'execute', 'DB', '--remote', '--command', 'INSERT INTO r VALUES (99999, NULL)'], read, /needs scope write/],
      [['d1', 'time-travel', 'restore', 'DB', '--timestamp', String(Math.floor(Date.now() / 1000) - 1)], read, /needs scope write/],
      [['d1', 'list'], unknown, /Set DIONE_TOKEN to a token of scope read or wider: `dione token create --scope read`/],
      [['d1', 'execute', 'DB', '--remote', '--command', 'SELECT 1'], unknown, /`dione token create --scope read`/],
      [['d1', 'execute', 'DB', '--remote', '--command', 'DELETE FROM r'], unknown, /`dione token create --scope write`/],
      [['d1', 'create', 'hint-new'], unknown, /`dione token create --scope admin`/],
    ];
    const runs = await Promise.all(cases.map(([args, token]) => dione(cwd, args, remote(token))));
    for (const [i, r] of runs.entries()) {
      const [args, , expected] = cases[i]!;
      failed(r, expected, args.join(' '));
      assert.doesNotMatch(r.stderr, /--scope (?!read|write|admin)/);
      if (!/admin/.test(String(expected))) assert.doesNotMatch(r.stderr, /--scope admin/, `${args.join(' ')} does not need admin`);
    }
    const db = connect({ url: srv.url, token: srv.token, database: DB_ID });
    assert.deepEqual(await db.prepare('SELECT count(*) AS n FROM r WHERE n = 99999').all().then((x) => x.results), [{ n: 0 }]);
  });

  it('execute --remote --json prints what wrangler prints: the API\'s results with their whole meta, the import\'s finalBookmark, its errors', async () => {
    wrangler ??= wranglerFor(srv);
    ok(await dione(cwd, ['d1', 'create', '--from-config'], remote()), 'create (or find) the database');
    const both = async (args: string[]) => {
      const w = await wrangler.run(['d1', ...args], { cwd });
      const d = await dione(cwd, ['d1', ...args], remote());
      assert.deepEqual(w.refused, [], show(w));
      return { w, d };
    };
    const zeroed = (value: unknown) => JSON.parse(JSON.stringify(value).replace(/"duration":[\d.e-]+/g, '"duration":0'));

    const read = await both(['execute', 'DB', '--remote', '--json', '--command', "SELECT 1 AS one, x'0102' AS b"]);
    assert.equal(read.w.code, 0, show(read.w));
    const printed = JSON.parse(ok(read.d, 'execute --remote --json').stdout);
    assert.deepEqual(zeroed(printed), zeroed(jsonOf(read.w)));
    assert.deepEqual(printed[0].results, [{ one: 1, b: [1, 2] }]);
    assert.deepEqual(Object.keys(printed[0].meta).sort(), ['changed_db', 'changes', 'duration', 'last_row_id', 'rows_read', 'rows_written', 'served_by', 'size_after']);

    writeFileSync(path.join(cwd, 'more.sql'), "CREATE TABLE IF NOT EXISTS more (v TEXT);\nINSERT INTO more VALUES ('a');\nINSERT INTO more VALUES ('b');\n");
    const file = await both(['execute', 'DB', '--remote', '--json', '--file', 'more.sql']);
    assert.equal(file.w.code, 0, show(file.w));
    const [theirs] = jsonOf(file.w) as Record<string, unknown>[];
    const [ours] = JSON.parse(ok(file.d, 'execute --remote --json --file').stdout) as Record<string, unknown>[];
    assert.deepEqual(Object.keys(ours!), Object.keys(theirs!));
    assert.deepEqual(Object.keys(ours!.meta as object), Object.keys(theirs!.meta as object));
    assert.match(String(ours!.finalBookmark), /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/);
    const [summary] = ours!.results as Record<string, unknown>[];
    assert.deepEqual(Object.keys(summary!), Object.keys((theirs!.results as object[])[0]!));
    assert.equal(summary!['Total queries executed'], 3);

    const failure = await both(['execute', 'DB', '--remote', '--json', '--command', 'SELECT * FROM nope']);
    assert.equal(failure.d.code, 1, failure.d.stderr);
    assert.deepEqual(JSON.parse(failure.d.stdout), jsonOf(failure.w));
  });

  it('d1 list shows the fields as wrangler does: no NULL for a missing jurisdiction', async () => {
    const list = ok(await dione(cwd, ['d1', 'list'], remote()), 'list');
    const lines = list.stdout.trimEnd().split('\n');
    assert.match(lines[1]!, /^│ uuid +│ name +│ created_at +│ version +│ jurisdiction │$/);
    const row = lines.find((l) => l.includes(DB_ID));
    assert.ok(row, list.stdout);
    assert.match(row, new RegExp(`^│ ${DB_ID} │ rows +│ \\S+ +│ production │ +│$`));
    assert.doesNotMatch(list.stdout, /NULL/);
  });
});
