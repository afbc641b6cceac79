// Sending SQL to a database's host and answering in the caller's protocol, including when the
// host had to be stopped (timeout, crash). Framework-free, so both the Hono routes and the raw
// fast path (fast-path.ts) use it.
import type { Context } from 'hono';
import type { DatabaseRecord } from '../catalog.ts';
import type { Env, ServerContext } from '../context.ts';
import { HostFailure } from '../host/pool.ts';
import type { ForwardTarget, WireProtocol } from '../host/protocol.ts';
import { ErrorCodes, envelopeError } from '../protocols/envelope.ts';
import { ApiError } from './rest.ts';
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

function failureBody(protocol: WireProtocol, message: string): string {
  if (protocol === 'rest-query' || protocol === 'rest-raw') return JSON.stringify(envelopeError(ErrorCodes.sql, message));
  return JSON.stringify({ success: false, error: message });
}

export interface SqlAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
  rows?: { read: number; written: number };
}

export async function executeSql(
  server: ServerContext,
  grant: Grant,
  database: DatabaseRecord,
  protocol: WireProtocol,
  body: string,
  extra: { resultsFormat?: string; session?: string } = {},
  forwarding?: Forwarding,
): Promise<SqlAnswer> {
  const started = performance.now();
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  let answer: SqlAnswer;
  try {
    const reply = await server.pool.send(database.uuid, server.catalog.file(database.uuid), {
      op: 'execute',
      protocol,
      body,
      readOnly: !allows(grant.scope, 'write'),
      ...extra,
    });
    if (reply.forward !== undefined) {
      answer = await forward(server, reply.forward, protocol, body, forwarding);
      server.metrics.queries.inc({ database: database.name, protocol, outcome: answer.status < 300 ? 'forwarded' : 'error' });
      return answer;
    }
    if (reply.bookmark) headers[SESSION_HEADER] = reply.bookmark;
    answer = { status: reply.status, body: reply.body, headers };
    if (reply.rows) {
      answer.rows = { read: reply.rows[0], written: reply.rows[1] };
      server.metrics.rowsRead.inc({ database: database.name }, reply.rows[0]);
      server.metrics.rowsWritten.inc({ database: database.name }, reply.rows[1]);
    }
  } catch (e) {
    if (!(e instanceof HostFailure)) throw e;
    if (e.kind === 'timeout') server.metrics.timeouts.inc({ database: database.name });
    answer = { status: e.kind === 'timeout' ? 504 : 503, body: failureBody(protocol, e.message), headers };
  }
  server.metrics.queries.inc({ database: database.name, protocol, outcome: answer.status < 300 ? 'ok' : 'error' });
  server.metrics.latency.observe({ database: database.name }, (performance.now() - started) / 1000);
  return answer;
}

/** Cluster mode: hands a request this node cannot serve to the database's primary, and relays its answer. */
async function forward(server: ServerContext, target: ForwardTarget | null, protocol: WireProtocol, body: string, forwarding: Forwarding | undefined): Promise<SqlAnswer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (!target || !forwarding || forwarding.headers[FORWARDED_HEADER] !== undefined) return { status: 503, body: failureBody(protocol, NO_PRIMARY), headers };
  let response: Response;
  let text: string;
  try {
    response = await fetch(new URL(forwarding.path, target.url), {
      method: 'POST',
      headers: { ...forwarding.headers, [FORWARDED_HEADER]: server.settings.node ?? 'dione' },
      body,
    });
    text = await response.text();
  } catch {
    return { status: 502, body: failureBody(protocol, NETWORK_LOST), headers };
  }
  const bookmark = response.headers.get(SESSION_HEADER);
  if (bookmark) headers[SESSION_HEADER] = bookmark;
  return { status: response.status, body: text, headers };
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
  const reply = await server.pool.send(database.uuid, server.catalog.file(database.uuid), { op: 'primary' });
  if (reply.forward === undefined) return 'self';
  if (reply.forward === null) throw new ApiError(503, ErrorCodes.sql, NO_PRIMARY);
  return reply.forward;
}

/** Sends the request being served to `target` as it came (body included) and answers with its answer. */
export async function relay(server: ServerContext, c: Context<Env>, target: ForwardTarget): Promise<Response> {
  if (c.req.header(FORWARDED_HEADER) !== undefined) throw new ApiError(503, ErrorCodes.sql, NO_PRIMARY);
  const url = new URL(c.req.url);
  const body = c.req.method === 'GET' || c.req.method === 'HEAD' ? undefined : await c.req.arrayBuffer();
  let response: Response;
  try {
    response = await fetch(new URL(url.pathname + url.search, target.url), {
      method: c.req.method,
      headers: { ...forwardedHeaders((name) => c.req.header(name)), [FORWARDED_HEADER]: server.settings.node ?? 'dione' },
      body,
    });
  } catch {
    throw new ApiError(502, ErrorCodes.sql, NETWORK_LOST);
  }
  return new Response(await response.arrayBuffer(), { status: response.status, headers: { 'content-type': response.headers.get('content-type') ?? 'application/json' } });
}

/** executeSql for a Hono route. */
export async function runSql(
  server: ServerContext,
  c: Context<Env>,
  database: DatabaseRecord,
  protocol: WireProtocol,
  extra: { resultsFormat?: string; session?: string } = {},
): Promise<Response> {
  c.set('logDatabase', database.name);
  const url = new URL(c.req.url);
  const forwarding = { path: url.pathname + url.search, headers: forwardedHeaders((name) => c.req.header(name)) };
  const answer = await executeSql(server, c.get('grant'), database, protocol, await c.req.text(), extra, forwarding);
  if (answer.rows) c.set('logRows', answer.rows);
  return new Response(answer.body, { status: answer.status, headers: answer.headers });
}
