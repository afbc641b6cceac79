// `dione d1 time-travel info|restore` and `dione d1 fork` through the real CLI against a real
// server, every effect checked through dione/client; then the real wrangler's time-travel commands
// against the same server.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { convertTimestampToISO } from '../src/cli/d1/time-travel.ts';
import { connect } from '../src/client.ts';
import { type CliRun, dione, project } from './helpers/cli-d1.ts';
import { root } from './helpers/paths.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

let srv: TestServer;
let cwd: string;
let cleanup: () => void;

before(async () => {
  srv = await startTestServer();
  ({ dir: cwd, cleanup } = project({}));
});

after(async () => {
  await srv?.close();
  cleanup?.();
});

const cli = (args: string[], env: Record<string, string | undefined> = {}, dir = cwd) => dione(dir, ['d1', ...args], { DIONE_URL: srv.url, DIONE_TOKEN: srv.token, ...env });

function ok(r: CliRun, what: string): CliRun {
  assert.equal(r.code, 0, `${what}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

function failed(r: CliRun, expected: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what}:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, expected, what);
}

const json = (r: CliRun) => JSON.parse(r.stdout);

/** A database with table t holding `rows`, through the server. */
async function seeded(name: string, rows: number[]) {
  await srv.createDatabase(name);
  const db = connect({ url: srv.url, token: srv.token, database: name });
  await db.exec('CREATE TABLE t (n INTEGER)');
  for (const n of rows) await db.prepare('INSERT INTO t VALUES (?)').bind(n).run();
  return db;
}

async function numbers(database: string): Promise<number[]> {
  const db = connect({ url: srv.url, token: srv.token, database });
  return (await db.prepare('SELECT n FROM t ORDER BY n').raw<[number]>()).map(([n]) => n);
}

async function currentBookmark(database: string): Promise<string> {
  const response = await srv.call(`${srv.api}/${database}/time_travel/bookmark`);
  return ((await response.json()) as { result: { bookmark: string } }).result.bookmark;
}

/** A time strictly between the commits before and after it. */
async function pointInTime(): Promise<string> {
  await sleep(30);
  const iso = new Date().toISOString();
  await sleep(30);
  return iso;
}

test('timestamps are read as wrangler reads them', () => {
  const now = new Date('2025-06-15T12:00:01.000Z');
  assert.equal(convertTimestampToISO('1749988800', now), '2025-06-15T12:00:00.000Z', '10 digits: unix seconds');
  assert.equal(convertTimestampToISO('1749988800123', now), '2025-06-15T12:00:00.123Z', 'other numbers: unix milliseconds');
  assert.equal(convertTimestampToISO('2025-06-15T13:30+02:00', now), '2025-06-15T11:30:00.000Z', 'RFC 3339 without seconds, with an offset');
  assert.equal(convertTimestampToISO('2025-06-01T08:00:00.5Z', now), '2025-06-01T08:00:00.500Z');
  assert.throws(() => convertTimestampToISO('yesterday', now), /^Error: Invalid timestamp 'yesterday'\. Please provide a valid Unix timestamp or ISO string, for example: /);
  assert.throws(() => convertTimestampToISO('2025-06-14', now), /Please provide a valid Unix timestamp or ISO string/, 'a date alone is not a timestamp');
  assert.throws(() => convertTimestampToISO('2025-06-15T12:00:02Z', now), /^Error: Invalid timestamp '2025-06-15T12:00:02Z'\. Please provide a timestamp in the past$/);
  assert.throws(() => convertTimestampToISO('2025-05-01T00:00:00Z', now), /^Error: Invalid timestamp '2025-05-01T00:00:00Z'\. Please provide a timestamp within the last 30 days$/);
  assert.equal(convertTimestampToISO('2025-05-17T00:00:00Z', now), '2025-05-17T00:00:00.000Z', '29 days ago');
});

describe('dione d1 time-travel and fork against a server', { concurrency: true }, () => {
  it('info now and at a timestamp; restore by bookmark and by timestamp, and undo', async () => {
    await seeded('tt-restore', [1]);
    const first = ok(await cli(['time-travel', 'info', 'tt-restore', '--json']), 'info --json');
    const b1 = json(first).bookmark as string;
    assert.match(b1, BOOKMARK);
    assert.deepEqual(json(first), { bookmark: await currentBookmark('tt-restore') });
    const text = ok(await cli(['time-travel', 'info', 'tt-restore']), 'info');
    assert.match(text.stdout, new RegExp(`^⚠️ The current bookmark is '${b1}'$`, 'm'));
    assert.match(text.stdout, new RegExp(`dione d1 time-travel restore tt-restore --bookmark=${b1}\``));

    const t1 = await pointInTime();
    await connect({ url: srv.url, token: srv.token, database: 'tt-restore' }).exec('INSERT INTO t VALUES (2)');
    const b2 = await currentBookmark('tt-restore');
    assert.ok(b2 > b1, 'bookmarks grow with commits');

    const [atIso, atMillis, atText] = await Promise.all([
      cli(['time-travel', 'info', 'tt-restore', '--timestamp', t1, '--json']),
      cli(['time-travel', 'info', 'tt-restore', '--timestamp', String(Date.parse(t1)), '--json']),
      cli(['time-travel', 'info', 'tt-restore', '--timestamp', t1]),
    ]);
    assert.deepEqual(json(ok(atIso, 'info --timestamp ISO')), { bookmark: b1 });
    assert.deepEqual(json(ok(atMillis, 'info --timestamp unix ms')), { bookmark: b1 });
    assert.match(ok(atText, 'info --timestamp').stdout, new RegExp(`^⚠️ Timestamp '${t1}' corresponds with bookmark '${b1}'$`, 'm'));

    // Without a terminal the confirmation is taken as yes, as wrangler's fallback.
    const restored = ok(await cli(['time-travel', 'restore', 'tt-restore', '--bookmark', b1]), 'restore --bookmark');
    assert.deepEqual(await numbers('tt-restore'), [1]);
    const b3 = await currentBookmark('tt-restore');
    assert.ok(b3 > b2, 'a restore is a new commit: history is kept');
    assert.match(restored.stdout, new RegExp(`^🚧 Restoring database tt-restore from bookmark ${b1}$`, 'm'));
    assert.match(restored.stdout, /^⚠️ This will overwrite all data in database tt-restore\.\nIn-flight queries and transactions will be cancelled\.$/m);
    assert.match(restored.stdout, new RegExp(`^✅ Database tt-restore restored back to bookmark ${b3}$`, 'm'));
    assert.match(restored.stdout, new RegExp(`^↩️ To undo this operation, you can restore to the previous bookmark: ${b2}$`, 'm'));

    const undo = json(ok(await cli(['time-travel', 'restore', 'tt-restore', '--bookmark', b2, '--json']), 'undo --json'));
    assert.deepEqual(await numbers('tt-restore'), [1, 2], 'restoring the previous bookmark undoes the restore');
    assert.equal(undo.previous_bookmark, b3);
    assert.equal(undo.bookmark, await currentBookmark('tt-restore'));
    assert.equal(typeof undo.message, 'string');

    const byTime = ok(await cli(['time-travel', 'restore', 'tt-restore', '--timestamp', t1]), 'restore --timestamp');
    assert.match(byTime.stdout, new RegExp(`^🚧 Restoring database tt-restore from bookmark ${b1}$`, 'm'), 'the timestamp is resolved to its bookmark first');
    assert.match(byTime.stdout, new RegExp(`previous bookmark: ${undo.bookmark}$`, 'm'));
    assert.deepEqual(await numbers('tt-restore'), [1]);
  });

  it('bad bookmarks and timestamps are refused with a clear error and change nothing', async () => {
    await seeded('tt-bad', [1, 2]);
    await seeded('tt-other', []);
    const before = await currentBookmark('tt-bad');
    const other = await currentBookmark('tt-other');
    const unchanged = async (what: string) => {
      assert.deepEqual(await numbers('tt-bad'), [1, 2], what);
      assert.equal(await currentBookmark('tt-bad'), before, what);
    };
    const [malformed, foreign, future, asJson] = await Promise.all([
      cli(['time-travel', 'restore', 'tt-bad', '--bookmark', 'not-a-bookmark']),
      cli(['time-travel', 'restore', 'tt-bad', '--bookmark', other]),
      cli(['time-travel', 'restore', 'tt-bad', '--bookmark', before.replace(/^(\w{8})-(\w{8})/, '$1-7fffffff')]),
      cli(['time-travel', 'restore', 'tt-bad', '--bookmark', 'not-a-bookmark', '--json']),
    ]);
    failed(malformed, /Invalid bookmark 'not-a-bookmark'.*Database tt-bad was not changed\./, 'malformed bookmark');
    failed(foreign, /it belongs to another database/, "another database's bookmark");
    failed(future, /it is in the future/, 'a bookmark not reached yet');
    assert.equal(asJson.code, 1);
    assert.match(json(asJson).error.text, /Invalid bookmark 'not-a-bookmark'/);
    await unchanged('after the refused bookmarks');

    const hourAgo = String(Math.floor(Date.now() / 1000) - 3600);
    const cases: [string[], RegExp][] = [
      [['restore', 'tt-bad', '--timestamp', 'soon'], /^✘ \[ERROR\] Invalid timestamp 'soon'\. Please provide a valid Unix timestamp or ISO string, for example: /],
      [['restore', 'tt-bad', '--timestamp', '2999-01-01T00:00:00Z'], /Invalid timestamp '2999-01-01T00:00:00Z'\. Please provide a timestamp in the past/],
      [['info', 'tt-bad', '--timestamp', '1000000000'], /Invalid timestamp '1000000000'\. Please provide a timestamp within the last 30 days/],
      // Within 30 days but before the database existed: the server says where its history starts.
      [['restore', 'tt-bad', '--timestamp', hourAgo], /Invalid timestamp .*history starts at/],
      [['restore', 'tt-bad', '--timestamp', hourAgo, '--bookmark', before], /^✘ \[ERROR\] Cannot use --timestamp and --bookmark together\./],
      [['restore', 'tt-bad'], /^✘ \[ERROR\] Missing required option --timestamp or --bookmark\./],
      [['restore', 'tt-bad', '--bookmark', before, '--local'], /works on a Dione server only.*has no history/],
      [['info', 'no-such-db'], /Couldn't find a D1 DB named 'no-such-db'/],
    ];
    const runs = await Promise.all(cases.map(([args]) => cli(['time-travel', ...args])));
    for (const [i, r] of runs.entries()) failed(r, cases[i]![1], cases[i]![0].join(' '));
    await unchanged('after the refused timestamps');
  });

  it('fork: a new database with the data at the point, the source keeps its newer data', async () => {
    const source = await seeded('tt-source', [1, 2]);
    const b = await currentBookmark('tt-source');
    const t = await pointInTime();
    await source.exec('INSERT INTO t VALUES (3)');

    const forked = ok(await cli(['fork', 'tt-source', 'tt-fork', '--bookmark', b]), 'fork --bookmark');
    const uuid = /^✅ Successfully forked DB 'tt-source' at bookmark (\S+) into new DB 'tt-fork' \(([0-9a-f-]{36})\)$/m.exec(forked.stdout);
    assert.ok(uuid, forked.stdout);
    assert.equal(uuid[1], b);
    assert.match(forked.stdout, new RegExp(`"database_name": "tt-fork",\\n\\s*"database_id": "${uuid[2]}"`));
    assert.deepEqual(await numbers('tt-fork'), [1, 2]);
    assert.deepEqual(await numbers('tt-source'), [1, 2, 3]);

    const byTime = json(ok(await cli(['fork', 'tt-source', 'tt-fork-2', '--timestamp', t, '--json']), 'fork --timestamp --json'));
    assert.equal(byTime.name, 'tt-fork-2');
    assert.equal(byTime.version, 'production');
    const sourceInfo = await (await srv.call(`${srv.api}/tt-source`)).json();
    const sourceUuid = (sourceInfo as { result: { uuid: string } }).result.uuid;
    assert.equal(byTime.forked_from.uuid, sourceUuid);
    assert.match(byTime.forked_from.bookmark, BOOKMARK);
    assert.deepEqual(await numbers('tt-fork-2'), [1, 2]);

    // By binding through wrangler.toml; the printed entry follows the config's format.
    const p = project({ 'wrangler.toml': `[[d1_databases]]\nbinding = "SRC"\ndatabase_name = "tt-source"\ndatabase_id = "${sourceUuid}"\n` });
    try {
      const viaBinding = ok(await cli(['fork', 'SRC', 'tt-fork-3', '--bookmark', b, '--binding', 'COPY'], {}, p.dir), 'fork by binding');
      assert.match(viaBinding.stdout, /\[\[d1_databases\]\]\nbinding = "COPY"\ndatabase_name = "tt-fork-3"\ndatabase_id = "[0-9a-f-]{36}"/);
    } finally {
      p.cleanup();
    }
    assert.deepEqual(await numbers('tt-fork-3'), [1, 2]);

    const [taken, takenJson, noPoint] = await Promise.all([
      cli(['fork', 'tt-source', 'tt-fork', '--bookmark', b]),
      cli(['fork', 'tt-source', 'tt-fork', '--bookmark', b, '--json']),
      cli(['fork', 'tt-source', 'tt-fork-4']),
    ]);
    failed(taken, /A database with that name already exists \[code: 7502\]/, 'fork onto a taken name');
    // --json prints a refused request as wrangler prints its APIError: the server's errors are notes.
    assert.match(json(takenJson).error.text, /^A request to the Cloudflare API \(\/accounts\/\w+\/d1\/database\/[0-9a-f-]+\/fork\) failed\.$/);
    assert.match(json(takenJson).error.notes[0].text, /already exists \[code: 7502\]/);
    failed(noPoint, /Missing required option --timestamp or --bookmark/, 'fork without a point');
    assert.deepEqual(await numbers('tt-fork'), [1, 2], 'the existing database is untouched');
  });

  it('on a terminal, restore asks and defaults to no', { skip: process.platform !== 'linux' || !existsSync('/usr/bin/script') }, async () => {
    const db = await seeded('tt-confirm', [1]);
    const b = await currentBookmark('tt-confirm');
    await db.exec('INSERT INTO t VALUES (2)');
    // util-linux `script` gives the CLI a pseudo-terminal; its input is what the user types.
    const onTerminal = (answer: string) =>
      new Promise<string>((resolve) => {
        const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(root, 'bin/dione.js'))} d1 time-travel restore tt-confirm --bookmark ${b}`;
        const child = spawn('script', ['-qec', command, '/dev/null'], {
          cwd,
          env: { ...process.env, CI: undefined, NO_COLOR: '1', DIONE_URL: srv.url, DIONE_TOKEN: srv.token },
        });
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('OK to proceed (y/N)') && child.stdin.writable) child.stdin.end(`${answer}\n`);
        });
        child.on('close', () => resolve(out));
      });
    for (const answer of ['', 'n']) {
      assert.match(await onTerminal(answer), /Not restoring\./, `answer '${answer}'`);
      assert.deepEqual(await numbers('tt-confirm'), [1, 2]);
    }
    assert.match(await onTerminal('y'), /restored back to bookmark/);
    assert.deepEqual(await numbers('tt-confirm'), [1]);
  });
});

// The real wrangler (a devDependency) pointed at the server, as in server-wrangler.test.ts: a fresh
// HOME, CI=true, CLOUDFLARE_API_BASE_URL at the server, and a guard that refuses any connection
// beyond 127.0.0.1 (its npm update check is pointed at the server, which answers 404).
async function wrangler(args: string[], dir: string): Promise<CliRun & { refused: string[] }> {
  const scratch = mkdtempSync(path.join(tmpdir(), 'dione-tt-wrangler-'));
  const netLog = path.join(scratch, 'net.log');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: scratch,
    XDG_CONFIG_HOME: scratch,
    TMPDIR: scratch,
    CLOUDFLARE_API_BASE_URL: `${srv.url}/client/v4`,
    CLOUDFLARE_API_TOKEN: srv.token,
    CLOUDFLARE_ACCOUNT_ID: srv.accountId,
    WRANGLER_SEND_METRICS: 'false',
    WRANGLER_SEND_ERROR_REPORTS: 'false',
    CI: 'true',
    NO_COLOR: '1',
    NODE_OPTIONS: `--require ${path.join(root, 'test/fixtures/wrangler/no-network.cjs')}`,
    DIONE_NET_LOG: netLog,
    npm_registry: `${srv.url}/npm-registry-stand-in/`,
  };
  try {
    return await new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(root, 'node_modules/wrangler/bin/wrangler.js'), ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (s: Buffer) => (stdout += s));
      child.stderr.on('data', (s: Buffer) => (stderr += s));
      child.on('close', (code) => {
        const refused = existsSync(netLog) ? readFileSync(netLog, 'utf8').split('\n').filter(Boolean) : [];
        resolve({ code: code ?? 1, stdout, stderr, refused });
      });
    });
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

test('the real wrangler: d1 time-travel info and restore work against Dione', async (t) => {
  const db = await seeded('tt-wrangler', [1]);
  const uuid = ((await (await srv.call(`${srv.api}/tt-wrangler`)).json()) as { result: { uuid: string } }).result.uuid;
  const p = project({ 'wrangler.toml': `name = "app"\ncompatibility_date = "2025-01-01"\n\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "tt-wrangler"\ndatabase_id = "${uuid}"\n` });
  t.after(p.cleanup);
  const show = (r: CliRun) => `code ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
  const succeeded = (r: CliRun & { refused: string[] }) => {
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(r.refused, [], `wrangler tried to reach beyond 127.0.0.1\n${show(r)}`);
    return r;
  };

  const b1 = await currentBookmark('tt-wrangler');
  const t1 = await pointInTime();
  await db.exec('INSERT INTO t VALUES (2)');
  const b2 = await currentBookmark('tt-wrangler');

  const [info, infoAt] = await Promise.all([wrangler(['d1', 'time-travel', 'info', 'tt-wrangler', '--json'], p.dir), wrangler(['d1', 'time-travel', 'info', 'DB', '--timestamp', t1], p.dir)]);
  assert.deepEqual(JSON.parse(succeeded(info).stdout), { bookmark: b2 });
  assert.match(succeeded(infoAt).stdout, new RegExp(`Timestamp '${t1}' corresponds with bookmark '${b1}'`));

  const restored = JSON.parse(succeeded(await wrangler(['d1', 'time-travel', 'restore', 'tt-wrangler', '--bookmark', b1, '--json'], p.dir)).stdout);
  assert.equal(restored.previous_bookmark, b2);
  assert.equal(restored.bookmark, await currentBookmark('tt-wrangler'));
  assert.deepEqual(await numbers('tt-wrangler'), [1]);

  // Without --json, CI: wrangler confirms with its non-interactive fallback (yes) and restores.
  const undo = succeeded(await wrangler(['d1', 'time-travel', 'restore', 'DB', '--bookmark', b2], p.dir));
  assert.match(undo.stdout, new RegExp(`To undo this operation, you can restore to the previous bookmark: ${restored.bookmark}`));
  assert.deepEqual(await numbers('tt-wrangler'), [1, 2]);

  const bad = await wrangler(['d1', 'time-travel', 'restore', 'DB', '--bookmark', 'nonsense'], p.dir);
  assert.equal(bad.code, 1, show(bad));
  assert.match(bad.stdout + bad.stderr, /Invalid bookmark 'nonsense'/);
  assert.deepEqual(await numbers('tt-wrangler'), [1, 2]);
});
