// The Cloudflare D1 REST API of a real Dione server on 127.0.0.1: database list (pagination, name
// filter), create, get (by id and name, with and without fields), update, delete (files gone), and
// SQL through /query and /raw, with Cloudflare's envelopes and D1's error texts.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { beginTransaction, connect } from '../src/client.ts';
import { importCall, restImport, uploadImport } from './helpers/rest-transfer.ts';
import { type Envelope, fetchJson, jsonHeaders } from './helpers/server-checks.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer({});
});
after(() => s?.close());

const get = <T = any>(url: string, token = s.token) => fetchJson<Envelope<T>>(url, { headers: jsonHeaders(token) });
const send = <T = any>(method: string, url: string, body?: unknown, token = s.token) =>
  fetchJson<Envelope<T>>(url, { method, headers: jsonHeaders(token), body: body === undefined ? undefined : JSON.stringify(body) });
const sql = <T = any>(db: string, body: unknown, endpoint: 'query' | 'raw' = 'query') => send<T>('POST', `${s.api}/${encodeURIComponent(db)}/${endpoint}`, body);

/** The database's rows of `table`, read through /query. */
async function rows(db: string, table: string): Promise<unknown[]> {
  const reply = await sql(db, { sql: `SELECT * FROM ${table} ORDER BY rowid` });
  assert.equal(reply.status, 200, JSON.stringify(reply.body));
  return reply.body.result[0].results;
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('databases', () => {
  test('create answers the new database: uuid, name, created_at, in the v4 envelope', async () => {
    const reply = await send('POST', s.api, { name: 'rest-create' });
    assert.equal(reply.status, 200);
    assert.equal(reply.body.success, true);
    assert.deepEqual(reply.body.errors, []);
    assert.deepEqual(reply.body.messages, []);
    const db = reply.body.result;
    assert.match(db.uuid, UUID);
    assert.equal(db.name, 'rest-create');
    assert.match(db.created_at, ISO);
    assert.ok(Math.abs(Date.parse(db.created_at) - Date.now()) < 10 * 60_000, 'created_at is not about now');
    assert.equal(db.version, 'production');
    assert.deepEqual(db.read_replication, { mode: 'disabled' });
    // Its file exists under the data directory once it is used.
    assert.equal((await sql('rest-create', { sql: 'CREATE TABLE t (x)' })).status, 200);
    assert.ok(existsSync(path.join(s.dataDir, 'databases', `${db.uuid}.sqlite`)));
  });

  test('a duplicate name fails with code 7502 and creates nothing', async () => {
    await s.createDatabase('rest-dup');
    const before = await get(`${s.api}?name=rest-dup`);
    const reply = await send('POST', s.api, { name: 'rest-dup' });
    assert.equal(reply.status, 400);
    assert.equal(reply.body.success, false);
    assert.equal(reply.body.result, null);
    assert.equal(reply.body.errors[0].code, 7502);
    assert.match(reply.body.errors[0].message, /already exists/);
    assert.deepEqual((await get(`${s.api}?name=rest-dup`)).body.result, before.body.result);
  });

  test("beyond D1, create takes the new database's id (uuid); an invalid or taken id is refused with 400 and creates nothing", async () => {
    const uuid = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
    const reply = await send('POST', s.api, { name: 'rest-chosen-id', uuid });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.result.uuid, uuid);
    assert.equal((await get(`${s.api}/${uuid}`)).body.result.name, 'rest-chosen-id');
    assert.equal((await sql(uuid, { sql: 'CREATE TABLE t (x)' })).status, 200);
    assert.ok(existsSync(path.join(s.dataDir, 'databases', `${uuid}.sqlite`)), 'its file is named by the id');

    const before = (await get(`${s.api}?per_page=10000`)).body.result.length;
    const refused: [unknown, number, RegExp][] = [
      [{ name: 'rest-id-bad', uuid: 'not-a-uuid' }, 7400, /Invalid database id "not-a-uuid": a database id is a UUID/],
      [{ name: 'rest-id-bad', uuid: uuid.toUpperCase() }, 7400, /write it in lowercase/],
      [{ name: 'rest-id-bad', uuid: `${uuid}0` }, 7400, /Invalid database id/],
      [{ name: 'rest-id-bad', uuid: '../../etc/passwd' }, 7400, /Invalid database id/],
      [{ name: 'rest-id-bad', uuid: 42 }, 7400, /uuid/],
      [{ name: 'rest-id-other', uuid }, 7400, new RegExp(`A database with the id ${uuid} already exists: 'rest-chosen-id'`)],
      [{ name: 'rest-chosen-id', uuid: '1a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d' }, 7502, /A database with that name already exists/],
    ];
    for (const [body, code, message] of refused) {
      const r = await send('POST', s.api, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.errors[0].code, code, JSON.stringify(body));
      assert.match(r.body.errors[0].message, message, JSON.stringify(body));
    }
    assert.equal((await get(`${s.api}?per_page=10000`)).body.result.length, before, 'nothing was created');
  });

  test('invalid names are refused with 400 and create nothing', async () => {
    const before = (await get(`${s.api}?per_page=10000`)).body.result.length;
    for (const name of ['', 'has space', 'x'.repeat(65), 'semi;colon', '../escape', 'ünïcode']) {
      const reply = await send('POST', s.api, { name });
      assert.equal(reply.status, 400, `name ${JSON.stringify(name)}`);
      assert.equal(reply.body.success, false);
      assert.equal(reply.body.errors[0].code, 7400, `name ${JSON.stringify(name)}`);
    }
    for (const body of [{}, { name: 42 }, { name: null }]) {
      const reply = await send('POST', s.api, body);
      assert.equal(reply.status, 400, JSON.stringify(body));
      assert.equal(reply.body.errors[0].code, 7400);
    }
    assert.equal((await get(`${s.api}?per_page=10000`)).body.result.length, before);
  });

  test('list pages with page/per_page and result_info, and filters by name', async () => {
    const names = ['pg-alpha-1', 'pg-alpha-2', 'pg-alpha-3', 'pg-alpha-4', 'pg-alpha-5', 'pg-beta-1'];
    const ids: Record<string, string> = {};
    for (const name of names) ids[name] = await s.createDatabase(name);

    const all = await get(`${s.api}?name=pg-&per_page=100`);
    assert.equal(all.status, 200);
    assert.deepEqual(
      all.body.result.map((d: { name: string }) => d.name),
      names,
      'list is in creation order',
    );
    for (const item of all.body.result) {
      assert.deepEqual(Object.keys(item).sort(), ['created_at', 'jurisdiction', 'name', 'uuid', 'version']);
      assert.equal(item.uuid, ids[item.name]);
      assert.match(item.created_at, ISO);
    }
    assert.deepEqual(all.body.result_info, { page: 1, per_page: 100, count: 6, total_count: 6 });

    const pages: string[] = [];
    for (const page of [1, 2, 3]) {
      const reply = await get(`${s.api}?name=pg-alpha&page=${page}&per_page=2`);
      assert.equal(reply.status, 200);
      assert.deepEqual(reply.body.result_info, { page, per_page: 2, count: page < 3 ? 2 : 1, total_count: 5 });
      pages.push(...reply.body.result.map((d: { name: string }) => d.name));
    }
    assert.deepEqual(pages, names.slice(0, 5), 'pages cover the filtered list once, in order');
    const beyond = await get(`${s.api}?name=pg-alpha&page=4&per_page=2`);
    assert.deepEqual(beyond.body.result, []);
    assert.deepEqual(beyond.body.result_info, { page: 4, per_page: 2, count: 0, total_count: 5 });
    // Numbers out of range or not whole are brought within it (page=1e309 answered page: null).
    const huge = await get(`${s.api}?name=pg-alpha&page=1e309&per_page=2.5`);
    assert.deepEqual(huge.body.result_info, { page: Number.MAX_SAFE_INTEGER, per_page: 2, count: 0, total_count: 5 });

    assert.deepEqual(
      (await get(`${s.api}?name=pg-beta`)).body.result.map((d: { name: string }) => d.name),
      ['pg-beta-1'],
    );
    assert.deepEqual((await get(`${s.api}?name=no-such-database-name`)).body.result, []);
    // Without a filter, every database is listed (at least these).
    const unfiltered = (await get(`${s.api}?per_page=10000`)).body.result.map((d: { name: string }) => d.name);
    for (const name of names) assert.ok(unfiltered.includes(name), name);
  });

  test('get by id and by name, with and without fields', async () => {
    const uuid = await s.createDatabase('rest-get');
    assert.equal((await sql('rest-get', { sql: 'CREATE TABLE a (x); CREATE TABLE b (y); INSERT INTO a VALUES (1)' })).status, 200);
    const byId = await get(`${s.api}/${uuid}`);
    const byName = await get(`${s.api}/rest-get`);
    assert.equal(byId.status, 200);
    assert.deepEqual(byName.body, byId.body);
    const db = byId.body.result;
    assert.equal(db.uuid, uuid);
    assert.equal(db.name, 'rest-get');
    assert.equal(db.version, 'production');
    assert.match(db.created_at, ISO);
    assert.equal(db.num_tables, 2, 'num_tables counts the user tables only');
    assert.equal(typeof db.file_size, 'number');
    assert.ok(db.file_size > 0);
    assert.deepEqual(db.read_replication, { mode: 'disabled' });
    assert.equal(typeof db.running_in_region, 'string');

    const fields = await get(`${s.api}/rest-get?fields=uuid,name`);
    assert.equal(fields.status, 200);
    assert.deepEqual(fields.body.result, { uuid, name: 'rest-get' });
    const sized = await get(`${s.api}/${uuid}?fields=num_tables,file_size`);
    assert.deepEqual(sized.body.result, { num_tables: 2, file_size: db.file_size });

    for (const missing of ['no-such-db', '00000000-0000-4000-8000-000000000000']) {
      const reply = await get(`${s.api}/${missing}`);
      assert.equal(reply.status, 404);
      assert.equal(reply.body.success, false);
      assert.equal(reply.body.errors[0].code, 7404);
    }
  });

  test('PUT and PATCH set read_replication; GET shows it; an invalid mode changes nothing', async () => {
    const uuid = await s.createDatabase('rest-update');
    const put = await send('PUT', `${s.api}/${uuid}`, { read_replication: { mode: 'auto' } });
    assert.equal(put.status, 200);
    assert.equal(put.body.result.uuid, uuid);
    assert.deepEqual(put.body.result.read_replication, { mode: 'auto' });
    assert.deepEqual((await get(`${s.api}/${uuid}`)).body.result.read_replication, { mode: 'auto' });

    const patch = await send('PATCH', `${s.api}/rest-update`, { read_replication: { mode: 'disabled' } });
    assert.equal(patch.status, 200);
    assert.deepEqual(patch.body.result.read_replication, { mode: 'disabled' });
    assert.deepEqual((await get(`${s.api}/${uuid}?fields=read_replication`)).body.result, { read_replication: { mode: 'disabled' } });

    for (const body of [{ read_replication: { mode: 'sometimes' } }, { read_replication: 'auto' }, {}]) {
      const reply = await send('PUT', `${s.api}/${uuid}`, body);
      assert.equal(reply.status, 400, JSON.stringify(body));
      assert.equal(reply.body.errors[0].code, 7400);
    }
    assert.deepEqual((await get(`${s.api}/${uuid}`)).body.result.read_replication, { mode: 'disabled' });
  });

  // Cloudflare's API (rest-api.md §2): PATCH is the partial update, its read_replication optional.
  test('PATCH with an empty body is a valid partial update that changes nothing', async () => {
    const uuid = await s.createDatabase('rest-patch-empty');
    const reply = await send('PATCH', `${s.api}/${uuid}`, {});
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.result.uuid, uuid);
    assert.deepEqual(reply.body.result.read_replication, { mode: 'disabled' });
  });

  test('delete removes the files; later requests answer 404; the name can be reused', async () => {
    const uuid = await s.createDatabase('rest-delete');
    assert.equal((await sql('rest-delete', { sql: "CREATE TABLE t (x); INSERT INTO t VALUES ('old')" })).status, 200);
    const file = path.join(s.dataDir, 'databases', `${uuid}.sqlite`);
    assert.ok(existsSync(file));

    const reply = await send('DELETE', `${s.api}/${uuid}`);
    assert.equal(reply.status, 200);
    assert.equal(reply.body.success, true);
    assert.equal(reply.body.result, null);
    const left = readdirSync(path.join(s.dataDir, 'databases')).filter((f) => f.startsWith(uuid));
    assert.deepEqual(left, [], 'the database file, WAL and shared memory are gone');

    for (const target of [uuid, 'rest-delete']) {
      assert.equal((await get(`${s.api}/${target}`)).status, 404);
      const query = await sql(target, { sql: 'SELECT 1' });
      assert.equal(query.status, 404);
      assert.equal(query.body.errors[0].code, 7404);
      assert.equal((await sql(target, { sql: 'SELECT 1' }, 'raw')).status, 404);
      assert.equal((await send('DELETE', `${s.api}/${target}`)).status, 404);
    }
    assert.deepEqual((await get(`${s.api}?name=rest-delete`)).body.result, []);

    const again = await s.createDatabase('rest-delete');
    assert.notEqual(again, uuid);
    const fresh = await sql('rest-delete', { sql: "SELECT name FROM sqlite_master WHERE name = 't'" });
    assert.deepEqual(fresh.body.result[0].results, [], 'the new database does not see the old one');
  });

  test('delete while writes are in flight: none brings the files back, and the id can be taken again', async () => {
    const uuid = await s.createDatabase('rest-delete-busy');
    assert.equal((await sql(uuid, { sql: 'CREATE TABLE t (x)' })).status, 200);
    let deleted = false;
    const writer = async () => {
      // Bounded: until a while after the delete, at most 400 requests.
      for (let i = 0; i < 400; i++) {
        const reply = await sql(uuid, { sql: 'INSERT INTO t VALUES (1)' });
        if (deleted && reply.status === 404) return;
      }
    };
    const writers = Array.from({ length: 6 }, writer);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await send('DELETE', `${s.api}/${uuid}`)).status, 200);
    deleted = true;
    await Promise.all(writers);
    await new Promise((r) => setTimeout(r, 200));
    const left = readdirSync(path.join(s.dataDir, 'databases')).filter((f) => f.startsWith(uuid));
    assert.deepEqual(left, [], 'files of the deleted database');
    const reply = await send('POST', s.api, { name: 'rest-delete-again', uuid });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal((await sql(uuid, { sql: "SELECT count(*) AS n FROM sqlite_master WHERE name = 't'" })).body.result[0].results[0].n, 0);
  });
});

describe('/query and /raw', () => {
  before(async () => {
    await s.createDatabase('rest-sql');
  });

  test('/query: one result of row objects per statement of a multi-statement sql; params go to the last', async () => {
    const reply = await sql('rest-sql', {
      sql: 'CREATE TABLE q (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB);\n' + "INSERT INTO q (name, score) VALUES ('a', 1.5), ('b', 2);\n" + 'SELECT id, name, score FROM q WHERE id >= ? ORDER BY id',
      params: [1],
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.success, true);
    const results = reply.body.result;
    assert.equal(results.length, 3);
    for (const r of results) {
      assert.equal(r.success, true);
      for (const key of ['duration', 'changes', 'last_row_id', 'changed_db', 'size_after', 'rows_read', 'rows_written']) {
        assert.ok(key in r.meta, `meta.${key}`);
      }
    }
    assert.deepEqual(results[0].results, []);
    assert.equal(results[1].meta.changes, 2);
    assert.equal(results[1].meta.last_row_id, 2);
    assert.equal(results[1].meta.changed_db, true);
    assert.deepEqual(results[2].results, [
      { id: 1, name: 'a', score: 1.5 },
      { id: 2, name: 'b', score: 2 },
    ]);
    assert.equal(results[2].meta.changes, 0);
  });

  test('/query: values of every type, parameters of every REST type', async () => {
    const reply = await sql('rest-sql', {
      sql: "SELECT ? AS t, ? AS i, ? AS r, ? AS n, ? AS yes, ? AS no, ? AS bytes, x'00ff' AS blob, 'ünï 😀' AS u, typeof(?) AS blobtype",
      params: ['text', 42, 2.5, null, true, false, [1, 2, 255], [0, 7]],
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.deepEqual(reply.body.result[0].results, [{ t: 'text', i: 42, r: 2.5, n: null, yes: 1, no: 0, bytes: [1, 2, 255], blob: [0, 255], u: 'ünï 😀', blobtype: 'blob' }]);
  });

  test('/query: a trigger body with semicolons stays one statement', async () => {
    const reply = await sql('rest-sql', {
      sql:
        'CREATE TABLE tr_src (v TEXT);\r\nCREATE TABLE tr_log (m TEXT);\r\n' +
        "CREATE TRIGGER tr AFTER INSERT ON tr_src BEGIN INSERT INTO tr_log VALUES ('x;y'); INSERT INTO tr_log VALUES (new.v); END;\r\n" +
        "INSERT INTO tr_src VALUES ('z');\r\nSELECT m FROM tr_log ORDER BY rowid",
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.equal(reply.body.result.length, 5);
    assert.deepEqual(reply.body.result[4].results, [{ m: 'x;y' }, { m: 'z' }]);
  });

  test('/query: the batch form gives one result per item, each with its params', async () => {
    const reply = await sql('rest-sql', {
      batch: [
        { sql: 'CREATE TABLE bt (k TEXT PRIMARY KEY, v INTEGER)' },
        { sql: 'INSERT INTO bt VALUES (?, ?), (?, ?)', params: ['a', 1, 'b', 2] },
        { sql: 'SELECT * FROM bt WHERE v > ? ORDER BY k', params: [0] },
        { sql: 'SELECT count(*) AS n FROM bt' },
      ],
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.deepEqual(
      reply.body.result.map((r: { results: unknown }) => r.results),
      [[], [], [{ k: 'a', v: 1 }, { k: 'b', v: 2 }], [{ n: 2 }]],
    );
    assert.equal(reply.body.result[1].meta.rows_written > 0, true);
  });

  test('/raw: {columns, rows} per statement, duplicate column names kept', async () => {
    const reply = await sql('rest-sql', { sql: "SELECT 1 AS a, 'x' AS a, NULL AS c; SELECT ? AS p", params: ['last'] }, 'raw');
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    assert.deepEqual(
      reply.body.result.map((r: { results: unknown }) => r.results),
      [
        { columns: ['a', 'a', 'c'], rows: [[1, 'x', null]] },
        { columns: ['p'], rows: [['last']] },
      ],
    );
    const batch = await sql('rest-sql', { batch: [{ sql: 'SELECT k, v FROM bt ORDER BY k' }, { sql: 'SELECT v FROM bt WHERE k = ?', params: ['b'] }] }, 'raw');
    assert.deepEqual(
      batch.body.result.map((r: { results: unknown }) => r.results),
      [
        { columns: ['k', 'v'], rows: [['a', 1], ['b', 2]] },
        { columns: ['v'], rows: [[2]] },
      ],
    );
    // A statement without rows still has its columns (none) and an empty rows array.
    const ddl = await sql('rest-sql', { sql: 'CREATE TABLE raw_empty (x)' }, 'raw');
    assert.deepEqual(ddl.body.result[0].results, { columns: [], rows: [] });
  });

  test("SQL errors: HTTP 400, code 7500, D1's message", async () => {
    const cases: [unknown, RegExp][] = [
      [{ sql: 'SELECT * FROM no_such_table' }, /^no such table: no_such_table: SQLITE_ERROR$/],
      [{ sql: 'SELEC 1' }, /^near "SELEC": syntax error at offset 0: SQLITE_ERROR$/],
      [{ sql: "INSERT INTO bt VALUES ('a', 9)" }, /^UNIQUE constraint failed: bt\.k: SQLITE_CONSTRAINT \(extended: SQLITE_CONSTRAINT_PRIMARYKEY\)$/],
      [{ sql: 'SELECT ?, ?', params: [1] }, /^Wrong number of parameter bindings for SQL query\.$/],
      [{ sql: '' }, /^No SQL statements detected\.$/],
    ];
    for (const endpoint of ['query', 'raw'] as const) {
      for (const [body, message] of cases) {
        const reply = await sql('rest-sql', body, endpoint);
        assert.equal(reply.status, 400, `${endpoint} ${JSON.stringify(body)}`);
        assert.equal(reply.body.success, false);
        assert.equal(reply.body.result, null);
        assert.equal(reply.body.errors.length, 1);
        assert.equal(reply.body.errors[0].code, 7500);
        assert.match(reply.body.errors[0].message, message);
      }
    }
    assert.deepEqual(await rows('rest-sql', 'bt'), [
      { k: 'a', v: 1 },
      { k: 'b', v: 2 },
    ]);
  });

  test('a multi-statement /query whose 3rd statement fails leaves nothing', async () => {
    await sql('rest-sql', { sql: 'CREATE TABLE atomic (id INTEGER PRIMARY KEY, v TEXT)' });
    const reply = await sql('rest-sql', {
      sql: "INSERT INTO atomic (v) VALUES ('one'); CREATE TABLE atomic_new (x); INSERT INTO atomic (id, v) VALUES (1, 'clash'); INSERT INTO atomic (v) VALUES ('four')",
    });
    assert.equal(reply.status, 400);
    assert.equal(reply.body.errors[0].code, 7500);
    assert.match(reply.body.errors[0].message, /UNIQUE constraint failed: atomic\.id/);
    assert.deepEqual(await rows('rest-sql', 'atomic'), []);
    const schema = await sql('rest-sql', { sql: "SELECT name FROM sqlite_master WHERE name = 'atomic_new'" });
    assert.deepEqual(schema.body.result[0].results, [], 'the CREATE TABLE of the failed request was rolled back');

    // The batch form, and /raw, are atomic too.
    const batch = await sql('rest-sql', { batch: [{ sql: "INSERT INTO atomic (v) VALUES ('b1')" }, { sql: "INSERT INTO atomic (v) VALUES ('b2')" }, { sql: 'INSERT INTO nowhere VALUES (1)' }] }, 'raw');
    assert.equal(batch.status, 400);
    assert.match(batch.body.errors[0].message, /^no such table: nowhere: SQLITE_ERROR$/);
    assert.deepEqual(await rows('rest-sql', 'atomic'), []);

    // And the same statements without the failing one all land.
    const ok = await sql('rest-sql', { sql: "INSERT INTO atomic (v) VALUES ('one'); INSERT INTO atomic (v) VALUES ('two')" });
    assert.equal(ok.status, 200);
    assert.deepEqual(await rows('rest-sql', 'atomic'), [
      { id: 1, v: 'one' },
      { id: 2, v: 'two' },
    ]);
  });
});

test('GET a database with ?fields= answers the fields named that the database object has', async () => {
  await s.createDatabase('rest-fields');
  const some = await get(`${s.api}/rest-fields?fields=uuid%2Cname`);
  assert.deepEqual(Object.keys(some.body.result).sort(), ['name', 'uuid']);
  const inherited = await get(`${s.api}/rest-fields?fields=__proto__,constructor,toString`);
  assert.deepEqual(inherited.body.result, {});
});

test('REST /query: a column named __proto__ is answered like any other', async () => {
  await s.createDatabase('rest-proto');
  const reply = await sql('rest-proto', { sql: 'SELECT 1 AS "__proto__", 2 AS b' });
  assert.equal(reply.status, 200);
  assert.deepEqual(Object.keys(reply.body.result[0].results[0]), ['__proto__', 'b']);
});

describe('import', () => {
  test("an import's meta counts every statement's rows and changes (wrangler prints them), not the last one's", async () => {
    await s.createDatabase('import-meta');
    const sql = 'CREATE TABLE t (v);\nINSERT INTO t VALUES (1), (2), (3);\nINSERT INTO t VALUES (4), (5);\n';
    const result = (await restImport(s, 'import-meta', sql)) as { status: string; result?: { num_queries: number; meta: { changes: number; rows_written: number } } };
    assert.equal(result.status, 'complete', JSON.stringify(result));
    assert.equal(result.result?.num_queries, 3);
    assert.equal(result.result?.meta.changes, 5);
    assert.ok(result.result!.meta.rows_written >= 5, `rows_written ${result.result!.meta.rows_written}`);
  });

  test('an import of several MiB is read a piece at a time: statements across pieces land whole, and a failure near its end undoes all of it', async () => {
    await s.createDatabase('import-pieces');
    const head = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);\nCREATE TABLE log (id);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.id); END;\n";
    // Strings holding `;` and newlines, long enough that some statements straddle the 1 MiB pieces.
    const rows = Array.from({ length: 30_000 }, (_, i) => `INSERT INTO t VALUES (${i}, 'row ${i}; ${'é'.repeat(i % 97)}\n-- not a comment ${'x'.repeat(i % 13)}');\n`);
    // Just under D1's 100 KB statement limit.
    const long = `INSERT INTO t VALUES (30000, '${'y;'.repeat(49_000)}');\n`;
    const sql = head + rows.join('') + long;
    assert.ok(Buffer.byteLength(sql) > 3 * 2 ** 20, `${Buffer.byteLength(sql)} bytes`);

    const failing = (await restImport(s, 'import-pieces', `${sql}INSERT INTO nowhere VALUES (1);\n`)) as { status: string; error?: string };
    assert.equal(failing.status, 'error', JSON.stringify(failing).slice(0, 300));
    assert.equal(failing.error, 'no such table: nowhere: SQLITE_ERROR');
    const tables = await s.call(`${s.api}/import-pieces/query`, { method: 'POST', body: JSON.stringify({ sql: "SELECT count(*) AS n FROM sqlite_master WHERE name IN ('t', 'log', 'tr')" }) });
    assert.deepEqual(((await tables.json()) as { result: { results: unknown[] }[] }).result[0]!.results, [{ n: 0 }], 'nothing of the failed import is kept');

    const result = (await restImport(s, 'import-pieces', sql)) as { status: string; result?: { num_queries: number; meta: { changes: number; last_row_id: number } } };
    assert.equal(result.status, 'complete', JSON.stringify(result).slice(0, 300));
    assert.equal(result.result?.num_queries, 3 + 30_001);
    assert.equal(result.result?.meta.changes, 2 * 30_001, 'each insert and its trigger row');
    assert.equal(result.result?.meta.last_row_id, 30_000);
    const check = await s.call(`${s.api}/import-pieces/query`, {
      method: 'POST',
      body: JSON.stringify({ sql: "SELECT count(*) AS n, sum(length(v)) AS chars, (SELECT count(*) FROM log) AS logged, (SELECT v FROM t WHERE id = 12345) AS one FROM t" }),
    });
    const [found] = ((await check.json()) as { result: { results: { n: number; chars: number; logged: number; one: string }[] }[] }).result[0]!.results;
    const expectedChars = rows.reduce((sum, _, i) => sum + `row ${i}; ${'é'.repeat(i % 97)}\n-- not a comment ${'x'.repeat(i % 13)}`.length, 0) + 98_000;
    assert.deepEqual(found, { n: 30_001, chars: expectedChars, logged: 30_001, one: `row 12345; ${'é'.repeat(12345 % 97)}\n-- not a comment ${'x'.repeat(12345 % 13)}` });
  });

  // Found by an attacker's review: 16 MiB of one `SELECT 1+1+…` was lexed whole (the server at ~3 GB, a
  // worker out of memory a little past it) before SQLite's limit refused it.
  test('an imported statement longer than D1 allows fails the import as too long, without reading it whole', async () => {
    await s.createDatabase('import-too-long');
    const sql = `CREATE TABLE t (id);\nINSERT INTO t VALUES (1);\nSELECT ${'1+'.repeat(4 * 2 ** 20)}1;\nINSERT INTO t VALUES (2);\n`;
    const before = process.memoryUsage().rss;
    let peak = before;
    const watch = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 20);
    try {
      const result = (await restImport(s, 'import-too-long', sql)) as { status: string; error?: string };
      assert.equal(result.status, 'error', JSON.stringify(result).slice(0, 300));
      assert.equal(result.error, 'statement too long: SQLITE_TOOBIG');
    } finally {
      clearInterval(watch);
    }
    // The test server runs in this process: its workers' memory is in this RSS.
    assert.ok(peak - before < 400 * 2 ** 20, `RSS grew by ${((peak - before) / 2 ** 20).toFixed(0)} MiB`);
    const tables = await s.call(`${s.api}/import-too-long/query`, { method: 'POST', body: JSON.stringify({ sql: "SELECT count(*) AS n FROM sqlite_master WHERE name = 't'" }) });
    assert.deepEqual(((await tables.json()) as { result: { results: unknown[] }[] }).result[0]!.results, [{ n: 0 }], 'nothing of the failed import is kept');
  });

  test('an import still running is answered as active, and polls by its at_bookmark answer its result once it ends', async () => {
    const quick = await startTestServer({ importWaitMs: 0 });
    try {
      await quick.createDatabase('import-active');
      const sql = `CREATE TABLE t (v);\n${'INSERT INTO t VALUES (1);\n'.repeat(50_000)}`;
      const upload = await uploadImport(quick, 'import-active', sql);
      const first = (await importCall(quick, 'import-active', { action: 'ingest', ...upload })).body.result;
      assert.deepEqual(first, { success: true, type: 'import', at_bookmark: upload.filename, status: 'active', messages: [], errors: [] });
      let polls = 0;
      let result: { status: string; at_bookmark: string; result?: { num_queries: number } } = first;
      const until = Date.now() + 60_000;
      while (result.status === 'active' && Date.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const reply = await importCall(quick, 'import-active', { action: 'poll', current_bookmark: result.at_bookmark });
        assert.equal(reply.status, 200, JSON.stringify(reply.body));
        result = reply.body.result;
        polls++;
      }
      assert.equal(result.status, 'complete', JSON.stringify(result));
      assert.equal(result.result?.num_queries, 50_001);
      assert.ok(polls >= 1);
      // A second ingest of the same upload answers the one result.
      assert.deepEqual((await importCall(quick, 'import-active', { action: 'ingest', ...upload })).body.result, result);
    } finally {
      await quick.close();
    }
  });

  test('an import waits for an interactive transaction that holds the write lock (bounded), as SQL does', async () => {
    await s.createDatabase('import-waits');
    const db = connect({ url: s.url, token: s.token, database: 'import-waits', transactions: true });
    await db.exec('CREATE TABLE t (v)');
    const held = await beginTransaction(db);
    await held.db.prepare('INSERT INTO t VALUES (1)').run();
    const importing = restImport(s, 'import-waits', 'INSERT INTO t VALUES (2);\n');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await held.commit();
    const result = await importing;
    assert.equal(result.status, 'complete', JSON.stringify(result));
    assert.deepEqual(await db.prepare('SELECT v FROM t ORDER BY rowid').raw(), [[1], [2]]);
  });

  test('an upload is ingested once: ingests racing (or repeated) answer the one import, and another database cannot ingest or poll it', async () => {
    await s.createDatabase('import-once');
    await s.createDatabase('import-other');
    const upload = await uploadImport(s, 'import-once', 'CREATE TABLE t (v);\nINSERT INTO t VALUES (1);\n');
    const ingest = { action: 'ingest', ...upload };
    assert.equal((await importCall(s, 'import-other', ingest)).status, 404, "another database's import");
    const replies = await Promise.all(Array.from({ length: 5 }, () => importCall(s, 'import-once', ingest)));
    for (const r of replies) assert.equal(r.body.result.status, 'complete', JSON.stringify(r.body));
    assert.equal(new Set(replies.map((r) => JSON.stringify(r.body.result))).size, 1, 'one answer');
    const again = await importCall(s, 'import-once', ingest);
    assert.deepEqual(again.body.result, replies[0]!.body.result);
    const response = await s.call(`${s.api}/import-once/query`, { method: 'POST', body: JSON.stringify({ sql: 'SELECT count(*) AS n FROM t' }) });
    assert.deepEqual(((await response.json()) as { result: { results: unknown[] }[] }).result[0]!.results, [{ n: 1 }]);
    const bookmark = replies[0]!.body.result.at_bookmark;
    assert.equal((await importCall(s, 'import-once', { action: 'poll', current_bookmark: bookmark })).body.result.status, 'complete');
    assert.equal((await importCall(s, 'import-other', { action: 'poll', current_bookmark: bookmark })).status, 404);
  });

  test('a database keeps at most 4 exports and 4 pending imports: a newer one ends the oldest, its file and URL', async () => {
    await s.createDatabase('transfers-kept');
    await s.call(`${s.api}/transfers-kept/query`, { method: 'POST', body: JSON.stringify({ sql: "CREATE TABLE t (v); INSERT INTO t VALUES ('x')" }) });
    const urls: string[] = [];
    for (let i = 0; i < 6; i++) {
      const reply = (await (await s.call(`${s.api}/transfers-kept/export`, { method: 'POST', body: JSON.stringify({ output_format: 'polling' }) })).json()) as {
        result: { result: { signed_url: string } };
      };
      urls.push(reply.result.result.signed_url);
    }
    assert.deepEqual(
      await Promise.all(urls.map(async (u) => (await fetch(u)).status)),
      [404, 404, 200, 200, 200, 200],
    );
    assert.equal(readdirSync(path.join(s.dataDir, 'exports')).length, 4);
    const uploads: string[] = [];
    for (let i = 0; i < 6; i++) {
      const reply = await importCall(s, 'transfers-kept', { action: 'init', etag: '0'.repeat(32) });
      uploads.push(reply.body.result.upload_url);
    }
    const statuses = await Promise.all(uploads.map(async (u) => (await fetch(u, { method: 'PUT', body: 'SELECT 1;' })).status));
    // The first two are gone; the others are known (the body's md5 is not the etag: 400).
    assert.deepEqual(statuses, [404, 404, 400, 400, 400, 400]);
  });

  test("deleting a database ends its exports and pending imports: their URLs answer 404 and their files go", async () => {
    await s.createDatabase('transfers-deleted');
    await s.call(`${s.api}/transfers-deleted/query`, { method: 'POST', body: JSON.stringify({ sql: "CREATE TABLE t (v); INSERT INTO t VALUES ('x')" }) });
    const exported = (await (await s.call(`${s.api}/transfers-deleted/export`, { method: 'POST', body: JSON.stringify({ output_format: 'polling' }) })).json()) as {
      result: { result: { signed_url: string } };
    };
    const upload = (await importCall(s, 'transfers-deleted', { action: 'init', etag: '0'.repeat(32) })).body.result.upload_url as string;
    const exports = () => readdirSync(path.join(s.dataDir, 'exports')).length;
    const before = exports();
    assert.equal((await s.call(`${s.api}/transfers-deleted`, { method: 'DELETE' })).status, 200);
    assert.equal((await fetch(exported.result.result.signed_url)).status, 404);
    assert.equal((await fetch(upload, { method: 'PUT', body: 'SELECT 1;' })).status, 404);
    assert.equal(exports(), before - 1);
  });

  test('a runaway statement in an import is stopped at --query-timeout: the import fails whole and the database serves on', { timeout: 60_000 }, async () => {
    const timed = await startTestServer({ queryTimeoutMs: 500 });
    try {
      await timed.createDatabase('import-runaway');
      const started = performance.now();
      const result = await restImport(timed, 'import-runaway', 'CREATE TABLE t (v);\nINSERT INTO t VALUES (1);\nWITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;\n');
      assert.equal(result.status, 'error', JSON.stringify(result));
      assert.match(result.error ?? '', /exceeded timeout/);
      assert.ok(performance.now() - started < 20_000);
      const response = await timed.call(`${timed.api}/import-runaway/query`, { method: 'POST', body: JSON.stringify({ sql: "SELECT count(*) AS n FROM sqlite_master WHERE name = 't'" }) });
      const body = (await response.json()) as { result: { results: { n: number }[] }[] };
      assert.deepEqual(body.result[0]!.results, [{ n: 0 }], 'nothing of the import is kept');
    } finally {
      await timed.close();
    }
  });
});
