// `dione d1 create`: a database on a server (through the REST API), or in a server's catalogue
// directly (--data, with or without the server running). Beyond wrangler: --id gives the new
// database a chosen id, and --from-config creates the databases of a wrangler config with their
// database_id and database_name, so the config works unchanged with `wrangler … --remote`.
import path from 'node:path';
import type { Command } from 'commander';
import { type Catalog, CLUSTER_CATALOG_SETTING } from '../../server/catalog.ts';
import { checkNewDatabase, DATABASE_ID_PATTERN, invalidIdMessage, NewDatabaseRefused } from '../../server/new-database.ts';
import { openServerCatalog } from '../token.ts';
import { type D1DatabaseConfig, projectConfig, requireDatabase, type WranglerConfig } from '../wrangler-config.ts';
import { remoteOnly } from './databases.ts';
import { type FindDatabase, findWanted, type KnownDatabase, wantedByEntry } from './find-database.ts';
import { serverOptions } from './options.ts';
import { CliError, green, run, say } from './output.ts';
import { RestClient, serverUrl } from './rest.ts';

interface CreateOptions {
  url?: string;
  data?: string;
  local?: boolean;
  id?: string;
  fromConfig?: boolean;
  location?: string;
  jurisdiction?: string;
  binding?: string;
  config?: string;
  env?: string;
}

interface CreatedDatabase extends KnownDatabase {
  created_in_region?: string;
}

/** Where databases are created: a server, or a server's catalogue file. */
interface Registry {
  /** "the Dione server at …" / "the catalogue of …" */
  where: string;
  find: FindDatabase<KnownDatabase>;
  create(name: string, uuid: string | undefined): Promise<CreatedDatabase>;
  close(): void;
}

function serverRegistry(options: CreateOptions): Registry {
  const rest = new RestClient(serverUrl(options.url));
  return {
    where: `the Dione server at ${rest.url}`,
    // Looked up on the way to creating: the token must be an admin's either way.
    find: (idOrName) => rest.find(idOrName, 'admin'),
    async create(name, uuid) {
      const body = { name, uuid, primary_location_hint: options.location, jurisdiction: options.jurisdiction };
      const { result } = await rest.request<CreatedDatabase>('POST', await rest.databases('admin'), body, 'admin');
      if (uuid !== undefined && result.uuid !== uuid) {
        throw new CliError(`The server at ${rest.url} created '${result.name}' with the id ${result.uuid}, not ${uuid}: it does not take a chosen id (an older Dione?). Delete it with \`dione d1 delete ${result.name}\`.`);
      }
      return result;
    },
    close() {},
  };
}


function catalogRegistry(options: CreateOptions): Registry {
  if (options.location || options.jurisdiction) throw new CliError('--location and --jurisdiction are for a server (--url); a catalogue (--data) has no locations.');
  const catalog: Catalog = openServerCatalog(options.data);
  if (catalog.setting(CLUSTER_CATALOG_SETTING) !== undefined) {
    catalog.close();
    throw new CliError(`${catalog.dataDir} belongs to a node of a cluster: create the database through one of its servers (--url), so that every node has it.`);
  }
  return {
    where: `the catalogue in ${catalog.dataDir}`,
    find: async (idOrName) => catalog.find(idOrName),
    async create(name, uuid) {
      try {
        checkNewDatabase(catalog, name, uuid);
      } catch (e) {
        if (e instanceof NewDatabaseRefused) throw new CliError(`${e.message} (${catalog.dataDir}).`);
        throw e;
      }
      return catalog.create(name, uuid);
    },
    close: () => catalog.close(),
  };
}

function registryFor(options: CreateOptions): Registry {
  remoteOnly('create', options, ', or give the data folder of a server with --data <dir> (with or without the server running)');
  if (options.data !== undefined && options.url !== undefined) throw new CliError('--url and --data name two places to create the database in: give one.');
  return options.data !== undefined ? catalogRegistry(options) : serverRegistry(options);
}

/** The d1_databases entry for a database, in the style of the project's config file. */
export function configSnippet(binding: string, db: KnownDatabase, configFile: string | undefined): string {
  if (configFile?.endsWith('.toml')) return `[[d1_databases]]\nbinding = "${binding}"\ndatabase_name = "${db.name}"\ndatabase_id = "${db.uuid}"`;
  return JSON.stringify({ d1_databases: [{ binding, database_name: db.name, database_id: db.uuid }] }, null, 2);
}

export const bindingFor = (name: string) => name.replace(/[^A-Za-z0-9_]/g, '_');

async function createOne(registry: Registry, name: string, config: WranglerConfig, options: CreateOptions): Promise<void> {
  const db = await registry.create(name, options.id);
  say(green(`✅ Successfully created DB '${db.name}'${db.created_in_region ? ` in region ${db.created_in_region}` : ''}`));
  say('Created your new D1 database.\n');
  say(configSnippet(options.binding ?? bindingFor(name), db, config.file));
  const entry = config.d1Databases.find((d) => d.database_name === name);
  if (options.id === undefined && entry?.database_id && entry.database_id !== db.uuid) {
    process.stderr.write(
      `Note: ${config.file} gives '${name}' the database_id ${entry.database_id}, not this database's: \`dione d1 … --remote\` refuses the mismatch. ` +
        `Set database_id = "${db.uuid}" there, or delete this one and run \`dione d1 create ${name} --from-config\`.\n`,
    );
  }
}

interface Planned {
  entry: D1DatabaseConfig;
  name: string;
  found: KnownDatabase | undefined;
}

/** Every problem of the config's entries at once (ids that are no UUIDs, one id under two names), before anything is looked up. */
function configProblems(config: WranglerConfig, entries: D1DatabaseConfig[]): string[] {
  const problems: string[] = [];
  const nameOfId = new Map<string, string>();
  for (const entry of entries) {
    const name = entry.database_name ?? entry.binding;
    const id = entry.database_id;
    if (id === undefined) continue;
    if (!DATABASE_ID_PATTERN.test(id)) problems.push(`d1_databases entry '${entry.binding}': ${invalidIdMessage(id)}.`);
    const other = nameOfId.get(id);
    if (other !== undefined && other !== name) problems.push(`d1_databases entries '${other}' and '${name}' have the same database_id ${id}: one database cannot have two names.`);
    nameOfId.set(id, name);
  }
  return problems.map((p) => `${path.basename(config.file!)}: ${p}`);
}

async function createFromConfig(registry: Registry, name: string | undefined, config: WranglerConfig): Promise<void> {
  if (!config.file) throw new CliError('--from-config: no wrangler.toml, wrangler.json or wrangler.jsonc found here or above; run it in your project or pass --config <file>.');
  const entries = name === undefined ? config.d1Databases : [requireDatabase(config, name)];
  if (entries.length === 0) throw new CliError(`${config.file} has no d1_databases: nothing to create.`);
  const problems = configProblems(config, entries);
  const plan: Planned[] = [];
  for (const entry of problems.length > 0 ? [] : entries) {
    try {
      const found = await findWanted(registry.find, wantedByEntry(config, entry, entry.binding), registry.where);
      plan.push({ entry, name: entry.database_name ?? entry.binding, found });
    } catch (e) {
      if (!(e instanceof CliError)) throw e;
      problems.push(e.message);
    }
  }
  if (problems.length > 0) throw new CliError(`${problems.join('\n')}\nNothing was created.`);
  say(`🌀 The d1_databases of ${config.file}, on ${registry.where}:`);
  const done = new Set<string>();
  for (const { entry, name: dbName, found } of plan) {
    if (done.has(entry.database_id ?? dbName)) continue;
    done.add(entry.database_id ?? dbName);
    if (found) {
      say(`✔ '${found.name}' (${found.uuid}) is there already, as d1_databases entry '${entry.binding}' wants it.`);
      continue;
    }
    const db = await registry.create(dbName, entry.database_id);
    say(green(`✅ Created DB '${db.name}' (${db.uuid}) for d1_databases entry '${entry.binding}'.`));
    if (entry.database_id === undefined) say(`   Its entry has no database_id: add database_id = "${db.uuid}" to it in ${config.file}, as wrangler needs it for --remote.`);
  }
}

async function create(name: string | undefined, options: CreateOptions): Promise<void> {
  if (options.fromConfig && options.id !== undefined) throw new CliError('--id and --from-config cannot be used together: with --from-config, each database gets the database_id of its config entry.');
  if (!options.fromConfig && name === undefined) throw new CliError('Missing the database name: `dione d1 create <name>`, or `dione d1 create --from-config` for the databases of your wrangler config.');
  if (options.id !== undefined && !DATABASE_ID_PATTERN.test(options.id)) throw new CliError(`--id: ${invalidIdMessage(options.id)}.`);
  const config = projectConfig(options);
  const registry = registryFor(options);
  try {
    if (options.fromConfig) await createFromConfig(registry, name, config);
    else await createOne(registry, name!, config, options);
  } finally {
    registry.close();
  }
}

export function registerCreate(d1: Command): void {
  serverOptions(d1.command('create [name]').description('create a database on a server (--url), or in the catalogue of a server\'s data folder (--data)'))
    .option('--data <dir>', "create it in the catalogue of a server's data folder instead (with or without the server running)")
    .option('--id <uuid>', "the new database's id (default: a new one), e.g. the database_id of your wrangler config")
    .option('--from-config', 'create the databases of the wrangler config (all, or the one named) with their database_id and database_name; those already there are left as they are')
    .option('--location <hint>', 'primary location hint (weur, eeur, apac, oc, wnam, enam)')
    .option('--jurisdiction <j>', 'eu, fedramp or us')
    .option('--binding <name>', 'the binding name for the printed config')
    .action((name: string | undefined, options: CreateOptions) => run(false, () => create(name, options)));
}
