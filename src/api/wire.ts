// Dione's own wire format (dione/client <-> server): JSON where the values JSON would lose travel
// tagged: {"$b": base64} BLOBs, {"$i": "digits"} 64-bit integers, {"$f": "Infinity"|"-Infinity"|"-0"|…}
// REALs that JSON cannot hold or that would read back as integers. Node-free (btoa/atob exist in
// Workers, browsers, Deno, Bun and Node).
import type { ExecuteRequest, ExecuteResponse, ParamValue, RowValue } from './executor.ts';
import type { D1Meta, IntMode } from './types.ts';

export type WireValue = string | number | null | { $b: string } | { $i: string } | { $f: string };

export interface WireRequest {
  queries: { sql: string; params: WireValue[] }[];
  resultsFormat?: ExecuteRequest['resultsFormat'];
  bookmark?: string;
  intMode?: IntMode;
  /** The transactions handle the request comes from (connect({ transactions: true })). */
  transaction?: string;
  /** The handle's last answer said it holds a transaction. */
  held?: boolean;
}

export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A parameter for the wire: byte arrays as base64, bigints as digit strings. */
export function encodeParam(value: ParamValue): WireValue {
  if (Array.isArray(value)) return { $b: toBase64(Uint8Array.from(value)) };
  if (typeof value === 'bigint') return { $i: value.toString() };
  return value;
}

/** A parameter from the wire, as the engine binds it (BLOBs as byte arrays). */
export function decodeParam(value: unknown): ParamValue {
  if (value === null || typeof value === 'string' || typeof value === 'number') return value;
  // A tagged value holds exactly what its tag holds ({"$f": "abc"} bound NULL; a 30-digit $i failed as too big).
  if (!isWireValue(value)) throw new TypeError(`unsupported parameter ${JSON.stringify(value)}`);
  const tagged = value as Record<string, string>;
  if (tagged.$b !== undefined) return Array.from(fromBase64(tagged.$b));
  if (tagged.$i !== undefined) return BigInt(tagged.$i);
  return tagged.$f === '-0' ? -0 : Number(tagged.$f);
}

/**
 * A column value for the wire. Integers arrive from the engine as bigints: in 'number' mode they
 * become JSON numbers (rounded past 2^53, as D1 does); in 'bigint' mode they stay exact, and
 * REALs with integral values are tagged so they do not read back as integers.
 */
export function encodeValue(value: RowValue, intMode: IntMode): WireValue {
  switch (typeof value) {
    case 'bigint':
      if (intMode === 'number') return Number(value);
      return value >= -9007199254740991n && value <= 9007199254740991n ? Number(value) : { $i: value.toString() };
    case 'number':
      if (!Number.isFinite(value) || Object.is(value, -0)) return { $f: String(Object.is(value, -0) ? '-0' : value) };
      return intMode === 'bigint' && Number.isInteger(value) ? { $f: String(value) } : value;
    case 'object':
      return value === null ? null : { $b: toBase64(value) };
    default:
      return value;
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const INTEGER = /^-?\d{1,19}$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** What String() makes of a REAL encodeValue tags: ±Infinity, -0, or an integral value (maybe with an exponent). */
const REAL = /^-?(?:Infinity|\d+(?:\.\d+)?(?:e[+-]\d+)?)$/;

/**
 * Whether `value` is a column value as encodeValue writes one: a JSON number, string or null, or an
 * object with exactly one tag holding what that tag holds (base64 as btoa pads it, a 64-bit integer's
 * digits, a number's text). decodeValue trusts its input; answers from elsewhere are checked with this.
 */
export function isWireValue(value: unknown): value is WireValue {
  if (value === null || typeof value === 'string' || typeof value === 'number') return true;
  if (typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  if (keys.length !== 1) return false;
  const text = (value as Record<string, unknown>)[keys[0]!];
  if (typeof text !== 'string') return false;
  switch (keys[0]) {
    case '$b':
      return text.length % 4 === 0 && BASE64.test(text);
    case '$i': {
      if (!INTEGER.test(text)) return false;
      const n = BigInt(text);
      return n >= INT64_MIN && n <= INT64_MAX;
    }
    case '$f':
      return REAL.test(text);
    default:
      return false;
  }
}

export function decodeValue(value: WireValue, intMode: IntMode): RowValue {
  if (typeof value === 'number') return intMode === 'bigint' && Number.isInteger(value) ? BigInt(value) : value;
  if (value === null || typeof value === 'string') return value;
  if ('$b' in value) return fromBase64(value.$b);
  if ('$i' in value) return intMode === 'bigint' ? BigInt(value.$i) : Number(value.$i);
  return value.$f === '-0' ? -0 : Number(value.$f);
}

export function encodeRequest(request: ExecuteRequest, intMode: IntMode): WireRequest {
  return {
    queries: request.queries.map((q) => ({ sql: q.sql, params: q.params.map(encodeParam) })),
    resultsFormat: request.resultsFormat,
    bookmark: request.bookmark,
    intMode,
  };
}

export type WireResponse =
  | { success: true; results: { columns: string[]; rows: WireValue[][]; meta: D1Meta }[]; bookmark: string; inTransaction?: boolean }
  | { success: false; error: string; reset?: boolean; inTransaction?: boolean };

export function encodeResponse(response: ExecuteResponse, intMode: IntMode): WireResponse {
  if (!response.success) {
    const { busy: _, ...failure } = response;
    return failure;
  }
  return {
    success: true,
    bookmark: response.bookmark,
    ...(response.inTransaction === undefined ? {} : { inTransaction: response.inTransaction }),
    results: response.results.map((r) => ({ columns: r.columns, rows: r.rows.map((row) => row.map((v) => encodeValue(v, intMode))), meta: r.meta })),
  };
}

export function decodeResponse(wire: WireResponse, intMode: IntMode): ExecuteResponse {
  if (!wire.success) return wire;
  return {
    success: true,
    bookmark: wire.bookmark,
    ...(wire.inTransaction === undefined ? {} : { inTransaction: wire.inTransaction }),
    results: wire.results.map((r) => ({
      columns: r.columns,
      rows: r.rows.map((row) => row.map((v) => decodeValue(v, intMode))),
      meta: r.meta as D1Meta,
    })),
  };
}
