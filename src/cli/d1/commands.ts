// `dione d1 …`: wrangler's d1 commands, with the same names, flags and exit codes. Data commands
// work on the local file wrangler uses unless --remote; --remote talks to a Dione server. Each
// group lives in its own module; this one puts them under `d1`.
import type { Command } from 'commander';
import { registerCreate } from './create.ts';
import { registerDatabases } from './databases.ts';
import { registerExecute } from './execute.ts';
import { registerExport } from './export.ts';
import { addGlobalFlags } from './global-flags.ts';
import { registerInsights } from './insights.ts';
import { registerMigrations } from './migrations.ts';
import { serverOptions } from './options.ts';
import { registerTimeTravel } from './time-travel.ts';

export function registerD1(program: Command): void {
  const d1 = program.command('d1').description("Cloudflare D1's wrangler commands, on local files or a Dione server");
  registerExecute(d1);
  registerExport(d1);
  registerMigrations(d1);
  registerCreate(d1);
  registerDatabases(d1);
  registerInsights(d1);
  registerTimeTravel(d1, serverOptions);
  addGlobalFlags(d1);
}
