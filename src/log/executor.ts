// The Executor over a database with a history, for the in-process binding: a write is answered
// once its log record is durable.
import type { ExecuteRequest, ExecuteResponse, Executor } from '../api/executor.ts';
import type { EngineOptions } from '../engine/engine.ts';
import { type HistoryOptions, LoggedDatabase } from './logged-database.ts';

export class LoggedExecutor implements Executor {
  readonly database: LoggedDatabase;

  constructor(file: string, options: EngineOptions, history: HistoryOptions) {
    this.database = new LoggedDatabase(file, options, history);
  }

  async execute(request: ExecuteRequest): Promise<ExecuteResponse> {
    return this.database.execute(request);
  }

  async dump(): Promise<ArrayBuffer> {
    return await this.database.engine.dump();
  }

  close(): Promise<void> {
    return this.database.close();
  }
}
