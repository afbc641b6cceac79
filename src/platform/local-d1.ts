// Where a D1 binding's local database lives. `wrangler dev` and `wrangler d1 … --local` keep it in
// <config dir>/.wrangler/state (or --persist-to <dir>) + v3/d1/; wrangler's getPlatformProxy in
// .wrangler/state/v3 of the working directory (or persist.path) + d1/. Below that both use
// miniflare-D1DatabaseObject/<id>.sqlite, so with the config in the working directory it is one file.
import path from 'node:path';
import { D1_UNIQUE_KEY, durableObjectIdFromName, localDatabaseFile, localDatabaseKey } from '../cli/local-state.ts';
import { type D1DatabaseConfig, readWranglerConfig } from '../cli/wrangler-config.ts';

export type Persist = boolean | { path: string } | undefined;

/** The d1 folder getPlatformProxy keeps databases in, or undefined for `persist: false` (memory). */
export function platformD1Root(persist: Persist, cwd: string): string | undefined {
  if (persist === false) return undefined;
  if (persist === undefined || persist === true) return path.resolve(cwd, '.wrangler/state/v3', 'd1');
  if (typeof persist !== 'object' || persist === null || typeof persist.path !== 'string') {
    throw new TypeError('getPlatformProxy: persist must be true, false or { path: string }');
  }
  return path.resolve(cwd, persist.path, 'd1');
}

/** The binding's database file under a d1 folder. */
export function d1FileIn(root: string, entry: D1DatabaseConfig): string {
  return path.join(root, D1_UNIQUE_KEY, `${durableObjectIdFromName(D1_UNIQUE_KEY, localDatabaseKey(entry))}.sqlite`);
}

export interface WranglerDevOptions {
  config?: string;
  env?: string;
  persistTo?: string;
  cwd?: string;
}

/**
 * The file `wrangler dev` (with the same --config, --env, --persist-to) uses for a D1 binding; with
 * no --env, CLOUDFLARE_ENV's environment, as wrangler dev takes it (an empty one is the top level).
 */
export function wranglerDevFile(binding: string, options: WranglerDevOptions = {}): { file: string; configFile: string } {
  options = { ...options, env: options.env ?? (process.env.CLOUDFLARE_ENV || undefined) };
  const config = readWranglerConfig({ config: options.config, env: options.env, cwd: options.cwd });
  if (!config.file) {
    throw new Error(
      `No wrangler.toml, wrangler.json or wrangler.jsonc found in ${config.dir} or above, so there is no binding ${binding}. Run the command in your project, or pass --config <file>.`,
    );
  }
  const entry = config.d1Databases.find((d) => d.binding === binding);
  if (!entry) {
    const where = options.env ? `env.${options.env}.d1_databases` : 'd1_databases';
    const known = config.d1Databases.map((d) => d.binding);
    const byName = config.d1Databases.find((d) => d.database_name === binding);
    throw new Error(
      `${config.file} has no D1 binding ${binding} in ${where}` +
        (byName ? `: "${binding}" is the database_name of binding ${byName.binding}; pass --binding ${byName.binding}.` : '.') +
        (known.length ? ` Its bindings: ${known.join(', ')}.` : ''),
    );
  }
  return { file: localDatabaseFile(config, entry, options.persistTo, options.cwd), configFile: config.file };
}
