// `dione d1 execute` (--command or --file) and `dione d1 import`, as wrangler runs them: a
// --command is one atomic batch; a file is one transaction (locally, streamed through it; on a
// server, through the REST API's import), unless --chunk-size asks for chunks that each commit and
// that --from-line resumes. Results print as wrangler prints them: tables on a terminal, JSON
// elsewhere and with --json.
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import type { D1Result } from '../../index.ts';
import { splitStatements } from '../../sql/statements.ts';
import { startProgress } from '../progress.ts';
import { assertNotDatabaseFile, noStatementMessage, statementsOf, streamStatements } from '../sql-stream.ts';
import { JsonArraySpool } from './json-spool.ts';
import { locationOptions, plural } from './options.ts';
import { CliError, dim, resultsAsTables, resultTable, run, say } from './output.ts';
import { importThroughApi, type RemoteImport } from './remote-import.ts';
import { type ImportTotals, importFile, runBatch } from './run-sql.ts';
import { checkLocation, type LocalTarget, type RemoteTarget, type Target, type TargetOptions, withTarget } from './target.ts';

interface ExecuteOptions extends TargetOptions {
  command?: string;
  file?: string;
  json?: boolean;
  yes?: boolean;
  fromLine?: string;
  chunkSize?: string;
}

/** The command: `execute` prints one result per statement of a local file (as wrangler), `import` the summary. */
type Verb = 'execute' | 'import';

/** A local result as wrangler prints it: a BLOB as the text "[1, 2]", meta cut to its duration. */
function localJson(r: D1Result) {
  const rows = (r.results ?? []) as Record<string, unknown>[];
  const results = rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Array.isArray(v) ? `[${v.join(', ')}]` : v])));
  return { results, success: r.success, meta: { duration: r.meta.duration } };
}

function printTables(results: { results?: unknown[] }[]): void {
  for (const r of results) {
    const rows = (r.results ?? []) as Record<string, unknown>[];
    if (rows.length > 0) say(resultTable(rows));
  }
}

/** wrangler's import summary. */
function summaryOf(statements: number, meta: { rows_read: number; rows_written: number; size_after: number }) {
  return {
    'Total queries executed': statements,
    'Rows read': meta.rows_read,
    'Rows written': meta.rows_written,
    'Database size (MB)': (meta.size_after / 1_000_000).toFixed(2),
  };
}

function positiveNumber(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag} must be a whole number of at least 1, got "${value}".`);
  return n;
}

/** Whether any statement of `sql` writes (what a token must allow). */
const writes = (sql: string) => splitStatements(sql).some((s) => !s.empty && s.kind === 'write');

/** The SQL to run: a --command or a --file (an empty flag counts as none, as in wrangler). */
type Input = { command: string; file?: undefined } | { file: string; command?: undefined };

/** Refuses SQL without a statement with wrangler's error, before any database is opened or created. */
async function checkHasStatements(input: Input): Promise<void> {
  if (input.file === undefined) {
    if (statementsOf(input.command, '--command').length === 0) throw new CliError(noStatementMessage(input.command));
    return;
  }
  const statements = streamStatements(input.file);
  const first = await statements.next();
  await statements.return(undefined);
  if (!first.done) return;
  throw new CliError(noStatementMessage(readFileSync(input.file, 'utf8')), { hint: `${input.file} holds no SQL statement.` });
}

function header(target: Target, options: ExecuteOptions): void {
  if (options.json) return;
  say(`🌀 Executing on ${target.description}:`);
  say(
    dim(
      target.kind === 'local'
        ? '🌀 To execute on your remote database, add a --remote flag to your command.'
        : '🌀 To execute on your local development database, remove the --remote flag from your command.',
    ),
  );
}

async function localCommand(target: LocalTarget, sql: string, options: ExecuteOptions): Promise<void> {
  const statements = statementsOf(sql, '--command');
  const results = await runBatch(target.db, statements, '--command');
  if (!options.json) say(`🚣 ${plural(results.length, 'command')} executed successfully.`);
  if (resultsAsTables(options.json)) printTables(results);
  else say(JSON.stringify(results.map(localJson), null, 2));
}

/** One row of D1's REST answer to `/query`. */
interface QueryResult {
  results?: unknown[];
  success: boolean;
  meta?: { duration?: number };
}

/** On a server, as wrangler: the REST API's /query, its answer printed as it comes. */
async function remoteCommand(target: RemoteTarget, sql: string, options: ExecuteOptions): Promise<void> {
  const results = await target.server.onDatabase<QueryResult[]>('POST', target.database.uuid, '/query', { sql }, writes(sql) ? 'write' : 'read');
  if (!options.json) {
    const ms = results.reduce((sum, r) => sum + (r.meta?.duration ?? 0), 0);
    say(`🚣 Executed ${results.length === 1 ? '1 command' : `${results.length} commands`} in ${ms.toFixed(2)}ms`);
  }
  if (resultsAsTables(options.json)) printTables(results);
  else say(JSON.stringify(results, null, 2));
}

/** A summary prints as JSON with --json, and for `execute` (wrangler's rule) wherever stdout is no terminal. */
const summaryAsJson = (options: ExecuteOptions, verb: Verb) => options.json || (verb === 'execute' && !resultsAsTables(options.json));

interface FileRun {
  totals: ImportTotals;
  /** Result tables collected for a terminal (statements that returned rows). */
  tables: D1Result[];
}

/** Streams the file through the target's binding: one transaction, or chunks with `commitEvery`; each result to `spool` when given. */
async function streamFile(target: Target, file: string, options: ExecuteOptions, commitEvery: number | undefined, spool?: JsonArraySpool): Promise<FileRun> {
  const size = statSync(file).size;
  const progress = options.json || size < 1 << 20 ? undefined : startProgress('Importing', size, 'bytes');
  const tables: D1Result[] = [];
  const keepTables = resultsAsTables(options.json);
  try {
    const totals = await importFile(target.db, file, {
      commitEvery,
      fromLine: positiveNumber('--from-line', options.fromLine),
      onBytes: (b) => progress?.update(b),
      onResults: (_statements, results) => {
        for (const r of results) {
          spool?.push(localJson(r));
          if (keepTables && (r.results?.length ?? 0) > 0) tables.push(r);
        }
      },
    });
    progress?.done();
    return { totals, tables };
  } catch (e) {
    progress?.failed('the import stopped at a failing statement');
    throw e;
  }
}

/** `execute --file` on a local database: wrangler's output, one result per statement. */
async function localFile(target: LocalTarget, file: string, options: ExecuteOptions, commitEvery: number | undefined): Promise<void> {
  const spool = resultsAsTables(options.json) ? undefined : new JsonArraySpool();
  try {
    const { totals, tables } = await streamFile(target, file, options, commitEvery, spool);
    if (!options.json) say(`🚣 ${plural(totals.statements, 'command')} executed successfully.`);
    if (spool) await spool.writeTo(process.stdout);
    else {
      printTables(tables);
      say(resultTable([summaryOf(totals.statements, { rows_read: totals.rowsRead, rows_written: totals.rowsWritten, size_after: totals.sizeAfter })]));
    }
  } finally {
    spool?.dispose();
  }
}

/** A file imported in chunks (--chunk-size, --from-line) or by `import` locally: the summary of every statement. */
async function fileSummary(target: Target, file: string, options: ExecuteOptions, commitEvery: number | undefined, verb: Verb): Promise<void> {
  const { totals } = await streamFile(target, file, options, commitEvery);
  const meta = { rows_read: totals.rowsRead, rows_written: totals.rowsWritten, size_after: totals.sizeAfter, duration: totals.duration };
  const summary = summaryOf(totals.statements, meta);
  if (summaryAsJson(options, verb)) {
    if (!options.json) say(`🚣 ${plural(totals.statements, 'command')} executed successfully.`);
    say(JSON.stringify([{ results: [summary], success: true, meta }], null, 2));
    return;
  }
  say(resultTable([summary]));
  say(`🚣 ${plural(totals.statements, 'command')} executed successfully.`);
}

/** A file on a server, as wrangler runs it: the REST API's import, one transaction; its result printed as wrangler prints it. */
async function remoteFile(target: RemoteTarget, file: string, options: ExecuteOptions, verb: Verb): Promise<void> {
  const log = (line: string) => {
    if (!options.json) say(line);
  };
  log(dim('Note: if the execution fails to complete, your DB will return to its original state and you can safely retry.'));
  const result: RemoteImport = await importThroughApi(target, file, log);
  const { num_queries, final_bookmark, meta } = result;
  log(`🚣 Executed ${num_queries} queries in ${meta.duration.toFixed(2)}ms (${meta.rows_read} rows read, ${meta.rows_written} rows written)`);
  log(dim(`   Database is currently at bookmark ${final_bookmark}.`));
  const summary = summaryOf(num_queries, meta);
  if (summaryAsJson(options, verb)) say(JSON.stringify([{ results: [summary], success: true, finalBookmark: final_bookmark, meta }], null, 2));
  else say(resultTable([summary]));
}

async function runFile(target: Target, file: string, options: ExecuteOptions, verb: Verb): Promise<void> {
  const chunkSize = positiveNumber('--chunk-size', options.chunkSize);
  const chunked = chunkSize !== undefined || options.fromLine !== undefined;
  if (target.kind === 'remote') {
    if (!chunked) return remoteFile(target, file, options, verb);
    return fileSummary(target, file, options, chunkSize ?? 1000, verb);
  }
  if (verb === 'execute') return localFile(target, file, options, chunkSize);
  return fileSummary(target, file, options, chunkSize, verb);
}

/** wrangler's checks of the flags, in its order; the input they give. */
function inputOf(options: ExecuteOptions): Input {
  if (options.command && options.file) throw new CliError("Error: can't provide both --command and --file.");
  if (options.file) return { file: options.file };
  if (options.command) return { command: options.command };
  throw new CliError('Error: must provide --command or --file.', { hint: 'Pass the SQL with --command "…" or a file with --file <path>.' });
}

async function execute(name: string, options: ExecuteOptions, verb: Verb): Promise<void> {
  const input = inputOf(options);
  checkLocation(options);
  if (input.file !== undefined) assertNotDatabaseFile(input.file);
  positiveNumber('--chunk-size', options.chunkSize);
  positiveNumber('--from-line', options.fromLine);
  await checkHasStatements(input);
  const needs = input.file !== undefined || writes(input.command) ? 'write' : 'read';
  // A local file runs in one transaction of its own unless chunks were asked for.
  const oneTransaction = input.file !== undefined && !options.remote && options.chunkSize === undefined;
  await withTarget(
    name,
    options,
    needs,
    async (target) => {
      header(target, options);
      if (input.file !== undefined) return runFile(target, input.file, options, verb);
      return target.kind === 'local' ? localCommand(target, input.command, options) : remoteCommand(target, input.command, options);
    },
    { transactions: oneTransaction },
  );
}

export function registerExecute(d1: Command): void {
  locationOptions(d1.command('execute <database>').description('run SQL (--command or --file) on a database'))
    .option('--command <sql>', 'the SQL to run')
    .option('--file <path>', 'a file of SQL to run, in one transaction (streamed)')
    .option('--json', 'print the results as JSON')
    .option('-y, --yes', 'answer yes to confirmations (accepted for wrangler; nothing to confirm)')
    .option('--chunk-size <n>', 'commit --file every n statements instead of all at once, so that --from-line can resume after a failure')
    .option('--from-line <n>', 'skip the statements before this line of --file (resume an interrupted import)')
    .action((name: string, options: ExecuteOptions) => run(options.json, () => execute(name, options, 'execute')));

  locationOptions(d1.command('import <database> <file>').description('stream a SQL dump into a database, in one transaction'))
    .option('--json', 'print the summary as JSON')
    .option('-y, --yes', 'answer yes to confirmations (accepted for wrangler; nothing to confirm)')
    .option('--chunk-size <n>', 'commit every n statements instead of all at once, so that --from-line can resume after a failure')
    .option('--from-line <n>', 'skip the statements before this line (resume an interrupted import)')
    .action((name: string, file: string, options: ExecuteOptions) => run(options.json, () => execute(name, { ...options, file }, 'import')));
}
