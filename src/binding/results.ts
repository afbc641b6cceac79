// Executor results into the shapes the D1 binding returns: row objects (the last of several
// same-named columns wins), arrays for raw(), and BLOBs as plain number[] as D1 returns them.
import type { RowValue, StatementResult } from '../api/executor.ts';
import { setColumn } from '../api/row-object.ts';
import type { D1Result } from '../api/types.ts';

export type OutputValue = string | number | bigint | null | number[];

/** As values come out of D1 (through JSON): ±Infinity become null, -0 becomes 0, BLOBs number[]. */
function output(value: RowValue): OutputValue {
  if (typeof value === 'number') return Number.isFinite(value) ? value + 0 : null;
  return value instanceof Uint8Array ? Array.from(value) : value;
}

export function rowArrays(rows: RowValue[][]): OutputValue[][] {
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) (row as OutputValue[])[i] = output(row[i]!);
  }
  return rows as OutputValue[][];
}

/** One row as an object (the last of several same-named columns wins). */
export function rowObject(columns: string[], row: RowValue[]): Record<string, OutputValue> {
  const object: Record<string, OutputValue> = {};
  for (let i = 0; i < columns.length; i++) setColumn(object, columns[i]!, output(row[i]!));
  return object;
}

export function rowObjects(columns: string[], rows: RowValue[][]): Record<string, OutputValue>[] {
  const objects = new Array<Record<string, OutputValue>>(rows.length);
  for (let r = 0; r < rows.length; r++) objects[r] = rowObject(columns, rows[r]!);
  return objects;
}

export function toD1Result<T>(result: StatementResult): D1Result<T> {
  return { success: true, meta: result.meta, results: rowObjects(result.columns, result.rows) as T[] };
}
