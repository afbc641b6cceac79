// The GraphQL Analytics endpoint (POST /client/v4/graphql) directly: variables, filters, orderBy,
// limit, aliases and fragments; bad input of every kind answered in GraphQL's shape (or the REST
// API's 401 for a missing or unknown token) while the server keeps serving; a token made for one
// database sees only that database; and /metrics counts queries and rows per database.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { startTestServer, type TestServer } from './helpers/server.ts';

let srv: TestServer;
let shop: string;
let other: string;
/** Per database name, the sums of the meta the server answered with. */
const answered = new Map<string, { statements: number; rowsRead: number; rowsWritten: number }>();

async function sql(database: string, statement: string, params: unknown[] = []): Promise<void> {
  const response = await srv.call(`${srv.api}/${database}/query`, { method: 'POST', body: JSON.stringify({ sql: statement, params }) });
  const body = (await response.json()) as { result: { meta: { rows_read: number; rows_written: number } }[] };
  assert.equal(response.status, 200, JSON.stringify(body));
  const sums = answered.get(database) ?? { statements: 0, rowsRead: 0, rowsWritten: 0 };
  for (const r of body.result) {
    sums.statements++;
    sums.rowsRead += r.meta.rows_read;
    sums.rowsWritten += r.meta.rows_written;
  }
  answered.set(database, sums);
}

async function graphql(body: unknown, token?: string | null): Promise<{ status: number; json: any }> {
  const response = await srv.call('/client/v4/graphql', { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), token });
  return { status: response.status, json: await response.json() };
}

const QUERIES = `query Insights($accountTag: string, $filter: ZoneWorkersRequestsFilter_InputObject, $limit: Int!) {
  viewer { accounts(filter: {accountTag: $accountTag}) {
    top: d1QueriesAdaptiveGroups(limit: $limit, filter: $filter, orderBy: [sum_rowsWritten_DESC, count_ASC]) {
      count sum { rowsWritten rowsRead queryDurationMs rowsReturned } avg { rowsWritten } ...dims
    }
  } }
}
fragment dims on AccountD1QueriesAdaptiveGroups { dimensions { query databaseId } }`;

before(async () => {
  srv = await startTestServer();
  shop = await srv.createDatabase('gql-shop');
  other = await srv.createDatabase('gql-other');
  await sql('gql-shop', 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  for (let i = 0; i < 5; i++) await sql('gql-shop', 'INSERT INTO t (v) VALUES (?)', [`v${i}`]);
  await sql('gql-shop', "INSERT INTO t (v) VALUES ('a'), ('b'), ('c')");
  await sql('gql-other', 'SELECT 1');
});

after(async () => {
  await srv?.close();
});

test('variables, a filter on one database, orderBy on sums and count, limit, aliases and fragments', async () => {
  const now = new Date();
  const filter = { AND: [{ datetimeHour_geq: new Date(now.getTime() - 3_600_000).toISOString(), datetimeHour_leq: now.toISOString(), databaseId: shop }] };
  const { status, json } = await graphql({ query: QUERIES, variables: { accountTag: srv.accountId, filter, limit: 2 }, operationName: 'Insights' });
  assert.equal(status, 200, JSON.stringify(json));
  assert.equal(json.errors, null);
  const top = json.data.viewer.accounts[0].top;
  assert.deepEqual(
    top.map((g: any) => [g.dimensions.query, g.count, g.sum.rowsWritten, g.avg.rowsWritten, g.dimensions.databaseId]),
    [
      ['INSERT INTO t (v) VALUES (?)', 5, 5, 1, shop],
      ['INSERT INTO t (v) VALUES (?), (?), (?)', 1, 3, 3, shop],
    ],
  );
  // Without the database filter both databases count; datetime_* and date_* filters work too.
  const all = await graphql({
    query: `{ viewer { accounts { d1AnalyticsAdaptiveGroups(limit: 100, filter: {date_geq: "${now.toISOString().slice(0, 10)}", datetime_leq: "${new Date(now.getTime() + 60_000).toISOString()}"}, orderBy: [databaseId_ASC]) { count sum { readQueries writeQueries rowsWritten } dimensions { databaseId } } } } }`,
  });
  assert.equal(all.json.errors, null, JSON.stringify(all.json));
  const byDatabase = Object.fromEntries(all.json.data.viewer.accounts[0].d1AnalyticsAdaptiveGroups.map((g: any) => [g.dimensions.databaseId, g]));
  assert.deepEqual(byDatabase[shop].sum, { readQueries: 0, writeQueries: 7, rowsWritten: answered.get('gql-shop')!.rowsWritten });
  assert.deepEqual(byDatabase[other].sum, { readQueries: 1, writeQueries: 0, rowsWritten: answered.get('gql-other')!.rowsWritten });
  // A window before any of it has nothing.
  const before = await graphql({ query: '{ viewer { accounts { d1AnalyticsAdaptiveGroups(limit: 10, filter: {datetimeHour_lt: "2020-01-01T00:00:00Z"}) { count } } } }' });
  assert.deepEqual(before.json, { data: { viewer: { accounts: [{ d1AnalyticsAdaptiveGroups: [] }] } }, errors: null });
});

test('bad input gets a clear error in GraphQL shape, and the server keeps serving', async () => {
  const cases: [string, unknown, number, RegExp][] = [
    ['malformed JSON', '{"query": ', 400, /not JSON/],
    ['no query', { variables: {} }, 400, /no "query"/],
    ['variables not an object', { query: '{ viewer { accounts { d1AnalyticsAdaptiveGroups(limit: 1) { count } } } }', variables: [1] }, 400, /"variables" must be a JSON object/],
    ['unparsable query', { query: '{ viewer { accounts { ' }, 200, /Syntax Error/],
    ['unknown dataset', { query: '{ viewer { accounts { workersInvocationsAdaptive(limit: 1) { sum { requests } } } } }' }, 200, /Cannot query field "workersInvocationsAdaptive"/],
    ['unknown field', { query: '{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 1) { sum { bytes } } } } }' }, 200, /Cannot query field "bytes"/],
    ['missing limit', { query: '{ viewer { accounts { d1QueriesAdaptiveGroups { count } } } }' }, 200, /argument "limit" of type "Int!" is required/],
    ['limit too large', { query: '{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 10001) { count } } } }' }, 200, /limit must be a whole number from 0 to 10000/],
    ['unknown orderBy', { query: '{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 1, orderBy: [sum_bytes_DESC]) { count } } } }' }, 200, /sum_bytes_DESC/],
    ['bad time', { query: '{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 1, filter: {datetime_geq: "yesterday"}) { count } } } }' }, 200, /not a time/],
    [
      'bad variable value',
      { query: 'query($f: ZoneWorkersRequestsFilter_InputObject) { viewer { accounts { d1QueriesAdaptiveGroups(limit: 1, filter: $f) { count } } } }', variables: { f: { databaseId: 7 } } },
      200,
      /not a string: 7/,
    ],
    ['another account', { query: '{ viewer { accounts(filter: {accountTag: "nope"}) { d1QueriesAdaptiveGroups(limit: 1) { count } } } }' }, 200, /Unknown account "nope"/],
    // Bounds on what one request makes the HTTP thread do.
    ['a query too long', { query: `{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 1) { count } } } }${' '.repeat(100_000)}` }, 200, /longer than 100000 characters/],
    ['too many tokens', { query: `{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 1, filter: {AND: [${'{query: "x"}, '.repeat(1300)}]}) { count } } } }` }, 200, /contains more tha[nt] 5000 tokens/],
    [
      'too many datasets',
      { query: `{ viewer { accounts { ${Array.from({ length: 21 }, (_, i) => `a${i}: d1QueriesAdaptiveGroups(limit: 1) { count }`).join(' ')} } } }` },
      200,
      /at most 20 datasets/,
    ],
    // graphql-js parses, validates and coerces nested values recursively (a thousand nested ANDs ran out of stack).
    [
      'a filter nested too deep in the query',
      { query: `{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 1, filter: ${'{AND: ['.repeat(100)}{query: "x"}${']}'.repeat(100)}) { count } } } }` },
      200,
      /the query nests deeper than 64 levels/,
    ],
    [
      'a filter nested too deep in the variables',
      { query: 'query($f: ZoneWorkersRequestsFilter_InputObject) { viewer { accounts { d1QueriesAdaptiveGroups(limit: 1, filter: $f) { count } } } }', variables: { f: JSON.parse(`${'{"AND":['.repeat(1000)}{"query":"x"}${']}'.repeat(1000)}`) } },
      200,
      /the variables nest deeper than 64 levels/,
    ],
    [
      'a list too long',
      { query: 'query($f: ZoneWorkersRequestsFilter_InputObject) { viewer { accounts { d1QueriesAdaptiveGroups(limit: 1, filter: $f) { count } } } }', variables: { f: { databaseId_in: Array.from({ length: 1001 }, (_, i) => `db${i}`) } } },
      200,
      /at most 1000 values/,
    ],
  ];
  for (const [what, body, status, message] of cases) {
    const answer = await graphql(body);
    assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.json)}`);
    assert.ok(Array.isArray(answer.json.errors) && answer.json.errors.length > 0, `${what}: ${JSON.stringify(answer.json)}`);
    assert.match(answer.json.errors[0].message, message, what);
    assert.equal(answer.json.data, null, `${what}: data is null`);
  }
  for (const token of [null, 'not-a-token']) {
    const refused = await graphql({ query: '{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 1) { count } } } }' }, token);
    assert.equal(refused.status, 401);
    assert.match(refused.json.errors[0].message, /Authentication error/);
  }
  const health = await fetch(`${srv.url}/healthz`);
  assert.equal(health.status, 200);
  const still = await graphql({ query: '{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 1) { count } } } }' });
  assert.equal(still.json.errors, null, 'and answers the next request');
  // Nesting within the bounds is answered, in the query and in the variables.
  const nested = `${'{AND: ['.repeat(25)}{query: "x"}${']}'.repeat(25)}`;
  assert.equal((await graphql({ query: `{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 1, filter: ${nested}) { count } } } }` })).json.errors, null);
  const variables = { f: JSON.parse(`${'{"AND":['.repeat(30)}{"query":"x"}${']}'.repeat(30)}`) };
  const deep = await graphql({ query: 'query($f: ZoneWorkersRequestsFilter_InputObject) { viewer { accounts { d1QueriesAdaptiveGroups(limit: 1, filter: $f) { count } } } }', variables });
  assert.equal(deep.json.errors, null, JSON.stringify(deep.json));
});

test('a token made for one database sees that database only', async () => {
  const token = srv.tokenFor('read', 'gql-other');
  const { json } = await graphql({ query: '{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 100) { count dimensions { databaseId } } } } }' }, token);
  assert.equal(json.errors, null, JSON.stringify(json));
  assert.deepEqual(
    json.data.viewer.accounts[0].d1QueriesAdaptiveGroups.map((g: any) => g.dimensions.databaseId),
    [other],
  );
});

test('/metrics counts queries, rows read and rows written per database', async () => {
  const text = await (await srv.call('/metrics')).text();
  const value = (name: string, database: string) => Number(new RegExp(`^${name}\\{database="${database}"\\} (\\S+)$`, 'm').exec(text)?.[1]);
  for (const name of ['gql-shop', 'gql-other']) {
    const sums = answered.get(name)!;
    assert.deepEqual(
      { statements: value('dione_statements_total', name), rowsRead: value('dione_rows_read_total', name), rowsWritten: value('dione_rows_written_total', name) },
      sums,
      name,
    );
  }
});

test('a damaged statistics file does not keep the server from serving: it records nothing and says so', async () => {
  const data = mkdtempSync(path.join(tmpdir(), 'dione-stats-damaged-'));
  writeFileSync(path.join(data, 'query-stats.sqlite'), 'this is not a SQLite database. '.repeat(200));
  // Its own data folder, so no token of the helper's: requests go without one (--dev).
  const lines: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void lines.push(line) });
  const s = await startTestServer({ data, allowUnauthenticated: true, logger });
  try {
    const created = await s.call(s.api, { method: 'POST', body: JSON.stringify({ name: 'still' }), token: null });
    assert.equal(created.status, 200);
    const answer = await s.call(`${s.api}/still/query`, { method: 'POST', body: JSON.stringify({ sql: 'SELECT 1 AS one' }), token: null });
    assert.equal(answer.status, 200);
    const query = '{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 5) { count } } } }';
    const response = await s.call('/client/v4/graphql', { method: 'POST', body: JSON.stringify({ query }), token: null });
    assert.deepEqual(await response.json(), { data: { viewer: { accounts: [{ d1QueriesAdaptiveGroups: [] }] } }, errors: null });
    assert.ok(lines.some((l) => l.includes('query statistics are off') && l.includes('query-stats.sqlite')), lines.join(''));
  } finally {
    await s.close();
    rmSync(data, { recursive: true, force: true });
  }
});

test('statistics are written at shutdown and answered again after a restart', async () => {
  const data = mkdtempSync(path.join(tmpdir(), 'dione-stats-restart-'));
  const query = '{ viewer { accounts { d1QueriesAdaptiveGroups(limit: 5) { count dimensions { query } } } } }';
  try {
    // The timer writes every 10 s; this server stops well before that.
    const first = await startTestServer({ data, allowUnauthenticated: true });
    assert.equal((await first.call(first.api, { method: 'POST', body: JSON.stringify({ name: 'kept' }), token: null })).status, 200);
    for (let i = 0; i < 3; i++) {
      assert.equal((await first.call(`${first.api}/kept/query`, { method: 'POST', body: JSON.stringify({ sql: 'SELECT ? AS n', params: [i] }), token: null })).status, 200);
    }
    await first.close();
    const second = await startTestServer({ data, allowUnauthenticated: true });
    try {
      const response = await second.call('/client/v4/graphql', { method: 'POST', body: JSON.stringify({ query }), token: null });
      assert.deepEqual(await response.json(), { data: { viewer: { accounts: [{ d1QueriesAdaptiveGroups: [{ count: 3, dimensions: { query: 'SELECT ? AS n' } }] }] } }, errors: null });
    } finally {
      await second.close();
    }
  } finally {
    rmSync(data, { recursive: true, force: true });
  }
});
