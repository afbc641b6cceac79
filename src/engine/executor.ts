// The engine behind the Executor interface, for the in-process binding.
import path from 'node:path';
import { d1Error, Messages } from '../api/errors.ts';
import type { ExecuteRequest, ExecuteResponse, Executor } from '../api/executor.ts';
import { BUSY, Engine, type EngineOptions } from './engine.ts';
import { TransactionEngines } from './transaction-engines.ts';
import { WalSync } from './wal-sync.ts';
import { DEFAULT_BUSY_WAIT_MS, gateReleased } from './write-gate.ts';

/**
 * engine.execute, waiting without blocking the thread while another handle's interactive
 * transaction holds the write lock (at most `waitMs`, then SQLite's busy error). `settle` takes
 * the answer in the same step as the run that gave it, before any other code runs: a commit's
 * durability is arranged (a sync, a log flush) before a read elsewhere can see the commit.
 */
export async function executeWhenFree(
  engine: Engine,
  request: ExecuteRequest,
  waitMs = DEFAULT_BUSY_WAIT_MS,
  settle: (response: ExecuteResponse) => ExecuteResponse | Promise<ExecuteResponse> = (response) => response,
): Promise<ExecuteResponse> {
  let response = engine.execute(request);
  if (response.success || !response.busy) return settle(response);
  const deadline = performance.now() + waitMs;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) return { success: false, error: response.error };
    await gateReleased(engine.gate, left);
    response = engine.execute(request);
    if (response.success || !response.busy) return settle(response);
  }
}


export class EmbeddedExecutor implements Executor {
  readonly engine: Engine;
  /** In memory, a transaction has the handle's only connection: the handle's own requests wait for it. */
  private lent: Promise<void> | undefined;
  private readonly transactionEngines: TransactionEngines;
  /** A durable file's writes issued together share one sync of the WAL (absent in memory, read-only, or at durability 'normal'). */
  private readonly walSync: WalSync | undefined;
  private readonly options: EngineOptions;

  constructor(file: string, options: EngineOptions = {}) {
    const memory = file === ':memory:' || file === '';
    // Made absolute once, so that a transaction's connection, opened later, opens this file even
    // after a chdir(); not normalized (a `..` after a symbolic link is the link's parent to SQLite).
    const resolved = memory || path.isAbsolute(file) ? file : `${process.cwd()}${path.sep}${file}`;
    this.options = options;
    const grouped = !memory && !options.readonly && options.durability !== 'normal';
    let engine = new Engine(resolved, grouped ? { ...options, durability: 'normal' } : options);
    let walSync: WalSync | undefined;
    if (grouped) {
      try {
        if (engine.walFile !== undefined) walSync = new WalSync(engine.walFile);
      } catch {
        // The WAL cannot be opened to be synced: SQLite syncs each commit itself, as below.
      }
      if (!walSync) {
        // Without a WAL (a filesystem without shared memory keeps a rollback journal) there is
        // nothing to sync after the fact: SQLite syncs each commit itself.
        engine.close();
        engine = new Engine(resolved, options);
      }
    }
    this.engine = engine;
    this.walSync = walSync;
    // A transaction's own connection commits at synchronous=FULL (its commits are rare; SQLite syncs each).
    this.transactionEngines = new TransactionEngines(() => new Engine(resolved, { ...options, transactions: true }));
  }

  /** The engine's answer as an already settled promise (the engine is synchronous), unless it must wait. */
  execute(request: ExecuteRequest): Promise<ExecuteResponse> {
    if (this.lent) return this.afterLent(request);
    const refused = this.walSync?.failure;
    if (refused !== undefined) return Promise.resolve({ success: false, error: refused });
    const before = this.engine.commitSequence;
    let response: ExecuteResponse;
    try {
      response = this.engine.execute(request);
    } catch (e) {
      return Promise.reject(e);
    }
    if (!response.success && response.busy) return executeWhenFree(this.engine, request, DEFAULT_BUSY_WAIT_MS, (later) => this.durable(later, before));
    return this.durable(response, before);
  }

  /**
   * The engine's answer, unless a transaction has the connection or another handle's holds the write
   * lock; a write's answer waits for its sync.
   */
  executeNow(request: ExecuteRequest): ExecuteResponse | Promise<ExecuteResponse> | undefined {
    if (this.lent) return undefined;
    const refused = this.walSync?.failure;
    if (refused !== undefined) return { success: false, error: refused };
    const before = this.engine.commitSequence;
    const response = this.engine.execute(request);
    if (!response.success && response.busy) return undefined;
    return this.walSync && (this.engine.commitSequence !== before || this.walSync.pending) ? this.walSync.afterSync(response) : response;
  }

  /**
   * The answer once what it committed is durable; an answer given while the handle's writes wait
   * for a sync waits for it too, and is the sync's failure when it fails (it may show their rows).
   */
  private durable(response: ExecuteResponse, before: number): Promise<ExecuteResponse> {
    if (!this.walSync || (this.engine.commitSequence === before && !this.walSync.pending)) return Promise.resolve(response);
    return this.walSync.afterSync(response);
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
    const refused = this.walSync?.failure;
    if (refused !== undefined) throw d1Error('D1_ERROR', refused);
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
      execute: async (request) => {
        if (closed) return { success: false, error: 'The transaction has ended.' };
        const refused = this.walSync?.failure;
        if (refused !== undefined) return { success: false, error: refused };
        return executeWhenFree(engine, request);
      },
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
    this.walSync?.close();
    this.transactionEngines.closeAll();
    this.engine.close();
  }
}
