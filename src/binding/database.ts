// D1Database over any Executor: the in-process engine or a remote server. Same classes, same
// semantics, so code written for Workers' env.DB runs unchanged on either.
import { d1Error } from '../api/errors.ts';
import type { Executor } from '../api/executor.ts';
import type { D1ExecResult, D1Result, D1SessionBookmark, D1SessionConstraint } from '../api/types.ts';
import { isCommentOnly } from '../sql/comments.ts';
import { PrimaryChannel } from './channel.ts';
import type { BindingOptions } from './options.ts';
import { D1DatabaseSession } from './session.ts';
import { D1PreparedStatement } from './statement.ts';

const executors = new WeakMap<D1Database, { executor: Executor; options: BindingOptions }>();

/** The executor and options behind a database (for transactions: see transaction.ts). */
export function internalsOf(db: D1Database): { executor: Executor; options: BindingOptions } {
  const found = executors.get(db);
  if (!found) throw new TypeError('not a D1Database of Dione');
  return found;
}

export class D1Database {
  readonly #executor: Executor;
  readonly #options: BindingOptions;
  readonly #primary: PrimaryChannel;

  constructor(executor: Executor, options: BindingOptions = {}) {
    this.#executor = executor;
    this.#options = options;
    this.#primary = new PrimaryChannel(executor, options);
    executors.set(this, { executor, options });
  }

  prepare(query: string): D1PreparedStatement {
    return new D1PreparedStatement(this.#primary, query, []);
  }

  batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    return this.#primary.batch<T>(statements);
  }

  /**
   * Runs SQL one line at a time (D1 splits on newlines only), all lines as one transaction.
   * Lines holding only a comment are skipped.
   */
  async exec(query: string): Promise<D1ExecResult> {
    const lines = query.trim().split('\n');
    const queries = lines.filter((line) => !isCommentOnly(line)).map((sql) => ({ sql, params: [] }));
    const response = await this.#primary.request({ queries, resultsFormat: 'NONE' });
    if (!response.success) {
      // A reset (constraints left violated at commit) reaches exec()'s caller as it reaches run()'s, unwrapped.
      if (response.reset) throw new Error(response.error);
      // D1 always names line 1, whichever line failed.
      throw d1Error('D1_EXEC_ERROR', `Error in line 1: ${lines[0]}: ${response.error}`);
    }
    let duration = 0;
    for (const r of response.results) duration += r.meta.duration;
    return { count: response.results.length, duration };
  }

  withSession(constraintOrBookmark?: D1SessionBookmark | D1SessionConstraint): D1DatabaseSession {
    // As workerd's: a value that is no string fails with the TypeError `?.trim()` throws.
    const value = constraintOrBookmark?.trim();
    return new D1DatabaseSession(this.#executor, this.#options, value == null || value === '' ? 'first-unconstrained' : value);
  }

  /** The database file, as D1's (deprecated) dump() returns it. */
  async dump(): Promise<ArrayBuffer> {
    try {
      return await this.#executor.dump();
    } catch (e) {
      throw d1Error('D1_DUMP_ERROR', e instanceof Error ? e.message : String(e));
    }
  }

  /** Closes the underlying database (Dione only; a Worker's binding has no close()). */
  close(): Promise<void> | void {
    return this.#executor.close();
  }
}
