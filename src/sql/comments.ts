import { isTrivia, tokenize } from './lexer.ts';

/** True when `sql` holds at least one comment and nothing but comments and whitespace. */
export function isCommentOnly(sql: string): boolean {
  if (!sql.includes('--') && !sql.includes('/*')) return false;
  const tokens = tokenize(sql);
  return tokens.every(isTrivia) && tokens.some((t) => t.type === 'comment');
}
