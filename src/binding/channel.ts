// The channel every statement goes through: it sends queries to the executor and turns failures
// into D1's errors. The database's own channel always targets the primary and tracks no bookmark;
// sessions (session.ts) send their constraint or bookmark with every request.
import { d1Error } from '../api/errors.ts';
import type { ExecuteRequest, ExecuteResponse, Executor, ParamValue, Query, StatementResult } from '../api/executor.ts';
import type { D1Result } from '../api/types.ts';
import type { BindingOptions } from './options.ts';
import { toD1Result } from './results.ts';

/**
 * What a prepared statement needs from whoever created it. Its fields are private (#): a statement
 * shows its channel as its `dbSession`, and JSON.stringify() or console.log() of a statement must
 * neither print the executor (over HTTP it holds the caller's token) nor fail on it (the embedded
 * engine's state holds bigints).
 */
export abstract class Channel {
  readonly #executor: Executor;
  readonly #options: BindingOptions;

  constructor(executor: Executor, options: BindingOptions) {
    this.#executor = executor;
    this.#options = options;
  }

  get options(): BindingOptions {
    return this.#options;
  }

  protected abstract sessionToken(): string | undefined;
  protected abstract observe(bookmark: string): void;

  /**
   * Runs queries as one unit and answers `shape(results)`; rejects with D1's error. One promise
   * step from the executor's answer to the caller's value (no chain of async functions: each link
   * costs a promise and a microtask on every query).
   */
  send<R>(queries: Query[], resultsFormat: ExecuteRequest['resultsFormat'], shape: (results: StatementResult[]) => R): Promise<R> {
    const request: ExecuteRequest = { queries, resultsFormat, bookmark: this.sessionToken() };
    let answer: Promise<ExecuteResponse>;
    try {
      // An in-process engine answers at once: one settled promise, no step through then().
      const now = this.#executor.executeNow?.(request);
      if (now instanceof Promise) answer = now;
      else if (now) return Promise.resolve(this.settle(now, shape));
      else answer = this.#executor.execute(request);
    } catch (e) {
      return Promise.reject(e);
    }
    return answer.then((response) => this.settle(response, shape));
  }

  private settle<R>(response: ExecuteResponse, shape: (results: StatementResult[]) => R): R {
    if (!response.success) {
      if (response.reset) throw new Error(response.error);
      throw d1Error('D1_ERROR', response.error);
    }
    if (response.bookmark) this.observe(response.bookmark);
    return shape(response.results);
  }

  /** Raw executor access for exec(), which words its errors differently. */
  request(request: ExecuteRequest) {
    return this.#executor.execute(request);
  }

  // Typed by the two fields it reads, so this module needs nothing from statement.ts (which needs it).
  batch<T = unknown>(statements: readonly { statement: string; params: ParamValue[] }[]): Promise<D1Result<T>[]> {
    let queries: Query[];
    try {
      queries = statements.map((s) => ({ sql: s.statement, params: s.params }));
    } catch (e) {
      return Promise.reject(e);
    }
    return this.send(queries, 'ROWS_AND_COLUMNS', (results) => results.map((r) => toD1Result<T>(r)));
  }
}

export class PrimaryChannel extends Channel {
  protected sessionToken(): undefined {
    return undefined;
  }
  protected observe(): void {}
}
