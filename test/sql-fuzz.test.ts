// Seeded, bounded fuzzing of the SQL front (src/sql) and of what the engine does with its answers.
//
//   a. random and adversarial text: tokenize() and splitStatements() never throw, tokens cover the
//      input, statements are consecutive slices of it, the parameter rewrite keeps every offset;
//   b. statements D1 refuses (transactions, ATTACH/DETACH, VACUUM INTO, load_extension, writes to
//      sqlite_master, PRAGMAs off the allowlist), disguised, run through the real engine: they
//      never succeed, they fail with D1's error, and they leave no trace (no attached database, no
//      file on disk, sqlite_master and the database bytes unchanged, no extension loaded);
//   c. read/write classification against SQLite: for valid statements from a small grammar, 'read'
//      implies sqlite3_stmt_readonly();
//   d. parameter numbering against SQLite's own (VDBE program and bound values);
//   e. statement boundaries against SQLite: each piece of a generated script prepares as exactly
//      one statement, and running the pieces equals running the script.
//
// Each section stops at its case count or its time slice, whichever comes first (the slices add
// up to 20 s: text 3 s, forbidden statements 6 × 2 s, classification 2 s, parameters 1.5 s,
// boundaries 1.5 s). The seed is printed; DIONE_FUZZ_SEED=<seed> replays a run (case i of a section depends only
// on the seed, the section and i).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { Messages } from '../src/api/errors.ts';
import { type D1Database, open } from '../src/index.ts';
import { isCommentOnly } from '../src/sql/comments.ts';
import { isTrivia, tokenize } from '../src/sql/lexer.ts';
import { utf8Length } from '../src/sql/limits.ts';
import { splitStatements } from '../src/sql/statements.ts';
import { fuzzSeed } from './helpers/random.ts';
import { rawDb, rawState, sqliteParameterTruth } from './helpers/sql-oracle.ts';

// ------------------------------------------------------------------------------------------------
// Seed and random numbers

const SEED = fuzzSeed();
console.log(`[sql-fuzz] seed ${SEED} (replay with DIONE_FUZZ_SEED=${SEED})`);

function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** sfc32, seeded from (seed, section, case). */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream: number, index: number) {
    this.a = mix(seed ^ 0x9e3779b9);
    this.b = mix(this.a ^ stream);
    this.c = mix(this.b ^ index);
    this.d = mix(this.c ^ 0x85ebca6b);
    for (let i = 0; i < 12; i++) this.next();
  }

  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** 0 <= n < max */
  int(max: number): number {
    return Math.floor((this.next() / 0x100000000) * max);
  }

  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() / 0x100000000 < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}

interface Budget {
  cases: number;
  ms: number;
}

/**
 * Runs `body` for case 0, 1, … until `budget.cases` or `budget.ms` is reached. A failure names the
 * seed, the section, the case and what the case recorded with note().
 */
async function fuzz(
  name: string,
  stream: number,
  budget: Budget,
  body: (rng: Rng, note: (what: string) => void, index: number) => Promise<void> | void,
): Promise<void> {
  const deadline = performance.now() + budget.ms;
  let done = 0;
  for (; done < budget.cases && performance.now() < deadline; done++) {
    const notes: string[] = [];
    try {
      await body(new Rng(SEED, stream, done), (what) => notes.push(what), done);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      throw new Error(`${name}: case ${done} failed (DIONE_FUZZ_SEED=${SEED})\n${notes.join('\n')}\n${message}`, { cause: e });
    }
  }
  console.log(`[sql-fuzz] ${name}: ${done} cases`);
  assert.ok(done > 0, `${name}: no case ran`);
}

const show = (s: string) => (s.length > 400 ? `${JSON.stringify(s.slice(0, 300))}… (${s.length} chars)` : JSON.stringify(s));

// ------------------------------------------------------------------------------------------------
// a. Random and adversarial text

/** The properties tokenize() and splitStatements() keep for any input. */
function checkFront(sql: string): void {
  const tokens = tokenize(sql);
  let at = 0;
  for (const t of tokens) {
    assert.equal(t.start, at, 'tokens are not contiguous');
    assert.ok(t.end > t.start, 'empty token');
    at = t.end;
  }
  assert.equal(at, sql.length, 'tokens do not cover the input');

  const statements = splitStatements(sql);
  const joined = statements.map((s) => s.text).join('');
  assert.ok(sql.startsWith(joined), 'statement texts are not consecutive slices of the input');
  assert.ok(tokenize(sql.slice(joined.length)).every(isTrivia), 'something other than trivia follows the last statement');
  for (const s of statements) {
    const own = tokenize(s.text);
    const significant = own.filter((t) => !isTrivia(t));
    assert.equal(s.empty, significant.length === 1 && significant[0]!.type === 'semicolon', `empty flag wrong for ${show(s.text)}`);
    assert.equal(s.executable.length, s.text.length, 'the rewrite changed the length');
    const params = own.filter((t) => t.type === 'param');
    assert.equal(s.bindSlots.length, params.length, 'one bind slot per parameter');
    let from = 0;
    for (const p of params) {
      assert.equal(s.executable.slice(from, p.start), s.text.slice(from, p.start), 'the rewrite changed text outside a parameter');
      assert.equal(s.executable.slice(p.start, p.end), '?'.padEnd(p.end - p.start, ' '), 'a parameter is not rewritten to a padded ?');
      from = p.end;
    }
    assert.equal(s.executable.slice(from), s.text.slice(from), 'the rewrite changed text after the last parameter');
    if (s.rejection === undefined) {
      assert.ok(s.parameterCount <= 100, 'more than 100 parameters accepted');
      assert.equal(s.parameterCount, Math.max(0, ...s.bindSlots), 'parameterCount is not the highest slot');
      assert.ok(
        s.bindSlots.every((n) => n >= 1),
        'slot below 1',
      );
    }
  }
  assert.equal(utf8Length(sql), Buffer.byteLength(sql, 'utf8'), 'utf8Length differs from Buffer.byteLength');
  if (isCommentOnly(sql)) assert.equal(statements.length, 0, 'comment-only text produced a statement');
}

const SQL_ALPHABET = "SELECTFROMWHEREabcxyz_ '\"`[]-/*;?:@$#0123456789.eExX+(),=<>|!&~%\n\t\r\f\v\0";
const FRAGMENTS = [
  'SELECT',
  ' ',
  "'",
  "''",
  '"',
  '`',
  '[',
  ']',
  '/*',
  '*/',
  '--',
  '\n',
  ';',
  'CREATE TRIGGER tr AFTER INSERT ON t',
  'CREATE TEMP TRIGGER',
  'BEGIN',
  'END',
  'CASE',
  'WHEN 1 THEN',
  'EXPLAIN',
  'WITH x AS (SELECT 1)',
  '?',
  '?12',
  '?0',
  '?101',
  ':a',
  '@b',
  '$c',
  '#d',
  "x'",
  "X'0f'",
  '0x',
  '0x1F_',
  '1e',
  '1.5e-3',
  '.5',
  '\uFEFF',
  '\ud800',
  '\udfff',
  '😀',
  'é',
  '(',
  ')',
  '->>',
  '||',
  'PRAGMA',
  'ATTACH',
  'sqlite_master',
  'load_extension(',
  'INSERT INTO',
  'VALUES',
];

function randomText(r: Rng): string {
  const n = r.int(80);
  let s = '';
  switch (r.int(6)) {
    case 0:
      for (let i = 0; i < n; i++) s += SQL_ALPHABET[r.int(SQL_ALPHABET.length)];
      return s;
    case 1: // any UTF-16 code unit, lone surrogates included
      for (let i = 0; i < n; i++) s += String.fromCharCode(r.int(0x10000));
      return s;
    case 2: // any code point
      for (let i = 0; i < n; i++) s += String.fromCodePoint(r.chance(0.5) ? r.int(0x80) : r.chance(0.7) ? r.int(0xd800) : 0x10000 + r.int(0xfffff));
      return s;
    case 3: // bytes as Latin-1
      return randomBytes(n).toString('latin1');
    default:
      for (let i = 0, k = r.range(1, 30); i < k; i++) s += r.pick(FRAGMENTS);
      return s;
  }
}

function adversarialText(r: Rng): string {
  const n = r.range(1, 60_000);
  switch (r.int(10)) {
    case 0:
      return `SELECT ${'('.repeat(n)}1${')'.repeat(r.chance(0.5) ? n : r.int(n))}`;
    case 1:
      return `SELECT '${'a'.repeat(n)}`;
    case 2:
      return `SELECT 1 /*${' ;'.repeat(n)}`;
    case 3:
      return ';'.repeat(n);
    case 4:
      return `SELECT ${Array.from({ length: r.range(90, 300) }, () => r.pick(['?', ':a', '@b', '?7', '$c', ':d'])).join(',')}`;
    case 5:
      return `${'CREATE TRIGGER t AFTER INSERT ON x BEGIN '.repeat(r.range(1, 50))}${'CASE '.repeat(r.range(0, 50))}${'END; '.repeat(r.range(0, 80))}`;
    case 6:
      return '-- '.repeat(n) + '\n'.repeat(r.int(3));
    case 7:
      return `${'\uFEFF'.repeat(r.int(4))}${'\ud800x'.repeat(r.int(1000))}SELECT "${'""'.repeat(r.int(1000))}`;
    case 8:
      return `SELECT ${"x'".repeat(r.int(1000))}${"'".repeat(r.int(1000))}`;
    default: // big: about a megabyte of mixed statements
      return `SELECT ';', "a;b", [c;d], x'3b' -- ;\n; `.repeat(r.range(1000, 25_000));
  }
}

describe('a. random and adversarial text', () => {
  test('tokenize and splitStatements never throw; tokens cover the input; statements and rewrites keep offsets', async () => {
    await fuzz('text', 1, { cases: 3000, ms: 3000 }, (r, note) => {
      const sql = r.chance(0.03) ? adversarialText(r) : randomText(r);
      note(`input: ${show(sql)}`);
      checkFront(sql);
      // Splitting is local: each statement's text, split on its own, gives back exactly that
      // statement (same text, kind, parameters, rejection).
      for (const s of splitStatements(sql).slice(0, 5)) {
        assert.deepEqual(splitStatements(s.text), [s], `re-splitting ${show(s.text)}`);
      }
    });
  });
});

// ------------------------------------------------------------------------------------------------
// b. Forbidden statements through the engine

const work = mkdtempSync(path.join(tmpdir(), 'dione-fuzz-'));
/** ATTACH and VACUUM INTO targets and the marker extension's sentinel: must stay empty. */
const targets = path.join(work, 'targets');
const extensionDir = path.join(work, 'extension');
const sentinel = path.join(targets, 'extension-was-loaded');
const extensionBase = path.join(extensionDir, 'dione_fuzz_marker');
const extensionFile = extensionBase + (process.platform === 'darwin' ? '.dylib' : '.so');
after(() => rmSync(work, { recursive: true, force: true }));

/** Builds a loadable extension that, when loaded, writes the sentinel file and defines dione_fuzz_marker(). */
function buildMarkerExtension(): void {
  const headers = path.join(path.dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')), 'deps', 'sqlite3');
  const source = path.join(extensionDir, 'marker.c');
  writeFileSync(
    source,
    `#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1
#include <stdio.h>
static void marker(sqlite3_context *c, int n, sqlite3_value **v) { (void)n; (void)v; sqlite3_result_int(c, 42); }
#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_extension_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  (void)err;
  FILE *f = fopen(${JSON.stringify(sentinel)}, "w");
  if (f) { fputs("loaded", f); fclose(f); }
  return sqlite3_create_function(db, "dione_fuzz_marker", 0, SQLITE_UTF8, 0, marker, 0, 0);
}
`,
  );
  const flags = ['-O0', '-fPIC', process.platform === 'darwin' ? '-dynamiclib' : '-shared'];
  execFileSync(process.env.CC || 'cc', [...flags, '-I', headers, source, '-o', extensionFile], { stdio: 'pipe' });
}

const NOT_AUTHORIZED = 'not authorized: SQLITE_AUTH';
const ALIASES = ['other', 'aux1'];

type Part = string | { id: string } | { str: string };
const str = (s: string): Part => ({ str: s });
const id = (s: string): Part => ({ id: s });

interface Category {
  name: string;
  /** D1's detail text when the statement reaches Dione intact (undefined: not checked). */
  message: string | undefined;
  templates: { parts: Part[]; dml?: boolean; noExplain?: boolean }[];
}

function categories(): Category[] {
  const file = (name: string) => path.join(targets, name);
  const row = ['VALUES', '(', str('table'), ',', str('evil'), ',', str('evil'), ',', '0', ',', str('CREATE TABLE evil(a)'), ')'];
  return [
    {
      name: 'transaction statements',
      message: Messages.transactionStatement,
      templates: [
        ['BEGIN'],
        ['BEGIN', 'TRANSACTION'],
        ['BEGIN', 'DEFERRED'],
        ['BEGIN', 'IMMEDIATE', 'TRANSACTION'],
        ['BEGIN', 'EXCLUSIVE'],
        ['COMMIT'],
        ['COMMIT', 'TRANSACTION'],
        ['END'],
        ['END', 'TRANSACTION'],
        ['ROLLBACK'],
        ['ROLLBACK', 'TRANSACTION'],
        ['SAVEPOINT', id('sp')],
        ['RELEASE', id('sp')],
        ['RELEASE', 'SAVEPOINT', id('sp')],
        ['ROLLBACK', 'TO', id('sp')],
        ['ROLLBACK', 'TRANSACTION', 'TO', 'SAVEPOINT', id('sp')],
      ].map((parts) => ({ parts })),
    },
    {
      name: 'ATTACH and DETACH',
      message: NOT_AUTHORIZED,
      templates: [
        ['ATTACH', str(file('a.db')), 'AS', id('other')],
        ['ATTACH', 'DATABASE', str(file('b.db')), 'AS', id('aux1')],
        ['ATTACH', str(':memory:'), 'AS', id('other')],
        ['ATTACH', str(`file:${file('uri.db')}?mode=rwc`), 'AS', id('other')],
        ['ATTACH', '(', str(file('c.db')), ')', 'AS', id('aux1')],
        ['ATTACH', str(`${targets}${path.sep}`), '||', str('d.db'), 'AS', id('other')],
        ['DETACH', id('other')],
        ['DETACH', 'DATABASE', id('main')],
      ].map((parts) => ({ parts })),
    },
    {
      name: 'VACUUM INTO',
      message: undefined,
      templates: [
        ['VACUUM', 'INTO', str(file('v.db'))],
        ['VACUUM', id('main'), 'INTO', str(file('w.db'))],
        ['VACUUM', 'INTO', str(`file:${file('vuri.db')}?mode=rwc`)],
        ['VACUUM', 'INTO', '(', str(targets + path.sep), '||', str('y.db'), ')'],
        // No EXPLAIN prefix: EXPLAIN VACUUM INTO only lists the program, it writes no file.
      ].map((parts) => ({ parts, noExplain: true })),
    },
    {
      name: 'load_extension',
      message: 'not authorized: SQLITE_ERROR',
      // No EXPLAIN prefix here: EXPLAIN never calls the function, so it loads nothing either way.
      templates: [
        ['SELECT', 'load_extension', '(', str(extensionFile), ')'],
        ['SELECT', 'load_extension', '(', str(extensionBase), ',', str('sqlite3_extension_init'), ')'],
        ['SELECT', '1', 'WHERE', 'load_extension', '(', str(extensionFile), ')', 'IS', 'NULL'],
        ['VALUES', '(', 'load_extension', '(', str(extensionBase), ')', ')'],
        ['INSERT', 'INTO', 't', 'VALUES', '(', 'load_extension', '(', str(extensionFile), ')', ')'],
        // A quoted function name is still the function to SQLite; only its runtime refusal stops it.
        ['SELECT', '"load_extension"', '(', str(extensionFile), ')'],
      ].map((parts) => ({ parts, dml: true, noExplain: true })),
    },
    {
      name: 'writes to sqlite_master',
      message: 'table sqlite_master may not be modified: SQLITE_ERROR',
      templates: [
        ['INSERT', 'INTO', id('sqlite_master'), ...row],
        ['INSERT', 'INTO', id('main'), '.', id('sqlite_schema'), ...row],
        ['REPLACE', 'INTO', id('sqlite_master'), ...row],
        ['INSERT', 'OR', 'REPLACE', 'INTO', id('sqlite_schema'), ...row],
        ['UPDATE', id('sqlite_master'), 'SET', 'sql', '=', str('x')],
        ['UPDATE', 'OR', 'IGNORE', id('main'), '.', id('sqlite_schema'), 'SET', 'name', '=', str('y')],
        ['DELETE', 'FROM', id('sqlite_master')],
        ['DELETE', 'FROM', id('main'), '.', id('sqlite_master'), 'WHERE', '1'],
      ].map((parts) => ({ parts, dml: true })),
    },
    {
      name: 'PRAGMAs outside the allowlist',
      message: NOT_AUTHORIZED,
      templates: [
        ['PRAGMA', id('writable_schema'), '=', 'ON'],
        ['PRAGMA', id('user_version'), '=', '7'],
        ['PRAGMA', id('application_id'), '=', '5'],
        ['PRAGMA', id('schema_version'), '=', '99'],
        ['PRAGMA', id('journal_mode'), '=', 'DELETE'],
        ['PRAGMA', id('main'), '.', id('user_version'), '=', '3'],
        ['PRAGMA', id('query_only'), '=', '1'],
        ['PRAGMA', id('temp'), '.', id('foreign_keys'), '=', 'OFF'],
        ['PRAGMA', id('page_size'), '=', '512'],
        ['PRAGMA', id('max_page_count'), '=', '1'],
        ['PRAGMA', id('trusted_schema'), '=', '1'],
        ['PRAGMA', id('database_list')],
        ['PRAGMA', id('table_info'), '(', id('_cf_KV'), ')'],
        ['PRAGMA', id('foreign_keys'), '=', '2'],
      ].map((parts) => ({ parts })),
    },
  ];
}

/** Whitespace and comments SQLite accepts between any two tokens (a BOM only at a token's start). */
const TRIVIA = [' ', ' ', ' ', '  ', '\t', '\n', ' \r\n ', '/**/', '/* ; */', "/* ' \" ` [ */", '/* BEGIN END; */', ' -- c\n', '-- ;\n', '\f', ' \uFEFF', '\n\uFEFF '];
const LEADING = ['', ' ', '\n\t', '-- lead\n', '/* lead; */', '\uFEFF', '\uFEFF\uFEFF', ' /* a */ -- b\n \uFEFF', '\uFEFF/* c */'];

function randomCase(r: Rng, word: string): string {
  let out = '';
  for (const ch of word) out += r.chance(0.5) ? ch.toUpperCase() : ch.toLowerCase();
  return out;
}

function renderId(r: Rng, name: string): string {
  const bare = name.startsWith('_cf_') ? name : randomCase(r, name);
  switch (r.int(6)) {
    case 0:
      return `"${bare}"`;
    case 1:
      return `[${bare}]`;
    case 2:
      return `\`${bare}\``;
    case 3:
      return `'${bare}'`;
    default:
      return bare;
  }
}

interface Disguised {
  sql: string;
  /** Every token of the statement is still whole (no comment splits a keyword). */
  intact: boolean;
  trigger: boolean;
}

function disguise(r: Rng, template: Category['templates'][number]): Disguised {
  let intact = true;
  const parts: Part[] = [];
  if (!template.noExplain && r.chance(0.15)) parts.push(...(r.chance(0.5) ? ['EXPLAIN'] : ['EXPLAIN', 'QUERY', 'PLAN']));
  if (r.chance(0.15)) {
    parts.push('WITH', id('w'), 'AS', '(', 'SELECT', '1', ')');
    if (!template.dml) intact = false;
  }
  parts.push(...template.parts);
  const words = parts.map((p): string => {
    if (typeof p !== 'string') return 'id' in p ? renderId(r, p.id) : `'${p.str.replaceAll("'", "''")}'`;
    return /^[A-Za-z_]+$/.test(p) && r.chance(0.7) ? randomCase(r, p) : p;
  });
  if (r.chance(0.08)) {
    // Split a keyword with a comment: AT/**/TACH is two identifiers to SQLite.
    const candidates = words.map((w, i) => (/^[A-Za-z_]{2,}$/.test(w) ? i : -1)).filter((i) => i >= 0);
    if (candidates.length > 0) {
      const i = r.pick(candidates);
      const w = words[i]!;
      const at = r.range(1, w.length - 1);
      words[i] = `${w.slice(0, at)}${r.pick(['/**/', '/* x */', '-- x\n'])}${w.slice(at)}`;
      intact = false;
    }
  }
  let sql = r.pick(LEADING);
  words.forEach((w, i) => {
    if (i > 0) sql += r.chance(0.6) ? ' ' : r.pick(TRIVIA);
    sql += w;
  });
  const trigger = r.chance(0.1);
  if (trigger) sql = `CREATE TRIGGER fz AFTER INSERT ON t BEGIN ${sql}; END`;
  return { sql, intact, trigger };
}

const SETUP = ['CREATE TABLE t(a)', 'CREATE TABLE marker(n)', 'CREATE TABLE canary(n)'];

async function freshDb(): Promise<D1Database> {
  const db = open(':memory:');
  await db.batch(SETUP.map((s) => db.prepare(s)));
  return db;
}

interface Snapshot {
  bytes: Buffer;
  master: unknown;
}

async function snapshot(db: D1Database): Promise<Snapshot> {
  return {
    bytes: Buffer.from(await db.dump()),
    master: await db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name').raw(),
  };
}

/** Awaits a call that must fail with D1's error; returns the message. */
async function refused(call: () => Promise<unknown>, what: string): Promise<string> {
  let result: unknown;
  try {
    result = await call();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    assert.match(message, /^D1_(ERROR|EXEC_ERROR): /, `${what}: not a D1 error: ${message}`);
    return message;
  }
  assert.fail(`${what}: succeeded (${JSON.stringify(result)?.slice(0, 200)})`);
}

/** No trace of a refused statement: same bytes and schema, nothing attached, no file, no extension. */
async function assertNoEffect(db: D1Database, before: Snapshot): Promise<void> {
  assert.equal(await db.prepare('SELECT count(*) AS n FROM marker').first('n'), 0, 'a refused request left rows behind');
  const now = await snapshot(db);
  assert.deepEqual(now.master, before.master, 'sqlite_master changed');
  assert.ok(now.bytes.equals(before.bytes), 'the database bytes changed');
  for (const alias of ALIASES) {
    const message = await refused(() => db.prepare(`SELECT * FROM ${alias}.sqlite_master`).all(), `reading ${alias}.sqlite_master`);
    assert.match(message, /no such table/, `a database is attached as ${alias}`);
  }
  assert.deepEqual(readdirSync(targets), [], 'a file was created on disk');
  const marker = await refused(() => db.prepare('SELECT dione_fuzz_marker()').all(), 'calling the marker extension');
  assert.match(marker, /no such function: dione_fuzz_marker/, 'the marker extension was loaded');
}

/** The connection still runs requests: no transaction left open, not switched to read-only. */
async function assertUsable(db: D1Database): Promise<void> {
  await db.batch([db.prepare('INSERT INTO canary VALUES (1)'), db.prepare('DELETE FROM canary')]);
  assert.equal(await db.prepare('SELECT count(*) AS n FROM canary').first('n'), 0);
}

const CONTEXTS = ['run', 'all', 'first', 'raw', 'session', 'batch-alone', 'batch', 'multi-last', 'multi-first', 'multi-middle', 'exec'] as const;
type Context = (typeof CONTEXTS)[number];

function send(db: D1Database, context: Context, sql: string): Promise<unknown> {
  const insert = (n: number) => `INSERT INTO marker VALUES (${n})`;
  switch (context) {
    case 'run':
      return db.prepare(sql).run();
    case 'all':
      return db.prepare(sql).all();
    case 'first':
      return db.prepare(sql).first();
    case 'raw':
      return db.prepare(sql).raw();
    case 'session':
      return db.withSession('first-primary').prepare(sql).run();
    case 'batch-alone':
      return db.batch([db.prepare(sql)]);
    case 'batch':
      return db.batch([db.prepare(insert(1)), db.prepare(sql), db.prepare(insert(2))]);
    case 'multi-last':
      return db.prepare(`${insert(1)}; ${sql}`).run();
    case 'multi-first':
      return db.prepare(`${sql}; ${insert(2)}`).run();
    case 'multi-middle':
      return db.prepare(`${insert(1)}; ${sql}; ${insert(2)}`).run();
    case 'exec':
      return db.exec(`${insert(1)}\n${sql}\n${insert(2)}`);
  }
}

describe('b. forbidden statements, disguised, through the engine', () => {
  before(() => {
    for (const dir of [targets, extensionDir]) mkdirSync(dir, { recursive: true });
    buildMarkerExtension();
  });

  test('the checks can fail: plain SQLite does attach, write files and load the marker extension', () => {
    const raw = new Database(':memory:');
    try {
      raw.exec(`ATTACH '${path.join(targets, 'control.db')}' AS other; CREATE TABLE other.x(a);`);
      assert.equal((raw.prepare('SELECT count(*) AS n FROM other.sqlite_master').get() as { n: number }).n, 1);
      raw.exec(`VACUUM INTO '${path.join(targets, 'control-vacuum.db')}'`);
      raw.loadExtension(extensionFile);
      assert.equal(raw.prepare('SELECT dione_fuzz_marker() AS v').pluck().get(), 42);
      assert.deepEqual(readdirSync(targets).sort(), ['control-vacuum.db', 'control.db', 'extension-was-loaded']);
    } finally {
      raw.close();
      for (const f of readdirSync(targets)) rmSync(path.join(targets, f));
    }
    assert.ok(!existsSync(sentinel));
  });

  const all = categories();
  all.forEach((category, index) => {
    test(`${category.name}: refused with D1's error and without effect`, async () => {
      let db = await freshDb();
      // The state every case must leave behind (refused requests change nothing).
      let baseline = await snapshot(db);
      try {
        await fuzz(`forbidden/${category.name}`, 100 + index, { cases: 500, ms: 2000 }, async (r, note, i) => {
          const template = r.pick(category.templates);
          const d = disguise(r, template);
          const context: Context = d.trigger ? 'run' : r.pick(CONTEXTS);
          note(`context: ${context}\nsql: ${show(d.sql)}`);
          if (!d.trigger) {
            const message = await refused(() => send(db, context, d.sql), 'the forbidden request');
            note(`error: ${message}`);
            await assertNoEffect(db, baseline);
            if (category.message !== undefined && d.intact && context !== 'exec') {
              assert.equal(message, `D1_ERROR: ${category.message}`, "not D1's error for this statement");
            }
          } else {
            // Inside a trigger body: SQLite accepts some bodies (a DML statement), so the trigger
            // may be created; firing it must then be refused, without effect.
            const created = await db
              .prepare(d.sql)
              .run()
              .then(
                () => true,
                (e: Error) => {
                  assert.match(e.message, /^D1_ERROR: /);
                  return false;
                },
              );
            note(`trigger created: ${created}`);
            if (created) {
              const mid = await snapshot(db);
              await refused(() => db.prepare('INSERT INTO t VALUES (1)').run(), 'firing the trigger');
              await assertNoEffect(db, mid);
              db.close();
              db = await freshDb();
              baseline = await snapshot(db);
            } else {
              await assertNoEffect(db, baseline);
            }
          }
          if (i % 8 === 7) {
            await assertUsable(db);
            baseline = await snapshot(db);
          }
        });
        await assertUsable(db);
      } finally {
        db.close();
      }
    });
  });
});

// ------------------------------------------------------------------------------------------------
// c. Read/write classification against SQLite, and e. boundaries: a small grammar of valid SQL

const SCHEMA = [
  'CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT, c REAL)',
  'CREATE TABLE u(x, y)',
  'CREATE INDEX t_b ON t(b)',
  'CREATE VIEW v AS SELECT a, b FROM t',
  "INSERT INTO t VALUES (1, 'one', 1.5), (2, 'two', 2.5)",
  'INSERT INTO u VALUES (1, 2), (3, 4)',
];

interface Generated {
  parts: string[];
  verb: string;
}

class Grammar {
  constructor(private readonly r: Rng) {}

  expr(cols: string[], depth = 0): string[] {
    const r = this.r;
    const leaf = depth >= 3 || r.chance(0.4);
    if (leaf) {
      switch (r.int(cols.length > 0 ? 5 : 4)) {
        case 0:
          return [String(r.int(10))];
        case 1:
          return [r.pick(["'s'", "'a;b'", "'it''s'", "'--x'", "'/*'", "'END;'"])];
        case 2:
          return ['NULL'];
        case 3:
          return [r.pick(['1.5', '0x1F', '1e2', '-3'])];
        default:
          return [r.pick(cols)];
      }
    }
    const e = () => this.expr(cols, depth + 1);
    switch (r.int(11)) {
      case 0:
        return ['(', ...e(), r.pick(['+', '-', '*', '||', '=', '<', '>', '<>', 'AND', 'OR']), ...e(), ')'];
      case 1:
        return ['CASE', 'WHEN', ...e(), 'THEN', ...e(), 'ELSE', ...e(), 'END'];
      case 2:
        return ['CASE', ...e(), 'WHEN', '1', 'THEN', ...e(), 'END'];
      case 3:
        return [r.pick(['abs', 'length', 'typeof', 'upper']), '(', ...e(), ')'];
      case 4:
        return ['coalesce', '(', ...e(), ',', ...e(), ')'];
      case 5:
        return ['(', 'SELECT', 'max', '(', 'a', ')', 'FROM', 't', ')'];
      case 6:
        return ['EXISTS', '(', 'SELECT', '1', 'FROM', 'u', 'WHERE', 'x', '>', String(r.int(5)), ')'];
      case 7:
        return ['(', ...e(), 'IN', '(', '1', ',', '2', ',', '3', ')', ')'];
      case 8:
        return r.chance(0.5) ? ['json_extract', '(', `'{"k":1}'`, ',', "'$.k'", ')'] : ['(', `'{"k":[1,2]}'`, '->>', "'$.k[1]'", ')'];
      case 9:
        return ['CAST', '(', ...e(), 'AS', r.pick(['TEXT', 'INTEGER', 'REAL']), ')'];
      default:
        return ['(', ...e(), r.pick(['IS NULL', 'IS NOT NULL', 'BETWEEN 1 AND 5']), ')'];
    }
  }

  /** A SELECT (or VALUES) and the columns it produces; cte: names visible from a WITH clause. */
  select(ctes: { name: string; cols: string[] }[] = []): Generated {
    const r = this.r;
    switch (r.int(5)) {
      case 0:
        return { parts: ['VALUES', '(', ...this.expr([]), ',', ...this.expr([]), ')', ',', '(', ...this.expr([]), ',', ...this.expr([]), ')'], verb: 'VALUES' };
      case 1: {
        const terms = r.range(2, 3);
        const parts: string[] = [];
        for (let i = 0; i < terms; i++) {
          if (i > 0) parts.push(r.pick(['UNION ALL', 'UNION', 'EXCEPT', 'INTERSECT']));
          parts.push(...(r.chance(0.5) ? ['SELECT', ...this.expr(['a', 'b', 'c']), 'FROM', 't'] : ['SELECT', ...this.expr([])]));
        }
        return { parts, verb: 'SELECT' };
      }
      case 2:
        return { parts: ['SELECT', 'count', '(', '*', ')', ',', 'max', '(', 'x', ')', 'FROM', 'u'], verb: 'SELECT' };
      default: {
        const sources: { parts: string[]; cols: string[] }[] = [
          { parts: ['t'], cols: ['a', 'b', 'c'] },
          { parts: ['u'], cols: ['x', 'y'] },
          { parts: ['v'], cols: ['a', 'b'] },
          { parts: ['t', 'JOIN', 'u', 'ON', 't', '.', 'a', '=', 'u', '.', 'x'], cols: ['a', 'b', 'x', 'y'] },
          { parts: ['(', 'SELECT', 'a', ',', 'b', 'FROM', 't', ')', 'AS', 's'], cols: ['a', 'b'] },
          { parts: ['json_each', '(', "'[1,2,3]'", ')'], cols: ['key', 'value'] },
          ...ctes.map((c) => ({ parts: [c.name], cols: c.cols })),
        ];
        const source = r.pick(sources);
        const parts = ['SELECT'];
        if (r.chance(0.2)) parts.push('DISTINCT');
        for (let i = 0, n = r.range(1, 3); i < n; i++) {
          if (i > 0) parts.push(',');
          parts.push(...this.expr(source.cols));
          if (r.chance(0.3)) parts.push('AS', `c${i}`);
        }
        parts.push('FROM', ...source.parts);
        if (r.chance(0.5)) parts.push('WHERE', ...this.expr(source.cols));
        if (r.chance(0.2)) parts.push('GROUP', 'BY', '1');
        if (r.chance(0.3)) parts.push('ORDER', 'BY', '1', ...(r.chance(0.5) ? ['DESC'] : []));
        if (r.chance(0.3)) parts.push('LIMIT', String(r.int(5)), ...(r.chance(0.5) ? ['OFFSET', '1'] : []));
        return { parts, verb: 'SELECT' };
      }
    }
  }

  withClause(): { parts: string[]; ctes: { name: string; cols: string[] }[] } {
    const r = this.r;
    if (r.chance(0.5)) {
      return {
        parts: ['WITH', 'RECURSIVE', 'c', '(', 'n', ')', 'AS', '(', 'SELECT', '1', 'UNION', 'ALL', 'SELECT', 'n', '+', '1', 'FROM', 'c', 'WHERE', 'n', '<', '3', ')'],
        ctes: [{ name: 'c', cols: ['n'] }],
      };
    }
    return {
      parts: ['WITH', 'd', 'AS', ...(r.chance(0.3) ? ['MATERIALIZED'] : []), '(', 'SELECT', 'a', ',', 'b', 'FROM', 't', ')', ',', 'e', '(', 'k', ')', 'AS', '(', 'VALUES', '(', '1', ')', ')'],
      ctes: [
        { name: 'd', cols: ['a', 'b'] },
        { name: 'e', cols: ['k'] },
      ],
    };
  }

  write(): Generated {
    const r = this.r;
    const returning = (cols: string[]) => (r.chance(0.2) ? ['RETURNING', r.pick(cols)] : []);
    switch (r.int(8)) {
      case 0:
        return {
          parts: ['INSERT', ...r.pick([[], ['OR', 'IGNORE'], ['OR', 'REPLACE']]), 'INTO', 'u', '(', 'x', ',', 'y', ')', 'VALUES', '(', ...this.expr([]), ',', ...this.expr([]), ')', ...returning(['x', 'y'])],
          verb: 'INSERT',
        };
      case 1:
        return { parts: ['INSERT', 'INTO', 'u', 'SELECT', 'a', ',', 'b', 'FROM', 't', 'WHERE', ...this.expr(['a', 'b', 'c'])], verb: 'INSERT' };
      case 2:
        return { parts: ['REPLACE', 'INTO', 'u', 'VALUES', '(', ...this.expr([]), ',', ...this.expr([]), ')'], verb: 'REPLACE' };
      case 3:
        return {
          parts: ['INSERT', 'INTO', 't', '(', 'a', ',', 'b', ')', 'VALUES', '(', String(r.range(1, 9)), ',', "'z;'", ')', 'ON', 'CONFLICT', '(', 'a', ')', 'DO', 'UPDATE', 'SET', 'b', '=', 'excluded', '.', 'b', ...returning(['a', 'b'])],
          verb: 'INSERT',
        };
      case 4:
        return { parts: ['INSERT', 'INTO', 't', 'DEFAULT', 'VALUES'], verb: 'INSERT' };
      case 5: {
        const parts = ['UPDATE', ...(r.chance(0.3) ? ['OR', 'IGNORE'] : []), 't', 'SET', 'b', '=', ...this.expr(['a', 'b', 'c'])];
        if (r.chance(0.5)) parts.push(',', 'c', '=', ...this.expr(['a', 'b', 'c']));
        if (r.chance(0.6)) parts.push('WHERE', ...this.expr(['a', 'b', 'c']));
        return { parts: [...parts, ...returning(['a', 'b', 'c'])], verb: 'UPDATE' };
      }
      case 6:
        return { parts: ['DELETE', 'FROM', 'u', ...(r.chance(0.7) ? ['WHERE', ...this.expr(['x', 'y'])] : []), ...returning(['x', 'y'])], verb: 'DELETE' };
      default:
        return { parts: ['UPDATE', 'u', 'SET', 'y', '=', ...this.expr(['x', 'y']), 'WHERE', 'x', '=', String(r.int(4))], verb: 'UPDATE' };
    }
  }

  pragma(): Generated {
    const forms = [
      ['PRAGMA', 'table_info', '(', 't', ')'],
      ['PRAGMA', 'table_xinfo', '(', "'u'", ')'],
      ['PRAGMA', 'main', '.', 'table_list'],
      ['PRAGMA', 'index_list', '(', 't', ')'],
      ['PRAGMA', 'index_info', '(', 't_b', ')'],
      ['PRAGMA', 'index_xinfo', '=', 't_b'],
      ['PRAGMA', 'foreign_key_list', '(', 'u', ')'],
      ['PRAGMA', 'foreign_key_check'],
      ['PRAGMA', 'quick_check'],
      ['PRAGMA', 'data_version'],
      ['PRAGMA', 'foreign_keys'],
      ['PRAGMA', 'foreign_keys', '=', 'ON'],
      ['PRAGMA', 'defer_foreign_keys', '=', "'off'"],
      ['PRAGMA', 'recursive_triggers'],
      ['PRAGMA', 'case_sensitive_like', '=', '0'],
      ['PRAGMA', 'legacy_alter_table', '(', 'yes', ')'],
      ['PRAGMA', 'reverse_unordered_selects'],
      ['PRAGMA', 'optimize'],
    ];
    return { parts: this.r.pick(forms), verb: 'PRAGMA' };
  }

  /** One valid statement: a read, a write or a PRAGMA, maybe after a WITH clause or under EXPLAIN. */
  statement(): Generated {
    const r = this.r;
    const kind = r.int(10);
    if (kind < 2) return this.pragma();
    const w = r.chance(0.3) ? this.withClause() : undefined;
    const g = kind < 6 ? this.select(w?.ctes) : this.write();
    const parts = [...(w?.parts ?? []), ...g.parts];
    if (g.verb !== 'INSERT' && g.verb !== 'REPLACE' && g.verb !== 'UPDATE' && g.verb !== 'DELETE' && r.chance(0.1)) {
      return { parts: [...(r.chance(0.5) ? ['EXPLAIN'] : ['EXPLAIN', 'QUERY', 'PLAN']), ...parts], verb: 'EXPLAIN' };
    }
    return { parts, verb: g.verb };
  }

  trigger(name: string): string[] {
    const r = this.r;
    return [
      'CREATE',
      'TRIGGER',
      name,
      r.pick(['AFTER', 'BEFORE']),
      'INSERT',
      'ON',
      'u',
      ...(r.chance(0.3) ? ['WHEN', 'CASE', 'WHEN', 'new', '.', 'x', 'IS', 'NULL', 'THEN', '0', 'ELSE', '1', 'END'] : []),
      'BEGIN',
      'UPDATE',
      't',
      'SET',
      'b',
      '=',
      'CASE',
      'WHEN',
      'new',
      '.',
      'x',
      '>',
      '0',
      'THEN',
      "'p;'",
      'ELSE',
      'CASE',
      'new',
      '.',
      'y',
      'WHEN',
      '1',
      'THEN',
      "'one'",
      'END',
      'END',
      'WHERE',
      'a',
      '=',
      '1',
      ';',
      ...(r.chance(0.5) ? ['INSERT', 'INTO', 't', '(', 'b', ')', 'VALUES', '(', "'t;'", '||', 'new', '.', 'x', ')', ';'] : []),
      'END',
    ];
  }

  /** Joins parts with random whitespace and comments, and random keyword case. */
  render(parts: string[]): string {
    const r = this.r;
    const trivia = [' ', ' ', ' ', '\n', '\t', ' /* c; */ ', ' -- x;\n', '  ', '/**/'];
    let sql = r.chance(0.2) ? r.pick(['-- lead;\n', '/* lead */ ', '\n ']) : '';
    parts.forEach((p, i) => {
      if (i > 0) sql += r.chance(0.7) ? ' ' : r.pick(trivia);
      sql += /^[A-Za-z_]+( [A-Za-z_]+)*$/.test(p) && r.chance(0.5) ? randomCase(r, p) : p;
    });
    return sql;
  }
}

describe('c. classification against sqlite3_stmt_readonly()', () => {
  test("for valid statements, 'read' implies SQLite's readonly, and reads change nothing", async () => {
    const raw = rawDb(SCHEMA.join(';'));
    const db = open(':memory:');
    await db.batch(SCHEMA.map((s) => db.prepare(s)));
    const bytes = Buffer.from(await db.dump());
    try {
      await fuzz('classification', 2, { cases: 3000, ms: 2000 }, async (r, note) => {
        const g = new Grammar(r);
        const generated = g.statement();
        const sql = g.render(generated.parts);
        note(`sql: ${show(sql)}`);
        let prepared: Database.Statement;
        try {
          prepared = raw.prepare(sql);
        } catch (e) {
          assert.fail(`the grammar produced SQL SQLite rejects: ${(e as Error).message}`);
        }
        const statements = splitStatements(sql);
        assert.equal(statements.length, 1, 'one statement');
        const s = statements[0]!;
        note(`kind: ${s.kind}, verb: ${s.verb}, sqlite readonly: ${prepared.readonly}`);
        assert.equal(s.rejection, undefined, 'an allowed statement was refused');
        assert.equal(s.verb, generated.verb, 'verb');
        if (generated.verb !== 'EXPLAIN') {
          if (s.kind === 'read') assert.equal(prepared.readonly, true, 'classified read, but SQLite says it writes');
          if (!prepared.readonly) assert.equal(s.kind, 'write');
        }
        if (s.kind === 'read' && r.chance(0.25)) {
          await db.prepare(sql).all();
          assert.ok(Buffer.from(await db.dump()).equals(bytes), 'a statement classified read changed the database');
        }
      });
    } finally {
      raw.close();
      db.close();
    }
  });
});

describe('d. parameter numbering against SQLite', () => {
  test('bindSlots and parameterCount are SQLite’s, and the rewrite binds the same values', async () => {
    const raw = rawDb();
    try {
      await fuzz('parameters', 3, { cases: 1000, ms: 1500 }, (r, note) => {
        const names = ['a', 'b', 'A', 'é', 'x1', 'c$d', '日'];
        const columns: string[] = [];
        for (let i = 0, n = r.range(1, 25); i < n; i++) {
          const p = r.pick(['?', '?', '?N', ':', '@', '$', ':']);
          columns.push(p === '?' ? '?' : p === '?N' ? `?${r.range(1, 30)}` : `${p}${r.pick(names)}`);
        }
        const trivia = [', ', ',', ' , ', ", '?' AS q, ", ', /* ?3 :a */ ', ' -- :b ?\n, ', ", x'3f' IS NOT NULL AS bq, "];
        let sql = 'SELECT ';
        columns.forEach((c, i) => {
          if (i > 0) sql += r.pick(trivia);
          sql += c;
        });
        note(`sql: ${show(sql)}`);
        const truth = sqliteParameterTruth(raw, sql);
        const statements = splitStatements(sql);
        assert.equal(statements.length, 1);
        const s = statements[0]!;
        assert.equal(s.rejection, undefined);
        assert.deepEqual(s.bindSlots, truth.numbers, 'parameter numbers differ from SQLite');
        assert.equal(s.parameterCount, truth.count, 'parameter count differs from SQLite');
        const viaExecutable = raw
          .prepare(s.executable)
          .raw(true)
          .get(...s.bindSlots.map((slot) => truth.params[slot - 1]));
        assert.deepEqual(viaExecutable, truth.row, 'the rewritten statement binds different values');
      });
    } finally {
      raw.close();
    }
  });
});

describe('e. statement boundaries against SQLite', () => {
  test('every piece of a generated script prepares alone, and the pieces run like the script', async () => {
    await fuzz('boundaries', 4, { cases: 1000, ms: 1500 }, (r, note) => {
      const g = new Grammar(r);
      const pieces: string[] = [];
      let triggers = 0;
      for (let i = 0, n = r.range(2, 6); i < n; i++) {
        pieces.push(g.render(r.chance(0.25) ? g.trigger(`tr${triggers++}`) : g.statement().parts));
      }
      let script = '';
      pieces.forEach((p, i) => {
        script += p;
        if (i < pieces.length - 1 || r.chance(0.5)) script += r.pick([';', ';', '; ', ';\n', ' ;', ';;', '; /* ; */ ', '; -- ;\n']);
      });
      if (r.chance(0.3)) script += r.pick([' -- end', '\n/* end; */', '  \n']);
      note(`script: ${show(script)}`);

      const whole = rawDb(SCHEMA.join(';'));
      const piecewise = rawDb(SCHEMA.join(';'));
      try {
        try {
          whole.exec(script);
        } catch (e) {
          assert.fail(`the grammar produced a script SQLite rejects: ${(e as Error).message}`);
        }
        const statements = splitStatements(script).filter((s) => !s.empty);
        assert.equal(statements.length, pieces.length, 'number of statements');
        for (const s of statements) {
          let stmt: Database.Statement;
          try {
            stmt = piecewise.prepare(s.text);
          } catch (e) {
            assert.fail(`piece ${show(s.text)} does not prepare alone: ${(e as Error).message}`);
          }
          if (stmt.reader) stmt.all();
          else stmt.run();
        }
        assert.deepEqual(rawState(piecewise), rawState(whole), 'running the pieces differs from running the script');
      } finally {
        whole.close();
        piecewise.close();
      }
    });
  });
});
