// `dione d1 execute` (--command or --file) and `dione d1 import`: SQL run through the target's
// binding, the same way on a local file and on a server. A --command is one atomic batch; a file
// streams through in atomic chunks, a failure names its line and says how to resume.
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import type { D1Result } from '../../index.ts';
import { splitStatements } from '../../sql/statements.ts';
import { startProgress } from '../progress.ts';
import { assertNotDatabaseFile, statementsOf } from '../sql-stream.ts';
import { locationOptions, plural } from './options.ts';
import { CliError, dim, resultTable, run, say } from './output.ts';
import { type ImportTotals, importFile, runBatch } from './run-sql.ts';
import { checkLocation, type Target, type TargetOptions, withTarget } from './target.ts';

interface ExecuteOptions extends TargetOptions {
  command?: string;
  file?: string;
  json?: boolean;
  yes?: boolean;
  fromLine?: string;
  chunkSize?: string;
}

/**
 * What --json prints for a file: wrangler's shapes, one result per statement (its local execute)
 * or the import summary (its remote execute, and `dione d1 import`).
 */
type FileJson = 'statements' | 'summary';

const jsonResult = (r: D1Result) => ({ results: r.results, success: r.success, meta: { duration: r.meta.duration } });

function printResults(results: { results?: unknown[] }[]): void {
  for (const r of results) {
    const rows = (r.results ?? []) as Record<string, unknown>[];
    if (rows.length > 0) say(resultTable(rows));
  }
}

/** wrangler's import summary, with the totals of every statement. */
function summaryOf(totals: ImportTotals) {
  return {
    'Total queries executed': totals.statements,
    'Rows read': totals.rowsRead,
    'Rows written': totals.rowsWritten,
    'Database size (MB)': (totals.sizeAfter / 1_000_000).toFixed(2),
  };
}

function positiveNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag} must be a whole number of at least 1, got "${value}".`);
  return n;
}

async function executeCommand(target: Target, sql: string, options: ExecuteOptions): Promise<void> {
  const statements = statementsOf(sql, '--command');
  const results = await runBatch(target.db, statements, '--command');
  if (options.json) say(JSON.stringify(results.map(jsonResult), null, 2));
  else {
    printResults(results);
    say(`🚣 ${plural(statements.length, 'command')} executed successfully.`);
  }
}

async function executeFile(target: Target, file: string, options: ExecuteOptions, json: FileJson): Promise<void> {
  const size = statSync(file).size;
  const progress = options.json || size < 1 << 20 ? undefined : startProgress('Importing', size, 'bytes');
  const collected: ReturnType<typeof jsonResult>[] = [];
  const keepAll = options.json && json === 'statements';
  let totals: ImportTotals;
  try {
    totals = await importFile(target.db, file, {
      fromLine: positiveNumber('--from-line', options.fromLine),
      chunkStatements: positiveNumber('--chunk-size', options.chunkSize),
      onBytes: (b) => progress?.update(b),
      onResults: (_s, results) => {
        for (const r of results) if (keepAll || (!options.json && (r.results?.length ?? 0) > 0)) collected.push(jsonResult(r));
      },
    });
  } catch (e) {
    progress?.failed('the import stopped at a failing statement');
    throw e;
  }
  progress?.done();
  const summary = summaryOf(totals);
  if (options.json) {
    const meta = { rows_read: totals.rowsRead, rows_written: totals.rowsWritten, size_after: totals.sizeAfter, duration: totals.duration };
    say(JSON.stringify(json === 'statements' ? collected : [{ results: [summary], success: true, meta }], null, 2));
    return;
  }
  printResults(collected);
  say(resultTable([summary]));
  say(`🚣 ${plural(totals.statements, 'command')} executed successfully.`);
}

/** Whether any statement of `sql` writes (what a token must allow). */
const writes = (sql: string) => splitStatements(sql).some((s) => !s.empty && s.kind === 'write');

async function execute(name: string, options: ExecuteOptions, fileJson: FileJson | undefined): Promise<void> {
  if (options.command === undefined && options.file === undefined) {
    throw new CliError('Missing required option --command or --file. Pass the SQL with --command "…" or a file with --file <path>.');
  }
  if (options.command !== undefined && options.file !== undefined) throw new CliError("Error: can't provide both --command and --file.");
  if (options.file !== undefined) {
    if (!existsSync(options.file)) throw new CliError(`The file ${options.file} does not exist.`);
    assertNotDatabaseFile(options.file);
  }
  checkLocation(options);
  const needs = options.file !== undefined || writes(options.command!) ? 'write' : 'read';
  await withTarget(name, options, needs, async (target) => {
    if (!options.json) {
      say(`🌀 Executing on ${target.description}:`);
      if (target.kind === 'local') say(dim('🌀 To execute on your remote database, add a --remote flag to your command.'));
    }
    if (options.file === undefined) return executeCommand(target, options.command!, options);
    return executeFile(target, options.file, options, fileJson ?? (target.kind === 'local' ? 'statements' : 'summary'));
  });
}

export function registerExecute(d1: Command): void {
  locationOptions(d1.command('execute <database>').description('run SQL (--command or --file) on a database'))
    .option('--command <sql>', 'the SQL to run')
    .option('--file <path>', 'a file of SQL to run (streamed in atomic chunks)')
    .option('--json', 'print the results as JSON')
    .option('-y, --yes', 'answer yes to confirmations (accepted for wrangler; nothing to confirm)')
    .option('--from-line <n>', 'skip the statements before this line of --file (resume an interrupted import)')
    .option('--chunk-size <n>', 'statements per atomic chunk for --file (default 1000)')
    .action((name: string, options: ExecuteOptions) => run(options.json, () => execute(name, options, undefined)));

  locationOptions(d1.command('import <database> <file>').description('stream a SQL dump into a database, in atomic chunks'))
    .option('--json', 'print the summary as JSON')
    .option('-y, --yes', 'answer yes to confirmations (accepted for wrangler; nothing to confirm)')
    .option('--from-line <n>', 'skip the statements before this line (resume an interrupted import)')
    .option('--chunk-size <n>', 'statements per atomic chunk (default 1000)')
    .action((name: string, file: string, options: ExecuteOptions) => run(options.json, () => execute(name, { ...options, file }, 'summary')));
}
