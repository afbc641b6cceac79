// Engine responses in each protocol's shape. D1's shapes carry values as D1 does (integers as
// JSON numbers, BLOBs as arrays of bytes); Dione's wire keeps them exact.
import type { ExecuteResponse, RowValue, StatementResult } from '../../api/executor.ts';
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
    for (let i = 0; i < result.columns.length; i++) o[result.columns[i]!] = d1Value(row[i]!);
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
  return { status: 200, body: JSON.stringify(array ? items : items[0]), bookmark: response.bookmark };
}

/** Cloudflare REST /query (row objects) and /raw ({columns, rows}), one result per statement. */
export function restResponse(response: ExecuteResponse, raw: boolean): Encoded {
  if (!response.success) return { status: 400, body: JSON.stringify(envelopeError(ErrorCodes.sql, response.error)) };
  const results = response.results.map((r) => ({ results: raw ? columnsAndRows(r) : objects(r), success: true, meta: r.meta }));
  return { status: 200, body: JSON.stringify(success(results)) };
}

export function dioneResponse(response: ExecuteResponse, intMode: IntMode): Encoded {
  const body = JSON.stringify(encodeResponse(response, intMode));
  return { status: 200, body, bookmark: response.success ? response.bookmark : undefined };
}
