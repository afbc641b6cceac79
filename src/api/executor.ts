// The contract between the D1 binding classes and whatever runs the SQL: the in-process engine,
// or (later) a server reached over HTTP. It mirrors what workerd's D1 binding sends to D1: a list
// of queries run as one unit, with a session constraint or bookmark.
import type { D1Meta } from './types.ts';

/** A bound parameter after bind(): BLOBs travel as arrays of bytes, as in D1. */
export type ParamValue = string | number | null | number[] | bigint;

/** A column value as the executor returns it. BLOBs are bytes; the binding turns them into number[]. */
export type RowValue = string | number | bigint | null | Uint8Array;

export type ResultsFormat = 'ROWS_AND_COLUMNS' | 'FIRST_ROW' | 'NONE';

export interface Query {
  sql: string;
  params: ParamValue[];
}

export interface ExecuteRequest {
  /** Run in order, as one transaction when there is more than one statement. */
  queries: Query[];
  /**
   * 'NONE' skips materialising rows (exec()); 'FIRST_ROW' returns at most one row, and a read
   * statement stops after it (first(), which exposes no meta).
   */
  resultsFormat?: ResultsFormat;
  /** A session's constraint ('first-primary' | 'first-unconstrained') or bookmark. */
  bookmark?: string;
  /**
   * The request must not write (a read-only caller): every statement runs only if SQLite, preparing
   * it with writes refused, says it does not write. Set by the server, never taken from a client.
   */
  readOnly?: boolean;
}

export interface StatementResult {
  columns: string[];
  rows: RowValue[][];
  meta: D1Meta;
}

export type ExecuteResponse =
  | { success: true; results: StatementResult[]; bookmark: string }
  /**
   * `error` is D1's detail text (no prefix). `reset` marks a failure D1 reports as a bare Error
   * rather than D1_ERROR: constraints still violated when the transaction commits.
   */
  | { success: false; error: string; reset?: boolean };

export interface Executor {
  execute(request: ExecuteRequest): Promise<ExecuteResponse>;
  /** The database file as bytes (D1's deprecated dump()). */
  dump(): Promise<ArrayBuffer>;
  close(): void | Promise<void>;
}
