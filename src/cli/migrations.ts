// wrangler's D1 migrations: the .sql files in migrations_dir (or those matching migrations_pattern),
// listed in name order, applied in the order of their leading number, tracked by name in the
// d1_migrations table (wrangler's DDL, to the byte), numbered by `create`.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openSqlite } from '../engine/sqlite.ts';
import { CliError } from './d1/output.ts';

const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** An empty database, to ask SQLite whether it reads a name bare. */
let nameChecker: ReturnType<typeof openSqlite> | undefined;

/**
 * The table name as wrangler writes it into its SQL: bare. A name SQLite would not read bare (a
 * reserved word, a space or a dash) is quoted instead, where wrangler's SQL would fail.
 */
export function tableNameSql(table: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(table)) return quoteIdentifier(table);
  nameChecker ??= openSqlite(':memory:');
  try {
    nameChecker.prepare(`CREATE TABLE ${table}(x)`);
    return table;
  } catch {
    return quoteIdentifier(table);
  }
}

/**
 * The migrations table, exactly as wrangler 4.86 creates it: SQLite keeps this text (from the name
 * on) in sqlite_schema, so exports are the same whichever tool made the table.
 */
export function migrationsTableSql(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${tableNameSql(table)}(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);`;
}

export function appliedMigrationsSql(table: string): string {
  return `SELECT * FROM ${tableNameSql(table)} ORDER BY id`;
}

/** The bookkeeping INSERT wrangler appends to each migration. */
export function recordMigrationSql(table: string, name: string): string {
  return `INSERT INTO ${tableNameSql(table)} (name)\nvalues ('${name.replaceAll("'", "''")}');`;
}

/** wrangler's number of a migration: parseInt of what comes before the first "_" (NaN when none). */
const migrationNumber = (name: string): number => Number.parseInt(name.split('_')[0]!, 10);

/**
 * The order `migrations apply` runs them in: wrangler's stable sort on the leading number, which
 * leaves a name without one where name order put it. Array.prototype.sort with wrangler's own
 * comparison, so that the order is wrangler's even where that comparison is not consistent (NaN).
 */
export function applyOrder(names: string[]): string[] {
  return [...names].sort((a, b) => {
    const x = migrationNumber(a);
    const y = migrationNumber(b);
    if (x < y) return -1;
    if (x > y) return 1;
    return 0;
  });
}

function segmentPattern(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*').replaceAll('?', '[^/]');
  return new RegExp(`^${body}$`);
}

/** Paths (relative to `dir`, `/`-separated) matching `pattern`, one glob per path segment. */
function matching(dir: string, pattern: string): string[] {
  const segments = pattern.split('/').map(segmentPattern);
  const found: string[] = [];
  const walk = (at: string, prefix: string[], depth: number) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      if (entry.name.startsWith('.') || !segments[depth]!.test(entry.name)) continue;
      const last = depth === segments.length - 1;
      if (last && entry.isFile()) found.push([...prefix, entry.name].join('/'));
      else if (!last && entry.isDirectory()) walk(path.join(at, entry.name), [...prefix, entry.name], depth + 1);
    }
  };
  walk(dir, [], 0);
  return found;
}

/**
 * Migration names, in name order (what `migrations list` shows). Without a pattern, wrangler's:
 * every file of `dir` whose name ends in ".sql", hidden ones too. With migrations_pattern
 * (relative to `dir`, e.g. `*\/migration.sql`), the paths matching it.
 */
export function discoverMigrations(dir: string, pattern?: string): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new CliError(`No migrations present at ${dir}.`, {
      hint: 'Create one with `dione d1 migrations create <database> <message>`, or set migrations_dir in your wrangler config.',
    });
  }
  const names = pattern
    ? matching(dir, pattern)
    : readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.name.endsWith('.sql') && !e.isDirectory())
        .map((e) => e.name);
  return names.sort();
}

/** `migrations create`: the next number (after the highest, else 0001) and the file, written. */
export function createMigration(dir: string, message: string, pattern?: string): { name: string; file: string } {
  if (/[/\\]/.test(message)) throw new CliError(`A migration message cannot contain "/" or "\\": "${message}".`);
  mkdirSync(dir, { recursive: true });
  const numbers = discoverMigrations(dir, pattern)
    .map(migrationNumber)
    .filter((n) => !Number.isNaN(n));
  const number = String(Math.max(0, ...numbers) + 1).padStart(4, '0');
  const name = `${number}_${message.replaceAll(' ', '_')}.sql`;
  const file = path.join(dir, name);
  writeFileSync(file, `-- Migration number: ${number} \t ${new Date().toISOString()}\n`, { flag: 'wx' });
  return { name, file };
}
