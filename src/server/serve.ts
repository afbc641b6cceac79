// Starting and stopping a Dione server.
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pino, { type Logger } from 'pino';
import { ClusterCatalog } from './cluster-catalog.ts';
import { createApp } from './app.ts';
import { authenticator } from './auth.ts';
import { fastPath } from './fast-path.ts';
import { Catalog } from './catalog.ts';
import type { ServerContext, ServerSettings } from './context.ts';
import { HostPool } from './host/pool.ts';
import type { HistorySettings } from './host/protocol.ts';
import { Metrics } from './metrics.ts';

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Directory for the catalogue and the database files. */
  data?: string;
  accountId?: string;
  /** Per-query limit in ms (D1: 30 s). */
  queryTimeoutMs?: number;
  /** Allow requests without a token (as admin). For local development only. */
  allowUnauthenticated?: boolean;
  /** Stop a database's host process after this long idle. */
  idleMs?: number;
  maxHosts?: number;
  /** Database host processes kept started ahead of need (default 1). */
  spares?: number;
  region?: string;
  /** The largest request body accepted, uploads to import URLs included (default 64 MiB). */
  maxBodyBytes?: number;
  /**
   * Where clients reach this server (http(s)://host[:port][/prefix]); export and import URLs are
   * built from it. Default: the cluster's advertise URL, else the address the server listens on.
   */
  publicUrl?: string;
  /** Serve /metrics without a token (default: a token of any scope is needed, as on every route). */
  metricsPublic?: boolean;
  /** Keep a write log for every database: Time Travel and forks (default true). */
  history?: boolean | HistorySettings;
  /** Cluster mode: this server is one node of a cluster whose databases live in NATS JetStream. */
  cluster?: ClusterOptions;
  logger?: Logger;
  /** Where to say what an operator must know while the server starts (default: the logger). */
  notify?: (line: string) => void;
}

export interface ClusterOptions {
  /** NATS URLs (one or more servers of one NATS cluster). */
  servers: string[];
  /** This node's name: unique in the cluster. */
  node: string;
  /** Where other nodes reach this one (default: the address it listens on). */
  url?: string;
  /** A primary's lease lapses this long after its node stops renewing it (default 10 s: longer than a NATS election). */
  leaseTtlMs?: number;
  /** Copies NATS keeps of each log, lease and snapshot (default 3, for a 3-node NATS cluster). */
  replicas?: number;
  /** How long a session read waits for this node's copy before going to the primary (default 250 ms). */
  sessionWaitMs?: number;
}

export interface RunningServer {
  url: string;
  port: number;
  accountId: string;
  context: ServerContext;
  /** Graceful: stops accepting, lets in-flight requests finish, closes every database. */
  close(): Promise<void>;
}

/** A public URL as given by an operator, checked and without a trailing slash; throws when unusable. */
export function parsePublicUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`the public URL must be an absolute http:// or https:// URL, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`the public URL must be an http:// or https:// URL, got "${value}"`);
  if (url.search || url.hash || url.username || url.password) throw new Error(`the public URL takes no query, fragment or credentials, got "${value}"`);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const configuredPublicUrl = options.publicUrl === undefined ? undefined : parsePublicUrl(options.publicUrl);
  const logger = options.logger ?? pino({ level: process.env.DIONE_LOG_LEVEL ?? 'info' });
  const catalog = new Catalog(options.data ?? '.dione');
  const metrics = new Metrics();
  const region = options.region ?? 'LOCAL';
  const clustered = options.cluster && {
    servers: options.cluster.servers,
    node: options.cluster.node,
    region,
    url: options.cluster.url ?? '',
    leaseTtlMs: options.cluster.leaseTtlMs ?? 10_000,
    replicas: options.cluster.replicas ?? 3,
    sessionWaitMs: options.cluster.sessionWaitMs ?? 250,
  };
  let pool: HostPool | undefined;
  const notify = options.notify ?? ((line: string) => logger.warn(line));
  const shared = clustered && (await joinCluster(clustered, catalog, notify, logger, (uuid) => pool?.stop(uuid).then(() => removeDatabaseFiles(catalog.file(uuid)))));
  const accountId = catalog.accountId(shared ? await shared.catalog.accountId(options.accountId ?? catalog.accountId()) : options.accountId);
  const settings: ServerSettings = {
    accountId,
    allowUnauthenticated: options.allowUnauthenticated ?? false,
    queryTimeoutMs: options.queryTimeoutMs ?? 30_000,
    region,
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024 * 1024,
    publicUrl: '', // once listening
    metricsPublic: options.metricsPublic ?? false,
    node: clustered?.node,
  };
  pool = new HostPool({
    queryTimeoutMs: settings.queryTimeoutMs,
    // A node's copy of a database is kept current only while its host runs.
    idleMs: options.idleMs ?? (clustered ? 2 ** 31 - 1 : 60_000),
    maxHosts: options.maxHosts ?? 256,
    servedBy: clustered ? clustered.node : 'dione',
    spares: options.spares,
    history: options.history === false ? false : options.history === true || options.history === undefined ? {} : options.history,
    cluster: clustered,
    onEvent: (event) => logger.debug(event, 'database host'),
  });
  const context: ServerContext = { catalog, pool, settings, metrics, logger, transfers: new Map(), clusterCatalog: shared?.catalog };
  let serving = false;
  const resolveGrant = authenticator(catalog, settings.allowUnauthenticated);
  const app = createApp(context, () => serving, resolveGrant);
  const honoListener = getRequestListener(app.fetch);
  const sqlListener = fastPath(context, resolveGrant);
  const server = createServer((req, res) => {
    if (!sqlListener(req, res)) void honoListener(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
    server.listen(options.port ?? 8787, options.host ?? '127.0.0.1');
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const listening = `http://${host}:${address.port}`;
  if (clustered && !clustered.url) clustered.url = listening;
  // Never the Host header of a request: whoever sends one would choose where clients upload.
  settings.publicUrl = configuredPublicUrl ?? (clustered ? clustered.url.replace(/\/+$/, '') : listening);
  if (URL.canParse(settings.publicUrl) && ['0.0.0.0', '[::]'].includes(new URL(settings.publicUrl).hostname)) {
    notify(`dione: export and import URLs point at ${settings.publicUrl}; give --public-url the address clients reach this server at`);
  }
  serving = true;
  let closing: Promise<void> | undefined;
  return {
    url: listening,
    port: address.port,
    accountId,
    context,
    close: () => {
      closing ??= (async () => {
        serving = false;
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await pool!.stopAll();
        await shared?.catalog.close();
        await shared?.nc.close().catch(() => {});
        catalog.close();
      })();
      return closing;
    },
  };
}

/** Connects to NATS (waiting as long as it takes, saying so) and joins the shared catalogue. */
async function joinCluster(
  settings: { servers: string[]; node: string; replicas: number },
  catalog: Catalog,
  notify: (line: string) => void,
  logger: Logger,
  onRemoved: (uuid: string) => Promise<void> | undefined,
): Promise<{ nc: NatsConnection; catalog: ClusterCatalog }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const nc = await connect({ servers: settings.servers, name: `dione ${settings.node}`, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 2000 });
      try {
        const shared = await ClusterCatalog.start(nc, catalog, { replicas: settings.replicas, logger, onRemoved: (uuid) => onRemoved(uuid) });
        logger.info({ node: settings.node, nats: settings.servers }, 'joined the cluster');
        return { nc, catalog: shared };
      } catch (e) {
        await nc.close().catch(() => {});
        throw e;
      }
    } catch (e) {
      if (attempt === 1 || attempt % 30 === 0) notify(`dione: cannot reach NATS at ${settings.servers.join(', ')} (${(e as Error).message}); retrying every second`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** A database's files on this node: its file, its write log, and its cluster copy. */
function removeDatabaseFiles(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(file + suffix, { force: true });
  rmSync(`${file}-history`, { recursive: true, force: true });
  rmSync(`${file}.cluster`, { recursive: true, force: true });
}
