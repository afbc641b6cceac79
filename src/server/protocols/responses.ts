// Engine responses in each protocol's shape. D1's shapes carry values as D1 does (integers as
// JSON numbers, BLOBs as arrays of bytes); Dione's wire keeps them exact.
import { randomBytes } from 'node:crypto';
import { Messages } from '../../api/errors.ts';
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

/**
 * The BLOBs of one answer in D1's shape, an array of byte values each, written straight into its
 * JSON text: as JS arrays they took 8 bytes of heap a byte, and a few rows of 2 MB BLOBs ran the
 * server out of memory. Each BLOB stands in the value tree as a marker string holding a random
 * nonce (no text a query returns can pass for one) until the text is written.
 */
class BlobSlots {
  /** Drawn at the first BLOB: most answers hold none. */
  private nonce = '';
  private readonly blobs: Uint8Array[] = [];

  marker(blob: Uint8Array): string {
    if (this.nonce === '') this.nonce = randomBytes(12).toString('hex');
    this.blobs.push(blob);
    return `\u0000${this.nonce}:${this.blobs.length - 1}`;
  }

  /** `json` with each marker (as JSON.stringify wrote it) replaced by its BLOB's array of bytes. */
  fill(json: string): string {
    if (this.blobs.length === 0) return json;
    return json.replace(new RegExp(`"\\\\u0000${this.nonce}:(\\d+)"`, 'g'), (_, i: string) => bytesJson(this.blobs[Number(i)]!));
  }
}

/** `[1,2,255]`: the decimal bytes, built in one buffer. */
function bytesJson(blob: Uint8Array): string {
  const out = Buffer.allocUnsafe(2 + blob.length * 4);
  let at = 0;
  out[at++] = 0x5b;
  for (let i = 0; i < blob.length; i++) {
    if (i > 0) out[at++] = 0x2c;
    const b = blob[i]!;
    if (b >= 100) out[at++] = 0x30 + Math.floor(b / 100);
    if (b >= 10) out[at++] = 0x30 + (Math.floor(b / 10) % 10);
    out[at++] = 0x30 + (b % 10);
  }
  out[at++] = 0x5d;
  return out.toString('latin1', 0, at);
}

/**
 * The most JSON text one answer may take (its BLOBs at up to 4 characters a byte): a bound on the
 * memory one request takes on the HTTP thread. A Worker's D1 result must fit in its 128 MB.
 */
export const MAX_ANSWER_JSON = 128 * 1024 * 1024;

/** About the JSON text `results` take, counting BLOB bytes at 4 characters and text at 1 or more. */
function jsonSize(results: StatementResult[], withNames: boolean): number {
  let size = 0;
  for (const r of results) {
    let names = 0;
    if (withNames) for (const c of r.columns) names += c.length + 4;
    for (const row of r.rows) {
      size += names + 2;
      for (const v of row) {
        if (v instanceof Uint8Array) size += v.byteLength * 4 + 2;
        else if (typeof v === 'string') size += v.length + 3;
        else size += 21;
      }
      if (size > MAX_ANSWER_JSON) return size;
    }
  }
  return size;
}

/** A value as D1 puts it in JSON. */
function d1Value(value: RowValue, blobs: BlobSlots): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return blobs.marker(value);
  return value;
}

function objects(result: StatementResult, blobs: BlobSlots): Record<string, unknown>[] {
  return result.rows.map((row) => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < result.columns.length; i++) setColumn(o, result.columns[i]!, d1Value(row[i]!, blobs));
    return o;
  });
}

function columnsAndRows(result: StatementResult, blobs: BlobSlots) {
  return { columns: result.columns, rows: result.rows.map((row) => row.map((v) => d1Value(v, blobs))) };
}

/**
 * workerd's D1 binding protocol: a result object per query, or one failure object. A failed query
 * is status 200, as D1 answers it: the binding reads the body whatever the status.
 */
export function d1Response(response: ExecuteResponse, array: boolean, resultsFormat: string | undefined): Encoded {
  if (!response.success) return { status: 200, body: JSON.stringify({ success: false, error: response.error }) };
  const raw = resultsFormat === 'ROWS_AND_COLUMNS';
  if (jsonSize(response.results, !raw) > MAX_ANSWER_JSON) return d1Response({ success: false, error: TOO_LARGE }, array, resultsFormat);
  const blobs = new BlobSlots();
  const items = response.results.map((r) => ({ success: true, meta: r.meta, results: raw ? columnsAndRows(r, blobs) : objects(r, blobs) }));
  const body = jsonOf(array ? items : items[0], blobs);
  if (body === undefined) return d1Response({ success: false, error: TOO_LARGE }, array, resultsFormat);
  return { status: 200, body, bookmark: response.bookmark };
}

/** Cloudflare REST /query (row objects) and /raw ({columns, rows}), one result per statement. */
export function restResponse(response: ExecuteResponse, raw: boolean): Encoded {
  if (!response.success) return { status: 400, body: JSON.stringify(envelopeError(ErrorCodes.sql, response.error)) };
  if (jsonSize(response.results, !raw) > MAX_ANSWER_JSON) return restResponse({ success: false, error: TOO_LARGE }, raw);
  const blobs = new BlobSlots();
  const results = response.results.map((r) => ({ results: raw ? columnsAndRows(r, blobs) : objects(r, blobs), success: true, meta: r.meta }));
  const body = jsonOf(success(results), blobs);
  if (body === undefined) return restResponse({ success: false, error: TOO_LARGE }, raw);
  return { status: 200, body };
}

export function dioneResponse(response: ExecuteResponse, intMode: IntMode): Encoded {
  // (BLOBs go as base64 here: 4 characters for 3 bytes, no arrays.)
  if (response.success && jsonSize(response.results, false) > MAX_ANSWER_JSON) return dioneResponse({ success: false, error: TOO_LARGE }, intMode);
  const body = jsonOf(encodeResponse(response, intMode));
  if (body === undefined) return dioneResponse({ success: false, error: TOO_LARGE }, intMode);
  return { status: 200, body, bookmark: response.success ? response.bookmark : undefined };
}

/** What a result too large for one answer is answered with instead. */
const TOO_LARGE = Messages.resultTooLarge;

/** JSON text of `value` (its BLOBs written in), or undefined when it would be longer than a string can be. */
function jsonOf(value: unknown, blobs?: BlobSlots): string | undefined {
  try {
    const json = JSON.stringify(value);
    return blobs ? blobs.fill(json) : json;
  } catch (e) {
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}
