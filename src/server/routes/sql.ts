// Sending SQL to a database's host and answering in the caller's protocol, including when the
// host had to be stopped (timeout, crash). Framework-free, so both the Hono routes and the raw
// fast path (fast-path.ts) use it.
import type { Context } from 'hono';
import type { DatabaseRecord } from '../catalog.ts';
import type { Env, ServerContext } from '../context.ts';
import { HostFailure } from '../host/pool.ts';
import type { WireProtocol } from '../host/protocol.ts';
import { ErrorCodes, envelopeError } from '../protocols/envelope.ts';
import { allows, type Grant } from '../tokens.ts';

export const SESSION_HEADER = 'x-cf-d1-session-commit-token';

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

/** executeSql for a Hono route. */
export async function runSql(
  server: ServerContext,
  c: Context<Env>,
  database: DatabaseRecord,
  protocol: WireProtocol,
  extra: { resultsFormat?: string; session?: string } = {},
): Promise<Response> {
  c.set('logDatabase', database.name);
  const answer = await executeSql(server, c.get('grant'), database, protocol, await c.req.text(), extra);
  if (answer.rows) c.set('logRows', answer.rows);
  return new Response(answer.body, { status: answer.status, headers: answer.headers });
}
