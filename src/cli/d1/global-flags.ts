// wrangler's global flags, on every d1 command: --cwd (run as if started in that folder) and
// --env-file (environment files to load, in order; without it .env and .env.local, plus
// .env.<env> and .env.<env>.local with --env, from the working directory). A variable already set
// in the process's environment keeps its value, as in wrangler; so CLOUDFLARE_ENV, DIONE_URL and
// DIONE_TOKEN can come from a project's .env.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type Command, Option } from 'commander';
import dotenv from 'dotenv';
import dotenvExpand from 'dotenv-expand';
import { CliError } from './output.ts';

interface GlobalFlags {
  cwd?: string;
  envFile?: string[];
  env?: string;
}

const defaultEnvFiles = (env: string | undefined) => ['.env', '.env.local', ...(env === undefined ? [] : [`.env.${env}`, `.env.${env}.local`])];

/** Loads `files` (later ones win over earlier ones) into process.env, under what it holds already; a missing file is skipped. */
function loadEnvFiles(files: string[]): void {
  const parsed: Record<string, string> = {};
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(path.resolve(file), 'utf8');
    } catch {
      continue;
    }
    Object.assign(parsed, dotenv.parse(text));
  }
  const env: Record<string, string | undefined> = { ...process.env };
  dotenvExpand.expand({ processEnv: env as Record<string, string>, parsed });
  for (const key of Object.keys(parsed)) process.env[key] = env[key];
}

function applyGlobalFlags({ cwd, envFile, env }: GlobalFlags): void {
  if (cwd !== undefined) {
    try {
      process.chdir(cwd);
    } catch (e) {
      throw new CliError(`Cannot run in ${cwd} (--cwd): ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`);
    }
  }
  loadEnvFiles(envFile ?? defaultEnvFiles(env));
}

function leaves(command: Command): Command[] {
  return command.commands.length === 0 ? [command] : command.commands.flatMap(leaves);
}

/** Adds --cwd and --env-file to every command under `d1`, applied before the command runs. */
export function addGlobalFlags(d1: Command): void {
  for (const command of leaves(d1)) {
    command
      .option('--cwd <dir>', 'run as if started in this directory instead of the current one')
      .addOption(
        new Option('--env-file <file>', 'an .env file to load (repeatable; later ones win); default .env, .env.local and, with --env, .env.<env>, .env.<env>.local').argParser(
          (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
        ),
      );
  }
  d1.hook('preAction', (_d1, command) => {
    try {
      applyGlobalFlags(command.opts<GlobalFlags>());
    } catch (e) {
      command.error(`✘ [ERROR] ${e instanceof Error ? e.message : String(e)}`);
    }
  });
}
