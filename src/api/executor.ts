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
   * 'NONE' skips materialising rows (exec()); 'FIRST_ROW' returns at most one row (first(), which
   * exposes no meta): the query still runs to its end, as D1's does (a later row's error fails it).
   */
  resultsFormat?: ResultsFormat;
  /** A session's constraint ('first-primary' | 'first-unconstrained') or bookmark. */
  bookmark?: string;
  /**
   * The request must not write (a read-only caller): every statement runs only if SQLite, preparing
   * it with writes refused, says it does not write. Set by the server, never taken from a client.
   */
  readOnly?: boolean;
  /**
   * Server side: the transactions handle (dione/client with `transactions: true`) the request comes
   * from, bound to the caller's token. Its requests run on the transaction that handle holds.
   */
  transaction?: string;
  /**
   * The handle believes it holds a transaction (its last answer said so). When the server holds none
   * for it any more (restarted, idle timeout, a new primary), the request fails rather than run on
   * its own and commit what the client meant to be part of a transaction.
   */
  transactionHeld?: boolean;
}

export interface StatementResult {
  columns: string[];
  rows: RowValue[][];
  meta: D1Meta;
}

export type ExecuteResponse =
  | {
      success: true;
      results: StatementResult[];
      bookmark: string;
      /** On a handle with interactive transactions: whether it holds one after this request. */
      inTransaction?: boolean;
    }
  /**
   * `error` is D1's detail text (no prefix). `reset` marks a failure D1 reports as a bare Error
   * rather than D1_ERROR: constraints still violated when the transaction commits.
   */
  | {
      success: false;
      error: string;
      reset?: boolean;
      inTransaction?: boolean;
      /**
       * Nothing ran: another handle's interactive transaction holds the write lock in this thread.
       * The executor waits for it to end (bounded) and sends the request again; never sent to clients.
       */
      busy?: boolean;
    };

export interface Executor {
  execute(request: ExecuteRequest): Promise<ExecuteResponse>;
  /**
   * The answer at once, when the executor has it without waiting (an in-process engine), or its
   * promise once the request has run (a write waiting for its sync); undefined when nothing ran
   * and it must wait (then execute() answers). Lets the binding settle a read in one step.
   */
  executeNow?(request: ExecuteRequest): ExecuteResponse | Promise<ExecuteResponse> | undefined;
  /** The database file as bytes (D1's deprecated dump()). */
  dump(): Promise<ArrayBuffer>;
  close(): void | Promise<void>;
  /**
   * Interactive transactions (a handle opened with `transactions: true`): an executor of its own for
   * one transaction, isolated from this one's other requests (its own connection, or a transaction
   * the server holds). Closing it rolls back whatever it left open.
   */
  openTransaction?(): Promise<Executor>;
}

/**
 * SQL that is not a string (prepare(42) from JavaScript without types): refused as the server
 * refuses such a body, before anything parses it. Every executor answers it alike (the engine, and
 * dione/client before it sends anything).
 */
export function malformedQuery(request: ExecuteRequest): string | undefined {
  for (let i = 0; i < request.queries.length; i++) {
    const sql: unknown = request.queries[i]!.sql;
    if (typeof sql === 'string') continue;
    const received = sql === null ? 'null' : Array.isArray(sql) ? 'array' : typeof sql;
    return `Invalid request at queries.${i}.sql: Invalid input: expected string, received ${received}`;
  }
  return undefined;
}

