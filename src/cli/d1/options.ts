// The flags the d1 commands share, and wrangler's confirmation prompt.
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';

/** -c/--config and -e/--env: which wrangler config, and which of its environments. */
export function configOptions(command: Command): Command {
  return command.option('-c, --config <file>', 'the wrangler.toml, wrangler.json or wrangler.jsonc to use').option('-e, --env <name>', 'the environment in the config');
}

/** --local (the default) or --remote, for the commands that work on data. */
export function locationOptions(command: Command, { persist = true }: { persist?: boolean } = {}): Command {
  command
    .option('--local', 'use the local database (the default), where wrangler keeps it')
    .option('--remote', 'use the database on a Dione server (--url or DIONE_URL, token in DIONE_TOKEN)')
    .option('--preview', 'use preview_database_id (with --remote)')
    .option('--url <url>', 'the Dione server for --remote (default: DIONE_URL)');
  if (persist) command.option('--persist-to <dir>', 'where local state is kept (as wrangler; default <project>/.wrangler/state)');
  return configOptions(command);
}

/** The commands that work on a server only (as in wrangler, which has no --local for them). */
export function serverOptions(command: Command): Command {
  return configOptions(command.option('--url <url>', 'the Dione server (default: DIONE_URL)').option('--local', 'not supported: see the message'));
}

const interactive = () => Boolean(process.stdin.isTTY && process.stdout.isTTY) && !process.env.CI;

/** wrangler confirms on a terminal and takes "yes" everywhere else (CI, pipes). */
export async function confirm(question: string, skip?: boolean): Promise<boolean> {
  if (skip || !interactive()) return true;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = (await rl.question(`${question} (Y/n) `)).trim().toLowerCase();
    return answer === '' || answer === 'y' || answer === 'yes';
  } finally {
    rl.close();
  }
}

export const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
