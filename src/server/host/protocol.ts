// Messages between the server and the per-database host processes.

export type WireProtocol = 'dione' | 'd1' | 'rest-query' | 'rest-raw';

export interface DumpOptions {
  noSchema?: boolean;
  noData?: boolean;
  tables?: string[];
}

/** A point of a database's history: a bookmark, or a time in ms since the epoch. */
export interface HistoryPointMessage {
  bookmark?: string;
  timestamp?: number;
}

export type HostRequest =
  | { id: number; op: 'open'; file: string; servedBy: string; history: HistorySettings | false; cluster?: HostClusterSettings }
  | {
      id: number;
      op: 'execute';
      protocol: WireProtocol;
      /** The HTTP request body, as received. */
      body: string;
      /** D1 binding protocol: the resultsFormat query parameter and the session header. */
      resultsFormat?: string;
      session?: string;
      /** The caller may only read. */
      readOnly: boolean;
    }
  | { id: number; op: 'export'; file: string; options: DumpOptions }
  | { id: number; op: 'import'; file: string }
  | { id: number; op: 'dump'; file: string }
  | { id: number; op: 'info' }
  /** Where the database is written: this node, or (cluster mode) another one (the reply's `forward`). */
  | { id: number; op: 'primary' }
  | { id: number; op: 'bookmark'; timestamp?: number }
  | { id: number; op: 'restore'; point: HistoryPointMessage }
  | { id: number; op: 'fork'; point: HistoryPointMessage; file: string };

/** The write log of every database: Time Travel's reach, and how often snapshots are taken. */
export interface HistorySettings {
  retentionDays?: number;
  snapshotBytes?: number;
}

/** Cluster mode: the database lives in the NATS cluster, and this node is one of its holders. */
export interface HostClusterSettings {
  servers: string[];
  /** The database's key in the cluster (its uuid). */
  database: string;
  node: string;
  region: string;
  /** Where other nodes send this node the requests it must serve as the primary. */
  url: string;
  leaseTtlMs: number;
  replicas: number;
  sessionWaitMs: number;
}

/** A node to send a request to (the database's primary), or null when none can be found now. */
export interface ForwardTarget {
  node: string;
  url: string;
  region: string;
}

export interface HostReply {
  id: number;
  status: number;
  body: string;
  bookmark?: string;
  /** Rows read and written (meta sums), for logs and metrics. */
  rows?: [number, number];
  /** Cluster mode: this node cannot serve the request; the primary can. */
  forward?: ForwardTarget | null;
}

export interface DatabaseInfo {
  num_tables: number;
  file_size: number;
  bookmark: string;
}
