// Databases for the ORM transaction suites (issue 17): each test gets a fresh database and a way to
// open more handles on it, embedded (files opened with `transactions: true`) or over HTTP (a real
// server, reached with dione/client's connect({ transactions: true })).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from '../../src/client.ts';
import { type D1Database, open } from '../../src/index.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

export interface HandleOptions {
  /** Open the handle with interactive transactions (default true). */
  transactions?: boolean;
  intMode?: 'number' | 'bigint';
}

/** One fresh database; `handle()` opens another handle on it (closed by `close()`). */
export interface TestDatabase {
  db: D1Database;
  handle(options?: HandleOptions): D1Database;
  close(): Promise<void>;
}

export interface CreateOptions extends HandleOptions {
  /** The idle timeout of transactions on this database (embedded: open()'s option; over HTTP: the server's). */
  transactionTimeoutMs?: number;
}

export interface TransactionTarget {
  label: string;
  /** A fresh database; `db` is opened with `options` (transactions: true unless said otherwise). */
  create(options?: CreateOptions): Promise<TestDatabase>;
  /** Called from an `after` hook. */
  cleanup(): Promise<void>;
}

function tracked(make: (options: HandleOptions) => D1Database, first: HandleOptions): TestDatabase {
  const handles: D1Database[] = [];
  const handle = (options: HandleOptions = {}) => {
    const db = make(options);
    handles.push(db);
    return db;
  };
  return {
    db: handle(first),
    handle,
    async close() {
      for (const db of handles.reverse()) await db.close();
    },
  };
}

/** Embedded: each database a new file in one temporary directory. */
export function embeddedTarget(): TransactionTarget {
  const dir = mkdtempSync(path.join(tmpdir(), 'dione-orm-tx-'));
  let n = 0;
  return {
    label: 'embedded',
    async create(options = {}) {
      const file = path.join(dir, `db-${++n}.sqlite`);
      const { transactionTimeoutMs } = options;
      return tracked((o) => open(file, { transactions: o.transactions ?? true, intMode: o.intMode, transactionTimeoutMs }), options);
    },
    async cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Over HTTP: a real server for the suite (one more per other transaction timeout); each database created through its REST API. */
export function httpTarget(): TransactionTarget {
  const servers = new Map<number | undefined, Promise<TestServer>>();
  let n = 0;
  return {
    label: 'dione/client over HTTP',
    async create(options = {}) {
      const timeout = options.transactionTimeoutMs;
      if (!servers.has(timeout)) servers.set(timeout, startTestServer(timeout === undefined ? {} : { transactionTimeoutMs: timeout }));
      const s = await servers.get(timeout)!;
      const database = `orm-tx-${++n}`;
      await s.createDatabase(database);
      return tracked((o) => connect({ url: s.url, token: s.token, database, transactions: o.transactions ?? true, intMode: o.intMode }), options);
    },
    async cleanup() {
      for (const server of servers.values()) await (await server).close();
      servers.clear();
    },
  };
}

/** Runs `fn` on a fresh database of `target`, closing every handle afterwards. */
export async function withTestDatabase<T>(target: TransactionTarget, fn: (t: TestDatabase) => Promise<T>, options?: CreateOptions): Promise<T> {
  const t = await target.create(options);
  try {
    return await fn(t);
  } finally {
    await t.close();
  }
}

/** A promise with its resolve function. */
export function signal<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * Holds a transaction open at a chosen point and runs `checks` meanwhile. `start` begins the
 * transaction; its body calls `reached()` at the point and then awaits `hold`. The transaction is
 * always let go and awaited before this returns (so nothing runs on after the test), and its own
 * failure, then a failure of the checks, is what this rejects with.
 */
export async function whileHeldOpen<T>(start: (reached: () => void, hold: Promise<void>) => Promise<T>, checks: () => Promise<void>): Promise<T> {
  const reached = signal();
  const release = signal();
  const transaction = start(reached.resolve, release.promise);
  const outcome = await Promise.race([reached.promise.then(() => 'reached' as const), transaction.then(
    () => 'ended' as const,
    () => 'ended' as const,
  )]);
  let failure: { error: unknown } | undefined;
  if (outcome === 'reached') {
    try {
      await checks();
    } catch (error) {
      failure = { error };
    }
  }
  release.resolve();
  const result = await transaction;
  if (failure) throw failure.error;
  if (outcome !== 'reached') throw new Error('the transaction ended before it reached the point where it is held open');
  return result;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
