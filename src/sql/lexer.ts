// A tokenizer for SQLite's SQL dialect: enough to find statement boundaries, parameters and the
// keywords that decide what a statement does. It never throws: text SQLite would reject becomes an
// 'illegal' token and SQLite itself reports the error when the statement is prepared.

export type TokenType =
  | 'space'
  | 'comment'
  | 'word' // keyword or bare identifier
  | 'quoted' // "identifier", `identifier`, [identifier]
  | 'string'
  | 'blob'
  | 'number'
  | 'param'
  | 'semicolon'
  | 'lparen'
  | 'rparen'
  | 'operator'
  | 'illegal';

export interface Token {
  type: TokenType;
  start: number;
  end: number;
}

// SQLite also skips a byte-order mark (U+FEFF) as whitespace.
const SPACE = new Set([0x20, 0x09, 0x0a, 0x0c, 0x0d, 0xfeff]);
/** sqlite3Isspace(): what ends a Tcl-style parameter's `(…)` (unlike a token, \v too, and U+FEFF not). */
const SQLITE_SPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);

function isIdentStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || (c >= 0x80 && c !== 0xfeff);
}

// U+FEFF is a space only where a token would start; inside a name SQLite takes it as a name character.
function isIdentPart(c: number): boolean {
  return isIdentStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x24 || c === 0xfeff;
}

/**
 * A parameter named after `:`, `@`, `$` or `#`, as SQLite's tokenizer reads it with Tcl-style names
 * (D1's SQLite has them): name characters and `::` pairs, then optionally `(…)` up to a space or the
 * closing parenthesis. No name character, or a `(` left open, makes it an illegal token.
 */
function scanNamedParameter(sql: string, start: number): { end: number; legal: boolean } {
  let nameCharacters = 0;
  let i = start + 1;
  for (; i < sql.length; i++) {
    const c = sql.charCodeAt(i);
    if (isIdentPart(c)) nameCharacters++;
    else if (c === 0x28 && nameCharacters > 0) {
      do i++;
      while (i < sql.length && !SQLITE_SPACE.has(sql.charCodeAt(i)) && sql.charCodeAt(i) !== 0x29);
      if (i < sql.length && sql.charCodeAt(i) === 0x29) return { end: i + 1, legal: true };
      return { end: i, legal: false };
    } else if (c === 0x3a && sql.charCodeAt(i + 1) === 0x3a) i++;
    else break;
  }
  return { end: i, legal: nameCharacters > 0 };
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** Index just past a quoted run that starts at `i` with `quote`; doubled quotes escape. -1 if unterminated. */
function skipQuoted(sql: string, i: number, quote: number): number {
  let j = i + 1;
  for (;;) {
    const k = sql.indexOf(String.fromCharCode(quote), j);
    if (k < 0) return -1;
    if (sql.charCodeAt(k + 1) === quote) {
      j = k + 2;
      continue;
    }
    return k + 1;
  }
}

function scanNumber(sql: string, i: number): number {
  const n = sql.length;
  let j = i;
  if (sql.charCodeAt(j) === 0x30 && (sql.charCodeAt(j + 1) | 0x20) === 0x78 && isHex(sql.charCodeAt(j + 2))) {
    j += 2;
    while (j < n && (isHex(sql.charCodeAt(j)) || sql.charCodeAt(j) === 0x5f)) j++;
    return j;
  }
  while (j < n && (isDigit(sql.charCodeAt(j)) || sql.charCodeAt(j) === 0x5f)) j++;
  if (sql.charCodeAt(j) === 0x2e) {
    j++;
    while (j < n && (isDigit(sql.charCodeAt(j)) || sql.charCodeAt(j) === 0x5f)) j++;
  }
  const e = sql.charCodeAt(j) | 0x20;
  if (e === 0x65) {
    let k = j + 1;
    const sign = sql.charCodeAt(k);
    if (sign === 0x2b || sign === 0x2d) k++;
    if (isDigit(sql.charCodeAt(k))) {
      j = k;
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
    }
  }
  // SQLite treats a number running straight into identifier characters (12abc) as one bad token.
  while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
  return j;
}

const TWO_CHAR_OPERATORS = new Set(['||', '->', '<=', '>=', '<>', '!=', '==', '<<', '>>']);

/** Splits SQL into tokens covering every character of the input, in order. */
export function tokenize(sql: string): Token[] {
  const tokens: Token[] = [];
  const n = sql.length;
  let i = 0;
  const push = (type: TokenType, end: number) => {
    tokens.push({ type, start: i, end });
    i = end;
  };
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (SPACE.has(c)) {
      let j = i + 1;
      while (j < n && SPACE.has(sql.charCodeAt(j))) j++;
      push('space', j);
    } else if (c === 0x2d && sql.charCodeAt(i + 1) === 0x2d) {
      const k = sql.indexOf('\n', i + 2);
      push('comment', k < 0 ? n : k + 1);
    } else if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) {
      const k = sql.indexOf('*/', i + 2);
      push('comment', k < 0 ? n : k + 2);
    } else if (c === 0x27) {
      const end = skipQuoted(sql, i, c);
      push(end < 0 ? 'illegal' : 'string', end < 0 ? n : end);
    } else if (c === 0x22 || c === 0x60) {
      const end = skipQuoted(sql, i, c);
      push(end < 0 ? 'illegal' : 'quoted', end < 0 ? n : end);
    } else if (c === 0x5b) {
      const k = sql.indexOf(']', i + 1);
      push(k < 0 ? 'illegal' : 'quoted', k < 0 ? n : k + 1);
    } else if ((c | 0x20) === 0x78 && sql.charCodeAt(i + 1) === 0x27) {
      const end = skipQuoted(sql, i + 1, 0x27);
      push(end < 0 ? 'illegal' : 'blob', end < 0 ? n : end);
    } else if (isDigit(c) || (c === 0x2e && isDigit(sql.charCodeAt(i + 1)))) {
      push('number', scanNumber(sql, i));
    } else if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentPart(sql.charCodeAt(j))) j++;
      push('word', j);
    } else if (c === 0x3f) {
      let j = i + 1;
      while (j < n && isDigit(sql.charCodeAt(j))) j++;
      push('param', j);
    } else if (c === 0x3a || c === 0x40 || c === 0x24 || c === 0x23) {
      const { end, legal } = scanNamedParameter(sql, i);
      push(legal ? 'param' : 'illegal', end);
    } else if (c === 0x3b) {
      push('semicolon', i + 1);
    } else if (c === 0x28) {
      push('lparen', i + 1);
    } else if (c === 0x29) {
      push('rparen', i + 1);
    } else if (c === 0x2d && sql.charCodeAt(i + 1) === 0x3e && sql.charCodeAt(i + 2) === 0x3e) {
      push('operator', i + 3);
    } else if (TWO_CHAR_OPERATORS.has(sql.slice(i, i + 2))) {
      push('operator', i + 2);
    } else if ('+-*/%<>=&|~,.!'.includes(sql[i]!)) {
      push(c === 0x21 ? 'illegal' : 'operator', i + 1);
    } else {
      // A lone surrogate half or any other character SQLite does not accept.
      push('illegal', i + 1);
    }
  }
  return tokens;
}

/** True for tokens that carry no meaning (whitespace and comments). */
export function isTrivia(t: Token): boolean {
  return t.type === 'space' || t.type === 'comment';
}

/**
 * The text of a word token with ASCII letters upper-cased, as SQLite folds keywords ('' for any
 * other token). Never toUpperCase(): it folds Unicode too (U+017F 'ſ' becomes 'S'), and a word that
 * only looks like a keyword that way is an identifier to SQLite.
 */
export function keyword(sql: string, t: Token | undefined): string {
  return t && t.type === 'word' ? asciiUpper(sql.slice(t.start, t.end)) : '';
}

const NON_ASCII = /[^\x00-\x7f]/;

/** Upper-cases ASCII letters only, as SQLite compares names and keywords. */
export function asciiUpper(text: string): string {
  // toUpperCase() alone would also change letters beyond ASCII (é, ß), which SQLite leaves as they are.
  return NON_ASCII.test(text) ? text.replace(/[a-z]+/g, (run) => run.toUpperCase()) : text.toUpperCase();
}

/** Lower-cases ASCII letters only, as SQLite compares names and keywords. */
export function asciiLower(text: string): string {
  return NON_ASCII.test(text) ? text.replace(/[A-Z]+/g, (run) => run.toLowerCase()) : text.toLowerCase();
}

/** The name a word or quoted identifier token stands for, with quotes removed. */
export function identifier(sql: string, t: Token | undefined): string | undefined {
  if (!t) return undefined;
  const text = sql.slice(t.start, t.end);
  if (t.type === 'word') return text;
  if (t.type === 'quoted' || t.type === 'string') {
    const q = text[0]!;
    if (q === '[') return text.slice(1, -1);
    return text.slice(1, -1).replaceAll(q + q, q);
  }
  return undefined;
}
