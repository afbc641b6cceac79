// The Executor over a database with a history, for the in-process binding: a write is answered
// once its log record is durable. Writes made in the same turn of the event loop (concurrent
// callers) share one sync of the log.
import type { ExecuteRequest, ExecuteResponse, Executor } from '../api/executor.ts';
import type { EngineOptions } from '../engine/engine.ts';
import { type HistoryOptions, LoggedDatabase } from './logged-database.ts';

export class LoggedExecutor implements Executor {
  readonly database: LoggedDatabase;
  private pendingFlush: Promise<void> | undefined;

  constructor(file: string, options: EngineOptions, history: HistoryOptions) {
    this.database = new LoggedDatabase(file, options, history);
  }

  async execute(request: ExecuteRequest): Promise<ExecuteResponse> {
    const before = this.database.engine.commitSequence;
    const response = this.database.engine.execute(request);
    if (this.database.engine.commitSequence !== before) await this.flushSoon();
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
    return await this.database.engine.dump();
  }

  async close(): Promise<void> {
    await this.pendingFlush?.catch(() => {});
    return this.database.close();
  }
}
