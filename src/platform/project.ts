// The parts of a wrangler project that getPlatformProxy serves: the config file wrangler would use
// (found by the CLI's helpers, which also read its D1 databases) and the table that applies to the
// environment. wrangler never inherits bindings or vars into env.<name>, so with an environment
// only that environment's own table counts.
import { readFileSync } from 'node:fs';
import { parse as parseJsonc } from 'jsonc-parser';
import { parse as parseToml } from 'smol-toml';
import { type D1DatabaseConfig, readWranglerConfig } from '../cli/wrangler-config.ts';

export interface WranglerProject {
  /** The config file, or undefined when there is none. */
  file: string | undefined;
  /** The config file's directory, else the working directory: where .dev.vars and .env files are. */
  dir: string;
  environment: string | undefined;
  /** The top-level table of the config, or its env.<environment> table. */
  section: Record<string, unknown>;
  d1Databases: D1DatabaseConfig[];
}

export interface ProjectOptions {
  configPath?: string;
  environment?: string;
  cwd: string;
}

export function readProject(options: ProjectOptions): WranglerProject {
  const config = readWranglerConfig({ config: options.configPath, env: options.environment, cwd: options.cwd });
  let section: Record<string, unknown> = {};
  if (config.file) {
    // readWranglerConfig has parsed the file already and reported any syntax error in it.
    const text = readFileSync(config.file, 'utf8');
    const raw = (config.file.endsWith('.toml') ? parseToml(text) : parseJsonc(text, [], { allowTrailingComma: true })) as Record<string, unknown>;
    section = options.environment ? (raw.env as Record<string, Record<string, unknown>>)[options.environment]! : raw;
  }
  return { file: config.file, dir: config.dir, environment: options.environment, section, d1Databases: config.d1Databases };
}
