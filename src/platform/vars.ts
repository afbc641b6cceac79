// A Worker's vars in local development, assembled as wrangler (4.86) does: the config's [vars]
// (strings, or JSON values), overridden by the secrets of .dev.vars.<environment> or else .dev.vars
// beside the config file; when neither exists, by .env, .env.local, .env.<environment> and
// .env.<environment>.local (later files win, ${VAR} references expanded), unless
// CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV=false. With a `secrets.required` list in the config, only
// those names are taken from the files.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import dotenv from 'dotenv';
import dotenvExpand from 'dotenv-expand';
import type { WranglerProject } from './project.ts';

/** wrangler's boolean environment variables: "true" or "false" in any case, else an error. */
function flag(name: string, fallback: boolean): boolean {
  const value = process.env[name];
  if (value === undefined) return fallback;
  if (value.toLowerCase() === 'true') return true;
  if (value.toLowerCase() === 'false') return false;
  throw new Error(`Expected ${name} to be "true" or "false", but got ${JSON.stringify(value)}`);
}

function readIfFile(file: string): string | undefined {
  return existsSync(file) && statSync(file).isFile() ? readFileSync(file, 'utf8') : undefined;
}

function devVarsFile(dir: string, environment: string | undefined): Record<string, string> | undefined {
  const base = path.join(dir, '.dev.vars');
  for (const file of environment === undefined ? [base] : [`${base}.${environment}`, base]) {
    const text = readIfFile(file);
    if (text !== undefined) return dotenv.parse(text);
  }
  return undefined;
}

function dotEnvFiles(dir: string, files: string[], includeProcessEnv: boolean): Record<string, string> {
  const parsed: Record<string, string> = {};
  for (const file of files) {
    const text = readIfFile(path.resolve(dir, file));
    if (text !== undefined) Object.assign(parsed, dotenv.parse(text));
  }
  const expanded: Record<string, string> = includeProcessEnv ? ({ ...process.env } as Record<string, string>) : {};
  dotenvExpand.expand({ processEnv: expanded, parsed });
  return expanded;
}

function defaultEnvFiles(environment: string | undefined): string[] {
  return environment === undefined ? ['.env', '.env.local'] : ['.env', '.env.local', `.env.${environment}`, `.env.${environment}.local`];
}

function configVars(project: WranglerProject): Record<string, unknown> {
  const vars = project.section.vars;
  if (vars === undefined) return {};
  if (typeof vars !== 'object' || vars === null || Array.isArray(vars)) {
    throw new Error(`${project.file}: vars must be a table of names to values`);
  }
  // Values other than strings are JSON bindings: plain JSON data, as workerd hands them to a Worker.
  return Object.fromEntries(Object.entries(vars).map(([name, value]) => [name, typeof value === 'string' ? value : JSON.parse(JSON.stringify(value))]));
}

function requiredSecrets(project: WranglerProject): string[] | undefined {
  const secrets = project.section.secrets as { required?: unknown } | undefined;
  if (secrets === undefined) return undefined;
  return Array.isArray(secrets.required) ? secrets.required.filter((s): s is string => typeof s === 'string') : [];
}

/**
 * The vars env gets; `envFiles` (relative to the project's directory) replaces the .dev.vars/.env
 * lookup, whose per-environment files are those of `filesEnvironment` (wrangler's getPlatformProxy:
 * the environment its options name, even when CLOUDFLARE_ENV chose the config's section).
 */
export function localVars(project: WranglerProject, envFiles: string[] | undefined, warn: (message: string) => void, filesEnvironment: string | undefined): Record<string, unknown> {
  const result = configVars(project);
  const required = requiredSecrets(project);
  let loaded = envFiles?.length ? undefined : devVarsFile(project.dir, filesEnvironment);
  if (loaded === undefined && flag('CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV', true)) {
    const includeProcessEnv = required !== undefined || flag('CLOUDFLARE_INCLUDE_PROCESS_ENV', false);
    loaded = dotEnvFiles(project.dir, envFiles ?? defaultEnvFiles(filesEnvironment), includeProcessEnv);
  }
  if (required !== undefined) {
    for (const name of required) if (loaded !== undefined && name in loaded) result[name] = loaded[name];
    const missing = required.filter((name) => loaded === undefined || !(name in loaded));
    if (missing.length > 0) warn(`the required secrets ${missing.join(', ')} are in none of .dev.vars, the .env files and the environment.`);
  } else if (loaded !== undefined) {
    Object.assign(result, loaded);
  }
  return result;
}
