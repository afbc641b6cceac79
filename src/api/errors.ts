// D1 reports failures as plain Errors whose message starts with a code prefix ("D1_ERROR: …") and
// whose `cause` is an Error holding the message without the prefix. These builders reproduce that.

export type D1ErrorPrefix =
  | 'D1_ERROR'
  | 'D1_TYPE_ERROR'
  | 'D1_COLUMN_NOTFOUND'
  | 'D1_EXEC_ERROR'
  | 'D1_DUMP_ERROR'
  | 'D1_SESSION_ERROR';

/** An Error shaped like D1's: `${prefix}: ${detail}`, with `cause` = Error(detail). */
export function d1Error(prefix: D1ErrorPrefix, detail: string, cause: string = detail): Error {
  return new Error(`${prefix}: ${detail}`, { cause: new Error(cause) });
}

/** Fixed texts that D1 (workerd, miniflare) uses; clients match on them. */
export const Messages = {
  noStatements: 'No SQL statements detected.',
  emptyStatement: 'SQL code did not contain a statement.',
  wrongParameterCount: 'Wrong number of parameter bindings for SQL query.',
  parametersOnlyInLast:
    'When executing multiple SQL statements in a single call, only the last statement can have parameters.',
  transactionStatement:
    "To execute a transaction, please use the state.storage.transaction() or state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT statements. The JavaScript API is safer because it will automatically roll back on exceptions, and because it interacts correctly with Durable Objects' automatic atomic write coalescing.",
  constraintsViolatedAtCommit:
    'Durable Object was reset and rolled back to its last known good state because the application left the database in a state where constraints were violated: ',
  columnNotFound: 'Column not found',
  closed: 'The database connection is not open',
  /** SQLite's text for a write on a read-only connection: what a request that must not write gets. */
  readOnly: 'attempt to write a readonly database: SQLITE_READONLY',
  /** A request that ran past its deadline (D1's query timeout); nothing it wrote is kept. */
  queryTimeout: 'D1 DB storage operation exceeded timeout which caused object to be reset.',
  /** Dione's own: a server's answer whose JSON would pass its limit (MAX_ANSWER_JSON, 128 MiB). */
  resultTooLarge: 'The result is too large to send in one response (its JSON would exceed 128 MiB): select fewer rows or columns at once',
  /** Dione's own: beginTransaction()/withTransaction() on a handle opened without the opt-in. */
  noTransactions: 'this database was not opened with { transactions: true }',
} as const;

/** The detail text of a SQLite failure as D1 prints it: `<message>[ at offset N]: SQLITE_X[ (extended: SQLITE_X_Y)]`. */
export function sqliteDetail(message: string, extendedCode: string, offset = -1): string {
  const primary = primaryCode(extendedCode);
  const at = offset >= 0 ? ` at offset ${offset}` : '';
  const extended = primary !== extendedCode ? ` (extended: ${extendedCode})` : '';
  return `${message}${at}: ${primary}${extended}`;
}

/** SQLITE_CONSTRAINT_UNIQUE -> SQLITE_CONSTRAINT (primary code names never contain a second underscore). */
export function primaryCode(extendedCode: string): string {
  const second = extendedCode.indexOf('_', 'SQLITE_'.length);
  return second < 0 ? extendedCode : extendedCode.slice(0, second);
}
