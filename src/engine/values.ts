// Conversions at the engine's edge: bound parameters into what better-sqlite3 binds, exactly as
// D1 stores them (numbers as REAL, byte arrays as BLOB).
import type { ParamValue } from '../api/executor.ts';

export type SqliteParam = string | number | bigint | null | Buffer;

export function toSqliteParam(value: ParamValue): SqliteParam {
  if (Array.isArray(value)) return Buffer.from(value); // elements wrap to bytes, as D1 does
  return value;
}
