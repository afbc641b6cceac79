// A statement's text as query insights group it: every literal and parameter becomes `?`, comments
// go, and each run of whitespace becomes one space, so `WHERE id = 7` and `WHERE id=?1` count as one
// statement whatever their spacing. The same texts come back with every request, so results are kept.
import { tokenize } from '../../sql/lexer.ts';
import { parseQuery } from '../../sql/parse-cache.ts';

/** Longer normalized texts are cut here (with `…`): the store keeps one row per distinct text. */
export const MAX_QUERY_TEXT = 4096;

const CACHE_ENTRIES = 1024;
const MAX_CACHED_SQL = 8192;
const cache = new Map<string, RecordedStatement>();

const PLACEHOLDERS = new Set(['string', 'number', 'blob', 'param']);

export interface RecordedStatement {
  /** The normalized text. */
  query: string;
  /** The lexer says it may write (D1's writeQueries), else it only reads (readQueries). */
  writes: boolean;
}

/** The normalized text of `sql` and whether it writes. */
export function describeStatement(sql: string): RecordedStatement {
  const hit = cache.get(sql);
  if (hit !== undefined) return hit;
  const described = { query: normalizeStatement(sql), writes: parseQuery(sql).statements.some((s) => s.kind === 'write') };
  if (sql.length <= MAX_CACHED_SQL) {
    if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
    cache.set(sql, described);
  }
  return described;
}

export function normalizeStatement(sql: string): string {
  let text = '';
  let gap = false;
  for (const token of tokenize(sql)) {
    if (token.type === 'space' || token.type === 'comment') {
      gap = text.length > 0;
      continue;
    }
    if (gap) text += ' ';
    gap = false;
    text += PLACEHOLDERS.has(token.type) ? '?' : sql.slice(token.start, token.end);
  }
  return text.length > MAX_QUERY_TEXT ? `${text.slice(0, MAX_QUERY_TEXT - 1)}…` : text;
}
