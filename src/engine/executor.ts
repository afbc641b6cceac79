// The engine behind the Executor interface, for the in-process binding.
import type { ExecuteRequest, ExecuteResponse, Executor } from '../api/executor.ts';
import { Engine, type EngineOptions } from './engine.ts';

export class EmbeddedExecutor implements Executor {
  readonly engine: Engine;

  constructor(file: string, options: EngineOptions = {}) {
    this.engine = new Engine(file, options);
  }

  /** The engine's answer as an already settled promise (the engine is synchronous). */
  execute(request: ExecuteRequest): Promise<ExecuteResponse> {
    try {
      return Promise.resolve(this.engine.execute(request));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async dump(): Promise<ArrayBuffer> {
    return await this.engine.dump();
  }

  close(): void {
    this.engine.close();
  }
}
