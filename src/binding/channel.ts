// The channel every statement goes through: it sends queries to the executor and turns failures
// into D1's errors. The database's own channel always targets the primary and tracks no bookmark;
// sessions (session.ts) send their constraint or bookmark with every request.
import { d1Error } from '../api/errors.ts';
import type { ExecuteRequest, Executor, ParamValue, Query, StatementResult } from '../api/executor.ts';
import type { D1Result } from '../api/types.ts';
import type { BindingOptions } from './options.ts';
import { toD1Result } from './results.ts';

/** What a prepared statement needs from whoever created it. */
export abstract class Channel {
  constructor(
    protected readonly executor: Executor,
    readonly options: BindingOptions,
  ) {}

  protected abstract sessionToken(): string | undefined;
  protected abstract observe(bookmark: string): void;

  /** Runs queries as one unit; rejects with D1's error. */
  async send(queries: Query[], resultsFormat: ExecuteRequest['resultsFormat'] = 'ROWS_AND_COLUMNS'): Promise<StatementResult[]> {
    const response = await this.executor.execute({ queries, resultsFormat, bookmark: this.sessionToken() });
    if (!response.success) {
      if (response.reset) throw new Error(response.error);
      throw d1Error('D1_ERROR', response.error);
    }
    if (response.bookmark) this.observe(response.bookmark);
    return response.results;
  }

  /** Raw executor access for exec(), which words its errors differently. */
  request(request: ExecuteRequest) {
    return this.executor.execute(request);
  }

  // Typed by the two fields it reads, so this module needs nothing from statement.ts (which needs it).
  async batch<T = unknown>(statements: readonly { statement: string; params: ParamValue[] }[]): Promise<D1Result<T>[]> {
    const queries = statements.map((s) => ({ sql: s.statement, params: s.params }));
    const results = await this.send(queries);
    return results.map((r) => toD1Result<T>(r));
  }
}

export class PrimaryChannel extends Channel {
  protected sessionToken(): undefined {
    return undefined;
  }
  protected observe(): void {}
}
