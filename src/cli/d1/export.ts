// `dione d1 export`: a database's SQL dump written to a file, as wrangler writes it, from a local
// file or a server alike.
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type Command, Option } from 'commander';
import { startProgress } from '../progress.ts';
import { locationOptions } from './options.ts';
import { CliError, run, say } from './output.ts';
import { type SqlDump, sqlDump } from './sql-dump.ts';
import { checkLocation, type TargetOptions, withTarget } from './target.ts';

interface ExportOptions extends TargetOptions {
  output?: string;
  table?: string[];
  schema?: boolean;
  data?: boolean;
  skipConfirmation?: boolean;
}

/**
 * Writes the dump's pieces to `output` with backpressure, reporting progress: into a file of its
 * own next to it, renamed over `output` once whole, so a failed export (a virtual table, a lost
 * server) leaves no empty or partial file, and an earlier dump there as it was.
 */
async function writeDump(dump: SqlDump, output: string): Promise<void> {
  const progress = dump.large ? startProgress('Exporting', dump.total, dump.unit) : undefined;
  const partial = path.join(path.dirname(output), `.${path.basename(output)}.${randomBytes(6).toString('hex')}.partial`);
  try {
    await pipeline(
      dump.pieces,
      async function* (pieces: AsyncIterable<{ text: string | Uint8Array; done: number }>) {
        for await (const piece of pieces) {
          yield piece.text;
          progress?.update(piece.done);
        }
      },
      // Opened now: a stream opens its file later, which would outlive a removal after a failure.
      createWriteStream(partial, { fd: openSync(partial, 'w') }),
    );
    renameSync(partial, output);
  } catch (e) {
    rmSync(partial, { force: true });
    progress?.failed('the export stopped');
    throw e;
  }
  progress?.done();
}

async function exportDatabase(name: string, options: ExportOptions): Promise<void> {
  const output = options.output;
  if (!output) throw new CliError('Missing required option --output <file>: where to write the SQL dump.');
  if (existsSync(output) && statSync(output).isDirectory()) throw new CliError(`--output ${output} is a directory; give a file name, e.g. ${path.join(output, `${name}.sql`)}.`);
  if (options.schema === false && options.data === false) throw new CliError('--no-schema and --no-data cannot be used together: the export would be empty.');
  checkLocation(options);
  const dumpOptions = { noSchema: options.schema === false, noData: options.data === false, tables: options.table ?? [] };
  await withTarget(
    name,
    options,
    'read',
    async (target) => {
      say(`🌀 Exporting ${target.description} to ${output}`);
      await writeDump(await sqlDump(target, dumpOptions), output);
      say(`🌀 Exported to ${output}`);
    },
  );
}

export function registerExport(d1: Command): void {
  locationOptions(d1.command('export <database>').description('write a SQL dump of a database, as wrangler does'))
    .option('--output <file>', 'the file to write')
    .addOption(new Option('--table <name>', 'only this table (repeatable)').argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]))
    .option('--no-schema', 'only the data')
    .option('--no-data', 'only the schema')
    .option('-y, --skip-confirmation', 'no confirmation')
    .action((name: string, options: ExportOptions) => run(false, () => exportDatabase(name, options)));
}
