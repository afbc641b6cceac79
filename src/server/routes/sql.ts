// Sending SQL to a database's host and answering in the caller's protocol; in cluster mode, handing
// it to the primary when the host says another node is. Framework-free, so both the Hono routes and
// the raw fast path (fast-path.ts) use it.
import type { Context } from 'hono';
import type { DatabaseRecord } from '../catalog.ts';
import type { Env, ServerContext } from '../context.ts';
import { HostError, HostUnavailable, NotPrimary } from '../host/failures.ts';
import type { ForwardTarget } from '../host/protocol.ts';
import { ErrorCodes } from '../protocols/envelope.ts';
import type { Encoded } from '../protocols/responses.ts';
import { BadRequest, type JsonBody, type ParsedSql, parseSql, type SqlExtras, sqlFailure, timedOut, type WireProtocol, WRITE_REFUSED } from '../protocols/sql.ts';
import { ApiError } from '../protocols/api-errors.ts';
import { toldToClient } from '../request-log.ts';
import { allows, type Grant } from '../tokens.ts';

export const SESSION_HEADER = 'x-cf-d1-session-commit-token';
/** Set on a request one node hands to another (the primary); such a request is never handed on again. */
export const FORWARDED_HEADER = 'x-dione-forwarded-by';

/** What it takes to send the same request to another node: its path (with query) and headers. */
export interface Forwarding {
  path: string;
  headers: Record<string, string>;
}

const NO_PRIMARY = 'D1 DB has no primary that can take this request right now (the cluster is electing one, or its write log is unreachable); retry.';
const NETWORK_LOST = 'Network connection lost.';

export interface SqlAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
  rows?: { read: number; written: number };
  /** Why it failed (D1's error text), for the request's log line. */
  reason?: string;
}

function rowsOf(response: { success: boolean; results?: { meta: { rows_read: number; rows_written: number } }[] }): { read: number; written: number } {
  let read = 0;
  let written = 0;
  for (const r of response.results ?? []) {
    read += r.meta.rows_read;
    written += r.meta.rows_written;
  }
  return { read, written };
}

/**
 * Runs a SQL request on its database's host and answers in the caller's protocol. In cluster mode
 * the host may say another node is the primary: the request is handed there once (the rqlite shape).
 */
export async function executeSql(
  server: ServerContext,
  grant: Grant,
  database: DatabaseRecord,
  protocol: WireProtocol,
  body: string | JsonBody,
  extra: SqlExtras = {},
  forwarding?: Forwarding,
): Promise<SqlAnswer> {
  const started = performance.now();
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const done = (encoded: Encoded, outcome: 'ok' | 'error' | 'forwarded', rows?: SqlAnswer['rows'], reason?: string): SqlAnswer => {
    if (encoded.bookmark) headers[SESSION_HEADER] = encoded.bookmark;
    server.metrics.queries.inc({ database: database.name, protocol, outcome });
    if (outcome !== 'forwarded') server.metrics.latency.observe({ database: database.name }, (performance.now() - started) / 1000);
    return { status: encoded.status, body: encoded.body, headers, rows, reason };
  };
  let parsed: ParsedSql;
  try {
    parsed = parseSql(protocol, body, extra);
  } catch (e) {
    if (!(e instanceof BadRequest)) throw e;
    return done(sqlFailure(protocol, 'bad-request', e.message), 'error', undefined, e.message);
  }
  const readOnly = !allows(grant.scope, 'write');
  // The lexer's word is the fast path with the token's wording; SQLite refuses writes in the engine too.
  if (readOnly && parsed.writes && !parsed.unclassified) return done(sqlFailure(protocol, 'forbidden', WRITE_REFUSED), 'error', undefined, WRITE_REFUSED);
  if (readOnly) parsed.request.readOnly = true;
  // A transactions handle's transaction is its token's: another token naming the same handle has none.
  // Read-only tokens hold none (their transaction statements are refused as on D1).
  if (parsed.request.transaction !== undefined) {
    if (readOnly) delete parsed.request.transaction;
    else parsed.request.transaction = `${grant.tokenId}:${parsed.request.transaction}`;
  }
  try {
    const response = await server.pool.execute({ uuid: database.uuid, file: server.catalog.file(database.uuid) }, parsed.request, parsed.writes);
    const encoded = parsed.encode(response);
    if (timedOut(response)) server.metrics.timeouts.inc({ database: database.name });
    const rows = rowsOf(response);
    server.metrics.rowsRead.inc({ database: database.name }, rows.read);
    server.metrics.rowsWritten.inc({ database: database.name }, rows.written);
    if (response.success) {
      // Failed requests are not recorded: D1 bills and ranks the queries that ran.
      server.metrics.statements.inc({ database: database.name }, response.results.length);
      // (A request too long to lex on this thread is not described here either.)
      if (!parsed.unclassified) server.queryStats?.record(database.uuid, parsed.request.queries, response.results);
    }
    return done(encoded, encoded.status < 300 && response.success ? 'ok' : 'error', rows, response.success ? undefined : response.error);
  } catch (e) {
    if (e instanceof NotPrimary) {
      const text = typeof body === 'string' ? body : JSON.stringify(body.json);
      const answer = await forward(server, e.holder, protocol, text, forwarding);
      return done(answer, answer.status < 300 ? 'forwarded' : 'error', undefined, answer.status < 300 ? undefined : `forwarded to the primary: ${answer.body.slice(0, 200)}`);
    }
    if (e instanceof HostUnavailable) return done(sqlFailure(protocol, 'unavailable', e.message), 'error', undefined, e.message);
    if (e instanceof HostError) {
      // The database could not be opened or served (its file, its write log): the reason, not a generic error.
      server.logger.error({ database: database.name, err: e }, 'database host failed');
      return done(sqlFailure(protocol, 'host', toldToClient(server, e.message)), 'error', undefined, e.message);
    }
    throw e;
  }
}

/**
 * Cluster mode's one forwarding path (rqlite's shape: the request was tried here, the host said
 * NotPrimary): sends the request as it came to the primary, once. 'no-primary' when none is
 * known or the request was forwarded already (it is never sent on twice); 'network' when the
 * primary cannot be reached.
 */
async function sendToPrimary(
  server: ServerContext,
  target: ForwardTarget | null,
  request: { method: string; path: string; headers: Record<string, string>; body?: string | ArrayBuffer },
): Promise<Response | 'no-primary' | 'network'> {
  if (!target || request.headers[FORWARDED_HEADER] !== undefined) return 'no-primary';
  try {
    const response = await fetch(new URL(request.path, target.url), {
      method: request.method,
      headers: { ...request.headers, [FORWARDED_HEADER]: server.settings.node ?? 'dione' },
      body: request.body,
    });
    // Read whole here: a connection lost while reading is the same failure as one lost while sending.
    return new Response(await response.arrayBuffer(), { status: response.status, headers: response.headers });
  } catch {
    return 'network';
  }
}

/** A SQL request this node cannot serve, answered by the database's primary (in the caller's protocol). */
async function forward(server: ServerContext, target: ForwardTarget | null, protocol: WireProtocol, body: string, forwarding: Forwarding | undefined): Promise<Encoded> {
  const response = forwarding ? await sendToPrimary(server, target, { method: 'POST', path: forwarding.path, headers: forwarding.headers, body }) : 'no-primary';
  if (response === 'no-primary') return sqlFailure(protocol, 'no-primary', NO_PRIMARY);
  if (response === 'network') return sqlFailure(protocol, 'network', NETWORK_LOST);
  return { status: response.status, body: await response.text(), bookmark: response.headers.get(SESSION_HEADER) ?? undefined };
}

/** The headers a forwarded request keeps: who asks, for which database, in which session. */
export function forwardedHeaders(get: (name: string) => string | undefined): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const name of ['authorization', 'content-type', SESSION_HEADER, 'x-dione-database', FORWARDED_HEADER]) {
    const value = get(name);
    if (value !== undefined) kept[name] = value;
  }
  return kept;
}

/**
 * Cluster mode: where `database` is written, 'self' or another node. Requests that need the
 * primary's state (imports, exports, Time Travel, forks) are relayed there as they are.
 */
export async function primaryOf(server: ServerContext, database: DatabaseRecord): Promise<ForwardTarget | 'self'> {
  if (!server.clusterCatalog) return 'self';
  try {
    await server.pool.call({ uuid: database.uuid, file: server.catalog.file(database.uuid) }, { op: 'primary' });
    return 'self';
  } catch (e) {
    if (!(e instanceof NotPrimary)) throw e;
    if (e.holder === null) throw new ApiError(503, ErrorCodes.sql, NO_PRIMARY);
    return e.holder;
  }
}

/** Sends the request being served to `target` as it came (body included) and answers with its answer. */
export async function relay(server: ServerContext, c: Context<Env>, target: ForwardTarget): Promise<Response> {
  const url = new URL(c.req.url);
  const body = c.req.method === 'GET' || c.req.method === 'HEAD' ? undefined : await c.req.arrayBuffer();
  const headers = forwardedHeaders((name) => c.req.header(name));
  const response = await sendToPrimary(server, target, { method: c.req.method, path: url.pathname + url.search, headers, body });
  if (response === 'no-primary') throw new ApiError(503, ErrorCodes.sql, NO_PRIMARY);
  if (response === 'network') throw new ApiError(502, ErrorCodes.sql, NETWORK_LOST);
  return new Response(response.body, { status: response.status, headers: { 'content-type': response.headers.get('content-type') ?? 'application/json' } });
}

/** executeSql for a Hono route. */
export async function runSql(
  server: ServerContext,
  c: Context<Env>,
  database: DatabaseRecord,
  protocol: WireProtocol,
  extra: SqlExtras = {},
): Promise<Response> {
  c.set('logDatabase', database.name);
  const url = new URL(c.req.url);
  const forwarding = { path: url.pathname + url.search, headers: forwardedHeaders((name) => c.req.header(name)) };
  const answer = await executeSql(server, c.get('grant'), database, protocol, await c.req.text(), extra, forwarding);
  if (answer.rows) c.set('logRows', answer.rows);
  return new Response(answer.body, { status: answer.status, headers: answer.headers });
}
