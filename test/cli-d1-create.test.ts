// `dione d1 create` with a chosen id (--id), from a wrangler config (--from-config), on a server or
// in a server's catalogue (--data), and the one database lookup every command shares: a config's
// database_id and database_name must name the same database, or the command stops naming both.
// The CLI runs as a process against a real server; every effect is checked through the REST API.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { dione, failed, ok, project } from './helpers/cli-d1.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let srv: TestServer;
before(async () => {
  srv = await startTestServer();
});
after(() => srv?.close());

const env = () => ({ DIONE_URL: srv.url, DIONE_TOKEN: srv.token });

/** The server's database with this id or name, or undefined (404). */
async function onServer(idOrName: string): Promise<{ uuid: string; name: string } | undefined> {
  const response = await srv.call(`${srv.api}/${encodeURIComponent(idOrName)}`);
  if (response.status === 404) return undefined;
  assert.equal(response.status, 200);
  return ((await response.json()) as { result: { uuid: string; name: string } }).result;
}

const toml = (entries: { binding: string; name?: string; id?: string }[]) =>
  entries
    .map((e) => ['[[d1_databases]]', `binding = "${e.binding}"`, e.name && `database_name = "${e.name}"`, e.id && `database_id = "${e.id}"`].filter(Boolean).join('\n'))
    .join('\n\n');

describe('dione d1 create', { concurrency: true }, () => {
  it('--id gives the new database that id; invalid and taken ids are refused and create nothing', async (t) => {
    const p = project({});
    t.after(p.cleanup);
    const id = '3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c';
    const created = ok(await dione(p.dir, ['d1', 'create', 'c-chosen', '--id', id], env()), 'create --id');
    assert.match(created.stdout, new RegExp(`"database_id": "${id}"`), 'the printed entry has the chosen id');
    const made = await onServer(id);
    assert.deepEqual([made?.uuid, made?.name], [id, 'c-chosen']);

    const [notUuid, upper, takenId, takenName] = await Promise.all([
      dione(p.dir, ['d1', 'create', 'c-bad', '--id', 'my-database-id'], env()),
      dione(p.dir, ['d1', 'create', 'c-bad', '--id', id.toUpperCase()], env()),
      dione(p.dir, ['d1', 'create', 'c-other', '--id', id], env()),
      dione(p.dir, ['d1', 'create', 'c-chosen', '--id', '7b2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c'], env()),
    ]);
    failed(notUuid, /Invalid database id "my-database-id": a database id is a UUID in lowercase hex digits, 8-4-4-4-12/, 'an id that is no UUID');
    failed(upper, /write it in lowercase/, 'an upper-case id');
    failed(takenId, new RegExp(`A database with the id ${id} already exists: 'c-chosen'`), 'a taken id');
    failed(takenName, /A database with that name already exists/, 'a taken name');
    assert.equal(await onServer('c-bad'), undefined);
    assert.equal(await onServer('c-other'), undefined);
    assert.equal(await onServer('7b2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c'), undefined);
  });

  it('--from-config creates every d1_databases entry with its database_id and name, of an --env too; a second run leaves them', async (t) => {
    const ids = ['11111111-2222-4333-8444-555555555501', '11111111-2222-4333-8444-555555555502', '11111111-2222-4333-8444-555555555503'];
    const config = {
      d1_databases: [
        { binding: 'DB', database_name: 'fc-main', database_id: ids[0] },
        { binding: 'CACHE', database_name: 'fc-cache', database_id: ids[1] },
      ],
      env: { staging: { d1_databases: [{ binding: 'DB', database_name: 'fc-staging', database_id: ids[2] }] } },
    };
    const p = project({ 'wrangler.jsonc': `// a project\n${JSON.stringify(config, null, 2)}` });
    t.after(p.cleanup);
    const first = ok(await dione(p.dir, ['d1', 'create', '--from-config'], env()), 'create --from-config');
    assert.match(first.stdout, new RegExp(`Created DB 'fc-main' \\(${ids[0]}\\)`));
    assert.match(first.stdout, new RegExp(`Created DB 'fc-cache' \\(${ids[1]}\\)`));
    assert.deepEqual([(await onServer(ids[0]))?.name, (await onServer(ids[1]))?.name, await onServer(ids[2])], ['fc-main', 'fc-cache', undefined], 'the top-level entries, not the env');
    ok(await dione(p.dir, ['d1', 'create', '--from-config', '--env', 'staging'], env()), 'create --from-config --env staging');
    assert.equal((await onServer(ids[2]))?.name, 'fc-staging');

    const again = ok(await dione(p.dir, ['d1', 'create', '--from-config'], env()), 'a second run');
    assert.match(again.stdout, new RegExp(`'fc-main' \\(${ids[0]}\\) is there already`));
    assert.match(again.stdout, new RegExp(`'fc-cache' \\(${ids[1]}\\) is there already`));
    assert.doesNotMatch(again.stdout, /Created/);

    // The databases are the ones the commands use, by binding or name.
    ok(await dione(p.dir, ['d1', 'execute', 'CACHE', '--remote', '--command', 'CREATE TABLE kv (k TEXT)'], env()), 'execute by binding');
    const tables = await (await srv.call(`${srv.api}/${ids[1]}/query`, { method: 'POST', body: JSON.stringify({ sql: "SELECT name FROM sqlite_master WHERE name = 'kv'" }) })).json();
    assert.deepEqual((tables as { result: { results: unknown[] }[] }).result[0]!.results, [{ name: 'kv' }]);
  });

  it('a config whose database_id and database_name lead to different databases is refused by every command, naming both', async (t) => {
    const shopId = await srv.createDatabase('mm-shop');
    const oldId = await srv.createDatabase('mm-old');
    const configured = '22222222-3333-4444-8555-666666666601';
    // The config's id is unknown here while its name is another database.
    const byName = project({ 'wrangler.toml': toml([{ binding: 'DB', name: 'mm-shop', id: configured }]) });
    // The config's id is a database of another name.
    const byId = project({ 'wrangler.toml': toml([{ binding: 'DB', name: 'mm-new', id: oldId }]) });
    // A migrations folder, so that `migrations list` gets as far as the database (wrangler looks for the folder first).
    for (const dir of [byName.dir, byId.dir]) {
      mkdirSync(path.join(dir, 'migrations'));
      writeFileSync(path.join(dir, 'migrations', '0001_x.sql'), 'CREATE TABLE x (v);\n');
    }
    t.after(() => {
      byName.cleanup();
      byId.cleanup();
    });
    const commands = [
      ['d1', 'execute', 'DB', '--remote', '--command', 'CREATE TABLE wrong (x)'],
      ['d1', 'migrations', 'list', 'DB', '--remote'],
      ['d1', 'export', 'DB', '--remote', '--output', 'dump.sql'],
      ['d1', 'info', 'DB'],
      ['d1', 'delete', 'DB', '-y'],
      ['d1', 'time-travel', 'info', 'DB'],
      ['d1', 'create', '--from-config'],
    ];
    const runs = await Promise.all([...commands.map((c) => dione(byName.dir, c, env())), ...commands.map((c) => dione(byId.dir, c, env()))]);
    for (const [i, r] of runs.slice(0, commands.length).entries()) {
      failed(r, new RegExp(`says database 'mm-shop' has the id ${configured}, but the Dione server at \\S+ has no database with that id, and its 'mm-shop' is another database, ${shopId}`), `${commands[i]!.join(' ')} (the name is another database)`);
    }
    for (const [i, r] of runs.slice(commands.length).entries()) {
      failed(r, new RegExp(`says database 'mm-new' has the id ${oldId}, but on the Dione server at \\S+ ${oldId} is named 'mm-old', and no database there is named 'mm-new'`), `${commands[i]!.join(' ')} (the id has another name)`);
    }
    assert.match(runs.at(-1)!.stderr, /Nothing was created/);
    assert.equal(await onServer('mm-new'), undefined);
    assert.equal(await onServer(configured), undefined);
    assert.ok((await onServer(shopId)) && (await onServer(oldId)), 'neither database was deleted');
    const wrote = await (await srv.call(`${srv.api}/mm-shop/query`, { method: 'POST', body: JSON.stringify({ sql: "SELECT count(*) AS n FROM sqlite_master WHERE name = 'wrong'" }) })).json();
    assert.deepEqual((wrote as { result: { results: unknown[] }[] }).result[0]!.results, [{ n: 0 }], 'nothing ran on the database of the same name');
    assert.equal(existsSync(path.join(byName.dir, 'dump.sql')), false);
  });

  it('--from-config refuses ids that are no UUIDs and one id under two names; names --data and --url conflicts', async (t) => {
    const id = '33333333-4444-4555-8666-777777777701';
    const p = project({
      'wrangler.toml': toml([
        { binding: 'A', name: 'bad-a', id: 'cloudflare-id' },
        { binding: 'B', name: 'bad-b', id },
        { binding: 'C', name: 'bad-c', id },
      ]),
    });
    t.after(p.cleanup);
    const [r, both, noName, idAndConfig] = await Promise.all([
      dione(p.dir, ['d1', 'create', '--from-config'], env()),
      dione(p.dir, ['d1', 'create', 'x', '--url', srv.url, '--data', p.dir], env()),
      dione(p.dir, ['d1', 'create'], env()),
      dione(p.dir, ['d1', 'create', 'x', '--from-config', '--id', id], env()),
    ]);
    failed(r, /entry 'A': Invalid database id "cloudflare-id"/, 'an id that is no UUID');
    failed(r, /entries 'bad-b' and 'bad-c' have the same database_id/, 'one id, two names');
    assert.match(r.stderr, /Nothing was created/);
    for (const name of ['bad-a', 'bad-b', 'bad-c']) assert.equal(await onServer(name), undefined);
    failed(both, /--url and --data name two places/, '--url and --data');
    failed(noName, /Missing the database name/, 'no name');
    failed(idAndConfig, /--id and --from-config cannot be used together/, '--id with --from-config');
  });

  it("a database the server lacks: the hint is a command that works, and afterwards the config's database is used", async (t) => {
    const id = '44444444-5555-4666-8777-888888888801';
    const p = project({ 'wrangler.toml': toml([{ binding: 'DB', name: 'hint-db', id }]) });
    t.after(p.cleanup);
    const missing = await dione(p.dir, ['d1', 'execute', 'DB', '--remote', '--command', 'SELECT 1'], env());
    failed(missing, /Couldn't find a D1 DB named 'DB'/, 'missing database');
    const hint = /Create it with `dione (d1 create [^`]+)`/.exec(missing.stderr)?.[1];
    assert.equal(hint, `d1 create hint-db --id ${id}`);
    assert.doesNotMatch(missing.stderr, /--remote`/, 'no option that create does not have');
    ok(await dione(p.dir, hint.split(' '), env()), 'the hinted command');
    ok(await dione(p.dir, ['d1', 'execute', 'DB', '--remote', '--command', 'CREATE TABLE t (x)'], env()), 'execute after create');
    assert.equal((await onServer(id))?.name, 'hint-db');
  });

  it("--data writes a server's catalogue, while it runs: the server serves the database at once", async (t) => {
    const id = '55555555-6666-4777-8888-999999999901';
    const p = project({ 'wrangler.toml': toml([{ binding: 'DB', name: 'cat-db', id }, { binding: 'OTHER', name: 'cat-other', id: '55555555-6666-4777-8888-999999999902' }]) });
    t.after(p.cleanup);
    // The server has been asked for it (and answered 404) before it exists.
    assert.equal(await onServer(id), undefined);
    const created = ok(await dione(p.dir, ['d1', 'create', 'cat-db', '--id', id, '--data', srv.dataDir]), 'create --data');
    assert.match(created.stdout, /Successfully created DB 'cat-db'/);
    assert.equal((await onServer(id))?.name, 'cat-db', 'the running server finds it');
    assert.equal((await onServer('cat-db'))?.uuid, id);
    const fromConfig = ok(await dione(p.dir, ['d1', 'create', '--from-config', '--data', srv.dataDir]), 'create --from-config --data');
    assert.match(fromConfig.stdout, new RegExp(`on the catalogue in ${srv.dataDir}`));
    assert.match(fromConfig.stdout, /'cat-db' \(55555555-6666-4777-8888-999999999901\) is there already/);
    assert.match(fromConfig.stdout, /Created DB 'cat-other' \(55555555-6666-4777-8888-999999999902\)/);
    assert.equal((await onServer('cat-other'))?.uuid, '55555555-6666-4777-8888-999999999902');
    ok(await dione(p.dir, ['d1', 'execute', 'DB', '--remote', '--command', 'CREATE TABLE t (x)'], env()), 'used through the server');

    const [taken, noCatalog] = await Promise.all([
      dione(p.dir, ['d1', 'create', 'cat-again', '--id', id, '--data', srv.dataDir]),
      dione(p.dir, ['d1', 'create', 'cat-nowhere', '--data', path.join(p.dir, 'no-such-folder')]),
    ]);
    failed(taken, new RegExp(`A database with the id ${id} already exists: 'cat-db'`), 'a taken id in the catalogue');
    failed(noCatalog, /No Dione catalogue in .*no-such-folder \(--data\).*Give the data folder of your server with --data/, 'a folder without a catalogue');
    assert.equal(existsSync(path.join(p.dir, 'no-such-folder')), false, 'nothing was created there');
  });
});
