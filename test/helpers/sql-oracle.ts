// Real SQLite (better-sqlite3, no Dione code involved) as the reference for the SQL front's tests:
// how SQLite numbers parameters, which bound value each result column receives, where SQLite
// reports an error, and whether a prepared statement is read-only.
import path from 'node:path';
import Database from 'better-sqlite3';
import { root } from './paths.ts';

export type RawDb = Database.Database;

/** The compiled guard extension (scripts/build-native.mjs). */
export const guardPath = path.join(root, 'build', process.platform === 'darwin' ? 'dione_guard.dylib' : 'dione_guard.so');

/** A plain SQLite connection: SQLite's default limits, no authorizer. */
export function rawDb(setup = ''): RawDb {
  const db = new Database(':memory:');
  if (setup) db.exec(setup);
  return db;
}

/** A plain connection with the guard loaded only for its dione_prepare_error() helper (and the token it needs). */
export function rawGuardDb(): RawDb & { guardToken: bigint } {
  const db = new Database(':memory:');
  db.loadExtension(guardPath);
  const guardToken = db.prepare('SELECT dione_claim()').pluck().safeIntegers(true).get() as bigint;
  return Object.assign(db, { guardToken });
}

export interface PrepareError {
  /** sqlite3_error_offset(): a UTF-8 byte offset into `sql`, -1 when SQLite gives none. */
  offset: number;
  message: string;
}

/** SQLite's own prepare error for `sql` (null when it prepares), with SQLite's error offset. */
export function sqlitePrepareError(guardDb: RawDb & { guardToken: bigint }, sql: string): PrepareError | null {
  const answer = guardDb.prepare('SELECT dione_prepare_error(?, ?)').pluck().get(guardDb.guardToken, sql) as string | null;
  if (answer === null) return null;
  const [offset, , ...message] = answer.split('|');
  return { offset: Number(offset), message: message.join('|') };
}

/** How better-sqlite3 must be called to bind every parameter of a statement. */
export interface BindShape {
  /** Number of parameters SQLite gave no name (better-sqlite3 binds these positionally, in index order). */
  positional: number;
  /** better-sqlite3's keys (the parameter name without its first character) of the named ones. */
  keys: string[];
}

/**
 * Finds, from better-sqlite3's own binding errors only, the positional count and named keys a
 * statement needs. Knows nothing about Dione's lexer.
 */
export function bindShape(db: RawDb, sql: string): BindShape {
  const keys: string[] = [];
  let positional = 0;
  for (let attempt = 0; attempt < 100_000; attempt++) {
    const object = Object.fromEntries(keys.map((k) => [k, null]));
    try {
      // bind() fixes the values for good, so every attempt uses a fresh statement.
      db.prepare(sql).bind(...new Array(positional).fill(null), object);
      return { positional, keys };
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      const missing = /^Missing named parameter "(.*)"$/s.exec(message);
      if (missing) keys.push(missing[1]!);
      else if (message.startsWith('Too few parameter values')) positional++;
      else throw e;
    }
  }
  throw new Error('bindShape: gave up');
}

/** Calls stmt with values for a shape: positional values first, then one object for the keys. */
function bindArgs(shape: BindShape, positional: (i: number) => unknown, named: (key: string) => unknown): unknown[] {
  const args: unknown[] = [];
  for (let i = 0; i < shape.positional; i++) args.push(positional(i));
  args.push(Object.fromEntries(shape.keys.map((k) => [k, named(k)])));
  return args;
}

interface ExplainRow {
  opcode: string;
  p1: number;
  p2: number;
}

export interface ParameterColumn {
  /** 0-based result column. */
  column: number;
  /** The parameter number SQLite assigned to the parameter that is this column. */
  number: number;
}

/**
 * For a `SELECT e1, e2, …`, the result columns that are bare parameters with the parameter number
 * SQLite gave each, in column order, read from the VDBE program: OP_Variable P1 is the parameter
 * number and P2 the register it fills; OP_ResultRow P1..P1+P2-1 are the columns. SQLite's
 * sqlite3_bind_parameter_count() is the highest number assigned, so the maximum of these when every
 * parameter of the statement is a column.
 */
export function sqliteParameterColumns(db: RawDb, select: string): ParameterColumn[] {
  const explain = `EXPLAIN ${select}`;
  const shape = bindShape(db, explain);
  const rows = db.prepare(explain).all(...bindArgs(shape, () => null, () => null)) as ExplainRow[];
  const results = rows.filter((r) => r.opcode === 'ResultRow');
  if (results.length !== 1) throw new Error(`oracle: expected one ResultRow in the program of ${select}`);
  const { p1: base, p2: count } = results[0]!;
  const variables = rows.filter((r) => r.opcode === 'Variable' && r.p2 >= base && r.p2 < base + count);
  if (new Set(variables.map((v) => v.p2)).size !== variables.length) throw new Error(`oracle: two parameters feed one column in ${select}`);
  return variables.map((v) => ({ column: v.p2 - base, number: v.p1 })).sort((a, b) => a.column - b.column);
}

/**
 * Runs `select` in SQLite binding a distinct label to every parameter (by better-sqlite3's
 * positional/named rules) and returns the row. Each parameter column shows which label reached it.
 */
export function runLabelled(db: RawDb, select: string): unknown[] {
  const shape = bindShape(db, select);
  return db.prepare(select).raw(true).get(
    ...bindArgs(
      shape,
      (i) => `positional#${i}`,
      (k) => `named:${k}`,
    ),
  ) as unknown[];
}

export interface ParameterTruth {
  /** SQLite's parameter number for each parameter column, in column order. */
  numbers: number[];
  /** sqlite3_bind_parameter_count(). */
  count: number;
  /** The row SQLite returns when every parameter is bound to a distinct label. */
  row: unknown[];
  /** D1-style positional parameters that reproduce `row`: params[n - 1] is the value of parameter n. */
  params: unknown[];
}

/** Everything SQLite says about the parameters of a `SELECT` whose parameters are all bare columns. */
export function sqliteParameterTruth(db: RawDb, select: string): ParameterTruth {
  const columns = sqliteParameterColumns(db, select);
  const row = runLabelled(db, select);
  const byNumber = new Map<number, unknown>();
  for (const { column, number } of columns) {
    const value = row[column];
    if (byNumber.has(number) && byNumber.get(number) !== value) throw new Error(`oracle: parameter ${number} received two values in ${select}`);
    byNumber.set(number, value);
  }
  const numbers = columns.map((c) => c.number);
  const count = Math.max(0, ...numbers);
  const params = Array.from({ length: count }, (_, i) => (byNumber.has(i + 1) ? byNumber.get(i + 1) : null));
  return { numbers, count, row, params };
}

/** The names and definitions of the schema and the content of every table: a database's state. */
export function rawState(db: RawDb): unknown {
  const schema = db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name").all() as {
    type: string;
    name: string;
  }[];
  const tables: Record<string, unknown[]> = {};
  for (const s of schema) {
    if (s.type === 'table') tables[s.name] = db.prepare(`SELECT * FROM "${s.name.replaceAll('"', '""')}" ORDER BY rowid`).raw(true).all();
  }
  return { schema, tables };
}
