// Parsing is pure, so the statements of a SQL string are computed once and reused: hot queries
// (the same prepared text with new parameters) never touch the lexer again.
import { Limits, utf8Length } from './limits.ts';
import { preparedStatements, type Statement } from './statements.ts';

export interface ParsedQuery {
  statements: Statement[];
  /** More UTF-8 bytes than D1 accepts in one prepare. */
  tooLong: boolean;
}

const MAX_ENTRIES = 512;
const MAX_CACHED_LENGTH = 8192;
const cache = new Map<string, ParsedQuery>();

export function parseQuery(sql: string): ParsedQuery {
  const hit = cache.get(sql);
  if (hit) return hit;
  const tooLong = sql.length > Limits.sqlLength || (sql.length * 3 > Limits.sqlLength && utf8Length(sql) > Limits.sqlLength);
  const parsed: ParsedQuery = { statements: tooLong ? [] : preparedStatements(sql), tooLong };
  if (sql.length <= MAX_CACHED_LENGTH) {
    if (cache.size >= MAX_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(sql, parsed);
  }
  return parsed;
}
