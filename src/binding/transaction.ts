// Interactive transactions (Dione's opt-in; D1 has none): a D1Database bound to one transaction of
// its own, isolated from every other request until it commits. Needs a handle opened with
// `transactions: true` (open() or connect()).
import { Messages } from '../api/errors.ts';
import type { Executor } from '../api/executor.ts';
import { D1Database, internalsOf } from './database.ts';

export type TransactionMode = 'deferred' | 'immediate' | 'exclusive';

export interface TransactionOptions {
  /**
   * SQLite's BEGIN mode. Default 'immediate': the transaction takes the write lock at once, so two
   * read-modify-write transactions wait for each other instead of the second failing at its first
   * write (what 'deferred' does when another committed since it first read).
   */
  mode?: TransactionMode;
}

export interface D1Transaction {
  /** A D1Database whose every statement runs inside this transaction. */
  readonly db: D1Database;
  /**
   * Commits. When COMMIT is refused the transaction is rolled back and the error thrown. When its
   * answer is lost (over HTTP: the connection dropped or the call timed out), the error says the
   * outcome is unknown: the server may have committed.
   */
  commit(): Promise<void>;
  /** Rolls back (also when the transaction already ended, by its idle timeout say). */
  rollback(): Promise<void>;
}

/** How deep in savepoints each transaction's handle is (withTransaction on a transaction nests). */
const depths = new WeakMap<D1Database, number>();

const ENDED = 'The transaction has already ended.';

/** Opens a transaction on a connection (or, over HTTP, a server-held transaction) of its own. */
export async function beginTransaction(db: D1Database, options: TransactionOptions = {}): Promise<D1Transaction> {
  const { executor, options: bindingOptions } = internalsOf(db);
  if (!executor.openTransaction) throw new TypeError(Messages.noTransactions);
  const own: Executor = await executor.openTransaction();
  const tx = new D1Database(own, bindingOptions);
  const mode = (options.mode ?? 'immediate').toUpperCase();
  if (mode !== 'DEFERRED' && mode !== 'IMMEDIATE' && mode !== 'EXCLUSIVE') {
    await own.close();
    throw new TypeError(`unknown transaction mode: ${options.mode}`);
  }
  try {
    await tx.prepare(`BEGIN ${mode}`).run();
  } catch (e) {
    await own.close();
    throw e;
  }
  depths.set(tx, 0);
  let ended = false;
  const end = async (statement: 'COMMIT' | 'ROLLBACK') => {
    if (ended) {
      if (statement === 'ROLLBACK') return;
      throw new Error(ENDED);
    }
    ended = true;
    try {
      await tx.prepare(statement).run();
    } catch (e) {
      // Whatever is left (a COMMIT refused, or one whose answer was lost and so perhaps never run) is
      // rolled back when the executor closes.
      if (statement === 'COMMIT') throw e;
    } finally {
      await own.close();
    }
  };
  return { db: tx, commit: () => end('COMMIT'), rollback: () => end('ROLLBACK') };
}

/**
 * Runs `fn` in a transaction: committed when it resolves, rolled back when it throws (the error is
 * rethrown). Called with a transaction's own handle, it nests as a savepoint.
 */
export async function withTransaction<T>(db: D1Database, fn: (tx: D1Database) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
  const depth = depths.get(db);
  if (depth !== undefined) return withSavepoint(db, depth + 1, fn);
  const transaction = await beginTransaction(db, options);
  let result: T;
  try {
    result = await fn(transaction.db);
  } catch (e) {
    await transaction.rollback();
    throw e;
  }
  await transaction.commit();
  return result;
}

async function withSavepoint<T>(tx: D1Database, depth: number, fn: (tx: D1Database) => Promise<T>): Promise<T> {
  const name = `dione_savepoint_${depth}`;
  await tx.prepare(`SAVEPOINT ${name}`).run();
  depths.set(tx, depth);
  try {
    const result = await fn(tx);
    await tx.prepare(`RELEASE ${name}`).run();
    return result;
  } catch (e) {
    try {
      await tx.prepare(`ROLLBACK TO ${name}`).run();
      await tx.prepare(`RELEASE ${name}`).run();
    } catch {
      // the transaction itself is gone (rolled back): nothing of it stays either way
    }
    throw e;
  } finally {
    depths.set(tx, depth - 1);
  }
}
