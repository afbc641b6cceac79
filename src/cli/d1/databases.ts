// `dione d1 list|info|delete`: databases on a Dione server, as wrangler shows them.
import type { Command } from 'commander';
import { projectConfig } from '../wrangler-config.ts';
import { last24Hours } from './analytics.ts';
import { findOnServer } from './find-database.ts';
import { confirm, serverOptions } from './options.ts';
import { CliError, green, resultTable, run, say } from './output.ts';
import { RestClient, serverUrl } from './rest.ts';

interface ServerCommandOptions {
  url?: string;
  local?: boolean;
  config?: string;
  env?: string;
}

export function remoteOnly(command: string, options: { local?: boolean }, alternative = ''): void {
  if (options.local) {
    throw new CliError(
      `\`d1 ${command}\` works on a server only, as in wrangler (which has no --local for it). ` +
        'A local database is created on first use, from its d1_databases entry in your wrangler config, by `dione d1 execute <name> --local` or `dione d1 migrations apply <name> --local`. ' +
        `For a server, pass --url or set DIONE_URL${alternative}.`,
    );
  }
}

/** What wrangler's `d1 list` prints: every field as text, nothing for a missing value. */
const asText = (row: Record<string, unknown>) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, String(v ?? '')]));

export function registerDatabases(d1: Command): void {
  serverOptions(d1.command('list').description('list the databases on the server'))
    .option('--json', 'as JSON')
    .action((options: ServerCommandOptions & { json?: boolean }) =>
      run(options.json, async () => {
        remoteOnly('list', options);
        const list = await new RestClient(serverUrl(options.url)).list();
        if (options.json) say(JSON.stringify(list, null, 2));
        else if (list.length === 0) say('No databases. Create one with `dione d1 create <name>`.');
        else say(resultTable(list.map(asText)));
      }),
    );

  serverOptions(d1.command('info <name>').description('details of a database on the server'))
    .option('--json', 'as JSON')
    .action((name: string, options: ServerCommandOptions & { json?: boolean }) =>
      run(options.json, async () => {
        remoteOnly('info', options);
        const rest = new RestClient(serverUrl(options.url));
        const { version, file_size, ...fields } = await findOnServer(rest, projectConfig(options), name, { needs: 'read' });
        // wrangler adds the last 24 hours' counters from the GraphQL Analytics API (not for alpha databases).
        const info = { ...fields, database_size: file_size, ...(version === 'alpha' ? {} : await last24Hours(rest, fields.uuid)) };
        if (options.json) say(JSON.stringify(info, null, 2));
        else say(resultTable(Object.entries(info).map(([k, v]) => ({ '': k, [name]: typeof v === 'object' ? JSON.stringify(v) : v }))));
      }),
    );

  serverOptions(d1.command('delete <name>').description('delete a database on the server'))
    .option('-y, --skip-confirmation', 'no confirmation')
    .action((name: string, options: ServerCommandOptions & { skipConfirmation?: boolean }) =>
      run(false, async () => {
        remoteOnly('delete', options);
        const rest = new RestClient(serverUrl(options.url));
        const db = await findOnServer(rest, projectConfig(options), name, { needs: 'admin' });
        say(`About to delete DB '${db.name}' (${db.uuid}).`);
        if (!(await confirm('Ok to proceed?', options.skipConfirmation))) {
          say('Not deleting.');
          return;
        }
        await rest.onDatabase('DELETE', db.uuid, '', undefined, 'admin');
        say(green(`Deleted '${db.name}' successfully.`));
      }),
    );
}
