// Values between Prisma's query engine and the D1 binding. Prisma sends arguments tagged with the
// scalar type its schema expects; the binding takes what D1 takes (numbers, strings, null, BLOBs,
// and bigints on an intMode: 'bigint' handle). Results come back as D1 returns them, without
// declared column types, so each column's type is read off its values, as Prisma's own D1 adapter
// does: Prisma then reads each value as the type its schema gives the field.
import { type ArgType, type ColumnType, ColumnTypeEnum } from '@prisma/driver-adapter-utils';

/**
 * What Prisma writes for a DateTime: ISO 8601 with an explicit +00:00, the text
 * `@prisma/adapter-d1` stores, so databases written through either adapter hold the same values.
 */
function dateText(date: Date): string {
  return date.toISOString().replace('Z', '+00:00');
}

/** Standard base64 (what Prisma sends for Bytes given as strings), without Node's Buffer. */
function base64Bytes(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** A 64-bit integer: a number when it is exact as one, else a bigint (which an intMode: 'bigint' handle binds exactly, and any other refuses). */
function integer(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** One query argument, as the binding should receive it. */
export function toArg(value: unknown, type: ArgType | undefined): unknown {
  if (value === null || value === undefined) return null;
  const scalar = type?.scalarType;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'bigint') return integer(value);
  if (value instanceof Date) return dateText(value);
  if (typeof value === 'string') {
    switch (scalar) {
      case 'bigint':
        return /^[+-]?\d+$/.test(value.trim()) ? integer(BigInt(value.trim())) : value;
      case 'int':
        return Number.parseInt(value, 10);
      case 'float':
      case 'decimal':
        return Number.parseFloat(value);
      case 'datetime':
        return dateText(new Date(value));
      case 'bytes':
        return base64Bytes(value);
      default:
        return value;
    }
  }
  if (typeof value === 'number' && scalar === 'bigint' && !Number.isSafeInteger(value)) {
    throw new RangeError(`Invalid Int64-encoded value received: ${value}`);
  }
  // Numbers, Uint8Arrays and other typed arrays (bound as BLOBs) go as they are.
  return value;
}

const isoDateTime = /^\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d(:[0-5]\d(\.\d+)?)?([+-][0-2]\d:[0-5]\d|Z)$/;
const sqliteDateTime = /^\d{4}-[01]\d-[0-3]\d [0-2]\d:[0-5]\d:[0-5]\d$/;

/** The type one non-null value suggests. */
function valueType(value: unknown): ColumnType {
  switch (typeof value) {
    case 'string':
      return isoDateTime.test(value) || sqliteDateTime.test(value) ? ColumnTypeEnum.DateTime : ColumnTypeEnum.Text;
    case 'number':
      // INTEGER or REAL: Prisma decides from the field (Int, Float, Boolean, Decimal, DateTime as ms).
      return ColumnTypeEnum.UnknownNumber;
    case 'bigint':
      return ColumnTypeEnum.Int64;
    case 'object':
      if (Array.isArray(value) || value instanceof Uint8Array) return ColumnTypeEnum.Bytes;
      break;
  }
  throw new TypeError(`dione/prisma: unexpected value of type ${typeof value} in a result`);
}

/**
 * Each column's type from its values: the first non-null value decides, except that any text that
 * is not a date makes the column Text (SQLite columns may mix types). A column of NULLs only is Int32.
 */
export function columnTypes(width: number, rows: readonly (readonly unknown[])[]): ColumnType[] {
  const types: ColumnType[] = [];
  for (let c = 0; c < width; c++) {
    let type: ColumnType | undefined;
    for (const row of rows) {
      const value = row[c];
      if (value === null || value === undefined) continue;
      const seen = valueType(value);
      if (type === undefined || seen === ColumnTypeEnum.Text) type = seen;
      if (type === ColumnTypeEnum.Text) break;
    }
    types.push(type ?? ColumnTypeEnum.Int32);
  }
  return types;
}

/** Values in the form Prisma expects for the column types chosen: BLOBs as Uint8Array, exact integers as text. */
export function toResultRow(row: unknown[], types: readonly ColumnType[]): unknown[] {
  for (let c = 0; c < row.length; c++) {
    const value = row[c];
    if (value === null) continue;
    if (Array.isArray(value)) row[c] = Uint8Array.from(value as number[]);
    else if (typeof value === 'bigint') row[c] = value.toString();
    else if (typeof value === 'number' && types[c] === ColumnTypeEnum.Text) row[c] = String(value);
  }
  return row;
}
