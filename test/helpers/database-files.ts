// Reading SQLite files directly, for tests that compare a database with what a log rebuilds.
import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { openSqlite } from '../../src/engine/sqlite.ts';

/** Every table of a database file, hashed row by row in rowid order. */
export function contents(connection: Database.Database): Record<string, string> {
  const out: Record<string, string> = {};
  const tables = connection.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as { name: string; sql: string }[];
  out['(schema)'] = JSON.stringify(tables);
  for (const { name } of tables) {
    const hash = createHash('sha256');
    let rows = 0;
    for (const row of connection.prepare(`SELECT * FROM "${name}" ORDER BY rowid`).raw().iterate() as IterableIterator<unknown[]>) {
      rows++;
      for (const value of row) {
        if (Buffer.isBuffer(value)) hash.update(`b${value.length}:`).update(value);
        else hash.update(`${typeof value}:${String(value)};`);
      }
      hash.update('\n');
    }
    out[name] = `${rows} rows ${hash.digest('hex').slice(0, 16)}`;
  }
  return out;
}

export function withDatabase<T>(file: string, read: (connection: Database.Database) => T): T {
  const connection = openSqlite(file, { readonly: true });
  try {
    return read(connection);
  } finally {
    connection.close();
  }
}
