// Request bodies of the three HTTP protocols, validated and turned into engine requests.
import { z } from 'zod';
import type { ExecuteRequest, ParamValue, Query } from '../../api/executor.ts';
import type { IntMode } from '../../api/types.ts';
import { decodeParam } from '../../api/wire.ts';
import { Limits } from '../../sql/limits.ts';
import { splitSqlText } from '../../sql/text-splitter.ts';

export class BadRequest extends Error {}

// Any numbers: workerd's binding sends a typed array's element values (Int8Array [-1] as [-1]) and
// D1 stores each as a byte, wrapping as a Uint8Array does.
const byteArray = z.array(z.number());
/** What D1's binding sends as parameters (bytes as arrays of numbers); REST clients also send booleans. */
const d1Param = z.union([z.number(), z.string(), z.null(), byteArray, z.boolean().transform((b) => (b ? 1 : 0))]);
const d1Query = z.object({ sql: z.string(), params: z.array(d1Param).optional() });

function parseJson(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    throw new BadRequest(`Failed to parse body as JSON, got: ${body.length > 200 ? `${body.slice(0, 200)}…` : body}`);
  }
}

/**
 * A statement binds at most 100 parameters (D1's limit: more is SQLite's "too many SQL variables"),
 * so a query sent with more fails whatever they are, with the error its first 101 give: the rest are
 * dropped before anything checks or copies them (31 million of them held the HTTP thread for seconds).
 */
const PARAMETERS_KEPT = 101;

/**
 * A BLOB sent as an array of bytes binds at most Limits.valueLength of them (more is SQLite's "string
 * or blob too big"): past one more, the bytes are dropped unread too, and the answer is the same.
 */
const BYTES_KEPT = Limits.valueLength + 1;

/** `item.params` cut to PARAMETERS_KEPT, and each array of bytes in it to BYTES_KEPT, in place. */
function boundParameters(item: unknown): void {
  if (typeof item !== 'object' || item === null) return;
  const params = (item as { params?: unknown }).params;
  if (!Array.isArray(params)) return;
  if (params.length > PARAMETERS_KEPT) params.length = PARAMETERS_KEPT;
  for (const p of params) if (Array.isArray(p) && p.length > BYTES_KEPT) p.length = BYTES_KEPT;
}

function boundEach(items: unknown): void {
  if (Array.isArray(items)) for (const item of items) boundParameters(item);
}

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const at = issue.path.length ? ` at ${issue.path.join('.')}` : '';
  throw new BadRequest(`Invalid ${what}${at}: ${issue.message}`);
}

const d1Queries = z.array(d1Query);

/** The body workerd's D1 binding posts to /query and /execute: one query, or an array (batch, exec). */
export function parseD1Body(body: string): { queries: Query[]; array: boolean } {
  const value = parseJson(body);
  const array = Array.isArray(value);
  if (array) boundEach(value);
  else boundParameters(value);
  const plain = plainD1Queries(array ? value : [value]);
  const queries = plain ?? check(d1Queries, array ? value : [value], 'query').map((q) => ({ sql: q.sql, params: (q.params ?? []) as ParamValue[] }));
  checkStatementCount(queries);
  return { queries, array };
}

/**
 * Refuses a request of more statements than a REST request may hold, by the count of its `;`s
 * (a statement ends with one; strings and trigger bodies hold a few more), before anything is
 * lexed: the HTTP thread classifies each statement and encodes a result for each, and a 63 MB
 * body of 7 million `SELECT 1;` held it for over a minute.
 */
function checkStatementCount(queries: { sql: string }[]): void {
  if (queries.length > MAX_REST_STATEMENTS) throw new BadRequest(TOO_MANY_STATEMENTS);
  let semicolons = 0;
  for (const { sql } of queries) {
    for (let at = sql.indexOf(';'); at >= 0; at = sql.indexOf(';', at + 1)) {
      if (++semicolons > 2 * MAX_REST_STATEMENTS) throw new BadRequest(TOO_MANY_STATEMENTS);
    }
  }
}

/**
 * The queries of the common body (sql strings, parameters that are strings, numbers or null), taken
 * as the schema would take them but without it (it costs a few percent of a point select's server
 * time); undefined for anything else, which the schema checks and words the error for.
 */
function plainD1Queries(items: unknown[]): Query[] | undefined {
  const queries: Query[] = [];
  for (const item of items) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return undefined;
    const { sql, params } = item as { sql?: unknown; params?: unknown };
    if (typeof sql !== 'string') return undefined;
    if (params === undefined) {
      queries.push({ sql, params: [] });
      continue;
    }
    if (!Array.isArray(params)) return undefined;
    for (const p of params) if (p !== null && typeof p !== 'string' && typeof p !== 'number') return undefined;
    queries.push({ sql, params: params as ParamValue[] });
  }
  return queries;
}

/** Statements one REST /query or /raw request may hold: each is answered with a result of its own. */
export const MAX_REST_STATEMENTS = 100_000;

/**
 * Characters of SQL one REST /query or /raw request may hold. Splitting it into statements makes an
 * object per token on the HTTP thread (up to ~70 bytes and ~0.35 µs per character of `1+1+…`), so
 * the text is bounded; files go through the import API, which wrangler uses for them.
 */
export const MAX_REST_SQL_CHARS = 4 * 1024 * 1024;

const TOO_MANY_STATEMENTS = `Too many statements in one request: at most ${MAX_REST_STATEMENTS} (larger files go through the import API, as wrangler sends them)`;

const restBody = z.union([
  z.object({ sql: z.string(), params: z.array(d1Param).optional() }),
  z.object({ batch: z.array(d1Query).min(1) }),
]);

/**
 * Cloudflare's REST /query and /raw: `{sql, params}` or `{batch: [...]}`, where each sql may hold
 * several statements and every statement gets its own result. Parameters go to the last statement.
 */
export function parseRestBody(body: string): Query[] {
  const json = parseJson(body);
  boundParameters(json);
  if (typeof json === 'object' && json !== null) boundEach((json as { batch?: unknown }).batch);
  const value = check(restBody, json, 'request body');
  const items = 'batch' in value ? value.batch : [value];
  // The text is split into statements here, on the HTTP thread, token by token: bounded first by
  // its length, and by a count of its `;`s (a statement ends with one; strings and trigger bodies
  // hold a few more) before any is split.
  let chars = 0;
  for (const item of items) chars += item.sql.length;
  if (chars > MAX_REST_SQL_CHARS) {
    throw new BadRequest(`The SQL of one request is at most ${MAX_REST_SQL_CHARS} characters (larger files go through the import API, as wrangler sends them)`);
  }
  checkStatementCount(items);
  const queries: Query[] = [];
  for (const item of items) {
    const params = (item.params ?? []) as ParamValue[];
    const statements = splitSqlText(item.sql, MAX_REST_STATEMENTS - queries.length + 1);
    if (statements.length === 0) queries.push({ sql: item.sql, params });
    if (queries.length + statements.length > MAX_REST_STATEMENTS) throw new BadRequest(TOO_MANY_STATEMENTS);
    for (let i = 0; i < statements.length; i++) queries.push({ sql: statements[i]!, params: i === statements.length - 1 ? params : [] });
  }
  return queries;
}

const wireValue = z.union([z.string(), z.number(), z.null(), z.object({ $b: z.string() }), z.object({ $i: z.string() }), z.object({ $f: z.string() })]);
const wireRequest = z.object({
  queries: z.array(z.object({ sql: z.string(), params: z.array(wireValue).default([]) })),
  resultsFormat: z.enum(['ROWS_AND_COLUMNS', 'FIRST_ROW', 'NONE']).optional(),
  bookmark: z.string().optional(),
  intMode: z.enum(['number', 'bigint']).default('number'),
  transaction: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a transaction handle is 1 to 64 letters, digits, _ or -').optional(),
  held: z.boolean().optional(),
});

/** A request body already parsed as JSON (one call of a pipelined dione request). */
export interface JsonBody {
  json: unknown;
}

/** Dione's own protocol (dione/client): one call, as text or as the JSON it parsed to. */
export function parseDioneBody(body: string | JsonBody): { request: ExecuteRequest; intMode: IntMode } {
  const json = typeof body === 'string' ? parseJson(body) : body.json;
  if (typeof json === 'object' && json !== null) boundEach((json as { queries?: unknown }).queries);
  const value = check(wireRequest, json, 'request');
  let queries: Query[];
  try {
    queries = value.queries.map((q) => ({ sql: q.sql, params: q.params.map(decodeParam) }));
  } catch (e) {
    throw new BadRequest((e as Error).message);
  }
  checkStatementCount(queries);
  const request: ExecuteRequest = { queries, resultsFormat: value.resultsFormat, bookmark: value.bookmark };
  if (value.transaction !== undefined) {
    request.transaction = value.transaction;
    if (value.held) request.transactionHeld = true;
  }
  return { request, intMode: value.intMode };
}

/** What a request path whose percent-encoding does not decode (a lone `%`, `%ZZ`, bytes that are not UTF-8) is told. */
export const MALFORMED_PATH = 'Malformed percent-encoding in the request path';

/** Whether a raw (still encoded) request path decodes. */
export function pathDecodes(rawPath: string): boolean {
  if (!rawPath.includes('%')) return true;
  try {
    decodeURIComponent(rawPath);
    return true;
  } catch {
    return false;
  }
}
