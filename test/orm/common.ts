// Shared plumbing for the ORM suites. A suite only receives a factory, so the same checks run against
// any D1Database: the embedded binding (in memory or on a file) or, later, a remote one.
import type { D1Database } from '../../src/index.ts';

/** Makes a fresh, empty database; each test calls it once and closes what it gets. */
export type DatabaseFactory = () => D1Database | Promise<D1Database>;

/** Runs `fn` on a fresh database from `factory`, closing the database afterwards whatever happens. */
export async function withDatabase<T>(factory: DatabaseFactory, fn: (db: D1Database) => Promise<T>): Promise<T> {
  const db = await factory();
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

/** Every message along an error's `cause` chain, joined: ORMs wrap the binding's errors differently. */
export function errorText(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && current !== null && depth < 10; depth++) {
    parts.push(current instanceof Error ? current.message : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(' <- ');
}

/** Asserts that `promise` rejects and returns the rejection, so callers can inspect it precisely. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the operation to fail, but it succeeded');
}

/** Table names from `sqlite_master`, without SQLite's own (`sqlite_*`) and D1's (`_cf_*`), sorted. */
export async function userTables(db: D1Database): Promise<string[]> {
  const { results } = await db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_' AND substr(name, 1, 4) <> '_cf_' ORDER BY name")
    .all<{ name: string }>();
  return results.map((r) => r.name);
}
