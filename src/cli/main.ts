// The `dione` command line.
import './broken-pipe.ts';
import path from 'node:path';
import { Command } from 'commander';
import { open } from '../index.ts';
import { wranglerDevFile } from '../platform/local-d1.ts';
import { registerD1 } from './d1/commands.ts';
import { registerServe } from './serve.ts';
import { sqlPrompt } from './sql-prompt.ts';

const program: Command = new Command(); // typed, so that program.error() ends control flow
program.name('dione').description('A self-hostable database that speaks Cloudflare D1.');

interface DevOptions {
  data: string;
  db?: string;
  binding?: string;
  config?: string;
  env?: string;
  persistTo?: string;
}

/** The file `dione dev` opens: ./.dione/<name>.sqlite, or with --binding the one `wrangler dev` uses. */
function devDatabase(options: DevOptions): { file: string; about: string } {
  if (options.binding === undefined) {
    for (const [flag, value] of [['--config', options.config], ['--env', options.env], ['--persist-to', options.persistTo]] as const) {
      if (value !== undefined) program.error(`${flag} works with --binding only (it says which wrangler config and state to read)`);
    }
    const name = options.db ?? 'dev';
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(name)) program.error(`invalid database name "${name}": use letters, digits, "-" and "_" (at most 64)`);
    const file = path.resolve(options.data, `${name}.sqlite`);
    return { file, about: file };
  }
  if (options.db !== undefined) program.error('--db and --binding name two databases: give one');
  try {
    const { file, configFile } = wranglerDevFile(options.binding, options);
    return { file, about: `${file} (binding ${options.binding} of ${path.relative(process.cwd(), configFile) || configFile}, as wrangler dev)` };
  } catch (e) {
    program.error(e instanceof Error ? e.message : String(e));
  }
}

program
  .command('dev')
  .description('open a local database (./.dione/<name>.sqlite, or the file wrangler dev uses for a D1 binding) and give a SQL prompt')
  .option('--data <dir>', 'directory holding the database files', '.dione')
  .option('--db <name>', 'database name (default "dev")')
  .option('--binding <name>', 'a D1 binding of your wrangler config: open the local file wrangler dev uses for it')
  .option('-c, --config <file>', 'with --binding: the wrangler config (default: wrangler.json, wrangler.jsonc or wrangler.toml, from here up)')
  .option('-e, --env <name>', 'with --binding: the environment of the config whose d1_databases to use')
  .option('--persist-to <dir>', 'with --binding: the state directory, as wrangler dev --persist-to (default .wrangler/state beside the config)')
  .action(async (options: DevOptions) => {
    const { file, about } = devDatabase(options);
    const db = open(file);
    const interactive = Boolean(process.stdin.isTTY);
    if (interactive) process.stdout.write(`dione: database ${about}\nType .help for help, .quit to leave.\n`);
    const failures = await sqlPrompt(db, { input: process.stdin, output: process.stdout, interactive });
    db.close();
    if (failures > 0 && !interactive) process.exitCode = 1;
  });

registerServe(program);
registerD1(program);

await program.parseAsync(process.argv);
