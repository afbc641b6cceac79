// `dione d1 …`: wrangler's d1 commands, with the same names, flags and exit codes. Data commands
// work on the local file wrangler uses unless --remote; --remote talks to a Dione server.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import { type Command, Option } from 'commander';
import { dumpSql } from '../../engine/dump-sql.ts';
import type { D1Result } from '../../index.ts';
import { appliedMigrationsSql, checkNumbering, createMigration, discoverMigrations, migrationsTableSql, recordMigrationSql } from '../migrations.ts';
import { startProgress } from '../progress.ts';
import { assertNotDatabaseFile, type SqlStatement, statementsOf } from '../sql-stream.ts';
import { migrationsDir, migrationsTable, readWranglerConfig, requireDatabase } from '../wrangler-config.ts';
import { CliError, dim, green, resultTable, run, say } from './output.ts';
import { RestClient, serverUrl } from './rest.ts';
import { importFile, runBatch } from './run-sql.ts';
import { checkLocation, resolveTarget, type Target, type TargetOptions } from './target.ts';
import { registerTimeTravel } from './time-travel.ts';

interface ExecuteOptions extends TargetOptions {
  command?: string;
  file?: string;
  json?: boolean;
  yes?: boolean;
  fromLine?: string;
  chunkSize?: string;
}

const interactive = () => Boolean(process.stdin.isTTY && process.stdout.isTTY) && !process.env.CI;

/** wrangler confirms on a terminal and takes "yes" everywhere else (CI, pipes). */
async function confirm(question: string, skip?: boolean): Promise<boolean> {
  if (skip || !interactive()) return true;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = (await rl.question(`${question} (Y/n) `)).trim().toLowerCase();
    return answer === '' || answer === 'y' || answer === 'yes';
  } finally {
    rl.close();
  }
}

function locationOptions(command: Command, { persist = true }: { persist?: boolean } = {}): Command {
  command
    .option('--local', 'use the local database (the default), where wrangler keeps it')
    .option('--remote', 'use the database on a Dione server (--url or DIONE_URL, token in DIONE_TOKEN)')
    .option('--preview', 'use preview_database_id (with --remote)')
    .option('--url <url>', 'the Dione server for --remote (default: DIONE_URL)');
  if (persist) command.option('--persist-to <dir>', 'where local state is kept (as wrangler; default <project>/.wrangler/state)');
  return configOptions(command);
}

function configOptions(command: Command): Command {
  return command.option('-c, --config <file>', 'the wrangler.toml, wrangler.json or wrangler.jsonc to use').option('-e, --env <name>', 'the environment in the config');
}

function printResults(results: { results?: unknown[] }[]): void {
  for (const r of results) {
    const rows = (r.results ?? []) as Record<string, unknown>[];
    if (rows.length > 0) say(resultTable(rows));
  }
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

const jsonResult = (r: D1Result) => ({ results: r.results, success: r.success, meta: { duration: r.meta.duration } });

async function withTarget<T>(name: string, options: TargetOptions, body: (t: Target) => Promise<T>, mustExist = false): Promise<T> {
  const target = await resolveTarget(name, options, { mustExist });
  try {
    return await body(target);
  } finally {
    target.close();
  }
}

// --- execute and import ------------------------------------------------------------------------

async function md5File(file: string): Promise<string> {
  const hash = createHash('md5');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

interface ImportResult {
  success: boolean;
  status: string;
  error?: string;
  errors?: string[];
  messages?: string[];
  at_bookmark?: string;
  result?: { final_bookmark: string; num_queries: number; meta: { duration: number; rows_read: number; rows_written: number; size_after: number } };
  upload_url?: string;
  filename?: string;
}

/** wrangler's import protocol: init → upload (streamed) → ingest → poll. */
async function remoteImport(target: Target, file: string, json?: boolean): Promise<unknown> {
  const rest = target.rest!;
  const base = `${await rest.databases()}/${target.uuid}/import`;
  const size = statSync(file).size;
  const etag = await md5File(file);
  const init = (await rest.request<ImportResult>('POST', base, { action: 'init', etag })).result;
  if (init.upload_url) {
    const progress = json ? undefined : startProgress('Uploading', size, 'bytes');
    let sent = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        sent += chunk.length;
        progress?.update(sent);
        callback(null, chunk);
      },
    });
    const body = Readable.toWeb(createReadStream(file).pipe(counter)) as ReadableStream;
    const upload = await fetch(init.upload_url, { method: 'PUT', body, duplex: 'half', headers: { 'content-length': String(size) } } as RequestInit);
    progress?.stop();
    if (!upload.ok) throw new CliError(`Uploading ${file} to ${target.description} failed: HTTP ${upload.status} ${await upload.text()}`);
  }
  let state = (await rest.request<ImportResult>('POST', base, { action: 'ingest', filename: init.filename, etag })).result;
  while (state.status === 'active') {
    await new Promise((r) => setTimeout(r, 500));
    state = (await rest.request<ImportResult>('POST', base, { action: 'poll', current_bookmark: state.at_bookmark, filename: init.filename })).result;
  }
  if (state.status === 'error' || !state.success) {
    throw new CliError(`Importing ${file} into ${target.description} failed: ${state.error ?? state.errors?.join('; ') ?? 'unknown error'}. Nothing from the file was kept; fix it and run the command again.`);
  }
  const meta = state.result!.meta;
  return {
    results: [
      {
        'Total queries executed': state.result!.num_queries,
        'Rows read': meta.rows_read,
        'Rows written': meta.rows_written,
        'Database size (MB)': (meta.size_after / 1_000_000).toFixed(2),
      },
    ],
    success: true,
    finalBookmark: state.result!.final_bookmark,
    meta,
  };
}

async function localFileExecute(target: Target, file: string, options: ExecuteOptions): Promise<void> {
  const size = statSync(file).size;
  const progress = options.json || size < 1 << 20 ? undefined : startProgress('Importing', size, 'bytes');
  const collected: ReturnType<typeof jsonResult>[] = [];
  let result: { statements: number; chunks: number };
  try {
    result = await importFile(target.db, file, {
      fromLine: options.fromLine ? Number(options.fromLine) : undefined,
      chunkStatements: options.chunkSize ? Number(options.chunkSize) : undefined,
      onBytes: (b) => progress?.update(b),
      onResults: (_s, results) => {
        for (const r of results) if (options.json || (r.results?.length ?? 0) > 0) collected.push(jsonResult(r));
      },
    });
  } finally {
    progress?.stop();
  }
  if (options.json) say(JSON.stringify(collected, null, 2));
  else {
    printResults(collected);
    say(`🚣 ${plural(result.statements, 'command')} executed successfully.`);
  }
}

async function execute(name: string, options: ExecuteOptions): Promise<void> {
  if (options.command === undefined && options.file === undefined) {
    throw new CliError('Missing required option --command or --file. Pass the SQL with --command "…" or a file with --file <path>.');
  }
  if (options.command !== undefined && options.file !== undefined) throw new CliError("Error: can't provide both --command and --file.");
  if (options.file !== undefined) {
    if (!existsSync(options.file)) throw new CliError(`The file ${options.file} does not exist.`);
    assertNotDatabaseFile(options.file);
  }
  checkLocation(options);
  await withTarget(name, options, async (target) => {
    if (!options.json) {
      say(`🌀 Executing on ${target.description}:`);
      if (!target.remote) say(dim('🌀 To execute on your remote database, add a --remote flag to your command.'));
    }
    if (options.file !== undefined) {
      if (target.remote) {
        if (!(await confirm('⚠️ This process may take some time, during which your D1 database will be unavailable to serve queries.\n  Ok to proceed?', options.yes))) return;
        const answer = await remoteImport(target, options.file, options.json);
        if (options.json) say(JSON.stringify([answer], null, 2));
        else {
          printResults([answer as { results: unknown[] }]);
          say(`🚣 Executed ${(answer as { results: { 'Total queries executed': number }[] }).results[0]!['Total queries executed']} queries.`);
        }
        return;
      }
      await localFileExecute(target, options.file, options);
      return;
    }
    const statements = statementsOf(options.command!, '--command');
    const results = await runBatch(target.db, statements, '--command');
    if (options.json) say(JSON.stringify(results.map(jsonResult), null, 2));
    else {
      printResults(results);
      say(`🚣 ${plural(statements.length, 'command')} executed successfully.`);
    }
  });
}

// --- migrations --------------------------------------------------------------------------------

interface MigrationsContext {
  dir: string;
  table: string;
  pattern: string;
}

function migrationsContext(target: Target | undefined, name: string, options: TargetOptions): MigrationsContext {
  const config = target?.config ?? readWranglerConfig({ config: options.config, env: options.env });
  const entry = target?.entry ?? requireDatabase(config, name);
  const dir = migrationsDir(config, entry);
  const pattern = entry.migrations_pattern
    ? path.posix.relative(path.posix.normalize(entry.migrations_dir ?? 'migrations'), path.posix.normalize(entry.migrations_pattern))
    : '*.sql';
  return { dir, table: migrationsTable(entry), pattern };
}

async function unapplied(target: Target, ctx: MigrationsContext): Promise<string[]> {
  const names = discoverMigrations(ctx.dir, ctx.pattern);
  if (names.length === 0 && ctx.pattern === '*.sql' && discoverMigrations(ctx.dir, '*/migration.sql').length > 0) {
    throw new CliError(`No migrations present at ${ctx.dir}, but it has */migration.sql files: set migrations_pattern = "${path.basename(ctx.dir)}/*/migration.sql" in your wrangler config.`);
  }
  checkNumbering(ctx.dir, names);
  await runBatch(target.db, [{ sql: migrationsTableSql(ctx.table), line: 1 }], `the ${ctx.table} table`);
  const applied = await target.db.prepare(appliedMigrationsSql(ctx.table)).all<{ name: string }>();
  const done = new Set(applied.results.map((r) => r.name));
  return names.filter((n) => !done.has(n));
}

async function migrationsList(name: string, options: TargetOptions & { json?: boolean }): Promise<void> {
  await withTarget(name, options, async (target) => {
    const pending = await unapplied(target, migrationsContext(target, name, options));
    if (options.json) say(JSON.stringify(pending.map((n) => ({ name: n }))));
    else if (pending.length === 0) say('✅ No migrations to apply!');
    else {
      say(`Migrations to be applied:`);
      say(resultTable(pending.map((n) => ({ Name: n }))));
    }
  });
}

async function migrationsApply(name: string, options: TargetOptions & { json?: boolean; yes?: boolean }): Promise<void> {
  await withTarget(name, options, async (target) => {
    const ctx = migrationsContext(target, name, options);
    const pending = await unapplied(target, ctx);
    if (pending.length === 0) {
      say(options.json ? '[]' : '✅ No migrations to apply!');
      return;
    }
    if (!options.json) {
      say(`Migrations to be applied on ${target.description}:`);
      say(resultTable(pending.map((n) => ({ Name: n }))));
    }
    if (!(await confirm('About to apply migrations. Your database may not be available to serve requests during the migration, continue?', options.yes))) {
      say('Not applying migrations.');
      return;
    }
    const progress = options.json ? undefined : startProgress('Applying migrations', pending.length, 'migrations');
    const status: { name: string; status: string }[] = [];
    let failure: unknown;
    for (const migration of pending) {
      const file = path.join(ctx.dir, ...migration.split('/'));
      const statements: SqlStatement[] = [...statementsOf(readFileSync(file, 'utf8'), file), { sql: recordMigrationSql(ctx.table, migration), line: 0 }];
      try {
        await runBatch(target.db, statements, file);
        status.push({ name: migration, status: '✅' });
      } catch (e) {
        status.push({ name: migration, status: '❌' });
        failure = e;
        break;
      } finally {
        progress?.update(status.length);
      }
    }
    progress?.stop();
    if (options.json) say(JSON.stringify(status));
    else say(resultTable(status));
    if (failure) {
      const rest = pending.length - status.length;
      throw new CliError(
        `Migration ${status.at(-1)!.name} failed and was rolled back (nothing of it is applied)${rest > 0 ? `; the ${plural(rest, 'later migration')} did not run` : ''}.\n` +
          `${(failure as Error).message}\nFix the migration and run \`dione d1 migrations apply ${name}${target.remote ? ' --remote' : ' --local'}\` again.`,
      );
    }
    if (!options.json) say(green(`✅ Applied ${plural(status.length, 'migration')}.`));
  });
}

// --- export ------------------------------------------------------------------------------------

interface ExportOptions extends TargetOptions {
  output?: string;
  table?: string[];
  schema?: boolean;
  data?: boolean;
  yes?: boolean;
}

/** Writes lines joined by "\n" (no trailing newline, as wrangler) with backpressure. */
async function writeLines(output: string, lines: Iterable<string>, onLine: () => void): Promise<void> {
  const out = createWriteStream(output);
  let first = true;
  let buffer = '';
  const drain = () => new Promise<void>((resolve, reject) => {
    out.once('drain', resolve);
    out.once('error', reject);
  });
  for (const line of lines) {
    buffer += first ? line : `\n${line}`;
    first = false;
    onLine();
    if (buffer.length >= 1 << 20) {
      if (!out.write(buffer)) await drain();
      buffer = '';
    }
  }
  out.end(buffer);
  await new Promise<void>((resolve, reject) => {
    out.once('finish', resolve);
    out.once('error', reject);
  });
}

async function exportDatabase(name: string, options: ExportOptions): Promise<void> {
  if (!options.output) throw new CliError('Missing required option --output <file>: where to write the SQL dump.');
  if (existsSync(options.output) && statSync(options.output).isDirectory()) throw new CliError(`--output ${options.output} is a directory; give a file name, e.g. ${path.join(options.output, `${name}.sql`)}.`);
  if (options.schema === false && options.data === false) throw new CliError('--no-schema and --no-data cannot be used together: the export would be empty.');
  checkLocation(options);
  const dumpOptions = { noSchema: options.schema === false, noData: options.data === false, tables: options.table ?? [] };
  if (!options.remote) {
    const target = await resolveTarget(name, options, { mustExist: true });
    target.close();
    say(`🌀 Exporting ${target.description} to ${options.output}`);
    // The dump reads the file through a read-only connection of its own (the binding has no dump to SQL).
    const sqlite = new Database(target.file!, { readonly: true, fileMustExist: true });
    try {
      const tables = sqlite
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'")
        .pluck()
        .all() as string[];
      const selected = dumpOptions.tables.length ? tables.filter((t) => dumpOptions.tables.includes(t)) : tables;
      const missing = dumpOptions.tables.filter((t) => !tables.includes(t));
      if (missing.length) throw new CliError(`No table ${missing.join(', ')} in ${target.description}. Tables: ${tables.join(', ') || 'none'}.`);
      const rows = dumpOptions.noData ? 0 : selected.reduce((n, t) => n + Number(sqlite.prepare(`SELECT count(*) FROM "${t.replaceAll('"', '""')}"`).pluck().get()), 0);
      const progress = rows >= 10_000 ? startProgress('Exporting', rows, 'rows') : undefined;
      let done = 0;
      try {
        await writeLines(options.output, dumpSql(sqlite, dumpOptions), () => {
          if (++done % 1000 === 0) progress?.update(done);
        });
      } finally {
        progress?.update(rows);
        progress?.stop();
      }
    } finally {
      sqlite.close();
    }
    say(`🌀 Exported to ${options.output}`);
    return;
  }
  await withTarget(name, options, async (target) => {
    const rest = target.rest!;
    const resource = `${await rest.databases()}/${target.uuid}/export`;
    const body = { output_format: 'polling', dump_options: { no_schema: dumpOptions.noSchema, no_data: dumpOptions.noData, tables: dumpOptions.tables } };
    say(`🌀 Exporting ${target.description} to ${options.output}`);
    let state = (await rest.request<ImportResult & { result?: { signed_url: string } }>('POST', resource, body)).result;
    while (state.status === 'active') {
      await new Promise((r) => setTimeout(r, 500));
      state = (await rest.request<typeof state>('POST', resource, { ...body, current_bookmark: state.at_bookmark })).result;
    }
    if (state.status === 'error' || !state.success) throw new CliError(`Export of ${target.description} failed: ${state.error ?? 'unknown error'}`);
    const download = await fetch((state.result as unknown as { signed_url: string }).signed_url);
    if (!download.ok || !download.body) throw new CliError(`Downloading the dump failed: HTTP ${download.status}`);
    const size = Number(download.headers.get('content-length') ?? 0);
    const progress = size >= 1 << 20 ? startProgress('Downloading', size, 'bytes') : undefined;
    let got = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _enc, callback) {
        got += chunk.length;
        progress?.update(got);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(Readable.fromWeb(download.body as import('node:stream/web').ReadableStream), counter, createWriteStream(options.output!));
    } finally {
      progress?.stop();
    }
    say(`🌀 Exported to ${options.output}`);
  });
}

// --- database management (remote) ----------------------------------------------------------------

function remoteOnly(command: string, options: { local?: boolean }): void {
  if (options.local) {
    throw new CliError(
      `\`d1 ${command}\` works on a server only, as in wrangler (which has no --local for it). ` +
        'A local database is created on first use, from its d1_databases entry in your wrangler config, by `dione d1 execute <name> --local` or `dione d1 migrations apply <name> --local`. ' +
        'For a server, pass --url or set DIONE_URL.',
    );
  }
}

async function infoOf(rest: RestClient, name: string, options: { config?: string; env?: string }) {
  const config = readWranglerConfig({ config: options.config, env: options.env });
  const entry = config.d1Databases.find((d) => d.database_name === name || d.binding === name);
  for (const candidate of [entry?.database_id, entry?.database_name, name]) {
    if (!candidate) continue;
    const found = await rest.find(candidate);
    if (found) return found;
  }
  throw new CliError(`Couldn't find a D1 DB named '${name}' on the Dione server at ${rest.url}. \`dione d1 list\` shows the databases there.`);
}

export function registerD1(program: Command): void {
  const d1 = program.command('d1').description("Cloudflare D1's wrangler commands, on local files or a Dione server");

  locationOptions(d1.command('execute <database>').description('run SQL (--command or --file) on a database'))
    .option('--command <sql>', 'the SQL to run')
    .option('--file <path>', 'a file of SQL to run (streamed in atomic chunks)')
    .option('--json', 'print the results as JSON')
    .option('-y, --yes', 'answer yes to the confirmation')
    .option('--from-line <n>', 'skip the statements before this line of --file (resume an interrupted import)')
    .option('--chunk-size <n>', 'statements per atomic chunk for --file (default 1000)')
    .action((name: string, options: ExecuteOptions) => run(options.json, () => execute(name, options)));

  locationOptions(d1.command('import <database> <file>').description('stream a SQL dump into a database, in atomic chunks'))
    .option('--json', 'print the results as JSON')
    .option('-y, --yes', 'answer yes to the confirmation')
    .option('--from-line <n>', 'skip the statements before this line (resume an interrupted import)')
    .option('--chunk-size <n>', 'statements per atomic chunk (default 1000)')
    .action((name: string, file: string, options: ExecuteOptions) => run(options.json, () => execute(name, { ...options, file })));

  locationOptions(d1.command('export <database>').description('write a SQL dump of a database, as wrangler does'))
    .option('--output <file>', 'the file to write')
    .addOption(new Option('--table <name>', 'only this table (repeatable)').argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]))
    .option('--no-schema', 'only the data')
    .option('--no-data', 'only the schema')
    .option('-y, --skip-confirmation', 'no confirmation')
    .action((name: string, options: ExportOptions) => run(false, () => exportDatabase(name, options)));

  const migrations = d1.command('migrations').description('migrations in migrations_dir, tracked in the d1_migrations table');
  configOptions(migrations.command('create <database> <message>').description('write the next numbered migration file')).action((name: string, message: string, options: TargetOptions) =>
    run(false, async () => {
      const ctx = migrationsContext(undefined, name, options);
      const { name: created, file } = createMigration(ctx.dir, message, ctx.pattern);
      say(green(`✅ Successfully created Migration '${created}'!`));
      say(`\nThe migration is available for editing here\n${file}`);
    }),
  );
  locationOptions(migrations.command('list <database>').description('list the migrations not applied yet'))
    .option('--json', 'as JSON')
    .action((name: string, options: TargetOptions & { json?: boolean }) => run(options.json, () => migrationsList(name, options)));
  locationOptions(migrations.command('apply <database>').description('apply the pending migrations, each atomically, in order'))
    .option('--json', 'as JSON')
    .option('-y, --yes', 'answer yes to the confirmation')
    .action((name: string, options: TargetOptions & { json?: boolean; yes?: boolean }) => run(options.json, () => migrationsApply(name, options)));

  const remote = (command: Command) => configOptions(command.option('--url <url>', 'the Dione server (default: DIONE_URL)').option('--local', 'not supported: see the message'));

  remote(d1.command('create <name>').description('create a database on the server'))
    .option('--location <hint>', 'primary location hint (weur, eeur, apac, oc, wnam, enam)')
    .option('--jurisdiction <j>', 'eu, fedramp or us')
    .option('--binding <name>', 'the binding name for the printed config')
    .action((name: string, options: { url?: string; local?: boolean; location?: string; jurisdiction?: string; binding?: string; config?: string }) =>
      run(false, async () => {
        remoteOnly('create', options);
        const rest = new RestClient(serverUrl(options.url));
        const body: Record<string, string> = { name };
        if (options.location) body.primary_location_hint = options.location;
        if (options.jurisdiction) body.jurisdiction = options.jurisdiction;
        const { result } = await rest.request<{ uuid: string; name: string; created_in_region?: string }>('POST', await rest.databases(), body);
        say(green(`✅ Successfully created DB '${result.name}'${result.created_in_region ? ` in region ${result.created_in_region}` : ''}`));
        say('Created your new D1 database.\n');
        const snippet = { binding: options.binding ?? name.replace(/[^A-Za-z0-9_]/g, '_'), database_name: result.name, database_id: result.uuid };
        const config = readWranglerConfig({ config: options.config });
        if (config.file?.endsWith('.toml')) say(`[[d1_databases]]\nbinding = "${snippet.binding}"\ndatabase_name = "${snippet.database_name}"\ndatabase_id = "${snippet.database_id}"`);
        else say(JSON.stringify({ d1_databases: [snippet] }, null, 2));
      }),
    );

  remote(d1.command('list').description('list the databases on the server'))
    .option('--json', 'as JSON')
    .action((options: { url?: string; local?: boolean; json?: boolean }) =>
      run(options.json, async () => {
        remoteOnly('list', options);
        const rest = new RestClient(serverUrl(options.url));
        const list = await rest.list();
        if (options.json) say(JSON.stringify(list, null, 2));
        else if (list.length === 0) say('No databases. Create one with `dione d1 create <name>`.');
        else say(resultTable(list));
      }),
    );

  remote(d1.command('info <name>').description('details of a database on the server'))
    .option('--json', 'as JSON')
    .action((name: string, options: { url?: string; local?: boolean; json?: boolean; config?: string; env?: string }) =>
      run(options.json, async () => {
        remoteOnly('info', options);
        const rest = new RestClient(serverUrl(options.url));
        const { version: _version, file_size, ...rest2 } = await infoOf(rest, name, options);
        const info = { ...rest2, database_size: file_size };
        if (options.json) say(JSON.stringify(info, null, 2));
        else say(resultTable(Object.entries(info).map(([k, v]) => ({ '': k, [name]: typeof v === 'object' ? JSON.stringify(v) : v }))));
      }),
    );

  remote(d1.command('delete <name>').description('delete a database on the server'))
    .option('-y, --skip-confirmation', 'no confirmation')
    .action((name: string, options: { url?: string; local?: boolean; skipConfirmation?: boolean; config?: string; env?: string }) =>
      run(false, async () => {
        remoteOnly('delete', options);
        const rest = new RestClient(serverUrl(options.url));
        const db = await infoOf(rest, name, options);
        say(`About to delete DB '${db.name}' (${db.uuid}).`);
        if (!(await confirm('Ok to proceed?', options.skipConfirmation))) {
          say('Not deleting.');
          return;
        }
        await rest.request('DELETE', `${await rest.databases()}/${db.uuid}`);
        say(green(`Deleted '${db.name}' successfully.`));
      }),
    );

  registerTimeTravel(d1, remote);
}
