// wrangler's configuration: wrangler.json, wrangler.jsonc or wrangler.toml (found as wrangler finds
// it, from the working directory upwards, or named by --config), its `d1_databases`, and `env.<name>`.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { type ParseError, parse as parseJsonc, printParseErrorCode } from 'jsonc-parser';
import { parse as parseToml } from 'smol-toml';
import { CliError } from './d1/output.ts';

export interface D1DatabaseConfig {
  binding: string;
  database_name?: string;
  database_id?: string;
  preview_database_id?: string;
  migrations_dir?: string;
  migrations_table?: string;
  migrations_pattern?: string;
}

export interface WranglerConfig {
  /** The config file, or undefined when none was found. */
  file: string | undefined;
  /** The directory relative paths are resolved from (the file's, else the working directory). */
  dir: string;
  d1Databases: D1DatabaseConfig[];
}

export const CONFIG_NAMES = ['wrangler.json', 'wrangler.jsonc', 'wrangler.toml'];

/** The nearest wrangler config file from `cwd` upwards, as wrangler looks for it. */
export function findConfigFile(cwd: string): string | undefined {
  let dir = path.resolve(cwd);
  for (;;) {
    for (const name of CONFIG_NAMES) {
      const file = path.join(dir, name);
      if (existsSync(file) && statSync(file).isFile()) return file;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function parseFile(file: string): Record<string, unknown> {
  const text = readFileSync(file, 'utf8');
  if (file.endsWith('.toml')) {
    try {
      return parseToml(text) as Record<string, unknown>;
    } catch (e) {
      throw new CliError(`${file} is not valid TOML: ${e instanceof Error ? e.message : e}`);
    }
  }
  const errors: ParseError[] = [];
  const value = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false });
  if (errors.length > 0) {
    const [first] = errors;
    throw new CliError(`${file}:${lineOf(text, first!.offset)} is not valid JSON: ${printParseErrorCode(first!.error)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CliError(`${file} must hold a JSON object`);
  return value as Record<string, unknown>;
}

function d1Entries(file: string, section: unknown, where: string): D1DatabaseConfig[] {
  if (section === undefined) return [];
  if (!Array.isArray(section)) throw new CliError(`${file}: ${where} must be an array of { binding, database_name, database_id }`);
  return section.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null) throw new CliError(`${file}: ${where}[${i}] must be an object`);
    const e = entry as Record<string, unknown>;
    if (typeof e.binding !== 'string' || e.binding === '') throw new CliError(`${file}: ${where}[${i}] has no "binding" (the name the Worker sees, e.g. "DB")`);
    for (const key of ['database_name', 'database_id', 'preview_database_id', 'migrations_dir', 'migrations_table', 'migrations_pattern']) {
      if (e[key] !== undefined && typeof e[key] !== 'string') throw new CliError(`${file}: ${where}[${i}].${key} must be a string`);
    }
    if (typeof e.migrations_pattern === 'string') {
      const dir = (e.migrations_dir as string | undefined) ?? 'migrations';
      if (e.migrations_dir === undefined || !path.posix.normalize(e.migrations_pattern).startsWith(`${path.posix.normalize(dir)}/`)) {
        throw new CliError(`${file}: ${where}[${i}].migrations_pattern must start with migrations_dir ("${dir}/")`);
      }
    }
    return e as unknown as D1DatabaseConfig;
  });
}

/**
 * The config a d1 command works with: --config or the nearest one, in the environment --env names,
 * else CLOUDFLARE_ENV (an empty one is the top level), as wrangler chooses it.
 */
export function projectConfig(options: { config?: string; env?: string }): WranglerConfig {
  return readWranglerConfig({ config: options.config, env: options.env ?? process.env.CLOUDFLARE_ENV });
}

/** Reads the config named by `--config`, or the nearest one; no file at all is an empty config. */
export function readWranglerConfig(options: { config?: string; env?: string; cwd?: string } = {}): WranglerConfig {
  const cwd = options.cwd ?? process.cwd();
  let file: string | undefined;
  if (options.config) {
    file = path.resolve(cwd, options.config);
    if (!existsSync(file) || !statSync(file).isFile()) {
      throw new CliError(`The config file ${file} (--config) does not exist. Pass the path of your wrangler.toml, wrangler.json or wrangler.jsonc.`);
    }
  } else {
    file = findConfigFile(cwd);
  }
  if (!file) return { file: undefined, dir: cwd, d1Databases: [] };
  const raw = parseFile(file);
  let section = raw.d1_databases;
  let where = 'd1_databases';
  if (options.env) {
    const envs = raw.env as Record<string, Record<string, unknown>> | undefined;
    const env = envs?.[options.env];
    if (!env) throw new CliError(`${file} has no environment "${options.env}" (no [env.${options.env}] section). Drop --env or add the section.`);
    section = env.d1_databases;
    where = `env.${options.env}.d1_databases`;
  }
  return { file, dir: path.dirname(file), d1Databases: d1Entries(file, section, where) };
}

/** The first d1_databases entry, in config order, whose database_name or binding is `name` (wrangler's rule), or undefined. */
export function lookupDatabase(config: WranglerConfig, name: string): D1DatabaseConfig | undefined {
  return config.d1Databases.find((d) => d.database_name === name || d.binding === name);
}

/** As lookupDatabase, but wrangler's error when the entry is missing (what wrangler requires for --local). */
export function requireDatabase(config: WranglerConfig, name: string): D1DatabaseConfig {
  const found = lookupDatabase(config, name);
  if (found) return found;
  if (!config.file) {
    throw new CliError(`Couldn't find a D1 DB with the name or binding '${name}' in your Wrangler configuration file.`, {
      hint:
        `No wrangler.toml, wrangler.json or wrangler.jsonc found in ${config.dir} or above. ` +
        'Run the command in your project directory, pass --config <file>, or add a [[d1_databases]] entry with binding and database_name.',
    });
  }
  const known = config.d1Databases.map((d) => d.database_name ?? d.binding);
  throw new CliError(`Couldn't find a D1 DB with the name or binding '${name}' in your ${path.basename(config.file)} file.`, {
    hint: known.length
      ? `${config.file} has: ${known.join(', ')}. Add a d1_databases entry for it, or use one of those names.`
      : `${config.file} has no d1_databases: add an entry for it.`,
  });
}

/** migrations_dir resolved from the config file's directory; unset or empty, ./migrations (as wrangler). */
export function migrationsDir(config: WranglerConfig, db: D1DatabaseConfig): string {
  return path.resolve(config.dir, db.migrations_dir || 'migrations');
}

/** migrations_table; unset or empty, d1_migrations (as wrangler). */
export function migrationsTable(db: D1DatabaseConfig | undefined): string {
  return db?.migrations_table || 'd1_migrations';
}
