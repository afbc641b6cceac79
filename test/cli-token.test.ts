// `dione token …` run as a process: it finds the catalogue the server uses (the nearest ./.dione
// from an app's folders, --data, DIONE_DATA) and never makes one silently; `token list` is a table
// with a header and database names; its output piped into a reader that stops early ends quietly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Catalog } from '../src/server/catalog.ts';
import { type RunningServer, startServer } from '../src/server/serve.ts';
import { createToken } from '../src/server/tokens.ts';
import { dione } from './helpers/cli-d1.ts';
import { root } from './helpers/paths.ts';

const TOKEN_LINE = /^dione_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}$/;

let project: string;
let server: RunningServer;
let api: string;

before(async () => {
  // A project whose server was started at its root: data in <project>/.dione.
  project = mkdtempSync(path.join(tmpdir(), 'dione-token-'));
  mkdirSync(path.join(project, 'app', 'src'), { recursive: true });
  server = await startServer({ port: 0, data: path.join(project, '.dione'), logger: pino({ level: 'silent' }) });
  api = `${server.url}/client/v4/accounts/${server.accountId}/d1/database`;
});

after(async () => {
  await server?.close();
  if (project) rmSync(project, { recursive: true, force: true });
});

const lastLine = (text: string) => text.trimEnd().split('\n').at(-1)!;
const status = async (token: string, url = api, init: RequestInit = {}) => (await fetch(url, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } })).status;

describe('dione token', { concurrency: true }, () => {
  it("from an app's folder, finds the catalogue of the server started at the project's root", async () => {
    const run = await dione(path.join(project, 'app', 'src'), ['token', 'create', '--scope', 'admin', '--name', 'deploys']);
    assert.equal(run.code, 0, run.stderr);
    const token = lastLine(run.stdout);
    assert.match(token, TOKEN_LINE);
    assert.match(run.stderr, new RegExp(`in ${path.join(project, '.dione')}`), 'it says which catalogue');
    assert.equal(await status(token), 200, 'the running server takes it');
    assert.equal(existsSync(path.join(project, 'app', 'src', '.dione')), false, 'no catalogue was made where it ran');
    assert.equal(existsSync(path.join(project, 'app', '.dione')), false);
  });

  it('without a catalogue it refuses, names --data, and creates nothing; --init makes one on purpose', async (t) => {
    const elsewhere = mkdtempSync(path.join(tmpdir(), 'dione-token-none-'));
    t.after(() => rmSync(elsewhere, { recursive: true, force: true }));
    assert.equal(existsSync(path.join(path.dirname(elsewhere), '.dione', 'catalog.sqlite')), false, 'precondition: no catalogue above the temporary folder');
    const [none, missingFlag, missingEnv, list, revoke] = await Promise.all([
      dione(elsewhere, ['token', 'create', '--scope', 'admin']),
      dione(elsewhere, ['token', 'create', '--data', 'data']),
      dione(elsewhere, ['token', 'create'], { DIONE_DATA: 'env-data' }),
      dione(elsewhere, ['token', 'list']),
      dione(elsewhere, ['token', 'revoke', 'abcdefabcdef']),
    ]);
    for (const r of [none, missingFlag, missingEnv, list, revoke]) {
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout, /dione_/, 'no token was printed');
      assert.match(r.stderr, /--data <dir>/, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    }
    assert.match(none.stderr, new RegExp(`No Dione catalogue found: no \\.dione/catalog\\.sqlite in ${elsewhere} or any folder above it`));
    assert.match(missingFlag.stderr, new RegExp(`No Dione catalogue in ${path.join(elsewhere, 'data')} \\(--data\\)`));
    assert.match(missingEnv.stderr, new RegExp(`No Dione catalogue in ${path.join(elsewhere, 'env-data')} \\(DIONE_DATA\\)`));
    for (const made of ['.dione', 'data', 'env-data']) assert.equal(existsSync(path.join(elsewhere, made)), false, `${made} was created`);

    const init = await dione(elsewhere, ['token', 'create', '--data', 'data', '--scope', 'admin', '--init']);
    assert.equal(init.code, 0, init.stderr);
    assert.match(lastLine(init.stdout), TOKEN_LINE);
    assert.match(init.stderr, new RegExp(`a new catalogue in ${path.join(elsewhere, 'data')}`));
    assert.ok(existsSync(path.join(elsewhere, 'data', 'catalog.sqlite')));
  });

  it('list: a table with a header, the database by name, revocations; --json for scripts', async () => {
    const shop = await fetch(api, { method: 'POST', headers: { authorization: `Bearer ${adminToken()}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'tok-shop' }) });
    const shopId = ((await shop.json()) as { result: { uuid: string } }).result.uuid;
    const data = ['--data', path.join(project, '.dione')];
    const made = await dione(project, ['token', 'create', ...data, '--scope', 'read', '--db', 'tok-shop', '--name', 'reporting']);
    assert.equal(made.code, 0, made.stderr);
    const readId = /^dione_([A-Za-z0-9]{12})_/.exec(lastLine(made.stdout))![1]!;
    const revoked = await dione(project, ['token', 'create', ...data, '--scope', 'write']);
    const revokedId = /^dione_([A-Za-z0-9]{12})_/.exec(lastLine(revoked.stdout))![1]!;
    assert.equal((await dione(project, ['token', 'revoke', revokedId, ...data])).code, 0);

    const [table, json] = await Promise.all([dione(project, ['token', 'list', ...data]), dione(project, ['token', 'list', ...data, '--json'])]);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[1]!, /^│ id +│ name +│ scope +│ database +│ created +│ status +│$/);
    const readRow = lines.find((l) => l.startsWith(`│ ${readId} `));
    assert.ok(readRow, table.stdout);
    assert.match(readRow, /│ reporting +│ read +│ tok-shop +│ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ │ active +│$/);
    assert.ok(!readRow.includes(shopId), 'the database is shown by its name');
    assert.match(lines.find((l) => l.startsWith(`│ ${revokedId} `))!, /│ write +│ \(all\) +│ .* │ revoked \d{4}-/);

    const listed = JSON.parse(json.stdout) as Record<string, string>[];
    assert.deepEqual(
      listed.find((r) => r.id === readId),
      { id: readId, name: 'reporting', scope: 'read', database: 'tok-shop', created: listed.find((r) => r.id === readId)!.created, status: 'active' },
    );
    assert.match(listed.find((r) => r.id === revokedId)!.status, /^revoked /);
  });

  it('list piped into a reader that goes away (`| head`) ends quietly with exit code 0', async () => {
    adminToken();
    const child = spawn(process.execPath, [path.join(root, 'bin/dione.js'), 'token', 'list', '--data', path.join(project, '.dione')], { stdio: ['ignore', 'pipe', 'pipe'] });
    // The reader is gone before the list is written: every write to the pipe fails (EPIPE).
    child.stdout.destroy();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    assert.equal(stderr, '', 'nothing on stderr');
    assert.equal(code, 0);
  });
});

/** An admin token made in the project's catalogue, as `dione token create` makes it. */
function adminToken(): string {
  const catalog = new Catalog(path.join(project, '.dione'));
  try {
    return createToken(catalog, 'admin', null).token;
  } finally {
    catalog.close();
  }
}
