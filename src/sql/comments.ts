import { isTrivia, tokenize } from './lexer.ts';

/** True when `sql` holds at least one comment and nothing but comments and whitespace. */
export function isCommentOnly(sql: string): boolean {
  if (!sql.includes('--') && !sql.includes('/*')) return false;
  const tokens = tokenize(sql);
  return tokens.every(isTrivia) && tokens.some((t) => t.type === 'comment');
}

/** `sql` from its first token on: leading whitespace and comments removed. */
export function withoutLeadingTrivia(sql: string): string {
  const c = sql.charCodeAt(0);
  if (c > 0x20 && c !== 0x2d && c !== 0x2f) return sql;
  const first = tokenize(sql).find((t) => !isTrivia(t));
  return first ? sql.slice(first.start) : '';
}

/**
 * A query D1's runtime drops without running it or answering a result for it (an exec() line, a
 * batch element): blank, or starting with an indented `--` comment.
 */
export function isDroppedQuery(sql: string): boolean {
  // (The runtime's trim() and \s are JavaScript's: U+00A0 and the other Unicode spaces count.)
  const c = sql.charCodeAt(0);
  if (c > 0x20 && c < 0xa0) return false;
  return sql.trim() === '' || /^\s+--/.test(sql);
}
