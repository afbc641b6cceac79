// One boundary where SQLite failures become D1's error text.
import { sqliteDetail } from '../api/errors.ts';

/** A failure whose text is already D1's detail message. */
export class D1Failure extends Error {
  constructor(
    readonly detail: string,
    readonly reset = false,
  ) {
    super(detail);
  }
}

interface SqliteErrorLike {
  code: string;
  message: string;
}

function isSqliteError(e: unknown): e is SqliteErrorLike {
  const code = e instanceof Error ? (e as Partial<SqliteErrorLike>).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_');
}

/** better-sqlite3 turns some SQLite result codes into its own errors; these are SQLite's texts for them. */
const BINDING_ERRORS = new Map([['The bound string, buffer, or bigint is too big', 'string or blob too big: SQLITE_TOOBIG']]);

/** D1's detail text for an error thrown by better-sqlite3 (offset supplied for prepare errors). */
export function detailOf(e: unknown, offset = -1): string {
  if (e instanceof D1Failure) return e.detail;
  if (isSqliteError(e)) return sqliteDetail(e.message, e.code, offset);
  if (e instanceof Error && BINDING_ERRORS.has(e.message)) return BINDING_ERRORS.get(e.message)!;
  if (e instanceof Error) return e.message;
  return String(e);
}

export { isSqliteError };
