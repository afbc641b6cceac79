// Starting and stopping a Dione server.
import { rmSync } from 'node:fs';
import path from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import pino, { type Logger } from 'pino';
import { ClusterCatalog } from './cluster-catalog.ts';
import { devRequestRefusal } from './dev-requests.ts';
import { ClusterPlacements, type CopyPosition } from './cluster-placements.ts';
import { ClusterQueryStats } from './cluster-query-stats.ts';
import { setResultBudget } from '../engine/sqlite.ts';
import { createApp } from './app.ts';
import { authenticator } from './auth.ts';
import { fastPath } from './fast-path.ts';
import { Catalog } from './catalog.ts';
import type { ServerContext, ServerSettings } from './context.ts';
import { type ClusterOptions, resolveServerConfig, type ServeOptions } from './config.ts';
import { WorkerPool } from './host/pool.ts';
import { Metrics } from './metrics.ts';
import { ErrorCodes, envelopeError } from './protocols/envelope.ts';
import { MAX_ANSWER_JSON } from './protocols/responses.ts';
import { clearTransferFiles, expire } from './routes/transfer.ts';
import { localSource, type StatsSource } from './stats/analytics.ts';
import { QueryStatsStore } from './stats/query-stats-store.ts';
import { QueryStatsRecorder } from './stats/recorder.ts';

/** The server's query statistics (one file for every database), beside the catalogue. */
export const QUERY_STATS_FILE = 'query-stats.sqlite';

/** How the server is run: its configuration, and where it reports. */
export interface StartOptions extends ServeOptions {
  logger?: Logger;
  /** Where to say what an operator must know while the server starts (default: the logger). */
  notify?: (line: string) => void;
}

export type { ClusterOptions, ServeOptions };

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

/** Requests one connection may have in flight at once (HTTP pipelining; clients send one at a time). */
const MAX_PIPELINED = 16;

export async function startServer(options: StartOptions = {}): Promise<RunningServer> {
  const config = resolveServerConfig(options);
  // A query's rows stop being built once they would not fit in an answer (every thread of the process).
  setResultBudget(MAX_ANSWER_JSON);
  const configuredPublicUrl = config.publicUrl === undefined ? undefined : parsePublicUrl(config.publicUrl);
  const logger = options.logger ?? pino({ level: process.env.DIONE_LOG_LEVEL ?? 'info' });
  const catalog = new Catalog(config.data);
  // Uploads and dumps of an earlier run: no URL of this one reaches them.
  clearTransferFiles(catalog.dataDir);
  const metrics = new Metrics();
  const clustered = config.cluster && { ...config.cluster, url: config.cluster.url ?? '' };
  let pool: WorkerPool | undefined;
  const notify = options.notify ?? ((line: string) => logger.warn(line));
  const shared = clustered && (await joinCluster(clustered, catalog, notify, logger, (uuid) => pool?.stop(uuid).then(() => removeDatabaseFiles(catalog.file(uuid)))));
  const accountId = catalog.accountId(shared ? await shared.catalog.accountId(config.accountId ?? catalog.accountId()) : config.accountId);
  const settings: ServerSettings = {
    accountId,
    allowUnauthenticated: config.allowUnauthenticated,
    queryTimeoutMs: config.queryTimeoutMs,
    region: config.region,
    maxBodyBytes: config.maxBodyBytes,
    maxImportBytes: config.maxImportBytes,
    importWaitMs: config.importWaitMs,
    publicUrl: '', // once listening
    metricsPublic: config.metricsPublic,
    node: clustered?.node,
    console: config.console,
    history: config.history !== false,
  };
  // The pool is made once the server listens (a cluster node's URL may be the listening address),
  // in the same turn: no request is read before it exists.
  const queryStats = config.queryStats ? openQueryStats(config.data, logger) : undefined;
  const clusterStats = shared && clustered ? new ClusterQueryStats(shared.nc, clustered.node, queryStats, logger) : undefined;
  const stats: StatsSource = clusterStats ?? (queryStats ? localSource(queryStats) : { groups: async () => [] });
  // This node's open copies: asking for placements never opens a database.
  const openCopies = async (uuids: string[]): Promise<CopyPosition[]> => {
    const open = uuids.filter((uuid) => context.pool?.isOpen(uuid));
    const answers = await Promise.all(
      open.map(async (uuid): Promise<CopyPosition | undefined> => {
        try {
          const where = await context.pool.call({ uuid, file: catalog.file(uuid) }, { op: 'placement' });
          return where.role === 'single' ? undefined : { uuid, role: where.role, sequence: where.sequence };
        } catch (e) {
          logger.debug({ err: e, database: uuid }, 'placements: a copy could not say where it stands');
          return undefined;
        }
      }),
    );
    return answers.filter((a) => a !== undefined);
  };
  const placements = shared && clustered ? new ClusterPlacements(shared.nc, { node: clustered.node, region: config.region }, openCopies, logger) : undefined;
  const context: ServerContext = {
    catalog,
    pool: undefined as unknown as WorkerPool,
    settings,
    metrics,
    logger,
    transfers: new Map(),
    clusterCatalog: shared?.catalog,
    queryStats,
    stats,
    placements,
  };
  // Transfers past their time end even when no transfer request comes to end them.
  const transferSweep = setInterval(() => expire(context), 60_000);
  transferSweep.unref();
  let serving = false;
  const resolveGrant = authenticator(catalog, settings.allowUnauthenticated);
  const app = createApp(context, () => serving, resolveGrant);
  const honoListener = getRequestListener(app.fetch);
  const sqlListener = fastPath(context, resolveGrant);
  // The first request's head must arrive within firstRequestTimeoutMs of the connection opening,
  // however it trickles in (an idle timer was reset by each header line sent slowly); a later
  // request's head within headersTimeout, checked every few seconds.
  const firstRequestDeadlines = new WeakMap<Socket, ReturnType<typeof setTimeout>>();
  const pipelined = new WeakMap<Socket, number>();
  const serverOptions = {
    headersTimeout: config.firstRequestTimeoutMs,
    // Node's default (5 minutes), never shorter than the head's: Node refuses a head timeout past it.
    requestTimeout: Math.max(300_000, config.firstRequestTimeoutMs),
    connectionsCheckingInterval: Math.min(5_000, config.firstRequestTimeoutMs),
  };
  const server = createServer(serverOptions, (req, res) => {
    // A request has come: from here Node's own timeouts apply (headers, keep-alive between requests).
    clearTimeout(firstRequestDeadlines.get(req.socket));
    firstRequestDeadlines.delete(req.socket);
    // Node starts every request a client pipelines at once, and keeps each answer until the ones
    // before it are written: a client that sends hundreds and reads nothing made the server hold
    // their answers (a gigabyte from one connection). Past a few, the connection is ended.
    const inFlight = (pipelined.get(req.socket) ?? 0) + 1;
    if (inFlight > MAX_PIPELINED) {
      res.writeHead(429, { 'content-type': 'application/json', connection: 'close' });
      res.end(JSON.stringify(envelopeError(ErrorCodes.tooManyRequests, `More than ${MAX_PIPELINED} requests in flight on one connection: the connection is closed`)));
      return;
    }
    pipelined.set(req.socket, inFlight);
    res.once('close', () => pipelined.set(req.socket, (pipelined.get(req.socket) ?? 1) - 1));
    // Whatever the authenticator takes for no token (absent, empty, blank) is checked here.
    if (settings.allowUnauthenticated && !req.headers.authorization?.trim()) {
      const refusal = devRequestRefusal(req.headers, settings.publicUrl);
      if (refusal !== undefined) {
        res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify(envelopeError(ErrorCodes.forbidden, refusal)));
        return;
      }
    }
    if (!sqlListener(req, res)) void honoListener(req, res);
  });
  server.maxConnections = config.maxConnections;
  server.on('connection', (socket: Socket) => {
    const deadline = setTimeout(() => socket.destroy(), config.firstRequestTimeoutMs);
    deadline.unref();
    firstRequestDeadlines.set(socket, deadline);
    socket.once('close', () => clearTimeout(deadline));
  });
  let lastDropReport = 0;
  server.on('drop', () => {
    const now = Date.now();
    // Once in a while, not once per connection, while a flood lasts.
    if (now - lastDropReport < 10_000) return;
    lastDropReport = now;
    logger.warn({ maxConnections: config.maxConnections }, `${config.maxConnections} connections are open (--max-connections): new ones are closed as they come`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
    server.listen(config.port, config.host);
  }).catch((e: unknown) => {
    clearInterval(transferSweep);
    queryStats?.close();
    throw e;
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const listening = `http://${host}:${address.port}`;
  if (clustered && !clustered.url) clustered.url = listening;
  pool = new WorkerPool({
    workers: config.workers,
    queryTimeoutMs: config.queryTimeoutMs,
    transactionTimeoutMs: config.transactionTimeoutMs,
    idleMs: config.idleMs,
    maxOpenDatabases: config.maxOpenDatabases,
    maxOpenTransactions: config.maxOpenTransactions,
    servedBy: clustered ? clustered.node : 'dione',
    history: config.history,
    cluster: clustered,
    localReads: config.localReads,
    exists: (uuid) => catalog.has(uuid),
    onEvent: (event) => logger.debug(event, 'database host'),
  });
  context.pool = pool;
  metrics.watchPool(pool);
  metrics.watchStorage(() => catalog.list().map((db) => ({ name: db.name, file: catalog.file(db.uuid) })));
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
        clearInterval(transferSweep);
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await pool!.stopAll();
        queryStats?.close();
        await clusterStats?.close();
        await placements?.close();
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
      const nc = await connect({ servers: settings.servers, name: `dione ${settings.node}`, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 2000, noAsyncTraces: true });
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

/**
 * The recorder of query statistics over <data>/query-stats.sqlite. Statistics never keep a server
 * from serving: a file that cannot be opened (damaged) is reported, and nothing is recorded.
 */
function openQueryStats(data: string, logger: Logger): QueryStatsRecorder | undefined {
  const file = path.join(data, QUERY_STATS_FILE);
  try {
    return new QueryStatsRecorder(new QueryStatsStore(file), { onError: (err) => logger.error({ err }, 'query statistics could not be saved') });
  } catch (err) {
    logger.error({ err, file }, 'query statistics are off: their file cannot be opened (move it away to start a new one)');
    return undefined;
  }
}

/** A database's files on this node: its file, its write log, and its cluster copy. */
function removeDatabaseFiles(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(file + suffix, { force: true });
  rmSync(`${file}-history`, { recursive: true, force: true });
  rmSync(`${file}.cluster`, { recursive: true, force: true });
}
