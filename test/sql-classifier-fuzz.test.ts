// Differential fuzzing of the SQL statement classifier (splitStatements in src/sql/statements.ts)
// against SQLite itself, on a plain better-sqlite3 connection holding a small schema (tables with
// and without rowid, a view, an index, a trigger, an FTS5 table). No Dione engine is involved.
//
// A seeded grammar of real SQL (SELECT/VALUES/WITH…SELECT, WITH…INSERT/UPDATE/DELETE/REPLACE,
// INSERT/REPLACE/upserts/RETURNING, UPDATE, DELETE, CREATE/DROP/ALTER, FTS5 commands, EXPLAIN and
// EXPLAIN QUERY PLAN, the PRAGMAs D1 allows) is rendered with mutations: random ASCII keyword case;
// Unicode look-alikes in keywords and CTE names (U+017F ſ and U+0131 ı, which toUpperCase() folds
// to S and I; the Kelvin sign and U+0130 İ, which toLowerCase() folds; ligatures ﬀ ﬁ ﬆ; fullwidth
// letters; Greek and Cyrillic homoglyphs); comments and whitespace between tokens (tabs, \f, \r,
// U+FEFF, and U+00A0, which SQLite does not treat as space); quoted identifiers ("select", [delete],
// `update`). SQLite folds ASCII only, so a look-alike keyword is an identifier to SQLite.
//
// Properties, for every generated text SQLite prepares:
//   1. classification: a statement the classifier calls 'read' (and does not refuse) is read-only to
//      SQLite (sqlite3_stmt_readonly). EXPLAIN is the exception SQLite's flag cannot judge: it
//      reports the explained statement's flag, so an EXPLAIN classified 'read' must be an EXPLAIN to
//      SQLite (its result columns) instead. Every 'read' is also run, in a savepoint rolled back
//      afterwards, and must change no row and no schema. A 'write' that SQLite calls read-only (PRAGMA
//      foreign_keys = ON changes connection state) is fine.
//   2. boundaries: one statement is one piece; and in scripts of several statements joined by `;`
//      (trigger bodies, strings and comments holding `;` among them) the classifier finds as many
//      pieces as were joined, and each piece prepares on its own as exactly one statement
//      (better-sqlite3 refuses a text holding more than one).
//
// Bounded by case count and time (classification 10 000 cases or 8 s, boundaries 600 scripts or 4 s;
// a few seconds in all).
// The seed is printed; DIONE_FUZZ_SEED=<seed> replays a run (case i depends only on the seed, the
// section and i). Failures are collected and reported together, each with its case and SQL.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { type Statement, splitStatements } from '../src/sql/statements.ts';
import { fuzzSeed, mulberry32 } from './helpers/random.ts';

// ------------------------------------------------------------------------------------------------
// Seed and random numbers

const SEED = fuzzSeed();
console.log(`[sql-classifier-fuzz] seed ${SEED} (replay with DIONE_FUZZ_SEED=${SEED})`);

function hash(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

class Rand {
  private readonly next: () => number;

  /** The random numbers of case `index` of section `stream`. */
  constructor(stream: number, index: number) {
    this.next = mulberry32(hash(hash(SEED ^ 0x9e3779b9) ^ Math.imul(stream, 0x85ebca6b) ^ hash(index + 1)));
  }

  /** 0 <= n < max */
  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

const show = (s: string) => JSON.stringify(s);

// ------------------------------------------------------------------------------------------------
// The schema

const SCHEMA = [
  'CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL)',
  'CREATE TABLE w(k TEXT PRIMARY KEY, v) WITHOUT ROWID',
  'CREATE TABLE log(msg)',
  'CREATE INDEX t_b ON t(b)',
  'CREATE VIEW v AS SELECT a, b FROM t',
  'CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.b); END',
  'CREATE VIRTUAL TABLE docs USING fts5(title, body)',
  "INSERT INTO t VALUES (1, 'one', 1.5), (2, 'two', 2.5)",
  "INSERT INTO w VALUES ('x', 1), ('y', 2)",
  "INSERT INTO docs VALUES ('a', 'alpha beta'), ('b', 'gamma')",
];

function schemaDb(): Database.Database {
  const db = new Database(':memory:');
  for (const s of SCHEMA) db.exec(s);
  return db;
}

// ------------------------------------------------------------------------------------------------
// Tokens and their mutations

/**
 * kw: a keyword (random ASCII case, sometimes a look-alike); id: a name from the schema (random
 * case, sometimes quoted); pname: a PRAGMA name (case, look-alike or quotes); cte: a CTE name,
 * already rendered; lit and p: literals and punctuation, as written.
 */
type Role = 'kw' | 'id' | 'pname' | 'cte' | 'lit' | 'p';

interface Tok {
  text: string;
  role: Role;
}

/** Tokens from a template of space-separated words: UPPER is a keyword, lower a name. */
function T(template: string): Tok[] {
  return template
    .split(' ')
    .filter((w) => w !== '')
    .map((text) => {
      if (/^[A-Z][A-Z_]*$/.test(text)) return { text, role: 'kw' };
      if (/^[a-z_][a-z0-9_]*$/.test(text)) return { text, role: 'id' };
      if (/^('|x'|-?[0-9])/.test(text)) return { text, role: 'lit' };
      return { text, role: 'p' };
    });
}

const cte = (text: string): Tok => ({ text, role: 'cte' });
const pname = (text: string): Tok => ({ text, role: 'pname' });

function randomCase(r: Rand, word: string): string {
  let out = '';
  for (const ch of word) out += r.chance(0.5) ? ch.toUpperCase() : ch.toLowerCase();
  return out;
}

/** Characters toUpperCase() or toLowerCase() turns into ASCII letters (SQLite never does). */
const FOLDING: Record<string, string[]> = {
  s: ['\u017F'], // ſ LATIN SMALL LETTER LONG S -> 'S'
  S: ['\u017F'],
  i: ['\u0131', '\u0130'], // ı DOTLESS I -> 'I'; İ CAPITAL I WITH DOT ABOVE -> 'i̇' lower-cased
  I: ['\u0131', '\u0130'],
  k: ['\u212A'], // K KELVIN SIGN -> 'k' lower-cased
  K: ['\u212A'],
};

/** Ligatures that toUpperCase() expands to ASCII letters. */
const LIGATURES: [RegExp, string][] = [
  [/ffi/i, '\uFB03'], // ﬃ
  [/ffl/i, '\uFB04'], // ﬄ
  [/ff/i, '\uFB00'], // ﬀ
  [/fi/i, '\uFB01'], // ﬁ
  [/fl/i, '\uFB02'], // ﬂ
  [/st/i, '\uFB06'], // ﬆ
  [/ss/i, '\u00DF'], // ß -> 'SS'
];

/** Greek and Cyrillic letters that look like ASCII ones. */
const HOMOGLYPHS: Record<string, string[]> = {
  a: ['\u0430', '\u03B1'],
  A: ['\u0410', '\u0391'],
  c: ['\u0441'],
  C: ['\u0421'],
  e: ['\u0435', '\u03B5'],
  E: ['\u0415', '\u0395'],
  h: ['\u04BB'],
  H: ['\u041D', '\u0397'],
  k: ['\u043A'],
  K: ['\u041A', '\u039A'],
  M: ['\u041C', '\u039C'],
  N: ['\u039D'],
  o: ['\u043E', '\u03BF'],
  O: ['\u041E', '\u039F'],
  p: ['\u0440', '\u03C1'],
  P: ['\u0420', '\u03A1'],
  T: ['\u0422', '\u03A4'],
  x: ['\u0445', '\u03C7'],
  X: ['\u0425', '\u03A7'],
  y: ['\u0443'],
  Y: ['\u04AE', '\u03A5'],
};

const fullwidth = (ch: string) => (/[A-Za-z]/.test(ch) ? String.fromCharCode(ch.charCodeAt(0) + 0xfee0) : ch);

/** `word` with one or two letters replaced by Unicode look-alikes (mostly ones case mapping folds to ASCII). */
function lookalike(r: Rand, word: string): string {
  const chars = [...word];
  const at = (table: Record<string, string[]>) => chars.map((c, i) => (table[c] ? i : -1)).filter((i) => i >= 0);
  for (let attempt = 0; attempt < 4; attempt++) {
    const strategy = r.int(10);
    if (strategy < 5) {
      const spots = at(FOLDING);
      if (spots.length === 0) continue;
      for (let n = r.range(1, 2); n > 0; n--) {
        const i = r.pick(spots);
        chars[i] = r.pick(FOLDING[chars[i]!] ?? [chars[i]!]);
      }
      return chars.join('');
    }
    if (strategy < 7) {
      const ligatures = LIGATURES.filter(([re]) => re.test(word));
      if (ligatures.length === 0) continue;
      const [re, ligature] = r.pick(ligatures);
      return word.replace(re, ligature);
    }
    if (strategy < 9) {
      const spots = at(HOMOGLYPHS);
      if (spots.length === 0) continue;
      const i = r.pick(spots);
      chars[i] = r.pick(HOMOGLYPHS[chars[i]!]!);
      return chars.join('');
    }
    if (r.chance(0.5)) return chars.map(fullwidth).join('');
    const i = r.int(chars.length);
    chars[i] = fullwidth(chars[i]!);
    return chars.join('');
  }
  // Nothing applied: fall back to a fullwidth letter.
  const i = r.int(chars.length);
  chars[i] = fullwidth(chars[i]!);
  return chars.join('');
}

function quote(r: Rand, name: string): string {
  switch (r.int(3)) {
    case 0:
      return `"${name}"`;
    case 1:
      return `[${name}]`;
    default:
      return `\`${name}\``;
  }
}

/** Trivia between two tokens: mostly a space; sometimes other whitespace, a comment, or text SQLite does not skip. */
const SEPARATORS = [
  '\t',
  '\n',
  '\r\n',
  '\r',
  '\f',
  '  ',
  ' \t\f ',
  '\uFEFF', // a space to SQLite only where a token starts; inside a name it is part of the name
  ' \uFEFF',
  '\uFEFF ',
  '/**/',
  '/* c */',
  '/* ; */',
  "/* ' \" ` [ */",
  '/* /* */',
  '/* -- */',
  ' /*\n*/ ',
  '-- c\n',
  '--\n',
  '-- ; /*\n',
  ' --\u00A0c\r\n',
  '\u00A0', // not a space to SQLite: an identifier character
  ' \u00A0 ',
  '\v', // not a space to SQLite's tokenizer either
  '/* /* */ */', // nested-looking: only the first */ closes the comment
];

const LEADING = ['\uFEFF', ' ', '\n', '-- lead\n', '/* lead; */ ', '\uFEFF/* x */ ', ' \uFEFF\uFEFF'];
const TRAILING = [';', ' ;', ';\n', '; -- end', ';/* end */', ' -- end', '\n/* end; */', ';;', '; \uFEFF'];

interface RenderOptions {
  /** Chance that one keyword or PRAGMA name gets a Unicode look-alike (CTE names get theirs from the grammar). */
  lookalike: number;
  /** Allow a leading comment and a trailing `;` and comment. */
  ends: boolean;
}

function render(r: Rand, toks: Tok[], options: RenderOptions): string {
  const mutateOne = r.chance(options.lookalike) ? r.int(toks.length) : -1;
  const separatorRate = r.pick([0, 0.1, 0.3, 0.6]);
  let sql = options.ends && r.chance(0.15) ? r.pick(LEADING) : '';
  toks.forEach((tok, i) => {
    if (i > 0) sql += r.chance(separatorRate) ? r.pick(SEPARATORS) : ' ';
    let text = tok.text;
    if (tok.role === 'kw' || tok.role === 'pname' || tok.role === 'id') {
      if (r.chance(0.5)) text = randomCase(r, text);
      if (i === mutateOne && tok.role !== 'id') text = lookalike(r, text);
      else if (tok.role !== 'kw' && r.chance(0.12)) text = quote(r, text);
    }
    sql += text;
  });
  if (options.ends && r.chance(0.4)) sql += r.pick(TRAILING);
  return sql;
}

// ------------------------------------------------------------------------------------------------
// The grammar

/** Words a CTE may be named after: the verbs the classifier looks for, and other keywords. */
const CTE_BASES = ['select', 'values', 'insert', 'update', 'delete', 'replace', 'with', 'explain', 'pragma', 'create', 'from', 'as', 'recursive', 'materialized'];

interface Source {
  toks: Tok[];
  cols: string[];
}

class Grammar {
  private triggers = 0;

  constructor(private readonly r: Rand) {}

  /** A CTE name, rendered once and used verbatim at each reference. */
  cteName(): Tok {
    const r = this.r;
    // Half the time a verb the classifier reads as a read: a write behind it is the failure to find.
    const base = r.chance(0.5) ? r.pick(['select', 'values']) : r.pick(CTE_BASES);
    switch (r.int(10)) {
      case 0:
      case 1:
      case 2:
      case 3:
        return cte(lookalike(r, randomCase(r, base)));
      case 4:
        return cte(quote(r, randomCase(r, base)));
      case 5: // glued to another word by U+FEFF (part of the name to SQLite) or U+00A0
        return cte(r.pick([`x\uFEFF${base}`, `${base}\uFEFFx`, `x\u00A0${base}`, `${base}\u00A0x`, `\u00A0${base}`]));
      case 6: // the bare keyword: an identifier only where SQLite's grammar falls back to one
        return cte(randomCase(r, base));
      case 7:
        return cte(`"${lookalike(r, base)}"`);
      default:
        return cte(r.pick(['c1', 'cte', 'x_select', 'selected', 'deleted', '_values']));
    }
  }

  expr(cols: string[], depth = 0): Tok[] {
    const r = this.r;
    if (depth >= 2 || r.chance(0.45)) {
      switch (r.int(cols.length > 0 ? 5 : 4)) {
        case 0:
          return T(String(r.int(10)));
        case 1:
          return T(r.pick(["'s'", "'a;b'", "'it''s'", "'--x'", "'/*'", "'END;'", "'ſ'"]));
        case 2:
          return T('NULL');
        case 3:
          return T(r.pick(['1.5', '0x1F', '-3', "x'00'"]));
        default:
          return T(r.pick(cols));
      }
    }
    const e = () => this.expr(cols, depth + 1);
    switch (r.int(9)) {
      case 0:
        return [...T('('), ...e(), ...T(r.pick(['+', '*', '||', '=', '<', '<>', 'AND', 'OR', 'IS NOT'])), ...e(), ...T(')')];
      case 1:
        return [...T('CASE WHEN'), ...e(), ...T('THEN'), ...e(), ...T('ELSE'), ...e(), ...T('END')];
      case 2:
        return [...T(`${r.pick(['abs', 'length', 'typeof', 'upper', 'quote'])} (`), ...e(), ...T(')')];
      case 3:
        return [...T('coalesce ('), ...e(), ...T(','), ...e(), ...T(')')];
      case 4:
        return T(r.pick(['( SELECT max ( a ) FROM t )', '( SELECT count ( * ) FROM w )', '( SELECT v FROM w WHERE k = \'x\' )']));
      case 5:
        return T(`EXISTS ( SELECT 1 FROM log WHERE msg IS NOT NULL LIMIT ${r.int(3)} )`);
      case 6:
        return [...T('CAST ('), ...e(), ...T(`AS ${r.pick(['TEXT', 'INTEGER', 'REAL', 'BLOB'])} )`)];
      case 7:
        return [...T('('), ...e(), ...T(r.pick(['IN ( 1 , 2 )', 'NOT IN ( SELECT a FROM t )', 'BETWEEN 1 AND 5', 'LIKE \'o%\'', 'ISNULL', 'NOTNULL'])), ...T(')')];
      default:
        return T(r.pick(['( \'{"k":[1,2]}\' ->> \'$.k[1]\' )', "json_extract ( '{\"k\":1}' , '$.k' )"]));
    }
  }

  source(ctes: Tok[]): Source {
    const r = this.r;
    const sources: Source[] = [
      { toks: T('t'), cols: ['a', 'b', 'c'] },
      { toks: T('w'), cols: ['k', 'v'] },
      { toks: T('v'), cols: ['a', 'b'] },
      { toks: T('log'), cols: ['msg'] },
      { toks: T("docs WHERE docs MATCH 'alpha' AND"), cols: ['title', 'body'] },
      { toks: T('t JOIN w ON t . b = w . k'), cols: ['a', 'b', 'v'] },
      { toks: T('t AS s LEFT JOIN log ON s . b = log . msg'), cols: ['a', 'msg'] },
      { toks: T('( SELECT a , b FROM t ) AS s'), cols: ['a', 'b'] },
      { toks: T("json_each ( '[1,2,3]' )"), cols: ['key', 'value'] },
      ...ctes.map((name) => ({ toks: [name], cols: ['n'] })),
    ];
    return r.pick(sources);
  }

  select(ctes: Tok[] = []): Tok[] {
    const r = this.r;
    switch (r.int(6)) {
      case 0:
        return [...T('VALUES ('), ...this.expr([]), ...T(', '), ...this.expr([]), ...T(') , ('), ...this.expr([]), ...T(','), ...this.expr([]), ...T(')')];
      case 1: {
        const toks: Tok[] = [];
        for (let i = 0, n = r.range(2, 3); i < n; i++) {
          if (i > 0) toks.push(...T(r.pick(['UNION ALL', 'UNION', 'EXCEPT', 'INTERSECT'])));
          toks.push(...T('SELECT'), ...this.expr([]));
        }
        return toks;
      }
      default: {
        const source = this.source(ctes);
        const toks = T(r.chance(0.15) ? 'SELECT DISTINCT' : 'SELECT');
        for (let i = 0, n = r.range(1, 3); i < n; i++) {
          if (i > 0) toks.push(...T(','));
          toks.push(...this.expr(source.cols));
          if (r.chance(0.3)) toks.push(...T(`AS c${i}`));
        }
        const match = source.toks.at(-1)?.text === 'AND';
        toks.push(...T('FROM'), ...source.toks);
        if (match) toks.push(...this.expr(source.cols));
        else if (r.chance(0.4)) toks.push(...T('WHERE'), ...this.expr(source.cols));
        if (r.chance(0.15)) toks.push(...T('GROUP BY 1'));
        if (r.chance(0.25)) toks.push(...T(r.pick(['ORDER BY 1', 'ORDER BY 1 DESC', 'ORDER BY 1 NULLS FIRST', 'ORDER BY 1 NULLS LAST'])));
        if (r.chance(0.25)) toks.push(...T(r.pick(['LIMIT 3', 'LIMIT 2 OFFSET 1'])));
        return toks;
      }
    }
  }

  /** WITH with one or two CTEs, each producing one column n; their name tokens for references. */
  withClause(): { toks: Tok[]; ctes: Tok[] } {
    const r = this.r;
    const recursive = r.chance(0.25);
    const toks = T(recursive ? 'WITH RECURSIVE' : 'WITH');
    const ctes: Tok[] = [];
    for (let i = 0, n = r.range(1, 2); i < n; i++) {
      if (i > 0) toks.push(...T(','));
      const name = this.cteName();
      ctes.push(name);
      const materialized = r.pick([[], [], T('MATERIALIZED'), T('NOT MATERIALIZED')]);
      if (recursive && i === 0) {
        toks.push(name, ...T('( n ) AS'), ...materialized, ...T('( SELECT 1 UNION ALL SELECT n + 1 FROM'), name, ...T('WHERE n < 3 )'));
      } else if (r.chance(0.5)) {
        // A one-column body, to fit the column list ( n ).
        const body = r.pick([T('VALUES ( 1 ) , ( 2 )'), [...T('SELECT'), ...this.expr([])], T('SELECT b FROM t'), T('SELECT k FROM w UNION SELECT msg FROM log')]);
        toks.push(name, ...T('( n ) AS'), ...materialized, ...T('('), ...body, ...T(')'));
      } else {
        toks.push(name, ...T('AS'), ...materialized, ...T('( SELECT'), ...this.expr([]), ...T('AS n )'));
      }
    }
    return { toks, ctes };
  }

  returning(cols: string): Tok[] {
    return this.r.chance(0.25) ? T(`RETURNING ${this.r.pick(['*', cols])}`) : [];
  }

  write(ctes: Tok[] = []): Tok[] {
    const r = this.r;
    const from = (name: Tok) => [...T('SELECT n FROM'), name];
    switch (r.int(12)) {
      case 0:
        return [...T(`INSERT ${r.pick(['', 'OR IGNORE', 'OR REPLACE', 'OR ABORT', 'OR FAIL', 'OR ROLLBACK'])} INTO t ( b , c ) VALUES (`), ...this.expr([]), ...T(','), ...this.expr([]), ...T(')'), ...this.returning('a')];
      case 1:
        return ctes.length > 0 ? [...T('INSERT INTO log ( msg )'), ...from(r.pick(ctes)), ...this.returning('msg')] : [...T('INSERT INTO log SELECT b FROM t WHERE'), ...this.expr(['a', 'b', 'c'])];
      case 2:
        return [...T('REPLACE INTO w ( k , v ) VALUES ( \'x\' ,'), ...this.expr([]), ...T(')')];
      case 3:
        return [...T(`INSERT INTO w VALUES ( 'x' , 1 ) ON CONFLICT ( k ) DO ${r.pick(['NOTHING', 'UPDATE SET v = excluded . v + 1', 'UPDATE SET v = v || excluded . v WHERE v IS NOT NULL'])}`), ...this.returning('k')];
      case 4:
        return T(r.pick(['INSERT INTO t DEFAULT VALUES', 'INSERT INTO log DEFAULT VALUES RETURNING rowid']));
      case 5: {
        const toks = [...T(`UPDATE ${r.pick(['', 'OR IGNORE', 'OR REPLACE'])} t SET b =`), ...this.expr(['a', 'b', 'c'])];
        if (r.chance(0.4)) toks.push(...T(', c ='), ...this.expr(['a', 'b', 'c']));
        if (ctes.length > 0 && r.chance(0.5)) toks.push(...T('WHERE a IN ('), ...from(r.pick(ctes)), ...T(')'));
        else if (r.chance(0.6)) toks.push(...T('WHERE'), ...this.expr(['a', 'b', 'c']));
        return [...toks, ...this.returning('a')];
      }
      case 6:
        return [...T('UPDATE w SET v = log . msg FROM log WHERE log . msg = w . k'), ...this.returning('k')];
      case 7: {
        const toks = T(`DELETE FROM ${r.pick(['t', 'w', 'log', 'docs'])}`);
        if (ctes.length > 0 && r.chance(0.5)) toks.push(...T('WHERE rowid IN ('), ...from(r.pick(ctes)), ...T(')'));
        else if (r.chance(0.6)) toks.push(...T('WHERE'), ...this.expr([]));
        return [...toks, ...this.returning('*')];
      }
      case 8:
        return T(
          r.pick([
            "INSERT INTO docs ( docs ) VALUES ( 'optimize' )",
            "INSERT INTO docs ( docs , rank ) VALUES ( 'pgsz' , 64 )",
            "INSERT INTO docs ( title , body ) VALUES ( 'c' , 'delta' )",
            "UPDATE docs SET body = 'x' WHERE docs MATCH 'gamma'",
          ]),
        );
      case 9:
        return ctes.length > 0 ? [...T('REPLACE INTO w ( k , v ) SELECT n , n FROM'), r.pick(ctes)] : T("REPLACE INTO w VALUES ( 'z' , 0 )");
      default:
        return ctes.length > 0 ? [...T('DELETE FROM t WHERE a IN ('), ...from(r.pick(ctes)), ...T(')')] : T('DELETE FROM log');
    }
  }

  /** A trigger whose body holds `;`, CASE … END and strings that look like statement ends. */
  trigger(): Tok[] {
    const r = this.r;
    const name = `tr${this.triggers++}`;
    const body: Tok[] = [];
    for (let i = 0, n = r.range(1, 3); i < n; i++) {
      body.push(
        ...T(
          r.pick([
            "UPDATE w SET v = CASE WHEN new . b IS NULL THEN 'END;' ELSE CASE new . b WHEN 'x' THEN 1 END END WHERE k = 'x' ;",
            'INSERT INTO log VALUES ( new . b ) ;',
            "DELETE FROM log WHERE msg = 'BEGIN; END;' ;",
            "SELECT CASE WHEN new . a > 0 THEN 'a' END ;",
            "SELECT RAISE ( IGNORE ) WHERE new . b = 'end' ;",
          ]),
        ),
      );
    }
    const on = r.pick(['AFTER INSERT ON t', 'BEFORE INSERT ON t', 'AFTER UPDATE OF b ON t', 'INSTEAD OF INSERT ON v']);
    const when = r.chance(0.3) ? T('WHEN CASE WHEN new . a IS NULL THEN 0 ELSE 1 END') : [];
    return [...T(`CREATE ${r.pick(['', 'TEMP', 'TEMPORARY'])} TRIGGER ${r.pick(['', 'IF NOT EXISTS'])} ${name} ${on} FOR EACH ROW`), ...when, ...T('BEGIN'), ...body, ...T('END')];
  }

  ddl(): Tok[] {
    const r = this.r;
    switch (r.int(8)) {
      case 0:
        return T(
          r.pick([
            'CREATE TABLE n1 ( x INTEGER PRIMARY KEY , y TEXT NOT NULL DEFAULT \'\' )',
            'CREATE TABLE IF NOT EXISTS n1 ( x TEXT PRIMARY KEY , y ) WITHOUT ROWID',
            'CREATE TEMP TABLE n2 ( x , y , UNIQUE ( x , y ) )',
            'CREATE TABLE n3 ( x INTEGER , y INTEGER GENERATED ALWAYS AS ( x * 2 ) VIRTUAL , CHECK ( x > 0 ) ) STRICT',
            'CREATE TABLE n4 AS SELECT a , b FROM t',
          ]),
        );
      case 1:
        return T(r.pick(['CREATE INDEX i1 ON t ( c )', 'CREATE UNIQUE INDEX IF NOT EXISTS i2 ON w ( v ) WHERE v IS NOT NULL', 'CREATE INDEX i3 ON t ( lower ( b ) )']));
      case 2:
        return [...T(`CREATE ${r.pick(['', 'TEMP'])} VIEW ${r.pick(['', 'IF NOT EXISTS'])} v2 AS`), ...this.select()];
      case 3:
        return this.trigger();
      case 4:
        return T(r.pick(['CREATE VIRTUAL TABLE n5 USING fts5 ( x , y )', "CREATE VIRTUAL TABLE IF NOT EXISTS n6 USING fts5 ( x , tokenize = 'porter' )"]));
      case 5:
        return T(r.pick(['DROP TABLE w', 'DROP TABLE IF EXISTS log', 'DROP VIEW v', 'DROP INDEX t_b', 'DROP TRIGGER t_ai', 'DROP TABLE docs', 'DROP TRIGGER IF EXISTS nothing']));
      case 6:
        return T(r.pick(['ALTER TABLE t ADD COLUMN d TEXT', 'ALTER TABLE log RENAME TO log2', 'ALTER TABLE t RENAME COLUMN c TO c2', 'ALTER TABLE t DROP COLUMN c', 'ALTER TABLE docs RENAME TO docs2']));
      default:
        return T(r.pick(['ANALYZE', 'ANALYZE t', 'REINDEX', 'REINDEX t_b', 'VACUUM']));
    }
  }

  pragma(): Tok[] {
    const r = this.r;
    const forms: [string, string][] = [
      ['table_info', '( t )'],
      ['table_info', "( 'docs' )"],
      ['table_xinfo', '( w )'],
      ['table_list', ''],
      ['index_list', '( t )'],
      ['index_info', '( t_b )'],
      ['index_xinfo', '= t_b'],
      ['foreign_key_list', '( t )'],
      ['foreign_key_check', ''],
      ['foreign_key_check', '( w )'],
      ['quick_check', ''],
      ['data_version', ''],
      ['foreign_keys', ''],
      ['foreign_keys', '= ON'],
      ['foreign_keys', '= off'],
      ['defer_foreign_keys', "= 'off'"],
      ['recursive_triggers', ''],
      ['recursive_triggers', '( true )'],
      ['case_sensitive_like', '= 0'],
      ['legacy_alter_table', '( yes )'],
      ['reverse_unordered_selects', ''],
      ['ignore_check_constraints', '= false'],
      ['optimize', ''],
      ['optimize', '= 2'],
    ];
    const [name, argument] = r.pick(forms);
    return [...T('PRAGMA'), ...(r.chance(0.2) ? T('main .') : []), pname(name), ...T(argument)];
  }

  /** One statement of the grammar, sometimes under EXPLAIN or EXPLAIN QUERY PLAN. */
  statement(): Tok[] {
    const r = this.r;
    const k = r.int(20);
    let toks: Tok[];
    if (k < 3) toks = this.pragma();
    else if (k < 5) toks = this.ddl();
    else if (k < 12) {
      // WITH … then a read or a write: the classifier must find the verb past the CTE names.
      const w = this.withClause();
      toks = [...w.toks, ...(r.chance(0.5) ? this.select(w.ctes) : this.write(w.ctes))];
    } else if (k < 15) toks = this.select();
    else toks = this.write();
    return r.chance(0.1) ? [...T(r.pick(['EXPLAIN', 'EXPLAIN QUERY PLAN'])), ...toks] : toks;
  }
}

// ------------------------------------------------------------------------------------------------
// The oracle

const EXPLAIN_COLUMNS = ['addr,opcode,p1,p2,p3,p4,p5,comment', 'id,parent,notused,detail'];

/** SQLite's own view: the statement is an EXPLAIN (sqlite3_stmt_isexplain is not in better-sqlite3). */
function isExplain(stmt: Database.Statement): boolean {
  return stmt.reader && EXPLAIN_COLUMNS.includes(stmt.columns().map((c) => c.name).join(','));
}

interface Failure {
  where: string;
  sql: string;
  problem: string;
}

/** What running a statement changed: rows (total_changes) and schema (schema_version). */
function changesAfter(db: Database.Database, stmt: Database.Statement): string | undefined {
  const totalChanges = db.prepare('SELECT total_changes()').pluck();
  const schemaVersion = db.prepare('PRAGMA schema_version').pluck();
  const before = [totalChanges.get(), schemaVersion.get()];
  db.exec('SAVEPOINT classifier_fuzz');
  try {
    if (stmt.reader) stmt.all();
    else stmt.run();
  } catch {
    // A runtime error (a bad cast, a malformed JSON path) is not a classification question.
  }
  const during = [totalChanges.get(), schemaVersion.get()];
  db.exec('ROLLBACK TO classifier_fuzz; RELEASE classifier_fuzz');
  if (during[0] !== before[0]) return `running it changed ${Number(during[0]) - Number(before[0])} row(s)`;
  if (during[1] !== before[1]) return 'running it changed the schema';
  return undefined;
}

/**
 * Checks one text that SQLite prepared as `stmt`: it is one statement to the classifier, and a
 * 'read' does not write. Returns the problems found ([] when none).
 */
function checkClassification(db: Database.Database, sql: string, stmt: Database.Statement): { problems: string[]; statement?: Statement } {
  const pieces = splitStatements(sql).filter((s) => !s.empty);
  if (pieces.length !== 1) {
    return { problems: [`SQLite prepares one statement, the classifier found ${pieces.length}: ${pieces.map((p) => show(p.text)).join(' | ')}`] };
  }
  const s = pieces[0]!;
  const problems: string[] = [];
  if (s.kind === 'read' && s.rejection === undefined) {
    if (!stmt.readonly && !(s.verb === 'EXPLAIN' && isExplain(stmt))) {
      problems.push(`classified read (verb ${s.verb}) but sqlite3_stmt_readonly() is false${isExplain(stmt) ? ' (an EXPLAIN to SQLite)' : ''}`);
    }
    const changed = changesAfter(db, stmt);
    if (changed) problems.push(`classified read (verb ${s.verb}) but ${changed}`);
  }
  return { problems, statement: s };
}

function report(failures: Failure[], section: string): void {
  if (failures.length === 0) return;
  const shown = failures.slice(0, 25).map((f) => `  ${f.where}: ${show(f.sql)}\n    ${f.problem}`);
  assert.fail(`${section}: ${failures.length} failure(s) (DIONE_FUZZ_SEED=${SEED})\n${shown.join('\n')}${failures.length > 25 ? `\n  … ${failures.length - 25} more` : ''}`);
}

const db = schemaDb();
after(() => db.close());

/** Prepares on the schema database; undefined when SQLite refuses the text. */
function prepare(sql: string): Database.Statement | undefined {
  try {
    return db.prepare(sql);
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------------------------------------
// Fixed cases

/** Look-alike keywords the classifier once folded into verbs, with the verb SQLite actually runs. */
const REGRESSIONS: { sql: string; kind: 'read' | 'write'; verb: string }[] = [
  { sql: 'WITH \u017Felect AS (SELECT 1) DELETE FROM t', kind: 'write', verb: 'DELETE' },
  { sql: 'WITH \u017FELECT AS (SELECT 1) UPDATE t SET b = 1', kind: 'write', verb: 'UPDATE' },
  { sql: 'WITH value\u017F AS (SELECT 1 AS n) INSERT INTO log SELECT n FROM value\u017F', kind: 'write', verb: 'INSERT' },
  { sql: 'WITH a AS (SELECT 1), \u017Felect(n) AS (VALUES (2)) REPLACE INTO w VALUES (\'x\', 3)', kind: 'write', verb: 'REPLACE' },
  { sql: 'WITH RECURSIVE \u017Felect(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM \u017Felect WHERE n < 3) DELETE FROM t WHERE a IN (SELECT n FROM \u017Felect)', kind: 'write', verb: 'DELETE' },
  { sql: 'WITH \u017Felect AS MATERIALIZED (SELECT 1) DELETE FROM w RETURNING *', kind: 'write', verb: 'DELETE' },
  { sql: 'with \u017Felect as (select 1) /* ; */ delete -- x\n from log', kind: 'write', verb: 'DELETE' },
  // A U+FEFF inside a name is part of the name to SQLite (a space only where a token starts).
  { sql: 'WITH x\uFEFFselect AS (SELECT 1) DELETE FROM t', kind: 'write', verb: 'DELETE' },
  { sql: 'WITH select\uFEFFx AS (SELECT 1) DELETE FROM t', kind: 'write', verb: 'DELETE' },
  // Reads stay reads.
  { sql: 'WITH \u017Felect AS (SELECT 1) SELECT * FROM \u017Felect', kind: 'read', verb: 'SELECT' },
  { sql: 'WITH \uFB00 AS (SELECT 1) SELECT * FROM \uFB00', kind: 'read', verb: 'SELECT' },
  { sql: 'WITH "select" AS (SELECT 1) SELECT * FROM [select]', kind: 'read', verb: 'SELECT' },
  { sql: 'WITH "delete" AS (SELECT 1) DELETE FROM t WHERE a IN (SELECT * FROM `delete`)', kind: 'write', verb: 'DELETE' },
  { sql: 'SELECT 1 AS \uFF53\uFF45\uFF4C\uFF45\uFF43\uFF54', kind: 'read', verb: 'SELECT' },
];

/** Look-alike PRAGMA names: an unknown PRAGMA to SQLite, not the allowlisted one toLowerCase() makes. */
const PRAGMA_LOOKALIKES = ['PRAGMA foreign_\u212Aeys', 'PRAGMA foreign_\u212Aeys = ON', 'PRAGMA quic\u212A_check', 'PRAGMA table_\u0130nfo(t)', 'PRAGMA \u017Fchema_version = 1'];

describe('fixed cases', () => {
  for (const c of REGRESSIONS) {
    test(`${show(c.sql)} is a ${c.kind} (${c.verb})`, () => {
      const stmt = db.prepare(c.sql);
      assert.equal(stmt.readonly, c.kind === 'read', 'the expectation matches SQLite');
      const { problems, statement } = checkClassification(db, c.sql, stmt);
      assert.deepEqual(problems, []);
      assert.equal(statement?.kind, c.kind, 'kind');
      assert.equal(statement?.verb, c.verb, 'verb');
    });
  }

  test('look-alike PRAGMA names: never a read that writes', () => {
    for (const sql of PRAGMA_LOOKALIKES) {
      const stmt = db.prepare(sql);
      assert.deepEqual(checkClassification(db, sql, stmt).problems, [], sql);
    }
  });

  test('boundaries: comments, strings and trigger bodies holding ; and END', () => {
    const scripts: [string, number][] = [
      ['/* /* */ SELECT 1; SELECT 2', 2],
      ["SELECT ';' AS \"a;b\", x'3b' AS [c;d] -- ;\n; SELECT 2;", 2],
      ["CREATE TRIGGER tz AFTER INSERT ON t BEGIN UPDATE w SET v = CASE WHEN new.b THEN 'END;' END; SELECT 1; END; SELECT 3", 2],
      ['CREATE TRIGGER tz INSTEAD OF INSERT ON v BEGIN INSERT INTO t(b) VALUES (new.b); END;\uFEFF;;DELETE FROM log', 2],
      ['WITH \u017Felect AS (SELECT 1) DELETE FROM t; SELECT 1 -- end', 2],
    ];
    for (const [script, count] of scripts) {
      const pieces = splitStatements(script).filter((s) => !s.empty);
      assert.equal(pieces.length, count, `statements in ${show(script)}`);
      for (const p of pieces) assert.ok(prepare(p.text), `${show(p.text)} prepares alone`);
    }
  });
});

// ------------------------------------------------------------------------------------------------
// The fuzz sections

describe('classification against sqlite3_stmt_readonly()', () => {
  test("generated statements SQLite prepares: 'read' never writes", () => {
    const budget = { cases: 10_000, ms: 8000 };
    const deadline = performance.now() + budget.ms;
    const failures: Failure[] = [];
    const stats = { cases: 0, prepared: 0, read: 0, write: 0, refused: 0, writeButReadonly: 0, lookalikes: 0 };
    for (let i = 0; i < budget.cases && performance.now() < deadline; i++) {
      const r = new Rand(1, i);
      const sql = render(r, new Grammar(r).statement(), { lookalike: 0.3, ends: true });
      stats.cases++;
      if (/[^\x00-\x7F]/.test(sql)) stats.lookalikes++;
      let problems: string[];
      let statement: Statement | undefined;
      try {
        const stmt = prepare(sql);
        if (!stmt) continue;
        stats.prepared++;
        ({ problems, statement } = checkClassification(db, sql, stmt));
        if (statement?.rejection !== undefined) stats.refused++;
        else if (statement?.kind === 'read') stats.read++;
        else if (statement) {
          stats.write++;
          if (stmt.readonly) stats.writeButReadonly++;
        }
      } catch (e) {
        problems = [`threw: ${e instanceof Error ? e.stack : String(e)}`];
      }
      if (problems.length > 0) failures.push({ where: `case ${i}`, sql, problem: problems.join('; ') });
    }
    console.log(`[sql-classifier-fuzz] classification: ${JSON.stringify(stats)}`);
    assert.ok(stats.prepared >= Math.min(200, stats.cases / 4), `too few generated statements prepare (${stats.prepared} of ${stats.cases})`);
    assert.ok(stats.read > 0 && stats.write > 0, 'the grammar makes both reads and writes');
    report(failures, 'classification');
  });
});

describe('statement boundaries against SQLite', () => {
  test('each piece of a generated script prepares alone as exactly one statement', () => {
    const budget = { cases: 600, ms: 4000 };
    const deadline = performance.now() + budget.ms;
    const failures: Failure[] = [];
    let scripts = 0;
    let statements = 0;
    for (let i = 0; i < budget.cases && performance.now() < deadline; i++) {
      const r = new Rand(2, i);
      const grammar = new Grammar(r);
      // Statements that each prepare alone (against the base schema, as each piece is prepared).
      const parts: string[] = [];
      for (let n = r.range(2, 5), tries = 0; parts.length < n && tries < 40; tries++) {
        const toks = r.chance(0.3) ? grammar.trigger() : grammar.statement();
        const text = render(r, toks, { lookalike: 0.15, ends: false });
        if (prepare(text)) parts.push(text);
      }
      if (parts.length < 2) continue;
      let script = r.chance(0.2) ? r.pick(LEADING) : '';
      parts.forEach((p, k) => {
        script += p;
        if (k < parts.length - 1 || r.chance(0.5)) script += r.pick([';', ';', '; ', ';\n', ' ;', ';;', '; /* ; */ ', '; -- ;\n', ';\uFEFF', ';\t;\r\n']);
      });
      if (r.chance(0.3)) script += r.pick([' -- end', '\n/* end; */', '  \n', ' \uFEFF']); // (a U+FEFF right after a word would join it)
      scripts++;
      statements += parts.length;
      try {
        const pieces = splitStatements(script).filter((s) => !s.empty);
        if (pieces.length !== parts.length) {
          failures.push({ where: `script ${i}`, sql: script, problem: `${parts.length} statements joined, the classifier found ${pieces.length}: ${pieces.map((p) => show(p.text)).join(' | ')}` });
          continue;
        }
        for (const p of pieces) {
          try {
            db.prepare(p.text);
          } catch (e) {
            failures.push({ where: `script ${i}`, sql: script, problem: `piece ${show(p.text)} does not prepare alone: ${(e as Error).message}` });
          }
        }
      } catch (e) {
        failures.push({ where: `script ${i}`, sql: script, problem: `threw: ${e instanceof Error ? e.stack : String(e)}` });
      }
    }
    console.log(`[sql-classifier-fuzz] boundaries: ${scripts} scripts, ${statements} statements`);
    assert.ok(scripts > 0, 'no script was generated');
    report(failures, 'boundaries');
  });
});
