// bind(): JS values into D1 parameters, synchronously, with D1's conversions and errors.
import { d1Error } from '../api/errors.ts';
import type { ParamValue } from '../api/executor.ts';

function typeError(value: unknown): Error {
  // A template literal, not String(): like D1, a Symbol makes building the message itself throw.
  const detail = `Type '${typeof value}' not supported for value '${value instanceof Date ? dateInUtc(value) : value}'`;
  return d1Error('D1_TYPE_ERROR', detail);
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/**
 * A Date as Date#toString() reads where D1 runs (workerd, whose time zone is UTC), whatever this
 * host's time zone is.
 */
function dateInUtc(date: Date): string {
  if (Number.isNaN(date.getTime())) return String(date);
  const year = date.getUTCFullYear();
  const yyyy = year < 0 ? `-${String(-year).padStart(4, '0')}` : String(year).padStart(4, '0');
  const time = `${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}`;
  return `${WEEKDAYS[date.getUTCDay()]} ${MONTHS[date.getUTCMonth()]} ${two(date.getUTCDate())} ${yyyy} ${time} GMT+0000 (Coordinated Universal Time)`;
}

function isByteArray(value: unknown[]): value is number[] {
  for (const x of value) if (typeof x !== 'number' || !(x >= 0 && x <= 255)) return false;
  return true;
}

/**
 * One bound value as D1 sends it: numbers (NaN and ±Infinity become NULL, -0 becomes 0), strings,
 * NULL, booleans as 1/0, and ArrayBuffers, typed arrays and arrays of bytes as BLOBs (number[]).
 * `bigints` accepts bigint values (Dione's exact-integer mode; D1 refuses them).
 */
export function toParam(value: unknown, bigints: boolean): ParamValue {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return Number.isFinite(value) ? value + 0 : null;
    case 'boolean':
      return value ? 1 : 0;
    case 'bigint':
      // SQLite integers are 64-bit; anything wider could only be stored as text, so refuse it here.
      if (bigints && value >= -(2n ** 63n) && value < 2n ** 63n) return value;
      throw typeError(value);
    case 'object':
      if (value === null) return null;
      if (value instanceof ArrayBuffer) return Array.from(new Uint8Array(value));
      if (ArrayBuffer.isView(value)) {
        // D1 sends a view's elements as numbers in JSON, which cannot hold BigInt64Array's (workerd's error).
        if (value instanceof BigInt64Array || value instanceof BigUint64Array) throw new TypeError('Do not know how to serialize a BigInt');
        return Array.from(value as unknown as ArrayLike<number>);
      }
      if (Array.isArray(value) && isByteArray(value)) return value;
      throw typeError(value);
    default:
      throw typeError(value);
  }
}
