// Sessions: the channel every statement goes through. The database's own channel always targets
// the primary and tracks no bookmark; a D1DatabaseSession sends its constraint or bookmark with
// every request and keeps the newest bookmark it has seen (bookmarks sort as strings).
import { d1Error } from '../api/errors.ts';
import type { ExecuteRequest, Executor, Query, StatementResult } from '../api/executor.ts';
import type { D1Result, D1SessionBookmark, D1SessionConstraint } from '../api/types.ts';
import type { BindingOptions } from './options.ts';
import { D1PreparedStatement } from './statement.ts';
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

  async batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
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

class SessionChannel extends Channel {
  constructor(
    executor: Executor,
    options: BindingOptions,
    private token: string,
    public bookmark: string | null,
  ) {
    super(executor, options);
  }
  protected sessionToken(): string {
    return this.bookmark ?? this.token;
  }
  protected observe(bookmark: string): void {
    if (this.bookmark === null || this.bookmark.localeCompare(bookmark) < 0) this.bookmark = bookmark;
  }
}

export class D1DatabaseSession {
  readonly #channel: SessionChannel;

  constructor(executor: Executor, options: BindingOptions, constraintOrBookmark: D1SessionBookmark | D1SessionConstraint) {
    const constraint = constraintOrBookmark === 'first-primary' || constraintOrBookmark === 'first-unconstrained';
    this.#channel = new SessionChannel(executor, options, constraintOrBookmark, constraint ? null : constraintOrBookmark);
  }

  prepare(query: string): D1PreparedStatement {
    return new D1PreparedStatement(this.#channel, query, []);
  }

  batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    return this.#channel.batch<T>(statements);
  }

  /** The newest bookmark this session has seen, or null before its first query. */
  getBookmark(): D1SessionBookmark | null {
    return this.#channel.bookmark;
  }
}
