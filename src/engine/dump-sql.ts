// A SQL dump in the format wrangler's `d1 export` writes (and D1 produces): schema, then one INSERT
// per row, then indexes, triggers and views. A generator over SQLite cursors, so a database larger
// than memory streams out line by line.
import type Database from 'better-sqlite3';

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
  let literal = `'${text.replaceAll("'", "''")}'`;
  if (text.includes('\n')) literal = `replace(${literal.replaceAll('\n', '\\n')},'\\n',char(10))`;
  if (text.includes('\r')) literal = `replace(${literal.replaceAll('\r', '\\r')},'\\r',char(13))`;
  return literal;
}

export function* dumpSql(db: Database.Database, options: DumpSqlOptions = {}): Generator<string> {
  const only = options.tables?.length ? new Set(options.tables) : undefined;
  yield 'PRAGMA defer_foreign_keys=TRUE;';
  const tables = db
    .prepare("SELECT name, type, sql FROM sqlite_schema WHERE type = 'table' AND sql NOT NULL ORDER BY tbl_name = 'sqlite_sequence', rowid")
    .all() as { name: string; sql: string }[];
  for (const { name, sql } of tables) {
    if (only && !only.has(name)) continue;
    if (name.startsWith('_cf_')) continue;
    if (/^CREATE\s+VIRTUAL\s+TABLE/i.test(sql)) {
      const module = /USING\s+(\w+)/i.exec(sql)?.[1] ?? 'unknown';
      throw new DumpError(`D1 Export error: cannot export databases with Virtual Tables (${module})`);
    }
    if (name === 'sqlite_sequence') {
      if (!options.noSchema) yield 'DELETE FROM sqlite_sequence;';
    } else if (name.startsWith('sqlite_stat')) {
      if (!options.noSchema) yield 'ANALYZE sqlite_schema;';
      continue;
    } else if (name.startsWith('sqlite_')) {
      continue;
    } else if (!options.noSchema) {
      yield /^CREATE\s+TABLE\s+["'`]/i.test(sql) ? `${sql.replace(/^CREATE\s+TABLE\s+/i, 'CREATE TABLE IF NOT EXISTS ')};` : `${sql};`;
    }
    if (options.noData) continue;
    const columns = (db.prepare(`SELECT name FROM pragma_table_info(?)`).pluck().all(name) as string[]).filter(Boolean);
    const columnList = columns.map(quoteIdentifier).join(',');
    const select = db.prepare(`SELECT ${columns.map(quoteIdentifier).join(', ')} FROM ${quoteIdentifier(name)}`).raw(true).safeIntegers(true);
    const insert = `INSERT INTO ${quoteIdentifier(name)} (${columnList}) VALUES(`;
    for (const row of select.iterate() as Iterable<unknown[]>) yield `${insert}${row.map(sqlLiteral).join(',')});`;
  }
  if (options.noSchema) return;
  const others = db
    .prepare("SELECT name, sql FROM sqlite_schema WHERE type IN ('index', 'trigger', 'view') AND sql NOT NULL ORDER BY type COLLATE NOCASE")
    .all() as { name: string; sql: string }[];
  for (const { name, sql } of others) {
    if (only && !only.has(name)) continue;
    if (name.startsWith('_cf_')) continue;
    yield `${sql};`;
  }
}
