// Sending SQL to a database's host and answering in the caller's protocol, including when the
// host had to be stopped (timeout, crash).
import type { Context } from 'hono';
import type { DatabaseRecord } from '../catalog.ts';
import type { Env, ServerContext } from '../context.ts';
import { HostFailure } from '../host/pool.ts';
import type { WireProtocol } from '../host/protocol.ts';
import { ErrorCodes, envelopeError } from '../protocols/envelope.ts';
import { allows } from '../tokens.ts';

export const SESSION_HEADER = 'x-cf-d1-session-commit-token';

function failureBody(protocol: WireProtocol, message: string): string {
  if (protocol === 'rest-query' || protocol === 'rest-raw') return JSON.stringify(envelopeError(ErrorCodes.sql, message));
  return JSON.stringify({ success: false, error: message });
}

export async function runSql(
  server: ServerContext,
  c: Context<Env>,
  database: DatabaseRecord,
  protocol: WireProtocol,
  extra: { resultsFormat?: string; session?: string } = {},
): Promise<Response> {
  const started = performance.now();
  const grant = c.get('grant');
  const body = await c.req.text();
  c.set('logDatabase', database.name);
  let status: number;
  let text: string;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  try {
    const reply = await server.pool.send(database.uuid, server.catalog.file(database.uuid), {
      op: 'execute',
      protocol,
      body,
      readOnly: !allows(grant.scope, 'write'),
      ...extra,
    });
    status = reply.status;
    text = reply.body;
    if (reply.bookmark) headers[SESSION_HEADER] = reply.bookmark;
    if (reply.rows) {
      c.set('logRows', { read: reply.rows[0], written: reply.rows[1] });
      server.metrics.rowsRead.inc({ database: database.name }, reply.rows[0]);
      server.metrics.rowsWritten.inc({ database: database.name }, reply.rows[1]);
    }
  } catch (e) {
    if (!(e instanceof HostFailure)) throw e;
    if (e.kind === 'timeout') server.metrics.timeouts.inc({ database: database.name });
    status = e.kind === 'timeout' ? 504 : 503;
    text = failureBody(protocol, e.message);
  }
  const outcome = status < 300 ? 'ok' : 'error';
  server.metrics.queries.inc({ database: database.name, protocol, outcome });
  server.metrics.latency.observe({ database: database.name }, (performance.now() - started) / 1000);
  return new Response(text, { status, headers });
}
