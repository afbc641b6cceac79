// The SQL protocols at the HTTP edge: a request body in the caller's protocol becomes an engine
// request, and an engine response (or a failure) becomes that protocol's answer, status included.
import type { ExecuteRequest, ExecuteResponse } from '../../api/executor.ts';
import type { IntMode } from '../../api/types.ts';
import { timedOut } from '../../engine/engine.ts';
import { parseQuery } from '../../sql/parse-cache.ts';
import { ErrorCodes, envelopeError } from './envelope.ts';
import { BadRequest, type JsonBody, parseD1Body, parseDioneBody, parseRestBody } from './requests.ts';
import { d1Response, dioneResponse, type Encoded, restResponse } from './responses.ts';

/** workerd's binding protocol ('d1'), dione/client's ('dione'), and Cloudflare's REST /query and /raw. */
export type WireProtocol = 'dione' | 'd1' | 'rest-query' | 'rest-raw';

/** The binding protocol's query parameter and session header. */
export interface SqlExtras {
  resultsFormat?: string;
  session?: string;
  /** The HTTP request this one came in (the calls of a pipelined one) holds more SQL than is lexed here. */
  unlexed?: boolean;
}

export interface ParsedSql {
  request: ExecuteRequest;
  /** The request may write (SQLite has the last word: a read-only caller's request runs with writes refused). */
  writes: boolean;
  /**
   * The request's SQL was too long to lex on the HTTP thread (LEXED_HERE_CHARS): `writes` is true
   * without a look, and a read-only caller's request goes to a worker, whose SQLite refuses writes.
   */
  unclassified?: boolean;
  encode(response: ExecuteResponse): Encoded;
}

/** Parses a body in its protocol (only dione's calls arrive parsed already); throws BadRequest with the reason. */
export function parseSql(protocol: WireProtocol, body: string | JsonBody, extra: SqlExtras = {}): ParsedSql {
  if (typeof body !== 'string' && protocol !== 'dione') throw new TypeError(`a ${protocol} body arrives as text`);
  let request: ExecuteRequest;
  let encode: (response: ExecuteResponse) => Encoded;
  switch (protocol) {
    case 'dione': {
      const parsed = parseDioneBody(body);
      request = parsed.request;
      const intMode = parsed.intMode as IntMode;
      encode = (r) => dioneResponse(r, intMode);
      break;
    }
    case 'd1': {
      const { queries, array } = parseD1Body(body as string);
      request = { queries, bookmark: extra.session };
      encode = (r) => d1Response(r, array, extra.resultsFormat);
      break;
    }
    default: {
      const raw = protocol === 'rest-raw';
      request = { queries: parseRestBody(body as string) };
      encode = (r) => restResponse(r, raw);
    }
  }
  const encodeAnswer = protocol === 'd1' ? encode : withTimeoutStatus(encode);
  let chars = 0;
  for (const q of request.queries) chars += q.sql.length;
  if (extra.unlexed || chars > LEXED_HERE_CHARS) return { request, writes: true, unclassified: true, encode: encodeAnswer };
  const writes = request.queries.some((q) => parseQuery(q.sql).statements.some((s) => s.kind === 'write'));
  return { request, writes, encode: encodeAnswer };
}

/**
 * The SQL characters of a request the HTTP thread lexes to tell reads from writes. Lexing costs up to
 * ~0.2 s a MiB (`1+1+…`), and a 58 MB request of such statements held every client for 11–14 s;
 * longer requests go to a worker unlexed (no answer from the HTTP thread's read copies).
 */
export const LEXED_HERE_CHARS = 1024 * 1024;

/**
 * REST and dione/client answer a request the query timeout interrupted with 504. workerd's binding
 * protocol does not: D1 answers its timeout error like any failed query (status 200, see d1Response).
 */
function withTimeoutStatus(encode: (response: ExecuteResponse) => Encoded): (response: ExecuteResponse) => Encoded {
  return (response) => {
    const encoded = encode(response);
    if (timedOut(response)) encoded.status = 504;
    return encoded;
  };
}

export { BadRequest, type JsonBody };

/** What a read-only token is told when its request would write (SQLite refuses it too, should the lexer be wrong). */
export const WRITE_REFUSED = 'This token can only read: the statement would write';

/**
 * Why a SQL request got no engine response, each with its status, in every protocol. A failed query
 * is an engine response, answered in parseSql's encode. These are requests that never reached the
 * database (refused at the edge, or its host could not serve it): D1's binding protocol does not
 * answer those 200 either (miniflare answers 200 only for errors raised while running the queries).
 */
export type SqlFailure = 'bad-request' | 'forbidden' | 'unavailable' | 'no-primary' | 'network' | 'host';

const STATUS: Record<SqlFailure, number> = {
  'bad-request': 400,
  forbidden: 403,
  unavailable: 503,
  'no-primary': 503,
  network: 502,
  host: 500,
};

const CODE: Record<SqlFailure, number> = {
  'bad-request': ErrorCodes.badRequest,
  forbidden: ErrorCodes.forbidden,
  unavailable: ErrorCodes.sql,
  'no-primary': ErrorCodes.sql,
  network: ErrorCodes.sql,
  host: ErrorCodes.sql,
};

/** A failure in the protocol's shape: REST gets a Cloudflare envelope, the binding protocols `{success: false, error}`. */
export function sqlFailure(protocol: WireProtocol, failure: SqlFailure, message: string): Encoded {
  const rest = protocol === 'rest-query' || protocol === 'rest-raw';
  const body = rest ? envelopeError(CODE[failure], message) : { success: false, error: message };
  return { status: STATUS[failure], body: JSON.stringify(body) };
}

/** The engine interrupted the request at the query timeout. */
export { timedOut };
