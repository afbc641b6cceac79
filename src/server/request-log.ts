// What every HTTP request leaves behind, whichever path served it (the SQL fast path or the Hono
// app): a request counter, a log line, and for failures the answer in the caller's protocol.
import { AuthError } from './auth.ts';
import type { ServerContext } from './context.ts';
import { ApiError } from './protocols/api-errors.ts';
import { ErrorCodes, envelopeError } from './protocols/envelope.ts';

export interface RequestRecord {
  method: string;
  path: string;
  /** The route's pattern, for the counter's label. */
  route: string;
  status: number;
  ms: number;
  database?: string;
  rows?: { read: number; written: number };
}

export function recordRequest(server: ServerContext, r: RequestRecord): void {
  server.metrics.requests.inc({ route: r.route, status: `${Math.floor(r.status / 100)}xx` });
  if (r.route === '/healthz' || r.route === '/metrics') return;
  server.logger.info(
    { method: r.method, path: r.path, status: r.status, ms: Math.round(r.ms * 100) / 100, database: r.database, rows_read: r.rows?.read, rows_written: r.rows?.written },
    'request',
  );
}

/** The binding protocols (workerd's and dione/client's) answer `{success: false, error}`; the REST API, Cloudflare envelopes. */
export function bindingProtocolPath(path: string): boolean {
  return path === '/query' || path === '/execute' || path.startsWith('/dione/v1/');
}

/** The answer for an error thrown while serving a request; unexpected ones are logged. */
export function errorAnswer(server: ServerContext, error: unknown, path: string): { status: number; body: unknown } {
  const binding = bindingProtocolPath(path);
  if (error instanceof AuthError || error instanceof ApiError) {
    const code = error instanceof ApiError ? error.code : error.status === 401 ? ErrorCodes.authentication : ErrorCodes.forbidden;
    return { status: error.status, body: binding ? { success: false, error: error.message } : envelopeError(code, error.message) };
  }
  server.logger.error({ err: error, path }, 'unhandled error');
  const message = 'Internal error in the Dione server; see its log';
  return { status: 500, body: binding ? { success: false, error: message } : envelopeError(ErrorCodes.sql, message) };
}

export const tooLargeMessage = (limit: number) => `Request body is larger than ${limit} bytes`;
