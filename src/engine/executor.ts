// The engine behind the Executor interface, for the in-process binding.
import { d1Error, Messages } from '../api/errors.ts';
import type { ExecuteRequest, ExecuteResponse, Executor } from '../api/executor.ts';
import { BUSY, Engine, type EngineOptions } from './engine.ts';
import { TransactionEngines } from './transaction-engines.ts';
import { DEFAULT_BUSY_WAIT_MS, gateReleased } from './write-gate.ts';

/**
 * engine.execute, waiting without blocking the thread while another handle's interactive
 * transaction holds the write lock (at most `waitMs`, then SQLite's busy error).
 */
export async function executeWhenFree(engine: Engine, request: ExecuteRequest, waitMs = DEFAULT_BUSY_WAIT_MS): Promise<ExecuteResponse> {
  let response = engine.execute(request);
  if (response.success || !response.busy) return response;
  const deadline = performance.now() + waitMs;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) return { success: false, error: response.error };
    await gateReleased(engine.gate, left);
    response = engine.execute(request);
    if (response.success || !response.busy) return response;
  }
}


export class EmbeddedExecutor implements Executor {
  readonly engine: Engine;
  /** In memory, a transaction has the handle's only connection: the handle's own requests wait for it. */
  private lent: Promise<void> | undefined;
  private readonly transactionEngines: TransactionEngines;

  constructor(
    file: string,
    private readonly options: EngineOptions = {},
  ) {
    this.engine = new Engine(file, options);
    this.transactionEngines = new TransactionEngines(() => new Engine(file, { ...options, transactions: true }));
  }

  /** The engine's answer as an already settled promise (the engine is synchronous), unless it must wait. */
  execute(request: ExecuteRequest): Promise<ExecuteResponse> {
    if (this.lent) return this.afterLent(request);
    let response: ExecuteResponse;
    try {
      response = this.engine.execute(request);
    } catch (e) {
      return Promise.reject(e);
    }
    if (response.success || !response.busy) return Promise.resolve(response);
    return executeWhenFree(this.engine, request);
  }

  /** The engine's answer, unless a transaction has the connection or another handle's holds the write lock. */
  executeNow(request: ExecuteRequest): ExecuteResponse | undefined {
    if (this.lent) return undefined;
    const response = this.engine.execute(request);
    if (response.success || !response.busy) return response;
    return undefined;
  }

  /** In memory, while a transaction has the connection: waits for it (bounded), then runs. */
  private async afterLent(request: ExecuteRequest): Promise<ExecuteResponse> {
    if (!(await this.waitForLent(DEFAULT_BUSY_WAIT_MS))) return { success: false, error: BUSY };
    return this.execute(request);
  }

  /** Whether the lent connection came back within `ms`. */
  private async waitForLent(ms: number): Promise<boolean> {
    const lent = this.lent;
    if (!lent) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, ms), false);
    });
    try {
      return await Promise.race([lent.then(() => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A connection of its own for one transaction (in memory: this one, lent until the transaction's executor closes). */
  async openTransaction(): Promise<Executor> {
    if (!this.options.transactions) throw new TypeError(Messages.noTransactions);
    if (this.engine.memory) {
      const until = performance.now() + DEFAULT_BUSY_WAIT_MS;
      while (this.lent) {
        if (!(await this.waitForLent(until - performance.now()))) throw d1Error('D1_ERROR', BUSY);
      }
      let giveBack!: () => void;
      this.lent = new Promise<void>((resolve) => {
        giveBack = resolve;
      });
      const engine = this.engine;
      let closed = false;
      return {
        execute: async (request) => (closed ? { success: false, error: 'The transaction has ended.' } : engine.execute(request)),
        dump: () => engine.dump(),
        close: () => {
          if (closed) return;
          closed = true;
          engine.abandonTransaction('');
          this.lent = undefined;
          giveBack();
        },
      };
    }
    const engines = this.transactionEngines;
    const engine = engines.take();
    let closed = false;
    return {
      execute: async (request) => (closed ? { success: false, error: 'The transaction has ended.' } : executeWhenFree(engine, request)),
      dump: () => engine.dump(),
      close: () => {
        if (closed) return;
        closed = true;
        engines.give(engine);
      },
    };
  }

  async dump(): Promise<ArrayBuffer> {
    return await this.engine.dump();
  }

  close(): void {
    this.transactionEngines.closeAll();
    this.engine.close();
  }
}
