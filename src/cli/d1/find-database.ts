// Which database a command means, on a server or in a catalogue, found one way for every command.
// The argument is a database_name or binding of the wrangler config, or a database's own name or
// id. A config entry's database_id is what wrangler uses on Cloudflare, so it is what is looked
// for, and its database_name must name that same database: a database_id missing while the name
// is another database, or the id's database under another name, is refused with both named, never
// silently replaced by the other.
import path from 'node:path';
import type { TokenScope } from '../../server/catalog.ts';
import { type D1DatabaseConfig, lookupDatabase, type WranglerConfig } from '../wrangler-config.ts';
import { CliError } from './output.ts';
import type { DatabaseInfo, RestClient } from './rest.ts';

export interface KnownDatabase {
  uuid: string;
  name: string;
}

/** A database by id or name, or undefined when there is none (a server's or a catalogue's lookup). */
export type FindDatabase<T extends KnownDatabase> = (idOrName: string) => Promise<T | undefined>;

/** What the command asks for. */
export interface WantedDatabase {
  /** The argument as given. */
  asked: string;
  /** The config entry it names, if any. */
  entry?: D1DatabaseConfig;
  /** The id the entry gives (database_id, or preview_database_id with --preview). */
  id?: string;
  /** The name it must have: the entry's database_name, or the argument when there is no entry. */
  name?: string;
  /** The config file the entry is in. */
  file?: string;
}

/** What the argument (and the config entry it names) asks for; `preview` takes preview_database_id. */
export function wantedDatabase(config: WranglerConfig, asked: string, { preview = false } = {}): WantedDatabase {
  const entry = lookupDatabase(config, asked);
  return entry ? wantedByEntry(config, entry, asked, { preview }) : { asked, name: asked };
}

export function wantedByEntry(config: WranglerConfig, entry: D1DatabaseConfig, asked: string, { preview = false } = {}): WantedDatabase {
  const file = config.file;
  if (!preview) return { asked, entry, file, id: entry.database_id, name: entry.database_name ?? (entry.database_id ? undefined : entry.binding) };
  if (!entry.preview_database_id) {
    throw new CliError(`--preview needs a preview_database_id in the d1_databases entry of '${asked}' in your ${path.basename(file ?? 'wrangler config')} file (${file}).`);
  }
  // A preview database has a name of its own: only its id is known.
  return { asked, entry, file, id: entry.preview_database_id };
}

/** What the config says, e.g. "/app/wrangler.toml says database 'shop' has the id …". */
function configSays(wanted: WantedDatabase, has = `has the id ${wanted.id}`): string {
  const subject = wanted.name ? `database '${wanted.name}'` : `d1_databases entry '${wanted.entry!.binding}'`;
  return `${wanted.file} says ${subject} ${has}`;
}

/**
 * The database `wanted` names, or undefined when there is none. Throws a CliError naming both
 * databases when the config's id and name lead to different ones. `where` names the place looked
 * in ("the Dione server at …", "the catalogue of …").
 */
export async function findWanted<T extends KnownDatabase>(find: FindDatabase<T>, wanted: WantedDatabase, where: string): Promise<T | undefined> {
  // find() answers ids and names alike: each result is checked for what it was asked as.
  const byId = wanted.id ? await find(wanted.id).then((d) => (d?.uuid === wanted.id ? d : undefined)) : undefined;
  const byName = wanted.name ? await find(wanted.name).then((d) => (wanted.id ? (d?.name === wanted.name ? d : undefined) : d)) : undefined;
  if (!wanted.id) return byName;
  if (byId && (!wanted.name || byId.name === wanted.name)) return byId;
  if (byId) {
    const other = byName ? `and its '${wanted.name}' is another database, ${byName.uuid}` : `and no database there is named '${wanted.name}'`;
    throw new CliError(
      `${configSays(wanted)}, but on ${where} ${wanted.id} is named '${byId.name}', ${other}. ` +
        'Correct database_id or database_name in the config, or rename or delete one of the databases.',
    );
  }
  if (byName) {
    throw new CliError(
      `${configSays(wanted)}, but ${where} has no database with that id, and its '${wanted.name}' is another database, ${byName.uuid}. ` +
        `Refusing to use it in its place: set database_id = "${byName.uuid}" in the config to use it, ` +
        `or delete it and create the database with the config's id (\`dione d1 create ${wanted.name} --id ${wanted.id}\`).`,
    );
  }
  return undefined;
}

/** The command that creates what `wanted` names, for hints. */
export function createCommandFor(wanted: WantedDatabase): string {
  if (wanted.id) return `dione d1 create ${wanted.name ?? '<name>'} --id ${wanted.id}`;
  return `dione d1 create ${wanted.name ?? wanted.asked}`;
}

/** "Couldn't find …" with what was looked for and how to create it. */
export function notFound(wanted: WantedDatabase, where: string): CliError {
  const missing = wanted.id ? `${where} has no database with the id ${wanted.id} (${configSays(wanted, 'has it')})` : `${where} has none`;
  const fromConfig = wanted.id && wanted.name ? ', or `dione d1 create --from-config` for every database of the config' : '';
  return new CliError(`Couldn't find a D1 DB named '${wanted.asked}': ${missing}. Create it with \`${createCommandFor(wanted)}\`${fromConfig}; \`dione d1 list\` shows the databases there.`);
}

/**
 * The database `asked` names on the server (through the config's entry for it), or a CliError
 * saying what is missing or mismatched. `needs` is the token scope of what the caller does with it.
 */
export async function findOnServer(rest: RestClient, config: WranglerConfig, asked: string, { preview = false, needs = 'read' as TokenScope } = {}): Promise<DatabaseInfo> {
  const wanted = wantedDatabase(config, asked, { preview });
  const where = `the Dione server at ${rest.url}`;
  const found = await findWanted((idOrName) => rest.find(idOrName, needs), wanted, where);
  if (!found) throw notFound(wanted, where);
  return found;
}
