// `dione d1 migrations create|list|apply`: wrangler's migrations (see ../migrations.ts), applied
// through the target's binding, each migration one atomic batch with its bookkeeping INSERT.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { appliedMigrationsSql, applyOrder, createMigration, discoverMigrations, migrationsTableSql, recordMigrationSql } from '../migrations.ts';
import { startProgress } from '../progress.ts';
import { type SqlStatement, statementsOf } from '../sql-stream.ts';
import { type D1DatabaseConfig, migrationsDir, migrationsTable, projectConfig, requireDatabase, type WranglerConfig } from '../wrangler-config.ts';
import { configOptions, confirm, locationOptions, plural } from './options.ts';
import { CliError, errorJson, errorText, green, resultTable, run, say } from './output.ts';
import { runBatch } from './run-sql.ts';
import { checkLocation, type Target, type TargetOptions, withTarget } from './target.ts';

interface MigrationsContext {
  dir: string;
  table: string;
  /** migrations_pattern relative to `dir`, when the config has one. */
  pattern?: string;
}

function migrationsContext(config: WranglerConfig, entry: D1DatabaseConfig): MigrationsContext {
  const dir = migrationsDir(config, entry);
  const pattern = entry.migrations_pattern
    ? path.posix.relative(path.posix.normalize(entry.migrations_dir || 'migrations'), path.posix.normalize(entry.migrations_pattern))
    : undefined;
  return { dir, table: migrationsTable(entry), pattern };
}

/** The config file wrangler's migrations commands insist on. */
function requireConfigFile(config: WranglerConfig): void {
  if (!config.file) {
    throw new CliError('No configuration file found. Create a wrangler.jsonc file to define your D1 database.', {
      hint: `No wrangler.toml, wrangler.json or wrangler.jsonc in ${config.dir} or above: run the command in your project directory, or pass --config <file>.`,
    });
  }
}

/** The migrations of the d1_databases entry `name` (remote databases too, as in wrangler): found before any database is opened. */
function migrationsOf(name: string, options: TargetOptions): { ctx: MigrationsContext; names: string[] } {
  const config = projectConfig(options);
  requireConfigFile(config);
  const ctx = migrationsContext(config, requireDatabase(config, name));
  const names = discoverMigrations(ctx.dir, ctx.pattern);
  if (names.length === 0 && !ctx.pattern && discoverMigrations(ctx.dir, '*/migration.sql').length > 0) {
    process.stderr.write(
      `▲ [WARNING] ${ctx.dir} holds no .sql file but has */migration.sql files: set migrations_pattern = "${path.basename(ctx.dir)}/*/migration.sql" in your wrangler config to apply them.\n`,
    );
  }
  return { ctx, names };
}

/** Of `names` (in name order), those not applied yet; the migrations table is created when missing. */
async function unapplied(target: Target, ctx: MigrationsContext, names: string[]): Promise<string[]> {
  await runBatch(target.db, [{ sql: migrationsTableSql(ctx.table), line: 1 }], `the ${ctx.table} table`);
  const applied = await target.db.prepare(appliedMigrationsSql(ctx.table)).all<{ name: string }>();
  const done = new Set(applied.results.map((r) => r.name));
  return names.filter((n) => !done.has(n));
}

async function list(name: string, options: TargetOptions & { json?: boolean }): Promise<void> {
  checkLocation(options);
  const { ctx, names } = migrationsOf(name, options);
  // Listing creates the migrations table when it is missing, as wrangler does: a write.
  await withTarget(name, options, 'write', async (target) => {
    const pending = await unapplied(target, ctx, names);
    if (options.json) say(JSON.stringify(pending.map((n) => ({ name: n }))));
    else if (pending.length === 0) say('✅ No migrations to apply!');
    else {
      say('Migrations to be applied:');
      say(resultTable(pending.map((n) => ({ Name: n }))));
    }
  });
}

type Applied = { name: string; status: '✅' | '❌' };

/** A migration failed: with --json, one document says so and lists what was applied (`migrations`). */
class MigrationFailure extends CliError {
  constructor(
    message: string,
    private readonly status: Applied[],
    options: { human: string },
  ) {
    super(message, options);
  }

  override json(): Record<string, unknown> {
    return { ...super.json(), migrations: this.status };
  }
}

/** Applies `pending` in order, each atomically; stops at the first failure, which it returns with what was applied. */
async function applyInOrder(target: Target, ctx: MigrationsContext, pending: string[], json?: boolean): Promise<{ status: Applied[]; failure?: unknown }> {
  const progress = json ? undefined : startProgress('Applying migrations', pending.length, 'migrations');
  const status: Applied[] = [];
  for (const migration of pending) {
    const file = path.join(ctx.dir, ...migration.split('/'));
    const statements: SqlStatement[] = [...statementsOf(readFileSync(file, 'utf8'), file), { sql: recordMigrationSql(ctx.table, migration), line: 0 }];
    try {
      await runBatch(target.db, statements, file);
    } catch (failure) {
      status.push({ name: migration, status: '❌' });
      progress?.failed(`${migration} failed`);
      return { status, failure };
    }
    status.push({ name: migration, status: '✅' });
    progress?.update(status.length);
  }
  progress?.done();
  return { status };
}

async function apply(name: string, options: TargetOptions & { json?: boolean; yes?: boolean }): Promise<void> {
  checkLocation(options);
  const { ctx, names } = migrationsOf(name, options);
  await withTarget(name, options, 'write', async (target) => {
    const pending = applyOrder(await unapplied(target, ctx, names));
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
    const { status, failure } = await applyInOrder(target, ctx, pending, options.json);
    if (failure) {
      if (!options.json) say(resultTable(status));
      const later = pending.length - status.length;
      throw new MigrationFailure(String(errorJson(failure).text), status, {
        human:
          `Migration ${status.at(-1)!.name} failed and was rolled back (nothing of it is applied)${later > 0 ? `; the ${plural(later, 'later migration')} did not run` : ''}.\n` +
          `${errorText(failure)}\nFix the migration and run \`dione d1 migrations apply ${name}${target.kind === 'remote' ? ' --remote' : ' --local'}\` again.`,
      });
    }
    if (options.json) say(JSON.stringify(status));
    else say(resultTable(status));
    if (!options.json) say(green(`✅ Applied ${plural(status.length, 'migration')}.`));
  });
}

export function registerMigrations(d1: Command): void {
  const migrations = d1.command('migrations').description('migrations in migrations_dir, tracked in the d1_migrations table');
  configOptions(migrations.command('create <database> <message>').description('write the next numbered migration file')).action((name: string, message: string, options: TargetOptions) =>
    run(false, async () => {
      const config = projectConfig(options);
      requireConfigFile(config);
      const ctx = migrationsContext(config, requireDatabase(config, name));
      const { name: created, file } = createMigration(ctx.dir, message, ctx.pattern);
      say(green(`✅ Successfully created Migration '${created}'!`));
      say(`\nThe migration is available for editing here\n${file}`);
    }),
  );
  locationOptions(migrations.command('list <database>').description('list the migrations not applied yet'))
    .option('--json', 'as JSON')
    .action((name: string, options: TargetOptions & { json?: boolean }) => run(options.json, () => list(name, options)));
  locationOptions(migrations.command('apply <database>').description('apply the pending migrations, each atomically, in order'))
    .option('--json', 'as JSON')
    .option('-y, --yes', 'answer yes to the confirmation')
    .action((name: string, options: TargetOptions & { json?: boolean; yes?: boolean }) => run(options.json, () => apply(name, options)));
}
