// The SQL endpoints of the D1 binding protocol (POST /query, /execute) and of dione/client
// (POST /dione/v1/databases/:db/execute), served straight from Node's request and response: they
// are every query's path, and building web Request objects and streams for them cost more than
// the query. Errors, body limits, logs and metrics are the Hono app's (request-log.ts); the Hono
// app serves everything else.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from './auth.ts';
import type { ServerContext } from './context.ts';
import { ErrorCodes, envelopeError } from './protocols/envelope.ts';
import { MALFORMED_PATH } from './protocols/requests.ts';
import type { WireProtocol } from './protocols/sql.ts';
import { DATABASE_HEADER, findDatabase } from './routes/database-protocols.ts';
import { ApiError } from './protocols/api-errors.ts';
import { bindingProtocolPath, errorAnswer, recordRequest, tooLargeMessage } from './request-log.ts';
import { executeDione } from './routes/dione-calls.ts';
import { executeSql, forwardedHeaders, SESSION_HEADER } from './routes/sql.ts';

const DIONE_EXECUTE = /^\/dione\/v1\/databases\/([^/]+)\/execute$/;

class TooLarge extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return reject(new TooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new TooLarge());
      } else chunks.push(chunk);
    });
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
    req.once('aborted', () => reject(new Error('aborted')));
  });
}

/** Returns a request handler that answers the SQL endpoints and returns false for anything else. */
export function fastPath(server: ServerContext, resolveGrant: Authenticator) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'POST') return false;
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    let protocol: WireProtocol;
    let route: string;
    let named: string | undefined;
    let malformed = false;
    if (pathname === '/query' || pathname === '/execute') {
      protocol = 'd1';
      route = pathname;
      const header = req.headers[DATABASE_HEADER];
      named = Array.isArray(header) ? header[0] : header;
    } else {
      const match = DIONE_EXECUTE.exec(pathname);
      if (!match) return false;
      protocol = 'dione';
      route = '/dione/v1/databases/:db/execute';
      try {
        named = decodeURIComponent(match[1]!);
      } catch {
        malformed = true; // answered as the Hono routes answer it
      }
    }
    void serve(server, resolveGrant, req, res, protocol, route, pathname, named, q < 0 ? '' : url.slice(q + 1), malformed);
    return true;
  };
}

async function serve(
  server: ServerContext,
  resolveGrant: Authenticator,
  req: IncomingMessage,
  res: ServerResponse,
  protocol: WireProtocol,
  route: string,
  pathname: string,
  named: string | undefined,
  query: string,
  malformedPath = false,
): Promise<void> {
  const started = performance.now();
  let status = 500;
  let database: string | undefined;
  let rows: { read: number; written: number } | undefined;
  let token: string | undefined;
  let reason: string | undefined;
  const send = (code: number, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
    status = code;
    res.writeHead(code, { ...headers, 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  try {
    if (malformedPath) throw new ApiError(400, ErrorCodes.badRequest, MALFORMED_PATH);
    const grant = resolveGrant(req.headers.authorization);
    token = grant.tokenId;
    const record = await findDatabase(server, named, grant);
    database = record.name;
    const body = await readBody(req, server.settings.maxBodyBytes);
    const extra: { resultsFormat?: string; session?: string } = {};
    if (protocol === 'd1') {
      const params = new URLSearchParams(query);
      extra.resultsFormat = params.get('resultsFormat') ?? undefined;
      const session = req.headers[SESSION_HEADER];
      extra.session = (Array.isArray(session) ? session[0] : session) || undefined;
    }
    const forwarding = {
      path: req.url ?? '/',
      headers: forwardedHeaders((name) => {
        const value = req.headers[name];
        return Array.isArray(value) ? value[0] : value;
      }),
    };
    const answer =
      protocol === 'dione' ? await executeDione(server, grant, record, body, pathname, forwarding) : await executeSql(server, grant, record, protocol, body, extra, forwarding);
    rows = answer.rows;
    reason = answer.reason;
    send(answer.status, answer.body, answer.headers);
  } catch (error) {
    if (error instanceof TooLarge) {
      reason = tooLargeMessage(server.settings.maxBodyBytes);
      const message = tooLargeMessage(server.settings.maxBodyBytes);
      // Shaped as the protocol's other refusals (a binding reads { success: false, error }).
      send(413, JSON.stringify(bindingProtocolPath(pathname) ? { success: false, error: message } : envelopeError(ErrorCodes.tooLarge, message)));
    } else if (error instanceof Error && error.message === 'aborted') {
      status = 499; // the client went away; there is no one to answer
      reason = 'the client closed the connection before the answer';
    } else {
      const answer = errorAnswer(server, error, pathname);
      reason = answer.reason;
      send(answer.status, JSON.stringify(answer.body));
    }
  }
  recordRequest(server, { method: 'POST', path: pathname, route, status, ms: performance.now() - started, database, rows, token, reason });
}
