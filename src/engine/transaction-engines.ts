// Engines for interactive transactions, kept for the next one: opening a connection (the file, its
// pragmas, the guard extension, the prepared helpers) costs milliseconds, about what a short
// transaction costs itself.
import type { Engine } from './engine.ts';

/** Idle engines kept at most. */
const KEEP = 4;

export class TransactionEngines {
  private readonly idle: Engine[] = [];
  /** Engines in use or kept: every one of them is closed by closeAll(). */
  private readonly all = new Set<Engine>();

  constructor(private readonly open: () => Engine) {}

  /** An engine with no transaction, for one transaction's use. */
  take(onAbandoned?: (reason: string) => void): Engine {
    let engine = this.idle.pop();
    while (engine?.isClosed) engine = this.idle.pop();
    if (!engine) {
      engine = this.open();
      this.all.add(engine);
    }
    engine.onAbandoned = onAbandoned;
    return engine;
  }

  /** The use is over: what it left open is rolled back, and the engine kept (or closed, beyond the few kept). */
  give(engine: Engine): void {
    engine.resetTransaction();
    if (engine.isClosed || !this.all.has(engine)) return;
    if (this.idle.length < KEEP) this.idle.push(engine);
    else {
      this.all.delete(engine);
      engine.close();
    }
  }

  /** Closes every engine (rolling back any transaction open): the database is closing, or its files change. */
  closeAll(): void {
    const engines = [...this.all];
    this.all.clear();
    this.idle.length = 0;
    for (const engine of engines) engine.close();
  }
}
