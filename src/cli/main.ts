// The `dione` command line.
import path from 'node:path';
import { Command } from 'commander';
import { open } from '../index.ts';
import { registerD1 } from './d1/commands.ts';
import { registerServe } from './serve.ts';
import { sqlPrompt } from './sql-prompt.ts';

const program = new Command();
program.name('dione').description('A self-hostable database that speaks Cloudflare D1.');

program
  .command('dev')
  .description('open a local database (./.dione/<name>.sqlite by default) and give a SQL prompt')
  .option('--data <dir>', 'directory holding the database files', '.dione')
  .option('--db <name>', 'database name', 'dev')
  .action(async (options: { data: string; db: string }) => {
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(options.db)) {
      program.error(`invalid database name "${options.db}": use letters, digits, "-" and "_" (at most 64)`);
    }
    const file = path.resolve(options.data, `${options.db}.sqlite`);
    const db = open(file);
    const interactive = Boolean(process.stdin.isTTY);
    if (interactive) process.stdout.write(`dione: database ${file}\nType .help for help, .quit to leave.\n`);
    const failures = await sqlPrompt(db, { input: process.stdin, output: process.stdout, interactive });
    db.close();
    if (failures > 0 && !interactive) process.exitCode = 1;
  });

registerServe(program);
registerD1(program);

await program.parseAsync(process.argv);
