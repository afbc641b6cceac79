// Table-driven tests for src/sql/lexer.ts (tokenize and its helpers), src/sql/comments.ts and
// utf8Length from src/sql/limits.ts. Every tokenize() case also checks the lexer's contract: the
// tokens are non-empty, contiguous and cover the input exactly, so their texts concatenate back
// to the input.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isCommentOnly } from '../src/sql/comments.ts';
import { identifier, isTrivia, keyword, type Token, type TokenType, tokenize } from '../src/sql/lexer.ts';
import { utf8Length } from '../src/sql/limits.ts';

type Expected = [TokenType, string][];

/** Asserts that `tokens` are non-empty, contiguous and cover `sql` exactly. */
function assertCovers(sql: string, tokens: Token[]): void {
  let at = 0;
  for (const t of tokens) {
    assert.equal(t.start, at, `token ${JSON.stringify(t)} does not start where the previous one ended (${at})`);
    assert.ok(t.end > t.start, `empty token ${JSON.stringify(t)}`);
    at = t.end;
  }
  assert.equal(at, sql.length, 'tokens do not reach the end of the input');
  assert.equal(tokens.map((t) => sql.slice(t.start, t.end)).join(''), sql);
}

function lex(sql: string): Expected {
  const tokens = tokenize(sql);
  assertCovers(sql, tokens);
  return tokens.map((t) => [t.type, sql.slice(t.start, t.end)]);
}

interface Case {
  name: string;
  sql: string;
  tokens: Expected;
}

function table(title: string, cases: Case[]): void {
  describe(title, () => {
    for (const c of cases) {
      test(`${c.name}: ${JSON.stringify(c.sql)}`, () => {
        assert.deepEqual(lex(c.sql), c.tokens);
      });
    }
  });
}

table('strings', [
  { name: 'simple', sql: "'abc'", tokens: [['string', "'abc'"]] },
  { name: 'empty', sql: "''", tokens: [['string', "''"]] },
  { name: 'doubled quote', sql: "'it''s'", tokens: [['string', "'it''s'"]] },
  { name: 'only a doubled quote', sql: "''''", tokens: [['string', "''''"]] },
  { name: 'two adjacent strings', sql: "'a' 'b'", tokens: [['string', "'a'"], ['space', ' '], ['string', "'b'"]] },
  { name: 'semicolon and comment markers inside', sql: "'; -- /* */'", tokens: [['string', "'; -- /* */'"]] },
  { name: 'double quote inside', sql: `'say "hi"'`, tokens: [['string', `'say "hi"'`]] },
  { name: 'newline inside', sql: "'a\nb'", tokens: [['string', "'a\nb'"]] },
  { name: 'unterminated', sql: "'abc", tokens: [['illegal', "'abc"]] },
  { name: 'unterminated after doubled quote', sql: "'it''s", tokens: [['illegal', "'it''s"]] },
  {
    name: 'unterminated swallows the rest',
    sql: "SELECT 'a; SELECT 2",
    tokens: [
      ['word', 'SELECT'],
      ['space', ' '],
      ['illegal', "'a; SELECT 2"],
    ],
  },
]);

table('quoted identifiers', [
  { name: 'double quotes', sql: '"a b"', tokens: [['quoted', '"a b"']] },
  { name: 'doubled double quote', sql: '"a""b"', tokens: [['quoted', '"a""b"']] },
  { name: 'backticks', sql: '`a b`', tokens: [['quoted', '`a b`']] },
  { name: 'doubled backtick', sql: '`a``b`', tokens: [['quoted', '`a``b`']] },
  { name: 'brackets', sql: '[a b]', tokens: [['quoted', '[a b]']] },
  { name: 'brackets do not nest or escape', sql: '[a[b]]', tokens: [['quoted', '[a[b]'], ['illegal', ']']] },
  { name: 'semicolon inside', sql: '"a;b"', tokens: [['quoted', '"a;b"']] },
  { name: 'single quote inside brackets', sql: "[it's]", tokens: [['quoted', "[it's]"]] },
  { name: 'unterminated double quote', sql: '"abc', tokens: [['illegal', '"abc']] },
  { name: 'unterminated backtick', sql: '`abc', tokens: [['illegal', '`abc']] },
  { name: 'unterminated bracket', sql: '[abc', tokens: [['illegal', '[abc']] },
  {
    name: 'schema-qualified',
    sql: '"main"."t"',
    tokens: [
      ['quoted', '"main"'],
      ['operator', '.'],
      ['quoted', '"t"'],
    ],
  },
]);

table('blob literals', [
  { name: 'lower x', sql: "x'00ff'", tokens: [['blob', "x'00ff'"]] },
  { name: 'upper X', sql: "X'AB'", tokens: [['blob', "X'AB'"]] },
  { name: 'empty', sql: "x''", tokens: [['blob', "x''"]] },
  { name: 'semicolon inside', sql: "x';'", tokens: [['blob', "x';'"]] },
  { name: 'unterminated', sql: "x'ab", tokens: [['illegal', "x'ab"]] },
  { name: 'x alone is a word', sql: 'x', tokens: [['word', 'x']] },
  { name: 'longer word before a string', sql: "xy'a'", tokens: [['word', 'xy'], ['string', "'a'"]] },
  { name: 'x after space before string', sql: "x 'a'", tokens: [['word', 'x'], ['space', ' '], ['string', "'a'"]] },
]);

table('numbers', [
  { name: 'integer', sql: '42', tokens: [['number', '42']] },
  { name: 'decimal', sql: '3.14', tokens: [['number', '3.14']] },
  { name: 'leading dot', sql: '.5', tokens: [['number', '.5']] },
  { name: 'trailing dot', sql: '1.', tokens: [['number', '1.']] },
  { name: 'hex', sql: '0x1F', tokens: [['number', '0x1F']] },
  { name: 'hex upper X', sql: '0XaB', tokens: [['number', '0XaB']] },
  { name: 'exponent', sql: '1e10', tokens: [['number', '1e10']] },
  { name: 'exponent with sign', sql: '1.5E-3', tokens: [['number', '1.5E-3']] },
  { name: 'exponent with plus', sql: '2e+5', tokens: [['number', '2e+5']] },
  { name: 'underscores', sql: '1_000_000', tokens: [['number', '1_000_000']] },
  { name: 'underscores in fraction', sql: '1_0.2_5', tokens: [['number', '1_0.2_5']] },
  { name: 'hex with underscores', sql: '0xFF_FF', tokens: [['number', '0xFF_FF']] },
  { name: 'number running into letters is one token', sql: '12abc', tokens: [['number', '12abc']] },
  { name: 'bare 0x', sql: '0x', tokens: [['number', '0x']] },
  { name: 'e without digits stays in the token', sql: '1e', tokens: [['number', '1e']] },
  {
    name: 'e with sign but no digits',
    sql: '1e+',
    tokens: [
      ['number', '1e'],
      ['operator', '+'],
    ],
  },
  { name: 'two dots', sql: '1.2.3', tokens: [['number', '1.2'], ['number', '.3']] },
  {
    name: 'minus is an operator',
    sql: '-1',
    tokens: [
      ['operator', '-'],
      ['number', '1'],
    ],
  },
  {
    name: 'dot without digit is an operator',
    sql: 't.a',
    tokens: [
      ['word', 't'],
      ['operator', '.'],
      ['word', 'a'],
    ],
  },
]);

table('comments', [
  { name: 'line comment to end', sql: '-- hi', tokens: [['comment', '-- hi']] },
  { name: 'line comment includes its newline', sql: '-- hi\nSELECT', tokens: [['comment', '-- hi\n'], ['word', 'SELECT']] },
  { name: 'empty line comment', sql: '--', tokens: [['comment', '--']] },
  { name: 'line comment hides a semicolon', sql: '-- ;\n;', tokens: [['comment', '-- ;\n'], ['semicolon', ';']] },
  { name: 'block comment', sql: '/* a */', tokens: [['comment', '/* a */']] },
  { name: 'empty block comment', sql: '/**/', tokens: [['comment', '/**/']] },
  { name: 'block comment over lines', sql: '/* a\n; b */x', tokens: [['comment', '/* a\n; b */'], ['word', 'x']] },
  { name: 'block comments do not nest', sql: '/* /* */ */', tokens: [['comment', '/* /* */'], ['space', ' '], ['operator', '*'], ['operator', '/']] },
  { name: '/*/ does not close itself', sql: '/*/ x */', tokens: [['comment', '/*/ x */']] },
  { name: 'unterminated block comment', sql: '/* never closed; SELECT 1', tokens: [['comment', '/* never closed; SELECT 1']] },
  { name: 'unterminated block comment ending in *', sql: '/* a *', tokens: [['comment', '/* a *']] },
  {
    name: 'comment between letters splits a word',
    sql: 'AT/**/TACH',
    tokens: [
      ['word', 'AT'],
      ['comment', '/**/'],
      ['word', 'TACH'],
    ],
  },
  {
    name: 'minus minus with a space is two operators',
    sql: '- -1',
    tokens: [
      ['operator', '-'],
      ['space', ' '],
      ['operator', '-'],
      ['number', '1'],
    ],
  },
]);

table('parameters', [
  { name: 'anonymous', sql: '?', tokens: [['param', '?']] },
  { name: 'numbered', sql: '?12', tokens: [['param', '?12']] },
  { name: 'numbered with leading zeros', sql: '?007', tokens: [['param', '?007']] },
  { name: 'numbered then letters', sql: '?1a', tokens: [['param', '?1'], ['word', 'a']] },
  { name: 'colon', sql: ':name', tokens: [['param', ':name']] },
  { name: 'at', sql: '@b_1', tokens: [['param', '@b_1']] },
  { name: 'dollar', sql: '$c', tokens: [['param', '$c']] },
  { name: 'dollar inside the name', sql: '$c$d', tokens: [['param', '$c$d']] },
  { name: 'digits as a name', sql: ':1', tokens: [['param', ':1']] },
  { name: 'unicode name', sql: ':é', tokens: [['param', ':é']] },
  { name: 'lone colon', sql: ':', tokens: [['illegal', ':']] },
  { name: 'lone at', sql: '@', tokens: [['illegal', '@']] },
  { name: 'lone dollar', sql: '$', tokens: [['illegal', '$']] },
  {
    name: 'list',
    sql: '?,?2,:a,@b,$c',
    tokens: [
      ['param', '?'],
      ['operator', ','],
      ['param', '?2'],
      ['operator', ','],
      ['param', ':a'],
      ['operator', ','],
      ['param', '@b'],
      ['operator', ','],
      ['param', '$c'],
    ],
  },
  {
    name: 'adjacent anonymous parameters',
    sql: '??',
    tokens: [
      ['param', '?'],
      ['param', '?'],
    ],
  },
  { name: 'parameter-like text inside a string', sql: "'?1 :a'", tokens: [['string', "'?1 :a'"]] },
]);

table('operators and punctuation', [
  {
    name: 'json ->>',
    sql: "a->>'$.b'",
    tokens: [
      ['word', 'a'],
      ['operator', '->>'],
      ['string', "'$.b'"],
    ],
  },
  {
    name: 'json ->',
    sql: "a->'$'",
    tokens: [
      ['word', 'a'],
      ['operator', '->'],
      ['string', "'$'"],
    ],
  },
  {
    name: 'concatenation',
    sql: "'a'||'b'",
    tokens: [
      ['string', "'a'"],
      ['operator', '||'],
      ['string', "'b'"],
    ],
  },
  ...['<=', '>=', '<>', '!=', '==', '<<', '>>'].map((op): Case => ({ name: `two-character ${op}`, sql: `1${op}2`, tokens: [['number', '1'], ['operator', op], ['number', '2']] })),
  ...['+', '-', '*', '/', '%', '<', '>', '=', '&', '|', '~', ',', '.'].map(
    (op): Case => ({ name: `one-character ${op}`, sql: `a${op}b`, tokens: [['word', 'a'], ['operator', op], ['word', 'b']] }),
  ),
  { name: 'longest match first: ->>>', sql: '->>>', tokens: [['operator', '->>'], ['operator', '>']] },
  { name: 'longest match first: ===', sql: '===', tokens: [['operator', '=='], ['operator', '=']] },
  { name: 'longest match first: <>=', sql: '<>=', tokens: [['operator', '<>'], ['operator', '=']] },
  { name: 'lone bang is illegal', sql: '!', tokens: [['illegal', '!']] },
  { name: 'caret is illegal', sql: '^', tokens: [['illegal', '^']] },
  { name: 'braces are illegal', sql: '{}', tokens: [['illegal', '{'], ['illegal', '}']] },
  { name: 'parentheses and semicolon', sql: '();', tokens: [['lparen', '('], ['rparen', ')'], ['semicolon', ';']] },
]);

table('words, unicode and whitespace', [
  { name: 'keyword', sql: 'SELECT', tokens: [['word', 'SELECT']] },
  { name: 'underscore and digits', sql: '_a1', tokens: [['word', '_a1']] },
  { name: 'dollar inside a word', sql: 'a$b', tokens: [['word', 'a$b']] },
  { name: 'accented identifier', sql: 'café', tokens: [['word', 'café']] },
  { name: 'CJK identifier', sql: '日本語', tokens: [['word', '日本語']] },
  { name: 'astral characters (surrogate pairs) inside an identifier', sql: 'a😀b', tokens: [['word', 'a😀b']] },
  { name: 'identifier made of an emoji', sql: '😀', tokens: [['word', '😀']] },
  {
    name: 'unicode identifiers in a statement',
    sql: 'SELECT ñ_1$ FROM 表',
    tokens: [
      ['word', 'SELECT'],
      ['space', ' '],
      ['word', 'ñ_1$'],
      ['space', ' '],
      ['word', 'FROM'],
      ['space', ' '],
      ['word', '表'],
    ],
  },
  { name: 'whitespace run', sql: ' \t\n\r\f', tokens: [['space', ' \t\n\r\f']] },
  { name: 'vertical tab is not SQL whitespace', sql: '\v', tokens: [['illegal', '\v']] },
  { name: 'NUL character', sql: '\0', tokens: [['illegal', '\0']] },
  { name: 'lone high surrogate', sql: 'a \ud800', tokens: [['word', 'a'], ['space', ' '], ['word', '\ud800']] },
  { name: 'lone low surrogate', sql: '\udc00', tokens: [['word', '\udc00']] },
  { name: 'empty input', sql: '', tokens: [] },
]);

table('a whole statement', [
  {
    name: 'mixed',
    sql: "SELECT \"a\", x'0A', 1.5e3, :p -- c\nFROM [t] WHERE b = 'it''s'; /* end */",
    tokens: [
      ['word', 'SELECT'],
      ['space', ' '],
      ['quoted', '"a"'],
      ['operator', ','],
      ['space', ' '],
      ['blob', "x'0A'"],
      ['operator', ','],
      ['space', ' '],
      ['number', '1.5e3'],
      ['operator', ','],
      ['space', ' '],
      ['param', ':p'],
      ['space', ' '],
      ['comment', '-- c\n'],
      ['word', 'FROM'],
      ['space', ' '],
      ['quoted', '[t]'],
      ['space', ' '],
      ['word', 'WHERE'],
      ['space', ' '],
      ['word', 'b'],
      ['space', ' '],
      ['operator', '='],
      ['space', ' '],
      ['string', "'it''s'"],
      ['semicolon', ';'],
      ['space', ' '],
      ['comment', '/* end */'],
    ],
  },
]);

// SQLite's tokenizer (tokenize.c) is the reference: these inputs are tokenized differently by it.
table("agreement with SQLite's tokenizer", [
  {
    // tokenize.c: a UTF-8 byte order mark (EF BB BF) at the start of a token is TK_SPACE, and
    // better-sqlite3 hands SQLite the UTF-8 of U+FEFF, so SQLite reads '\uFEFFSELECT 1' as 'SELECT 1'.
    name: 'a byte order mark before a token is whitespace',
    sql: '\uFEFFSELECT 1',
    tokens: [
      ['space', '\uFEFF'],
      ['word', 'SELECT'],
      ['space', ' '],
      ['number', '1'],
    ],
  },
  {
    // tokenize.c: '#' is CC_VARALPHA like ':' and '@'; '#a' is a TK_VARIABLE (a named parameter).
    name: '#name is a named parameter',
    sql: '#a',
    tokens: [['param', '#a']],
  },
]);

describe('helpers', () => {
  test('isTrivia: spaces and comments only', () => {
    const sql = " -- c\n/* d */x'00';";
    const trivia = tokenize(sql).map((t) => [sql.slice(t.start, t.end), isTrivia(t)]);
    assert.deepEqual(trivia, [
      [' ', true],
      ['-- c\n', true],
      ['/* d */', true],
      ["x'00'", false],
      [';', false],
    ]);
  });

  test('keyword: upper-cased text of word tokens only', () => {
    const sql = "select \"select\" 'select' [Select]";
    const tokens = tokenize(sql).filter((t) => !isTrivia(t));
    assert.deepEqual(
      tokens.map((t) => keyword(sql, t)),
      ['SELECT', '', '', ''],
    );
    assert.equal(keyword(sql, undefined), '');
  });

  const identifiers: [string, string | undefined][] = [
    ['plain', 'plain'],
    ['"a""b"', 'a"b'],
    ['`a``b`', 'a`b'],
    ['[a b]', 'a b'],
    ["'s''t'", "s't"],
    ['42', undefined],
    ['?', undefined],
  ];
  for (const [sql, name] of identifiers) {
    test(`identifier(${sql}) = ${JSON.stringify(name)}`, () => {
      const [t] = tokenize(sql);
      assert.equal(identifier(sql, t), name);
    });
  }

  const commentOnly: [string, boolean][] = [
    ['-- a comment', true],
    ['/* block */', true],
    ['  -- indented\n  /* and more */  ', true],
    ['', false],
    ['   ', false],
    ['SELECT 1 -- trailing', false],
    ["'-- in a string'", false],
    ['/* unterminated', true],
    [';', false],
  ];
  for (const [sql, expected] of commentOnly) {
    test(`isCommentOnly(${JSON.stringify(sql)}) = ${expected}`, () => {
      assert.equal(isCommentOnly(sql), expected);
    });
  }

  const lengths = ['', 'abc', 'é', '€', '😀', 'a😀b€é', '\ud800', '\udc00x', '\ud800\ud800', '\udc00\ud800'];
  for (const s of lengths) {
    test(`utf8Length(${JSON.stringify(s)}) equals Buffer.byteLength`, () => {
      assert.equal(utf8Length(s), Buffer.byteLength(s, 'utf8'));
    });
  }
});
