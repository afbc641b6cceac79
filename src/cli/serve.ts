// `dione serve` (and `dione token …`, registered with it).
import type { Command } from 'commander';
import { CatalogDamaged } from '../server/catalog.ts';
import { DEFAULTS } from '../server/config.ts';
import { parsePublicUrl, startServer } from '../server/serve.ts';
import { registerToken } from './token.ts';

const integer = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got "${value}"`);
  return n;
};

const positiveInteger = (name: string) => (value: string) => {
  const n = integer(name)(value);
  if (n === 0) throw new Error(`${name} must be at least 1, got "${value}"`);
  return n;
};

const positive = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${value}"`);
  return n;
};

/** A flag's value from the environment, checked like the flag's own (undefined when unset: the server's default applies). */
const fromEnv = <T>(name: string, parse: (value: string) => T): T | undefined => {
  const value = process.env[name];
  return value === undefined || value === '' ? undefined : parse(value);
};

interface ServeFlags {
  host?: string;
  port?: number;
  data: string;
  accountId?: string;
  queryTimeout?: number;
  transactionTimeout?: number;
  workers?: number;
  maxOpenDatabases?: number;
  maxConnections?: number;
  maxImportBytes?: number;
  idleTimeout?: number;
  dev: boolean;
  publicUrl?: string;
  metricsPublic: boolean;
  history: boolean;
  retentionDays?: number;
  nats?: string;
  nodeId?: string;
  region?: string;
  advertiseUrl?: string;
  leaseTtl?: number;
  replicas?: number;
  queryStats: boolean;
  console: boolean;
  localReads: boolean;
}

/**
 * What stops the server from starting, said in one line (no stack trace): a damaged catalogue
 * (which file, what to do), or an address another process holds.
 */
function refuseToStart(e: unknown): never {
  const error = e as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e instanceof CatalogDamaged) process.stderr.write(`${e.message}\n`);
  else if (error.code === 'EADDRINUSE') {
    process.stderr.write(`dione: port ${error.port} on ${error.address} is in use (another \`dione serve\`?): stop that process, or give this one another port with --port N\n`);
  } else if (error.code === 'EADDRNOTAVAIL') {
    process.stderr.write(`dione: cannot listen on ${error.address}: no network interface of this machine has that address (--host)\n`);
  } else throw e;
  process.exit(1);
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('serve databases over the Cloudflare D1 REST API, the D1 binding protocol and dione/client')
    .option('--host <host>', `address to listen on (default ${DEFAULTS.host})`, process.env.DIONE_HOST)
    .option('--port <port>', `port to listen on (default ${DEFAULTS.port})`, integer('--port'), fromEnv('DIONE_PORT', integer('DIONE_PORT')))
    .option('--data <dir>', 'directory for the catalogue and database files', process.env.DIONE_DATA ?? DEFAULTS.data)
    .option('--account-id <id>', 'the account id in API paths (default: generated once, then kept)', process.env.DIONE_ACCOUNT_ID)
    .option('--query-timeout <ms>', `interrupt a query that runs longer than this (default ${DEFAULTS.queryTimeoutMs}, as D1)`, integer('--query-timeout'), fromEnv('DIONE_QUERY_TIMEOUT', integer('DIONE_QUERY_TIMEOUT')))
    .option('--transaction-timeout <ms>', `roll back an interactive transaction (dione/client, transactions: true) idle this long (default ${DEFAULTS.transactionTimeoutMs})`, positiveInteger('--transaction-timeout'), fromEnv('DIONE_TRANSACTION_TIMEOUT', positiveInteger('DIONE_TRANSACTION_TIMEOUT')))
    .option('--workers <n>', 'worker threads hosting the databases (default: one per core)', positiveInteger('--workers'), fromEnv('DIONE_WORKERS', positiveInteger('DIONE_WORKERS')))
    .option('--max-open-databases <n>', 'databases kept open at once (default: what the open-file limit allows)', positiveInteger('--max-open-databases'), fromEnv('DIONE_MAX_OPEN_DATABASES', positiveInteger('DIONE_MAX_OPEN_DATABASES')))
    .option('--max-connections <n>', 'client connections open at once; more are closed as they come (default: a quarter of the open-file limit)', positiveInteger('--max-connections'), fromEnv('DIONE_MAX_CONNECTIONS', positiveInteger('DIONE_MAX_CONNECTIONS')))
    .option('--max-import-bytes <n>', 'the largest SQL file an import takes (default 5 GiB, as D1)', positiveInteger('--max-import-bytes'), fromEnv('DIONE_MAX_IMPORT_BYTES', positiveInteger('DIONE_MAX_IMPORT_BYTES')))
    .option('--idle-timeout <ms>', `close a database after this long without requests (default ${DEFAULTS.idleMs})`, positiveInteger('--idle-timeout'), fromEnv('DIONE_IDLE_TIMEOUT', positiveInteger('DIONE_IDLE_TIMEOUT')))
    .option('--dev', 'allow requests without a token (local development only)', process.env.DIONE_DEV === '1')
    .option('--public-url <url>', 'where clients reach this server; export and import URLs are built from it (default: the listening address)', process.env.DIONE_PUBLIC_URL)
    .option('--metrics-public', 'serve /metrics without a token', process.env.DIONE_METRICS_PUBLIC === '1')
    .option('--no-history', 'keep no write log: no Time Travel, no forks')
    .option('--no-console', 'serve no web console at /')
    .option('--no-query-stats', 'record no per-statement statistics (query insights and analytics answer nothing)')
    .option('--no-local-reads', 'answer every read on a worker thread (by default reads of often-read databases are answered on the HTTP thread while it has time to spare)')
    .option('--retention-days <days>', `how far back Time Travel reaches (default ${DEFAULTS.retentionDays})`, positive('--retention-days'), fromEnv('DIONE_RETENTION_DAYS', positive('DIONE_RETENTION_DAYS')))
    .option('--nats <urls>', 'cluster mode: NATS server URLs, comma-separated (a 3-node JetStream cluster)', process.env.DIONE_NATS)
    .option('--node-id <name>', 'cluster mode: this node\'s name, unique in the cluster', process.env.DIONE_NODE_ID)
    .option('--region <region>', 'the region this node reports (meta.served_by_region)', process.env.DIONE_REGION)
    .option('--advertise-url <url>', 'cluster mode: where other nodes reach this one (default: the listening address)', process.env.DIONE_ADVERTISE_URL)
    .option('--lease-ttl <ms>', `cluster mode: how long a silent primary keeps its databases before another node takes over (default ${DEFAULTS.leaseTtlMs})`, integer('--lease-ttl'), fromEnv('DIONE_LEASE_TTL', integer('DIONE_LEASE_TTL')))
    .option('--replicas <n>', `cluster mode: copies NATS keeps of each log, the NATS cluster's size (default ${DEFAULTS.replicas})`, integer('--replicas'), fromEnv('DIONE_REPLICAS', integer('DIONE_REPLICAS')))
    .action(async (options: ServeFlags) => {
      if (options.nats && !options.nodeId) program.error('--nats needs --node-id NAME: every node of a cluster has its own name');
      if (options.nodeId && !options.nats) program.error('--node-id is for cluster mode: give the NATS servers with --nats');
      if (options.nats && !options.history) program.error('cluster mode keeps a write log: --no-history cannot be used with --nats');
      if (options.publicUrl !== undefined) {
        try {
          parsePublicUrl(options.publicUrl);
        } catch (e) {
          program.error(`--public-url: ${(e as Error).message}`);
        }
      }
      const server = await startServer({
        host: options.host,
        port: options.port,
        data: options.data,
        accountId: options.accountId,
        queryTimeoutMs: options.queryTimeout,
        transactionTimeoutMs: options.transactionTimeout,
        workers: options.workers,
        maxOpenDatabases: options.maxOpenDatabases,
        maxConnections: options.maxConnections,
        maxImportBytes: options.maxImportBytes,
        idleMs: options.idleTimeout,
        allowUnauthenticated: options.dev,
        publicUrl: options.publicUrl,
        metricsPublic: options.metricsPublic,
        history: options.history && (options.retentionDays === undefined ? true : { retentionDays: options.retentionDays }),
        region: options.region,
        queryStats: options.queryStats,
        console: options.console,
        localReads: options.localReads ? undefined : false,
        notify: (line) => process.stderr.write(`${line}\n`),
        cluster: options.nats
          ? {
              servers: options.nats.split(',').map((u) => u.trim()).filter(Boolean),
              node: options.nodeId!,
              url: options.advertiseUrl,
              leaseTtlMs: options.leaseTtl,
              replicas: options.replicas,
            }
          : undefined,
      }).catch(refuseToStart);
      const lines = [
        `dione: listening on ${server.url}`,
        ...(server.context.settings.publicUrl === server.url ? [] : [`dione: public URL ${server.context.settings.publicUrl}`]),
        `dione: data in ${server.context.catalog.dataDir}`,
        ...(options.nats ? [`dione: cluster node ${options.nodeId} (region ${server.context.settings.region}) on NATS ${options.nats}`] : []),
        `dione: account id ${server.accountId}`,
        ...(options.console ? [`dione: web console at ${server.context.settings.publicUrl}/`] : []),
        options.dev
          ? 'dione: dev mode: requests without a token are allowed'
          : `dione: create a token with: npx dione token create --data ${server.context.catalog.dataDir} --scope admin`,
        `dione: wrangler: CLOUDFLARE_API_BASE_URL=${server.context.settings.publicUrl}/client/v4 CLOUDFLARE_ACCOUNT_ID=${server.accountId} CLOUDFLARE_API_TOKEN=<token>`,
      ];
      process.stderr.write(`${lines.join('\n')}\n`);
      const stop = (signal: string) => {
        process.stderr.write(`dione: ${signal}: finishing in-flight requests\n`);
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });

  registerToken(program);
}
