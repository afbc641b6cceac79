// The one SQLite Dione runs: better-sqlite3 over Dione's build of its addon, whose SQLite counts
// the rows each statement reads and writes, as D1's does (scripts/build-sqlite.mjs). Every
// database Dione opens goes through openSqlite: two copies of SQLite in one process do not see
// each other's file locks, so a second copy on the same file could corrupt it.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

// src/engine/ and dist/engine/ are both two levels below the package root.
const addonPath = fileURLToPath(new URL('../../build/better_sqlite3.node', import.meta.url));
let addon: object | undefined;

function loadAddon(): object {
  if (addon) return addon;
  if (!existsSync(addonPath)) {
    throw new Error(
      `dione: ${addonPath} (SQLite with row counters) is missing; run "npm install" (or "node scripts/build-native.mjs") in the dione package`,
    );
  }
  addon = createRequire(import.meta.url)(addonPath) as object;
  return addon;
}

export type SqliteOptions = Omit<Database.Options, 'nativeBinding'>;

/** A better-sqlite3 connection on Dione's SQLite. */
export function openSqlite(file: string | Buffer, options: SqliteOptions = {}): Database.Database {
  // better-sqlite3's types take only a path; it takes the loaded addon as well.
  return new Database(file as string, { ...options, nativeBinding: loadAddon() as unknown as string });
}

/**
 * Bounds the rows one all() may build, in this process, to about `bytes` (a text as its bytes and
 * quotes, a BLOB as two characters a byte, any other value as eight, and 128 a row for the arrays
 * that carry it: a result of millions of empty strings took gigabytes on its way); 0 for no bound.
 * Past it the statement stops stepping and fails with Messages.resultTooLarge, before the rows
 * fill the memory: a server sets its answer limit.
 */
export function setResultBudget(bytes: number): void {
  const db = openSqlite(':memory:');
  try {
    (db.prepare('SELECT 1') as unknown as { setResultBudget(bytes: number): void }).setResultBudget(bytes);
  } finally {
    db.close();
  }
}

interface CountingStatement {
  rowCounts(): [read: number, written: number];
  runCounts(...args: unknown[]): CountedRun;
  getCounts(...args: unknown[]): CountedRead<unknown>;
  allCounts(...args: unknown[]): CountedRead<unknown[]>;
}

/** What a statement run with runCounted did: better-sqlite3's run() result, and the rows it read and wrote. */
export type CountedRun = [changes: number, lastInsertRowid: number | bigint, read: number, written: number];

/**
 * Runs `statement` as better-sqlite3's run() does, and takes its row counts (see takeRowCounts)
 * in the same native call.
 */
export function runCounted(statement: Database.Statement, args: unknown[]): CountedRun {
  return (statement as unknown as CountingStatement).runCounts(...args);
}

/**
 * Runs a statement whose answer nobody reads (BEGIN, COMMIT, SAVEPOINT…). better-sqlite3's run()
 * builds its { changes, lastInsertRowid } answer property by property, about a microsecond a call on
 * the commit path; runCounts() builds its array at once.
 */
export function runOnly(statement: Database.Statement): void {
  (statement as unknown as CountingStatement).runCounts();
}

/**
 * What a statement read with getCounted or allCounted gave: its row (undefined when none) or rows,
 * the rows it read and wrote, and its connection's data version after it (see dataVersionOf).
 */
export type CountedRead<T> = [result: T, read: number, written: number, dataVersion: number];

/**
 * better-sqlite3's get(), but run to the end of the query as D1's first() is (a later row that fails
 * fails it; every row read counts), with the row counts and the data version in the same native call.
 */
export function getCounted(statement: Database.Statement, args: unknown[]): CountedRead<unknown> {
  return (statement as unknown as CountingStatement).getCounts(...args);
}

/** better-sqlite3's all(), with the row counts and the data version in the same native call. */
export function allCounted(statement: Database.Statement, args: unknown[]): CountedRead<unknown[]> {
  return (statement as unknown as CountingStatement).allCounts(...args);
}

/**
 * The rows `statement` read and wrote since the last call (counted by SQLite, the way D1 counts
 * them), and the counters start again from zero.
 */
export function takeRowCounts(statement: Database.Statement): [read: number, written: number] {
  return (statement as unknown as CountingStatement).rowCounts();
}

interface VersionedStatement {
  dataVersion(): number;
}

/**
 * The data version of `statement`'s connection (SQLITE_FCNTL_DATA_VERSION): it changes when any
 * connection commits, as this one saw at its last read transaction. A native call, not a statement.
 */
export function dataVersionOf(statement: Database.Statement): number {
  return (statement as unknown as VersionedStatement).dataVersion();
}

interface FileLockingAddon {
  dioneLockFile(fd: number): number;
}

/**
 * Takes an exclusive advisory lock (flock) on the open file `fd` without waiting (Dione's addon:
 * scripts/addon-file-lock.mjs): true when taken, false when another open of the file holds it.
 * Closing `fd` lets it go. Throws for any other failure.
 */
export function tryLockFile(fd: number): boolean {
  const errno = (loadAddon() as FileLockingAddon).dioneLockFile(fd);
  if (errno === 0) return true;
  if (errno === osConstants.errno.EWOULDBLOCK || errno === osConstants.errno.EAGAIN) return false;
  const error = new Error(`flock failed: errno ${errno}`) as NodeJS.ErrnoException;
  error.errno = errno;
  throw error;
}
