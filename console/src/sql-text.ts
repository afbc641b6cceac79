// Just enough SQL lexing for the console: split a script into statements (quotes, comments and
// trigger bodies respected) and find where an error's "at offset N" points.

export interface StatementSpan {
  start: number;
  text: string;
}

/** The statements of `sql` with where each starts; empty ones (stray semicolons, comments) are left out. */
export function splitStatements(sql: string): StatementSpan[] {
  const spans: StatementSpan[] = [];
  let start = 0;
  let depth = 0; // BEGIN … END inside CREATE TRIGGER
  let i = 0;
  const word = /[A-Za-z_]\w*/y;
  const push = (end: number) => {
    const text = sql.slice(start, end);
    if (stripComments(text).replace(/;\s*$/, '').trim()) spans.push({ start, text });
  };
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"' || ch === '`') {
      const close = sql.indexOf(ch, i + 1);
      i = close < 0 ? sql.length : close + 1;
    } else if (ch === '[') {
      const close = sql.indexOf(']', i + 1);
      i = close < 0 ? sql.length : close + 1;
    } else if (ch === '-' && sql[i + 1] === '-') {
      const close = sql.indexOf('\n', i);
      i = close < 0 ? sql.length : close + 1;
    } else if (ch === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      i = close < 0 ? sql.length : close + 2;
    } else if (ch === ';' && depth === 0) {
      push(i + 1);
      start = i + 1;
      i++;
    } else if (/[A-Za-z_]/.test(ch)) {
      word.lastIndex = i;
      const w = word.exec(sql)![0].toUpperCase();
      if (w === 'BEGIN' && /^\s*CREATE\s+(TEMP\s+|TEMPORARY\s+)?TRIGGER\b/i.test(stripComments(sql.slice(start, i)))) depth++;
      else if (w === 'END' && depth > 0) depth--;
      i += w.length;
    } else i++;
  }
  push(sql.length);
  return spans;
}

function stripComments(text: string): string {
  return text.replace(/--[^\n]*/g, ' ').replace(/\/\*[\s\S]*?(\*\/|$)/g, ' ');
}

/**
 * Where in `sql` an error message points: SQLite's `near "X": … at offset N` counts from the start of
 * the failing statement, so the statement is the first whose text has X at N.
 */
export function errorPosition(sql: string, message: string): { start: number; end: number } | undefined {
  const offset = /at offset (\d+)/.exec(message);
  if (!offset) return undefined;
  const at = Number(offset[1]);
  const near = /near "((?:[^"]|"")*)"/.exec(message)?.[1]?.replaceAll('""', '"');
  const statements = splitStatements(sql);
  for (const s of statements) {
    // The server hands SQLite each statement without its leading space and comments.
    const base = s.start + leadingSkip(s.text);
    if (near === undefined ? statements.length === 1 : sql.startsWith(near, base + at)) {
      return { start: base + at, end: base + at + Math.max(1, near?.length ?? 1) };
    }
  }
  return undefined;
}

/** How many characters of space and comments open `text`. */
function leadingSkip(text: string): number {
  return /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/.exec(text)![0].length;
}
