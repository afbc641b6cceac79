// D1PreparedStatement: immutable; bind() returns a new statement. Its own fields are exactly
// D1's (statement, params, dbSession), so code that inspects them sees what it sees on D1.
import { d1Error, Messages } from '../api/errors.ts';
import type { ParamValue, ResultsFormat, StatementResult } from '../api/executor.ts';
import type { D1Result } from '../api/types.ts';
import { toParam } from './bind.ts';
import { rowArrays, rowObject, toD1Result } from './results.ts';
import type { Channel } from './channel.ts';

export class D1PreparedStatement {
  readonly dbSession: Channel;
  readonly statement: string;
  readonly params: ParamValue[];

  constructor(dbSession: Channel, statement: string, params: ParamValue[]) {
    this.dbSession = dbSession;
    this.statement = statement;
    this.params = params;
  }

  bind(...values: unknown[]): D1PreparedStatement {
    const bigints = this.dbSession.options.intMode === 'bigint';
    return new D1PreparedStatement(
      this.dbSession,
      this.statement,
      values.map((v) => toParam(v, bigints)),
    );
  }

  /** The statement alone, its one result shaped by `shape`. */
  private one<R>(format: ResultsFormat, shape: (result: StatementResult) => R): Promise<R> {
    return this.dbSession.send([{ sql: this.statement, params: this.params }], format, (results) => shape(results[0]!));
  }

  first<T = unknown>(colName: string): Promise<T | null>;
  first<T = Record<string, unknown>>(): Promise<T | null>;
  first<T>(colName?: string): Promise<T | null> {
    // Like D1's async methods, a failure before any query (a method called detached from its statement) rejects.
    try {
      return this.one('FIRST_ROW', (result) => {
        const row = result.rows.length === 0 ? undefined : rowObject(result.columns, result.rows[0]!);
        if (colName === undefined) return (row ?? null) as T | null;
        if (row === undefined) return null;
        const value = row[colName];
        if (value === undefined) throw d1Error('D1_COLUMN_NOTFOUND', `${Messages.columnNotFound} (${colName})`, Messages.columnNotFound);
        return value as T;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    try {
      return this.one('ROWS_AND_COLUMNS', (result) => toD1Result<T>(result));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    try {
      return this.one('ROWS_AND_COLUMNS', (result) => toD1Result<T>(result));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  raw<T = unknown[]>(options: { columnNames: true }): Promise<[string[], ...T[]]>;
  raw<T = unknown[]>(options?: { columnNames?: false }): Promise<T[]>;
  raw<T = unknown[]>(options?: { columnNames?: boolean }): Promise<T[] | [string[], ...T[]]> {
    try {
      return this.one('ROWS_AND_COLUMNS', (result): T[] | [string[], ...T[]] => {
        const rows = rowArrays(result.rows) as T[];
        return options?.columnNames ? [result.columns, ...rows] : rows;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }
}
