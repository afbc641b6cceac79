// The database a data command works on: the local file wrangler would use (--local, the default),
// or a database on a Dione server (--remote), both as a D1Database binding.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { connect } from '../../client.ts';
import { type D1Database, open } from '../../index.ts';
import { localD1Root, localDatabaseFile, localDatabaseKey } from '../local-state.ts';
import { type D1DatabaseConfig, lookupDatabase, readWranglerConfig, requireDatabase, type WranglerConfig } from '../wrangler-config.ts';
import { CliError } from './output.ts';
import { RestClient, serverUrl } from './rest.ts';

export interface TargetOptions {
  local?: boolean;
  remote?: boolean;
  preview?: boolean;
  persistTo?: string;
  config?: string;
  env?: string;
  url?: string;
}

export interface Target {
  remote: boolean;
  name: string;
  config: WranglerConfig;
  entry: D1DatabaseConfig | undefined;
  /** "local database DB (…) from …" / "remote database shop (uuid) on http://…" */
  description: string;
  /** --local: the SQLite file. */
  file?: string;
  /** --remote: the REST client and the database's uuid. */
  rest?: RestClient;
  uuid?: string;
  db: D1Database;
  close(): void;
}

export function checkLocation(options: TargetOptions): void {
  if (options.local && options.remote) throw new CliError("Error: can't use --local and --remote at the same time");
  if (options.preview && !options.remote) throw new CliError('--preview works with --remote only (the preview database on the server).');
  if (options.persistTo && options.remote) throw new CliError('--persist-to works with --local only: it says where local databases are kept.');
}

export async function resolveTarget(name: string, options: TargetOptions, opts: { mustExist?: boolean } = {}): Promise<Target> {
  checkLocation(options);
  const config = readWranglerConfig({ config: options.config, env: options.env });
  if (!options.remote) {
    const entry = requireDatabase(config, name);
    const file = localDatabaseFile(config, entry, options.persistTo);
    if (opts.mustExist && !existsSync(file)) {
      throw new CliError(
        `There is no local database for '${name}' yet (${file}). Create it with \`dione d1 migrations apply ${name} --local\` or \`dione d1 execute ${name} --local --command "…"\`, or add --remote.`,
      );
    }
    const db = open(file);
    const root = path.relative(process.cwd(), localD1Root(config, options.persistTo)) || '.';
    return {
      remote: false,
      name,
      config,
      entry,
      file,
      description: `local database ${entry.binding} (${localDatabaseKey(entry)}) from ${root}`,
      db,
      close: () => void db.close(),
    };
  }
  const rest = new RestClient(serverUrl(options.url));
  const entry = lookupDatabase(config, name);
  const candidates = [...new Set([options.preview ? entry?.preview_database_id : entry?.database_id, entry?.database_name, name].filter((c): c is string => Boolean(c)))];
  for (const candidate of candidates) {
    const found = await rest.find(candidate);
    if (!found) continue;
    const db = connect({ url: rest.url, token: rest.token ?? '', database: found.uuid });
    return {
      remote: true,
      name,
      config,
      entry,
      rest,
      uuid: found.uuid,
      description: `remote database ${found.name} (${found.uuid}) on ${rest.url}`,
      db,
      close: () => void db.close(),
    };
  }
  throw new CliError(
    `Couldn't find a D1 DB named '${name}' on the Dione server at ${rest.url} (looked for ${candidates.map((c) => `'${c}'`).join(', ')}). ` +
      `Create it with \`dione d1 create ${entry?.database_name ?? name} --remote\`, or check the name and DIONE_URL.`,
  );
}
