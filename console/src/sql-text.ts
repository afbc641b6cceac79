// Where an error's "at offset N" points in the console's text. Statements are split as the server
// splits them (src/sql/statements.ts, the same code), and SQLite counts the offset in UTF-8 bytes from
// the start of the failing statement, after its leading space and comments.
import { splitStatements as serverSplit } from '../../src/sql/statements.ts';

export interface StatementSpan {
  start: number;
  text: string;
}

/** The statements of `sql` with where each starts; empty ones (stray semicolons, comments) are left out. */
export function splitStatements(sql: string): StatementSpan[] {
  const spans: StatementSpan[] = [];
  let start = 0;
  for (const statement of serverSplit(sql)) {
    if (!statement.empty) spans.push({ start, text: statement.text });
    start += statement.text.length;
  }
  return spans;
}

/** How many characters of space and comments open `text`. */
function leadingSkip(text: string): number {
  return /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/.exec(text)![0].length;
}

/** The string index `bytes` UTF-8 bytes into `text`, or undefined past its end. */
function indexAtByte(text: string, bytes: number): number | undefined {
  const encoder = new TextEncoder();
  let counted = 0;
  let index = 0;
  for (const ch of text) {
    if (counted === bytes) return index;
    if (counted > bytes) return undefined;
    counted += encoder.encode(ch).length;
    index += ch.length;
  }
  return counted === bytes ? index : undefined;
}

/**
 * Where in `sql` an error message points: SQLite's `near "X": … at offset N` counts from the start of
 * the failing statement, so the statement is the first whose text has X at N.
 */
export function errorPosition(sql: string, message: string): { start: number; end: number } | undefined {
  const offset = /at offset (\d+)/.exec(message);
  if (!offset) return undefined;
  const bytes = Number(offset[1]);
  const near = /near "((?:[^"]|"")*)"/.exec(message)?.[1]?.replaceAll('""', '"');
  const statements = splitStatements(sql);
  for (const s of statements) {
    const base = s.start + leadingSkip(s.text);
    const at = indexAtByte(sql.slice(base, s.start + s.text.length), bytes);
    if (at === undefined) continue;
    if (near === undefined ? statements.length === 1 : sql.startsWith(near, base + at)) {
      return { start: base + at, end: base + at + Math.max(1, near?.length ?? 1) };
    }
  }
  return undefined;
}
