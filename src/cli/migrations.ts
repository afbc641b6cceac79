// wrangler's D1 migrations: files in migrations_dir (or matching migrations_pattern), ordered by
// their number, tracked by name in the d1_migrations table (same DDL), numbered by `create`.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CliError } from './d1/output.ts';

export const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** The migrations table, exactly as wrangler creates it. */
export function migrationsTableSql(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(table)}(
		id         INTEGER PRIMARY KEY AUTOINCREMENT,
		name       TEXT UNIQUE,
		applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
);`;
}

export function appliedMigrationsSql(table: string): string {
  return `SELECT * FROM ${quoteIdentifier(table)} ORDER BY id`;
}

/** The bookkeeping INSERT wrangler appends to each migration. */
export function recordMigrationSql(table: string, name: string): string {
  return `INSERT INTO ${quoteIdentifier(table)} (name)\nvalues ('${name.replaceAll("'", "''")}');`;
}

const leadingNumber = (segment: string): number | undefined => {
  const n = Number.parseInt(segment.split('_')[0]!, 10);
  return Number.isNaN(n) ? undefined : n;
};

/** wrangler's order: per path segment, numbered before unnumbered, numbers ascending, then by name. */
export function compareMigrationNames(a: string, b: string): number {
  const as = a.split('/');
  const bs = b.split('/');
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const x = as[i]!;
    const y = bs[i]!;
    if (x === y) continue;
    const nx = leadingNumber(x);
    const ny = leadingNumber(y);
    if (nx !== undefined && ny === undefined) return -1;
    if (nx === undefined && ny !== undefined) return 1;
    if (nx !== undefined && ny !== undefined && nx !== ny) return nx - ny;
    return x < y ? -1 : 1;
  }
  return as.length - bs.length;
}

function segmentPattern(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*').replaceAll('?', '[^/]');
  return new RegExp(`^${body}$`);
}

/** Migration names (paths relative to `dir`, `/`-separated) matching `pattern` (relative to `dir`; default `*.sql`). */
export function discoverMigrations(dir: string, pattern = '*.sql'): string[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new CliError(`No migrations present at ${dir}. Create one with \`dione d1 migrations create <database> <message>\`, or set migrations_dir in your wrangler config.`);
  }
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
  return found.sort(compareMigrationNames);
}

/**
 * Refuses a folder whose numbered migrations repeat a number or skip one (0001, 0003): which one
 * was meant to run first, or whether one is missing, is not something to guess while changing a
 * database.
 */
export function checkNumbering(dir: string, names: string[]): void {
  const byNumber = new Map<number, string[]>();
  for (const name of names) {
    const n = leadingNumber(name.split('/')[0]!);
    if (n === undefined) continue;
    const top = name.split('/')[0]!;
    const list = byNumber.get(n) ?? [];
    if (!list.includes(top)) list.push(top);
    byNumber.set(n, list);
  }
  const duplicates = [...byNumber.values()].filter((l) => l.length > 1);
  if (duplicates.length > 0) {
    throw new CliError(
      `The migrations folder ${dir} has more than one migration with the same number: ${duplicates.map((l) => l.join(' and ')).join('; ')}. ` +
        'Renumber them so each number is used once (the order they apply in depends on it).',
    );
  }
  const numbers = [...byNumber.keys()].sort((a, b) => a - b);
  const missing: number[] = [];
  for (let i = 1; i < numbers.length; i++) for (let n = numbers[i - 1]! + 1; n < numbers[i]!; n++) missing.push(n);
  if (missing.length > 0) {
    const width = Math.max(4, ...names.map((n) => /^\d+/.exec(n)?.[0].length ?? 0));
    throw new CliError(
      `The migrations folder ${dir} has a gap: no migration numbered ${missing.map((n) => String(n).padStart(width, '0')).join(', ')}. ` +
        'Restore the missing file, or renumber the later ones so the numbers run without gaps.',
    );
  }
}

/** `migrations create`: the next number (after the highest, else 0001) and the file, written. */
export function createMigration(dir: string, message: string, pattern = '*.sql'): { name: string; file: string } {
  if (/[/\\]/.test(message)) throw new CliError(`A migration message cannot contain "/" or "\\": "${message}".`);
  mkdirSync(dir, { recursive: true });
  const numbers = discoverMigrations(dir, pattern).map((n) => leadingNumber(n.split('/')[0]!) ?? 0);
  const next = numbers.length ? Math.max(...numbers) + 1 : 1;
  const number = String(next).padStart(4, '0');
  const name = `${number}_${message.replaceAll(' ', '_')}.sql`;
  const file = path.join(dir, name);
  writeFileSync(file, `-- Migration number: ${number} \t ${new Date().toISOString()}\n`, { flag: 'wx' });
  return { name, file };
}
