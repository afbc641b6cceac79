// The Executor over a database with a history, for the in-process binding: a write is answered
// once its log record is durable. Writes made in the same turn of the event loop (concurrent
// callers) share one sync of the log. A write the log cannot take (a full disk, an I/O error) is
// answered as failed, and the database goes back to the log's last durable record before anything
// else runs on it; later writes work again as soon as the log can write.
import type { ExecuteRequest, ExecuteResponse, Executor } from '../api/executor.ts';
import type { Engine, EngineOptions } from '../engine/engine.ts';
import { Messages } from '../api/errors.ts';
import { executeWhenFree } from '../engine/executor.ts';
import { DEFAULT_BUSY_WAIT_MS } from '../engine/write-gate.ts';
import { detailOf } from '../engine/sqlite-error.ts';
import { type HistoryOptions, LoggedDatabase } from './logged-database.ts';

export class LoggedExecutor implements Executor {
  readonly database: LoggedDatabase;
  private readonly options: EngineOptions;
  private pendingFlush: Promise<void> | undefined;

  constructor(file: string, options: EngineOptions, history: HistoryOptions) {
    this.options = options;
    this.database = new LoggedDatabase(file, options, history);
  }

  execute(request: ExecuteRequest): Promise<ExecuteResponse> {
    return this.run(undefined, request);
  }

  /** A connection of its own for one transaction; its commit is logged like any other. */
  async openTransaction(): Promise<Executor> {
    if (!this.options.transactions) throw new TypeError(Messages.noTransactions);
    const engine = this.database.openTransactionEngine();
    return {
      execute: (request) => this.run(engine, request),
      dump: () => this.dump(),
      close: () => this.database.closeTransactionEngine(engine),
    };
  }

  /**
   * The answer at once when the request committed nothing (a read: no promise step); a write's
   * promise, settled once its log record is durable; undefined when nothing ran (execute() waits).
   */
  executeNow(request: ExecuteRequest): ExecuteResponse | Promise<ExecuteResponse> | undefined {
    const database = this.database;
    const refused = database.unavailable();
    if (refused !== undefined) return { success: false, error: refused };
    const engine = database.engine;
    const before = engine.commitSequence;
    const generation = database.generation;
    const response = engine.execute(request);
    if (!response.success && response.busy) return undefined;
    if (engine.commitSequence !== before) return this.durable(response, generation);
    return this.pendingFlush ? this.afterFlush(undefined, request, response, generation) : response;
  }

  /** Runs on a transaction's engine, or (undefined) on the database's own, as it is after any repair. */
  private async run(own: Engine | undefined, request: ExecuteRequest): Promise<ExecuteResponse> {
    const database = this.database;
    const refused = database.unavailable();
    if (refused !== undefined) return { success: false, error: refused };
    const engine = own ?? database.engine;
    const before = engine.commitSequence;
    const generation = database.generation;
    // Taken in the step that ran it (see executeWhenFree): a commit's flush is pending before any read can see it.
    const settle = (response: ExecuteResponse) =>
      engine.commitSequence !== before ? this.durable(response, generation) : this.pendingFlush ? this.afterFlush(own, request, response, generation) : response;
    const response = engine.execute(request);
    if (!response.success && response.busy) return executeWhenFree(engine, request, DEFAULT_BUSY_WAIT_MS, settle);
    return settle(response);
  }

  /**
   * A request that committed nothing, run while writes wait for the log's sync: it may have read
   * their rows, so it is answered after that sync; when the sync failed and the repair undid those
   * writes, it runs again on the repaired database (a read never shows a write that is then undone).
   */
  private async afterFlush(own: Engine | undefined, request: ExecuteRequest, response: ExecuteResponse, generation: number): Promise<ExecuteResponse> {
    await this.pendingFlush?.catch(() => {});
    return this.database.generation === generation ? response : this.run(own, request);
  }

  /** A committed request's answer, once the log holds it durably (a failure, when a repair undid it). */
  private async durable(response: ExecuteResponse, generation: number): Promise<ExecuteResponse> {
    const database = this.database;
    try {
      // A commit the log could not take is undone now, before anything else runs on the database.
      if (!response.success) database.flush();
      await this.flushSoon();
    } catch (e) {
      return { success: false, error: detailOf(e) };
    }
    // A repair since this commit (another write of the turn failed) undid it with the rest.
    if (database.generation !== generation) return { success: false, error: database.lastFailure };
    return response;
  }

  /** One flush for every write of this turn, once the turn is over. */
  private flushSoon(): Promise<void> {
    this.pendingFlush ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.pendingFlush = undefined;
        try {
          this.database.flush();
          resolve();
        } catch (e) {
          reject(e);
        }
      });
    });
    return this.pendingFlush;
  }

  async dump(): Promise<ArrayBuffer> {
    const refused = this.database.unavailable();
    if (refused !== undefined) throw new Error(refused);
    return await this.database.engine.dump();
  }

  async close(): Promise<void> {
    await this.pendingFlush?.catch(() => {});
    return this.database.close();
  }
}
