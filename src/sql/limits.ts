// D1's limits (workerd's sqlite3_limit values, as recorded from the reference runtime). The
// engine's SQLite extension (native/dione_guard.c) sets the same numbers on every connection;
// these are the ones Dione checks before SQL reaches SQLite.

export const Limits = {
  /** Bytes of UTF-8 SQL text in one prepare() call (SQLITE_LIMIT_SQL_LENGTH). */
  sqlLength: 100_000,
  /** Highest parameter number (SQLITE_LIMIT_VARIABLE_NUMBER). */
  boundParameters: 100,
  /** Bytes in one string, BLOB or row (SQLITE_LIMIT_LENGTH). */
  valueLength: 2_200_000,
  columns: 100,
  expressionDepth: 100,
  compoundSelectTerms: 5,
  functionArguments: 127,
  likePatternLength: 50,
  triggerDepth: 10,
} as const;

/** UTF-8 byte length without allocating a buffer. */
export function utf8Length(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a surrogate pair: 4 bytes for 2 UTF-16 units
      i++;
    } else bytes += 2;
  }
  return bytes;
}
