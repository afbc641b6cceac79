// The engine behind the Executor interface, for the in-process binding.
import type { ExecuteRequest, ExecuteResponse, Executor } from '../api/executor.ts';
import { Engine, type EngineOptions } from './engine.ts';

export class EmbeddedExecutor implements Executor {
  readonly engine: Engine;

  constructor(file: string, options: EngineOptions = {}) {
    this.engine = new Engine(file, options);
  }

  async execute(request: ExecuteRequest): Promise<ExecuteResponse> {
    return this.engine.execute(request);
  }

  async dump(): Promise<ArrayBuffer> {
    return await this.engine.dump();
  }

  close(): void {
    this.engine.close();
  }
}
