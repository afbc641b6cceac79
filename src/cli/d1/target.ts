// The database a data command works on: the local file wrangler would use (--local, the default),
// or a database on a Dione server (--remote). Both are a D1Database binding, so every operation has
// one code path over either; the few that need more (export) switch on `kind`.
import path from 'node:path';
import { connect } from '../../client.ts';
import { type D1Database, open } from '../../index.ts';
import type { TokenScope } from '../../server/catalog.ts';
import { localD1Root, localDatabaseFile, localDatabaseKey } from '../local-state.ts';
import { type D1DatabaseConfig, lookupDatabase, projectConfig, requireDatabase, type WranglerConfig } from '../wrangler-config.ts';
import { findOnServer } from './find-database.ts';
import { CliError, errorText } from './output.ts';
import { ApiFailure, type DatabaseInfo, RestClient, serverUrl, tokenHint, tokenRefusal } from './rest.ts';

export interface TargetOptions {
  local?: boolean;
  remote?: boolean;
  preview?: boolean;
  persistTo?: string;
  config?: string;
  env?: string;
  url?: string;
}

interface TargetBase {
  /** The database as the command was given it (a name, binding or id). */
  name: string;
  config: WranglerConfig;
  entry: D1DatabaseConfig | undefined;
  /** "local database DB (…) from …" / "remote database shop (uuid) on http://…" */
  description: string;
  db: D1Database;
  close(): void;
}

export interface LocalTarget extends TargetBase {
  kind: 'local';
  /** The SQLite file wrangler keeps the database in. */
  file: string;
}

export interface RemoteTarget extends TargetBase {
  kind: 'remote';
  server: RestClient;
  database: DatabaseInfo;
}

export type Target = LocalTarget | RemoteTarget;

/** wrangler's refusals of flags that do not go together (--local is the default, but --persist-to wants it said). */
export function checkLocation(options: TargetOptions): void {
  if (options.local && options.remote) throw new CliError("Error: can't use --local and --remote at the same time");
  if (options.preview && !options.remote) throw new CliError("Error: can't use --preview without --remote");
  if (options.persistTo && !options.local) throw new CliError("Error: can't use --persist-to without --local");
}

/** How a command uses a local database: `transactions` opens it for one transaction around many requests (a whole file). */
export interface LocalUse {
  transactions?: boolean;
}

// A transaction around a whole file waits for the next piece of it between requests: never long,
// but the engine's default idle timeout (10 s) is for clients that may have gone away.
const FILE_TRANSACTION_IDLE_MS = 3_600_000;

function localTarget(name: string, config: WranglerConfig, options: TargetOptions, use: LocalUse): LocalTarget {
  const entry = requireDatabase(config, name);
  const file = localDatabaseFile(config, entry, options.persistTo);
  const db = use.transactions ? open(file, { transactions: true, transactionTimeoutMs: FILE_TRANSACTION_IDLE_MS }) : open(file);
  const root = path.relative(process.cwd(), localD1Root(config, options.persistTo)) || '.';
  return { kind: 'local', name, config, entry, file, description: `local database ${name} (${localDatabaseKey(entry)}) from ${root}`, db, close: () => void db.close() };
}

async function remoteTarget(name: string, config: WranglerConfig, options: TargetOptions, needs: TokenScope): Promise<RemoteTarget> {
  const server = new RestClient(serverUrl(options.url));
  const database = await findOnServer(server, config, name, { preview: options.preview, needs });
  const db = connect({ url: server.url, token: server.token ?? '', database: database.uuid });
  return {
    kind: 'remote',
    name,
    config,
    entry: lookupDatabase(config, name),
    server,
    database,
    description: `remote database ${database.name} (${database.uuid}) on ${server.url}`,
    db,
    close: () => void db.close(),
  };
}

/** The target of a command that needs `needs` of a token on a server. */
async function resolveTarget(name: string, options: TargetOptions, needs: TokenScope, use: LocalUse): Promise<Target> {
  checkLocation(options);
  const config = projectConfig(options);
  return options.remote ? remoteTarget(name, config, options, needs) : localTarget(name, config, options, use);
}

/** Runs `body` on the target and closes it. When the server refuses the token, the error says which scope the operation needs. */
export async function withTarget<T>(
  name: string,
  options: TargetOptions,
  needs: TokenScope,
  body: (target: Target) => Promise<T>,
  use: LocalUse = {},
): Promise<T> {
  const target = await resolveTarget(name, options, needs, use);
  try {
    return await body(target);
  } catch (e) {
    // A binding's error; the REST client's failures say which scope already.
    const refusal = target.kind === 'remote' && !(e instanceof ApiFailure) ? tokenRefusal(errorText(e)) : undefined;
    if (refusal) throw new CliError(errorText(e), { hint: tokenHint(refusal, needs).trim() });
    throw e;
  } finally {
    target.close();
  }
}
