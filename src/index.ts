// dione: Cloudflare D1's binding, in-process over SQLite (Node).
import { D1Database } from './binding/database.ts';
import { EmbeddedExecutor } from './engine/executor.ts';
import type { IntMode } from './api/types.ts';

export interface OpenOptions {
  /** 'bigint' returns INTEGER values as exact bigints and accepts bigint parameters. Default 'number', as D1. */
  intMode?: IntMode;
  /** 'full' (default) makes every acknowledged write durable; 'normal' trades that for speed. */
  durability?: 'full' | 'normal';
  /** Open an existing database read-only. */
  readonly?: boolean;
}

/**
 * Opens a SQLite file (created if missing, with its directory) or ':memory:' as a D1Database.
 * Synchronous: the returned binding is ready to use.
 */
export function open(path: string, options: OpenOptions = {}): D1Database {
  const executor = new EmbeddedExecutor(path, options);
  return new D1Database(executor, { intMode: options.intMode });
}

export { D1Database } from './binding/database.ts';
export { D1DatabaseSession } from './binding/session.ts';
export { D1PreparedStatement } from './binding/statement.ts';
export type { BindingOptions } from './binding/options.ts';
export type * from './api/types.ts';
export type { Executor, ExecuteRequest, ExecuteResponse, Query, StatementResult, ParamValue, RowValue } from './api/executor.ts';
