// `dione token create|revoke|list`: API tokens in a server's catalogue, with or without the server
// running. The catalogue must exist already (see data-dir.ts): a token in a catalogue no server
// reads would be refused everywhere.
import type { Command } from 'commander';
import { Catalog, CatalogDamaged, type TokenRecord, type TokenScope } from '../server/catalog.ts';
import { createToken } from '../server/tokens.ts';
import { existingDataDir, hasCatalog, serveDataDir } from './data-dir.ts';
import { CliError, errorText } from './d1/output.ts';
import { formatTable } from './table.ts';

const SCOPES: TokenScope[] = ['read', 'write', 'admin'];
const dataOption = '--data <dir>';
const dataHelp = "the server's data folder (default: DIONE_DATA, else the nearest ./.dione holding a catalogue)";

/**
 * Opens the catalogue of the server's data folder; a damaged one stops the command with its
 * one-line message. `init` makes the catalogue where `dione serve` would (before its first start).
 */
export function openServerCatalog(flag: string | undefined, { init = false } = {}): Catalog {
  const dir = init ? serveDataDir(flag) : existingDataDir(flag);
  if (init && !hasCatalog(dir)) process.stderr.write(`dione: a new catalogue in ${dir}; start the server on it with \`dione serve --data ${dir}\`\n`);
  try {
    return new Catalog(dir);
  } catch (e) {
    if (e instanceof CatalogDamaged) throw new CliError(e.message);
    throw e;
  }
}

function withCatalog(flag: string | undefined, body: (catalog: Catalog) => void, init = false): void {
  try {
    const catalog = openServerCatalog(flag, { init });
    try {
      body(catalog);
    } finally {
      catalog.close();
    }
  } catch (e) {
    process.stderr.write(`${errorText(e)}\n`);
    process.exitCode = 1;
  }
}

const shortTime = (iso: string) => iso.replace(/\.\d+Z$/, 'Z');

function tokenRow(catalog: Catalog, t: TokenRecord) {
  const database = t.database_uuid === null ? '(all)' : (catalog.find(t.database_uuid)?.name ?? `(deleted) ${t.database_uuid}`);
  return {
    id: t.id,
    name: t.name ?? '',
    scope: t.scope,
    database,
    created: shortTime(t.created_at),
    status: t.revoked_at ? `revoked ${shortTime(t.revoked_at)}` : 'active',
  };
}

export function registerToken(program: Command): void {
  const token = program.command('token').description('manage API tokens (works with or without a running server)');
  token
    .command('create')
    .description('create a token; prints it once, on the last line')
    .option(dataOption, dataHelp)
    .option('--db <name>', 'limit the token to one database (name or id)')
    .option('--scope <scope>', 'read | write | admin', 'write')
    .option('--name <label>', 'what the token is for (shown by `token list`)')
    .option('--init', "make the data folder's catalogue if it has none (a server that has not started yet)")
    .action((options: { data?: string; db?: string; scope: string; name?: string; init?: boolean }) =>
      withCatalog(options.data, (catalog) => {
        if (!SCOPES.includes(options.scope as TokenScope)) throw new CliError(`--scope must be read, write or admin, got "${options.scope}"`);
        let uuid: string | null = null;
        if (options.db) {
          const record = catalog.find(options.db);
          if (!record) throw new CliError(`no database "${options.db}" in ${catalog.dataDir}; create it first (dione d1 create ${options.db}, or wrangler d1 create)`);
          uuid = record.uuid;
        }
        const { token: value, record } = createToken(catalog, options.scope as TokenScope, uuid, options.name ?? null);
        process.stderr.write(`token ${record.id}: scope ${record.scope}${options.db ? ` on ${options.db}` : ' on every database'}, in ${catalog.dataDir}; shown once, keep it\n`);
        process.stdout.write(`${value}\n`);
      }, options.init),
    );
  token
    .command('revoke <id>')
    .description('revoke a token by its id (the part after "dione_", or the whole token)')
    .option(dataOption, dataHelp)
    .action((id: string, options: { data?: string }) =>
      withCatalog(options.data, (catalog) => {
        const tokenId = /^dione_([A-Za-z0-9]{12})(_|$)/.exec(id)?.[1] ?? id;
        if (!catalog.revokeToken(tokenId)) throw new CliError(`no active token ${tokenId} in ${catalog.dataDir}`);
        process.stderr.write(`token ${tokenId} revoked\n`);
      }),
    );
  token
    .command('list')
    .description('list tokens (ids, names, scopes, databases; never the secrets)')
    .option(dataOption, dataHelp)
    .option('--json', 'as JSON')
    .action((options: { data?: string; json?: boolean }) =>
      withCatalog(options.data, (catalog) => {
        const rows = catalog.tokens().map((t) => tokenRow(catalog, t));
        if (options.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        else if (rows.length === 0) process.stdout.write(`No tokens in ${catalog.dataDir}. Create one with \`dione token create --scope admin\`.\n`);
        else {
          const columns = ['id', 'name', 'scope', 'database', 'created', 'status'] as const;
          process.stdout.write(`${formatTable([...columns], rows.map((r) => columns.map((c) => r[c])))}\n`);
        }
      }),
    );
}
