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
  /** The token's id (never its secret), once the request was authenticated. */
  token?: string;
  /** Why it failed: D1's error text, the auth failure, an import's error. */
  reason?: string;
}

export function recordRequest(server: ServerContext, r: RequestRecord): void {
  server.metrics.requests.inc({ route: r.route, status: `${Math.floor(r.status / 100)}xx` });
  if ((r.route === '/healthz' || r.route === '/metrics') && r.status < 400) return;
  const line = {
    method: r.method,
    path: r.path,
    status: r.status,
    ms: Math.round(r.ms * 100) / 100,
    database: r.database,
    token: r.token,
    rows_read: r.rows?.read,
    rows_written: r.rows?.written,
    reason: r.reason,
  };
  // A request that failed by its caller's fault is a warning; one that failed by the server's, an error.
  if (r.status >= 500) server.logger.error(line, 'request');
  else if (r.status >= 400 || r.reason !== undefined) server.logger.warn(line, 'request');
  else server.logger.info(line, 'request');
}

/** The console's API (routes/console-api.ts): under /dione/v1 but answered in Cloudflare's envelopes. */
const CONSOLE_API = /^\/dione\/v1\/(whoami$|tokens(\/|$)|databases$|databases\/[^/]+\/commits$)/;

/** The binding protocols (workerd's and dione/client's) answer `{success: false, error}`; the REST API and the console's API, Cloudflare envelopes. */
export function bindingProtocolPath(path: string): boolean {
  return path === '/query' || path === '/execute' || (path.startsWith('/dione/v1/') && !CONSOLE_API.test(path));
}

/** The answer for an error thrown while serving a request; unexpected ones are logged. */
export function errorAnswer(server: ServerContext, error: unknown, path: string): { status: number; body: unknown; reason: string } {
  const binding = bindingProtocolPath(path);
  if (error instanceof AuthError || error instanceof ApiError) {
    const code = error instanceof ApiError ? error.code : error.status === 401 ? ErrorCodes.authentication : ErrorCodes.forbidden;
    return { status: error.status, body: binding ? { success: false, error: error.message } : envelopeError(code, error.message), reason: error.message };
  }
  server.logger.error({ err: error, path }, 'unhandled error');
  const message = 'Internal error in the Dione server; see its log';
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { status: 500, body: binding ? { success: false, error: message } : envelopeError(ErrorCodes.sql, message), reason };
}

/** A host's failure as a client is told it: the reason, not where the server keeps its files. */
export function toldToClient(server: ServerContext, message: string): string {
  return message.split(server.catalog.dataDir).join('<data>');
}

export const tooLargeMessage = (limit: number) => `Request body is larger than ${limit} bytes`;
