// One boundary where SQLite failures become D1's error text.
import { Messages, sqliteDetail } from '../api/errors.ts';

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

/**
 * File-system errors met outside SQLite (the write log's own files), as SQLite words the same
 * conditions: a full disk reads as SQLite's SQLITE_FULL, wherever it was met.
 */
const ERRNO_DETAILS = new Map([
  ['ENOSPC', sqliteDetail('database or disk is full', 'SQLITE_FULL')],
  ['EDQUOT', sqliteDetail('database or disk is full', 'SQLITE_FULL')],
  ['EFBIG', sqliteDetail('database or disk is full', 'SQLITE_FULL')],
  ['EIO', sqliteDetail('disk I/O error', 'SQLITE_IOERR')],
  // Out of descriptors, or not allowed: what SQLite says of a file it cannot open.
  ['EMFILE', sqliteDetail('unable to open database file', 'SQLITE_CANTOPEN')],
  ['ENFILE', sqliteDetail('unable to open database file', 'SQLITE_CANTOPEN')],
  ['EACCES', sqliteDetail('unable to open database file', 'SQLITE_CANTOPEN')],
  ['EPERM', sqliteDetail('unable to open database file', 'SQLITE_CANTOPEN')],
  ['EROFS', sqliteDetail('attempt to write a readonly database', 'SQLITE_READONLY')],
]);

/**
 * The SQLite-worded detail of a Node file-system error (ENOSPC…), if it is one. Never Node's own
 * message: it names the server's files (a client has no business knowing its paths).
 */
export function errnoDetail(e: unknown): string | undefined {
  const error = e instanceof Error ? (e as NodeJS.ErrnoException) : undefined;
  if (error?.code === undefined || error.syscall === undefined) return undefined;
  return ERRNO_DETAILS.get(error.code) ?? sqliteDetail(`disk I/O error (${error.code})`, 'SQLITE_IOERR');
}

/** better-sqlite3 turns some SQLite result codes into its own errors; these are SQLite's texts for them. */
const BINDING_ERRORS = new Map([
  ['The bound string, buffer, or bigint is too big', 'string or blob too big: SQLITE_TOOBIG'],
  // All()'s rows passed the process's result budget (setResultBudget: a server's answer limit).
  ['dione: result too large', Messages.resultTooLarge],
]);

/** Whether SQLite stopped a statement because its deadline passed (nothing else interrupts it). */
export function isInterrupt(e: unknown): boolean {
  return isSqliteError(e) && e.code === 'SQLITE_INTERRUPT';
}

/**
 * Functions of Dione's newer SQLite that D1's SQLite does not have at all (checked against
 * miniflare's workerd). The guard refuses them ("not authorized to use function"); D1 says "no
 * such function". (The compile options D1 lacks are left out of the build: scripts/build-sqlite.mjs.)
 */
const ABSENT_FROM_D1 = new Set(['unistr', 'unistr_quote', 'json_array_insert', 'jsonb_array_insert', 'rtreenode', 'rtreedepth']);
const REFUSED_FUNCTION = /^not authorized to use function: (.+)$/;

/** SQLite's message as D1's SQLite would word it. */
function asD1Words(message: string): string {
  const name = REFUSED_FUNCTION.exec(message)?.[1];
  return name !== undefined && ABSENT_FROM_D1.has(name.toLowerCase()) ? `no such function: ${name}` : message;
}

/** D1's detail text for SQLite's error message and (extended) code name. */
export function sqliteFailureDetail(message: string, code: string, offset = -1): string {
  return sqliteDetail(asD1Words(message), code, offset);
}

/** D1's detail text for an error thrown by better-sqlite3 (offset supplied for prepare errors). */
export function detailOf(e: unknown, offset = -1): string {
  if (e instanceof D1Failure) return e.detail;
  if (isInterrupt(e)) return Messages.queryTimeout;
  if (isSqliteError(e)) return sqliteFailureDetail(e.message, e.code, offset);
  if (e instanceof Error && BINDING_ERRORS.has(e.message)) return BINDING_ERRORS.get(e.message)!;
  const errno = errnoDetail(e);
  if (errno !== undefined) return errno;
  if (e instanceof Error) return e.message;
  return String(e);
}

export { isSqliteError };
