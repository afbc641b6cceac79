// Sessions: a D1DatabaseSession sends its constraint or bookmark with every request and keeps the
// newest bookmark it has seen (bookmarks sort as strings).
import type { Executor } from '../api/executor.ts';
import type { D1Result, D1SessionBookmark, D1SessionConstraint } from '../api/types.ts';
import { Channel } from './channel.ts';
import type { BindingOptions } from './options.ts';
import { D1PreparedStatement } from './statement.ts';

class SessionChannel extends Channel {
  readonly #constraint: string;
  #bookmark: string | null;

  constructor(executor: Executor, options: BindingOptions, constraint: string, bookmark: string | null) {
    super(executor, options);
    this.#constraint = constraint;
    this.#bookmark = bookmark;
  }
  get bookmark(): string | null {
    return this.#bookmark;
  }
  protected sessionToken(): string {
    return this.#bookmark ?? this.#constraint;
  }
  protected observe(bookmark: string): void {
    if (this.#bookmark === null || this.#bookmark.localeCompare(bookmark) < 0) this.#bookmark = bookmark;
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
