// Engine responses in each protocol's shape. D1's shapes carry values as D1 does (integers as
// JSON numbers, BLOBs as arrays of bytes); Dione's wire keeps them exact.
import type { ExecuteResponse, RowValue, StatementResult } from '../../api/executor.ts';
import { setColumn } from '../../api/row-object.ts';
import type { IntMode } from '../../api/types.ts';
import { encodeResponse } from '../../api/wire.ts';
import { envelopeError, ErrorCodes, success } from './envelope.ts';

export interface Encoded {
  status: number;
  body: string;
  bookmark?: string;
}

/** A value as D1 puts it in JSON. */
function d1Value(value: RowValue): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return Array.from(value);
  return value;
}

function objects(result: StatementResult): Record<string, unknown>[] {
  return result.rows.map((row) => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < result.columns.length; i++) setColumn(o, result.columns[i]!, d1Value(row[i]!));
    return o;
  });
}

function columnsAndRows(result: StatementResult) {
  return { columns: result.columns, rows: result.rows.map((row) => row.map(d1Value)) };
}

/**
 * workerd's D1 binding protocol: a result object per query, or one failure object. A failed query
 * is status 200, as D1 answers it: the binding reads the body whatever the status.
 */
export function d1Response(response: ExecuteResponse, array: boolean, resultsFormat: string | undefined): Encoded {
  if (!response.success) return { status: 200, body: JSON.stringify({ success: false, error: response.error }) };
  const items = response.results.map((r) => ({
    success: true,
    meta: r.meta,
    results: resultsFormat === 'ROWS_AND_COLUMNS' ? columnsAndRows(r) : objects(r),
  }));
  const body = jsonOf(array ? items : items[0]);
  if (body === undefined) return d1Response({ success: false, error: TOO_LARGE }, array, resultsFormat);
  return { status: 200, body, bookmark: response.bookmark };
}

/** Cloudflare REST /query (row objects) and /raw ({columns, rows}), one result per statement. */
export function restResponse(response: ExecuteResponse, raw: boolean): Encoded {
  if (!response.success) return { status: 400, body: JSON.stringify(envelopeError(ErrorCodes.sql, response.error)) };
  const results = response.results.map((r) => ({ results: raw ? columnsAndRows(r) : objects(r), success: true, meta: r.meta }));
  const body = jsonOf(success(results));
  if (body === undefined) return restResponse({ success: false, error: TOO_LARGE }, raw);
  return { status: 200, body };
}

export function dioneResponse(response: ExecuteResponse, intMode: IntMode): Encoded {
  const body = jsonOf(encodeResponse(response, intMode));
  if (body === undefined) return dioneResponse({ success: false, error: TOO_LARGE }, intMode);
  return { status: 200, body, bookmark: response.success ? response.bookmark : undefined };
}

/** What a result too large for one JSON text (V8 strings end at 512 MiB) is answered with instead. */
const TOO_LARGE = 'The result is too large to send in one response (its JSON would exceed 512 MiB): select fewer rows or columns at once';

/** JSON text of `value`, or undefined when it would be longer than a string can be. */
function jsonOf(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (e) {
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}
