// A server's configuration, resolved once: every default lives here, and the layers below take
// the resolved values as they are.
import { availableParallelism } from 'node:os';
import { defaultMaxConnections, defaultMaxOpenDatabases, defaultMaxOpenTransactions } from './host/pool.ts';
import type { HistorySettings } from './host/protocol.ts';

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Directory for the catalogue and the database files. */
  data?: string;
  accountId?: string;
  /** Per-query limit in ms (D1: 30 s): a query running longer is interrupted. */
  queryTimeoutMs?: number;
  /** An interactive transaction (dione/client with `transactions: true`) idle this long is rolled back (default 10 s). */
  transactionTimeoutMs?: number;
  /** Allow requests without a token (as admin). For local development only. */
  allowUnauthenticated?: boolean;
  /** Close a database after this long without requests. */
  idleMs?: number;
  /** Worker threads hosting the databases (default: one per core). */
  workers?: number;
  /** Databases kept open at once (default: what the file-descriptor limit allows). */
  maxOpenDatabases?: number;
  /** Interactive transactions open at once, across every database (default: a tenth of the file-descriptor limit, three each). */
  maxOpenTransactions?: number;
  /**
   * Client connections open at once; more are closed as they come (default: a quarter of the
   * open-file limit, the sockets' share of it: without a bound, a flood of idle connections took
   * the descriptors databases need, and every write failed with EMFILE).
   */
  maxConnections?: number;
  /**
   * A connection that has not sent a whole request head this long after it opened is closed
   * (default 30 s), however slowly the head trickles in; a later request on the connection has as
   * long for its head (Node's headersTimeout). Node times out requests that have begun, not sockets
   * that send nothing, and a flood of silent or trickling connections held every client out.
   */
  firstRequestTimeoutMs?: number;
  region?: string;
  /** The largest request body accepted (default 64 MiB); uploads to import URLs have their own limit. */
  maxBodyBytes?: number;
  /**
   * The largest SQL file an import takes (default 5 GiB, D1's): the upload streams to disk and the
   * import reads it a window at a time, so memory does not grow with it.
   */
  maxImportBytes?: number;
  /**
   * How long an import's ingest or poll waits for it to end before answering that it is still
   * active (default 5 s; D1 answers within about a second, and wrangler then polls at once).
   */
  importWaitMs?: number;
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
  /** Record per-statement statistics for query insights and the GraphQL Analytics API (default true). */
  queryStats?: boolean;
  /** Serve the web console at / (default true). */
  console?: boolean;
  /**
   * Reads of a database read this often (reads a second) are answered on the server's own thread
   * while it has time to spare, without the hop to a worker (default 32; false: never; single node only).
   */
  localReads?: number | false;
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

export interface ServerConfig {
  host: string;
  port: number;
  data: string;
  accountId: string | undefined;
  queryTimeoutMs: number;
  transactionTimeoutMs: number;
  allowUnauthenticated: boolean;
  idleMs: number;
  workers: number;
  maxOpenDatabases: number;
  maxOpenTransactions: number;
  maxConnections: number;
  firstRequestTimeoutMs: number;
  region: string;
  maxBodyBytes: number;
  maxImportBytes: number;
  importWaitMs: number;
  publicUrl: string | undefined;
  metricsPublic: boolean;
  history: HistorySettings | false;
  queryStats: boolean;
  console: boolean;
  localReads: number | false;
  cluster: Required<Omit<ClusterOptions, 'url'>> & { url: string | undefined; region: string } | undefined;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8787,
  data: '.dione',
  /** D1's limit on one query. */
  queryTimeoutMs: 30_000,
  transactionTimeoutMs: 10_000,
  idleMs: 60_000,
  region: 'LOCAL',
  maxBodyBytes: 64 * 1024 * 1024,
  maxImportBytes: 5 * 1024 ** 3,
  firstRequestTimeoutMs: 30_000,
  importWaitMs: 5000,
  retentionDays: 30,
  leaseTtlMs: 10_000,
  replicas: 3,
  sessionWaitMs: 250,
  localReads: 32,
} as const;

export function resolveServerConfig(options: ServeOptions = {}): ServerConfig {
  const history: HistorySettings | false =
    options.history === false ? false : { retentionDays: DEFAULTS.retentionDays, ...(options.history === true || options.history === undefined ? {} : options.history) };
  const region = options.region ?? DEFAULTS.region;
  const cluster = options.cluster && {
    servers: options.cluster.servers,
    node: options.cluster.node,
    url: options.cluster.url,
    region,
    leaseTtlMs: options.cluster.leaseTtlMs ?? DEFAULTS.leaseTtlMs,
    replicas: options.cluster.replicas ?? DEFAULTS.replicas,
    sessionWaitMs: options.cluster.sessionWaitMs ?? DEFAULTS.sessionWaitMs,
  };
  return {
    host: options.host ?? DEFAULTS.host,
    port: options.port ?? DEFAULTS.port,
    data: options.data ?? DEFAULTS.data,
    accountId: options.accountId,
    queryTimeoutMs: options.queryTimeoutMs ?? DEFAULTS.queryTimeoutMs,
    transactionTimeoutMs: options.transactionTimeoutMs ?? DEFAULTS.transactionTimeoutMs,
    allowUnauthenticated: options.allowUnauthenticated ?? false,
    // A cluster node's copy of a database is kept current only while it is open.
    idleMs: options.idleMs ?? (cluster ? 2 ** 31 - 1 : DEFAULTS.idleMs),
    workers: options.workers ?? availableParallelism(),
    maxOpenDatabases: options.maxOpenDatabases ?? defaultMaxOpenDatabases(history !== false),
    maxOpenTransactions: options.maxOpenTransactions ?? defaultMaxOpenTransactions(),
    maxConnections: options.maxConnections ?? defaultMaxConnections(),
    firstRequestTimeoutMs: options.firstRequestTimeoutMs ?? DEFAULTS.firstRequestTimeoutMs,
    region,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
    maxImportBytes: options.maxImportBytes ?? DEFAULTS.maxImportBytes,
    importWaitMs: options.importWaitMs ?? DEFAULTS.importWaitMs,
    publicUrl: options.publicUrl,
    metricsPublic: options.metricsPublic ?? false,
    history,
    queryStats: options.queryStats ?? true,
    console: options.console ?? true,
    localReads: cluster ? false : (options.localReads ?? DEFAULTS.localReads),
    cluster,
  };
}
