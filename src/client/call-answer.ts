// One call's answer (a version 1 response, or one answer of a version 2 response), checked before
// the binding gets it: a server or a proxy that is broken or hostile gets a D1_ERROR saying what was
// wrong, never a result it made up (a batch with results missing, a value that decodes to null) or
// a TypeError from deep inside the binding.
import { isBookmark } from '../api/bookmark.ts';
import type { ExecuteResponse, RowValue, StatementResult } from '../api/executor.ts';
import type { D1Meta, IntMode } from '../api/types.ts';
import { decodeValue, isWireValue } from '../api/wire.ts';
import { isDroppedQuery } from '../sql/comments.ts';
import { quoted } from './http.ts';

/** What the call was (`POST <url>`), and how many results are due (resultsDue()). */
export interface CallContext {
  request: string;
  resultsDue: number;
}

class Malformed extends Error {}

/**
 * How many results a call's answer holds: one per query, but for those D1 drops without a result
 * (isDroppedQuery), as the server's engine does.
 */
export function resultsDue(queries: readonly { sql: string }[]): number {
  let due = 0;
  // SQL that is no string is the server's to refuse: it is due a result like any other.
  for (const { sql } of queries) if (typeof sql !== 'string' || !isDroppedQuery(sql)) due++;
  return due;
}

/** The error text of an answer that is not Dione's wire format. */
export function malformedAnswer(request: string, detail: string): string {
  return `The server's answer to ${request} is malformed: ${detail}.`;
}

/** A value for an error message: its JSON, cut short. */
function shown(value: unknown): string {
  let json: string;
  try {
    json = JSON.stringify(value) ?? String(value);
  } catch {
    // Nested deeper than the stack allows (a hostile answer): said, not thrown.
    return 'a value nested too deeply to show';
  }
  return json.length > 100 ? `${json.slice(0, 100)}…` : json;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** The call's answer for the binding: what the server answered, or a failure saying why it cannot be used. */
export function readCallAnswer(body: unknown, status: number, intMode: IntMode, call: CallContext): ExecuteResponse {
  const ok = status >= 200 && status <= 299;
  if (!isObject(body)) {
    const detail = ok ? `it is ${shown(body)}, not a JSON object` : `HTTP ${status} with ${shown(body)}, not a JSON object`;
    return { success: false, error: malformedAnswer(call.request, detail) };
  }
  try {
    if (body.success === true) {
      if (!ok) throw new Malformed(`HTTP ${status} with "success": true`);
      return succeeded(body, intMode, call.resultsDue);
    }
    if (body.success === false && typeof body.error === 'string') return failed(body);
    if (!ok) return { success: false, error: failureText(body, status, call.request) };
    if (body.success === false) throw new Malformed(`"error" is ${shown(body.error)}, not a string`);
    throw new Malformed(body.success === undefined ? '"success" is missing' : `"success" is ${shown(body.success)}, neither true nor false`);
  } catch (e) {
    if (!(e instanceof Malformed)) throw e;
    return { success: false, error: malformedAnswer(call.request, e.message) };
  }
}

function failed(body: Record<string, unknown>): ExecuteResponse {
  const failure: ExecuteResponse = { success: false, error: body.error as string };
  if (body.reset !== undefined) failure.reset = flag(body.reset, '"reset"');
  if (body.inTransaction !== undefined) failure.inTransaction = flag(body.inTransaction, '"inTransaction"');
  return failure;
}

/** A failure status's message from a body that is not Dione's: Cloudflare's errors[0].message, or the status and what came. */
function failureText(body: Record<string, unknown>, status: number, request: string): string {
  const errors = body.errors;
  if (Array.isArray(errors) && isObject(errors[0]) && typeof errors[0].message === 'string') return errors[0].message;
  return `HTTP ${status} from ${request}, with no error message in its answer: ${quoted(JSON.stringify(body))}`;
}

function flag(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new Malformed(`${name} is ${shown(value)}, not true or false`);
  return value;
}

function succeeded(body: Record<string, unknown>, intMode: IntMode, due: number): ExecuteResponse {
  const { results, bookmark } = body;
  if (!Array.isArray(results)) throw new Malformed(results === undefined ? '"results" is missing' : `"results" is ${shown(results)}, not an array`);
  if (results.length !== due) {
    throw new Malformed(`${due} result${due === 1 ? ' is' : 's are'} due (one per statement sent), but it holds ${results.length}`);
  }
  if (typeof bookmark !== 'string' || !isBookmark(bookmark)) throw new Malformed(`"bookmark" is ${shown(bookmark)}, not a bookmark`);
  const response: ExecuteResponse = { success: true, bookmark, results: results.map((r, i) => statementResult(r, `results[${i}]`, intMode)) };
  if (body.inTransaction !== undefined) response.inTransaction = flag(body.inTransaction, '"inTransaction"');
  return response;
}

const META_NUMBERS = ['duration', 'size_after', 'rows_read', 'rows_written', 'last_row_id', 'changes'] as const;

function statementResult(raw: unknown, at: string, intMode: IntMode): StatementResult {
  if (!isObject(raw)) throw new Malformed(`${at} is ${shown(raw)}, not an object`);
  const { columns, rows, meta } = raw;
  if (!Array.isArray(columns) || !columns.every((c) => typeof c === 'string')) throw new Malformed(`${at}.columns is ${shown(columns)}, not an array of names`);
  if (!Array.isArray(rows)) throw new Malformed(`${at}.rows is ${shown(rows)}, not an array`);
  if (!isObject(meta)) throw new Malformed(`${at}.meta is ${shown(meta)}, not an object`);
  for (const name of META_NUMBERS) {
    if (typeof meta[name] !== 'number') throw new Malformed(`${at}.meta.${name} is ${shown(meta[name])}, not a number`);
  }
  if (typeof meta.changed_db !== 'boolean') throw new Malformed(`${at}.meta.changed_db is ${shown(meta.changed_db)}, not true or false`);
  const decoded = new Array<RowValue[]>(rows.length);
  for (let r = 0; r < rows.length; r++) {
    const row: unknown = rows[r];
    if (!Array.isArray(row) || row.length !== columns.length) {
      throw new Malformed(`${at}.rows[${r}] is ${shown(row)}, not an array of ${columns.length} value${columns.length === 1 ? '' : 's'}`);
    }
    const values = new Array<RowValue>(row.length);
    for (let c = 0; c < row.length; c++) {
      const value: unknown = row[c];
      if (!isWireValue(value)) throw new Malformed(`${at}.rows[${r}][${c}] is ${shown(value)}, not a value of the wire format`);
      values[c] = decodeValue(value, intMode);
    }
    decoded[r] = values;
  }
  return { columns, rows: decoded, meta: meta as D1Meta };
}
