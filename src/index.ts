// dione: Cloudflare D1's binding, in-process over SQLite (Node).
import type { HistoryPoint, RestoreResult } from './api/time-travel.ts';
import type { IntMode } from './api/types.ts';
import { D1Database } from './binding/database.ts';
import { EmbeddedExecutor } from './engine/executor.ts';
import { LoggedExecutor } from './log/executor.ts';
import type { HistoryOptions, LoggedDatabase } from './log/logged-database.ts';

export interface OpenOptions {
  /** 'bigint' returns INTEGER values as exact bigints and accepts bigint parameters. Default 'number', as D1. */
  intMode?: IntMode;
  /** 'full' (default) makes every acknowledged write durable; 'normal' trades that for speed. */
  durability?: 'full' | 'normal';
  /** Open an existing database read-only. */
  readonly?: boolean;
  /**
   * Keep a write log (true, or its settings): every commit gets a durable log record and a real
   * bookmark, and history(db) offers Time Travel and forks. Writes are durable either way.
   */
  history?: boolean | HistoryOptions;
  /**
   * Interrupt a request that runs longer than this many ms, answering D1's timeout error and
   * keeping nothing it wrote (default: no limit). `dione serve` uses D1's 30 s.
   */
  queryTimeoutMs?: number;
  /**
   * Interactive transactions (Dione's opt-in; D1 refuses them): BEGIN…COMMIT, ROLLBACK and
   * savepoints on this handle, and beginTransaction()/withTransaction() for a transaction of its
   * own connection. Without it every D1 refusal stays as it is.
   */
  transactions?: boolean;
  /** A transaction idle this long is rolled back; the handle's next request is told (default 10 s). */
  transactionTimeoutMs?: number;
}

const histories = new WeakMap<D1Database, LoggedDatabase>();

/**
 * Opens a SQLite file (created if missing, with its directory) or ':memory:' as a D1Database.
 * Synchronous: the returned binding is ready to use.
 */
export function open(path: string, options: OpenOptions = {}): D1Database {
  if (options.history) {
    if (options.readonly || path === ':memory:' || path === '') throw new TypeError('history needs a writable database file');
    const { intMode, queryTimeoutMs, transactions, transactionTimeoutMs } = options;
    const executor = new LoggedExecutor(path, { intMode, queryTimeoutMs, transactions, transactionTimeoutMs }, options.history === true ? {} : options.history);
    const db = new D1Database(executor, { intMode: options.intMode });
    histories.set(db, executor.database);
    return db;
  }
  const executor = new EmbeddedExecutor(path, options);
  return new D1Database(executor, { intMode: options.intMode });
}

/** Time Travel and forks of a database opened with `history`. */
export interface DatabaseHistory {
  /** The current bookmark, or the bookmark of the newest commit at or before `timestamp`. */
  bookmark(timestamp?: Date): string;
  /** Restores the database in place; the answer's previous_bookmark undoes it. */
  restore(point: HistoryPoint): Promise<RestoreResult>;
  /**
   * Writes a new database file equal to this one at `point`, with a history of its own; answers
   * the point as this database's bookmark and as the fork's (its first).
   */
  fork(point: HistoryPoint, file: string): { bookmark: string; forkBookmark: string };
}

export function history(db: D1Database): DatabaseHistory {
  const logged = histories.get(db);
  if (!logged) throw new TypeError('this database was not opened with { history: true }');
  return {
    bookmark: (timestamp) => logged.bookmarkAt(timestamp),
    restore: (point) => logged.restore(point),
    fork: (point, file) => logged.fork(point, file),
  };
}

export { HistoryError, parseTimestamp } from './api/time-travel.ts';
export type { HistoryPoint, RestoreResult } from './api/time-travel.ts';
export type { HistoryOptions } from './log/logged-database.ts';
export { D1Database } from './binding/database.ts';
export { beginTransaction, withTransaction } from './binding/transaction.ts';
export type { D1Transaction, TransactionMode, TransactionOptions } from './binding/transaction.ts';
export { D1DatabaseSession } from './binding/session.ts';
export { D1PreparedStatement } from './binding/statement.ts';
export type { BindingOptions } from './binding/options.ts';
export type * from './api/types.ts';
export type { Executor, ExecuteRequest, ExecuteResponse, Query, StatementResult, ParamValue, RowValue } from './api/executor.ts';
// A Dione server from Node: dione/client's binding over node:http(s) (node-client.ts).
export { connect, nodeFetch } from './node-client.ts';
export type { ConnectOptions } from './node-client.ts';
