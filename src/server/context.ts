// What every route needs: the catalogue, the database hosts, settings, and the resolved caller.
import type { Logger } from 'pino';
import type { Catalog, DatabaseRecord } from './catalog.ts';
import type { ClusterCatalog } from './cluster-catalog.ts';
import type { ClusterPlacements } from './cluster-placements.ts';
import type { WorkerPool } from './host/pool.ts';
import type { Metrics } from './metrics.ts';
import type { StatsSource } from './stats/analytics.ts';
import type { QueryStatsRecorder } from './stats/recorder.ts';
import type { Grant } from './tokens.ts';

export interface ServerSettings {
  accountId: string;
  /** Unauthenticated requests are allowed (as admin). Only when asked for. */
  allowUnauthenticated: boolean;
  queryTimeoutMs: number;
  region: string;
  /** The largest request body accepted, but for uploads to import URLs. */
  maxBodyBytes: number;
  /** The largest upload to an import URL (a SQL file). */
  maxImportBytes: number;
  /** How long an import's ingest or poll waits for it to end before answering that it is still active. */
  importWaitMs: number;
  /**
   * Where clients reach this server (no trailing slash): export and import URLs are built from it,
   * never from a request's Host header. Resolved once the server listens.
   */
  publicUrl: string;
  /** /metrics answers without a token. */
  metricsPublic: boolean;
  /** Cluster mode: this node's name. */
  node?: string;
  /** The web console is served at /. */
  console: boolean;
  /** Time Travel is on (the server keeps a write log). */
  history: boolean;
}

export interface ServerContext {
  catalog: Catalog;
  pool: WorkerPool;
  settings: ServerSettings;
  metrics: Metrics;
  logger: Logger;
  /**
   * Cluster mode: the catalogue shared by every node (NATS KV). Routes that change the catalogue
   * tell it, and it tells the other nodes.
   */
  clusterCatalog?: ClusterCatalog;
  /** Records each answered statement for query insights (absent when the server records none). */
  queryStats?: QueryStatsRecorder;
  /** Answers analytics questions (GraphQL): this node's statistics, or in cluster mode every node's. */
  stats: StatsSource;
  /** Cluster mode: every node's open copies of databases and the commit each holds (the console's replica lag). */
  placements?: ClusterPlacements;
  /** Import uploads and export downloads waiting to be fetched, by unguessable key. */
  transfers: Map<string, Transfer>;
}

/**
 * An export's dump waiting to be downloaded, or an import's upload URL (and, once ingested, its
 * result). A key only ever serves its own kind: an export key is no upload URL.
 */
export type Transfer =
  | {
      kind: 'export';
      file: string;
      expires: number;
      /** The database (uuid) it is a dump of. */
      database: string;
      /** The token that made it (undefined on a server without tokens): revoking the token ends it. */
      token?: string;
    }
  | {
      kind: 'import';
      file: string;
      expires: number;
      /** The token that made it (undefined on a server without tokens): revoking the token ends it. */
      token?: string;
      /** md5 hex announced at init. */
      etag: string;
      /** The database (uuid) it was started for: no other database's import can ingest or poll it. */
      database: string;
      /** The ingest running or done: an upload is imported once, a second ingest answers the first one's result. */
      ingest?: Promise<unknown>;
      /** The ingest has not ended yet: the transfer does not expire meanwhile. */
      running?: boolean;
      /** An upload to its URL is being received: a second one at the same time is refused (each could fill the disk). */
      uploading?: boolean;
      result?: unknown;
    };

export type Env = {
  Variables: {
    grant: Grant;
    database?: DatabaseRecord;
    logDatabase?: string;
    logRows?: { read: number; written: number };
    /** Why the request failed, for its log line (D1's error text, an auth failure, an import's error). */
    logReason?: string;
  };
};
