// SQL text (a REST request's sql, an imported file) into statements, given a piece at a time: the
// lexer makes an object per token, so a whole file of tens of MiB would take gigabytes at once, and
// a file of several GiB cannot even be one string. The statement a piece ends in the middle of (a
// string, a trigger body, a statement cut off) is read again with the next piece.
import { withoutLeadingTrivia } from './comments.ts';
import { statementTexts } from './statements.ts';

export class StatementSplitter {
  private pending = '';
  /** Split again only once the text held reaches this length (see push). */
  private retryAt = 0;
  /** Statements answered so far. */
  private taken = 0;
  /** Characters handed to the lexer so far (each piece's text, and again when it is split again). */
  lexed = 0;
  /** A statement longer than `longest` was handed out: nothing after it is read. */
  private cut = false;

  /**
   * `limit`: statements at most. `longest`: a statement still unfinished past this many characters
   * is handed out as it stands (it can only fail where it runs, as too long) and nothing after it is
   * read: lexing it whole would take tens of bytes per character of it.
   */
  constructor(
    private readonly limit = Number.POSITIVE_INFINITY,
    private readonly longest = Number.POSITIVE_INFINITY,
  ) {}

  /** Statements `piece` completes, each from its first token. */
  push(piece: string): string[] {
    if (this.cut) return [];
    this.pending += piece;
    // A statement longer than what is held: split again once twice as much is held, so a statement
    // of any length is read a bounded number of times.
    if (this.pending.length < this.retryAt) return this.cutTooLong([]);
    const out: string[] = [];
    const consumed = this.take(false, out);
    if (consumed === 0) this.retryAt = 2 * this.pending.length;
    else {
      this.pending = this.pending.slice(consumed);
      this.retryAt = 0;
    }
    return this.cutTooLong(out);
  }

  /** `out`, and the statement held when it is already longer than `longest` (see the constructor). */
  private cutTooLong(out: string[]): string[] {
    if (this.pending.length <= this.longest) return out;
    const held = withoutLeadingTrivia(this.pending);
    if (held.length <= this.longest) return out;
    out.push(held);
    this.pending = '';
    this.cut = true;
    return out;
  }

  /** The statements of the rest and `last` (the final one may be unterminated, or an open string or comment). */
  end(last = ''): string[] {
    if (this.cut) return [];
    this.pending += last;
    const out: string[] = [];
    this.take(true, out);
    this.pending = '';
    return out;
  }

  /** Statements of the held text into `out` (complete ones only unless `final`); answers the characters they used. */
  private take(final: boolean, out: string[]): number {
    let consumed = 0;
    if (this.taken >= this.limit) return 0;
    this.lexed += this.pending.length;
    for (const s of statementTexts(this.pending, this.limit - this.taken)) {
      if (!final && !s.terminated) break;
      out.push(s.empty ? s.text : withoutLeadingTrivia(s.text));
      consumed += s.text.length;
      this.taken++;
    }
    return consumed;
  }
}

const PIECE_CHARS = 1 << 20;

/** The statements of a SQL text, each from its first token (at most `limit`). */
export function splitSqlText(sql: string, limit = Number.POSITIVE_INFINITY): string[] {
  const splitter = new StatementSplitter(limit);
  if (sql.length <= PIECE_CHARS) return splitter.end(sql);
  const statements: string[] = [];
  let at = 0;
  for (; at + PIECE_CHARS < sql.length && statements.length < limit; at += PIECE_CHARS) {
    for (const s of splitter.push(sql.slice(at, at + PIECE_CHARS))) statements.push(s);
  }
  if (statements.length < limit) for (const s of splitter.end(sql.slice(at))) statements.push(s);
  return statements;
}
