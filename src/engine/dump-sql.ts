// A SQL dump in the format wrangler's `d1 export` writes (and D1 produces), ordered so that it
// imports into an empty database: every table, then every row (a table's rows after those of the
// tables it references), then indexes, views (each after the views it reads) and triggers (after
// the views an INSTEAD OF trigger is on). A generator over SQLite cursors, so a database larger
// than memory streams out line by line.
import type Database from 'better-sqlite3';
import { dependencyOrder, namesIn } from './dump-order.ts';

export interface DumpSqlOptions {
  noSchema?: boolean;
  noData?: boolean;
  /** Only these tables (all when empty or absent). */
  tables?: string[];
}

export class DumpError extends Error {}

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** A value as a SQL literal, as D1's dump writes it. */
export function sqlLiteral(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (Number.isNaN(value)) return 'NULL';
    if (!Number.isFinite(value)) return value > 0 ? '9e999' : '-9e999';
    return String(value);
  }
  if (value instanceof Uint8Array) return `X'${hex(value)}'`;
  const text = String(value);
  // SQL text cannot hold a NUL: the text's bytes, as a blob read back as text.
  if (text.includes('\0')) return `CAST(X'${hex(new TextEncoder().encode(text))}' AS TEXT)`;
  let literal = `'${text.replaceAll("'", "''")}'`;
  if (text.includes('\n')) {
    const marker = unusedMarker(literal, '\\n', '\\012');
    literal = `replace(${literal.replaceAll('\n', marker)},'${marker}',char(10))`;
  }
  if (text.includes('\r')) {
    const marker = unusedMarker(literal, '\\r', '\\015');
    literal = `replace(${literal.replaceAll('\r', marker)},'${marker}',char(13))`;
  }
  return literal;
}

/**
 * What stands for a line break in a dumped text: `preferred` (miniflare's and SQLite's), unless the
 * text holds it already (a backslash and an n, as written), then `alternate`, then numbered forms.
 */
function unusedMarker(text: string, preferred: string, alternate: string): string {
  if (!text.includes(preferred)) return preferred;
  if (!text.includes(alternate)) return alternate;
  for (let i = 0; ; i++) {
    const marker = `(${alternate}${i})`;
    if (!text.includes(marker)) return marker;
  }
}

interface SchemaObject {
  name: string;
  type: string;
  sql: string;
}

export function* dumpSql(db: Database.Database, options: DumpSqlOptions = {}): Generator<string> {
  const only = options.tables?.length ? new Set(options.tables) : undefined;
  const selected = ({ name }: SchemaObject) => (!only || only.has(name)) && !name.startsWith('_cf_');
  const schema = (db.prepare('SELECT name, type, sql FROM sqlite_schema WHERE sql NOT NULL ORDER BY rowid').all() as SchemaObject[]).filter(selected);
  const tables = schema.filter((o) => o.type === 'table');
  const virtual = tables.find((t) => /^CREATE\s+VIRTUAL\s+TABLE/i.test(t.sql));
  if (virtual) {
    const module = /USING\s+(\w+)/i.exec(virtual.sql)?.[1] ?? 'unknown';
    throw new DumpError(`D1 Export error: cannot export databases with Virtual Tables (${module})`);
  }
  const userTables = tables.filter((t) => !t.name.startsWith('sqlite_'));
  const sequence = tables.some((t) => t.name === 'sqlite_sequence');

  yield 'PRAGMA defer_foreign_keys=TRUE;';
  if (!options.noSchema) {
    for (const { name, sql } of tables) {
      if (name.startsWith('sqlite_stat')) yield 'ANALYZE sqlite_schema;';
      else if (!name.startsWith('sqlite_')) yield createTable(sql);
    }
  }
  if (!options.noData) {
    const referenced = db.prepare('SELECT "table" FROM pragma_foreign_key_list(?)').pluck();
    for (const { name } of dependencyOrder(userTables, (t) => t.name, (t) => referenced.all(t.name) as string[])) yield* insertRows(db, name);
  }
  // After the rows: inserting them into AUTOINCREMENT tables filled it in; this puts back the counters.
  if (sequence) {
    if (!options.noSchema) yield 'DELETE FROM sqlite_sequence;';
    if (!options.noData) yield* insertRows(db, 'sqlite_sequence');
  }
  if (options.noSchema) return;
  const ofType = (type: string) => schema.filter((o) => o.type === type);
  const views = dependencyOrder(ofType('view'), (v) => v.name, (v) => namesIn(v.sql));
  for (const { sql } of [...ofType('index'), ...views, ...ofType('trigger')]) yield `${sql};`;
}

/** A table's CREATE statement; one whose name is quoted becomes CREATE TABLE IF NOT EXISTS, as D1 writes it. */
function createTable(sql: string): string {
  return /^CREATE\s+TABLE\s+["'`]/i.test(sql) ? `${sql.replace(/^CREATE\s+TABLE\s+/i, 'CREATE TABLE IF NOT EXISTS ')};` : `${sql};`;
}

function* insertRows(db: Database.Database, table: string): Generator<string> {
  const columns = (db.prepare('SELECT name FROM pragma_table_info(?)').pluck().all(table) as string[]).filter(Boolean);
  const columnList = columns.map(quoteIdentifier).join(',');
  const select = db.prepare(`SELECT ${columns.map(quoteIdentifier).join(', ')} FROM ${quoteIdentifier(table)}`).raw(true).safeIntegers(true);
  const insert = `INSERT INTO ${quoteIdentifier(table)} (${columnList}) VALUES(`;
  for (const row of select.iterate() as Iterable<unknown[]>) yield `${insert}${row.map(sqlLiteral).join(',')});`;
}
