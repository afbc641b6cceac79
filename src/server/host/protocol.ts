// The host boundary: what the server asks of the workers that host its databases, and what they
// answer. Values and typed failures only; HTTP status codes and envelopes are the protocols' (src/server/protocols/).
import type { ExecuteRequest, ExecuteResponse } from '../../api/executor.ts';
import type { RestoreResult } from '../../api/time-travel.ts';
import type { ScriptResponse } from '../../engine/engine.ts';
import type { CommitsOverview, CommitsQuery } from '../../log/history.ts';

/** Why Time Travel (and everything built on the write log) is refused on a server without one. */
export const HISTORY_OFF = 'Time Travel is off on this server: it runs without a write log (dione serve --no-history)';

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

/** The write log of every database: Time Travel's reach, and how often snapshots are taken. */
export interface HistorySettings {
  retentionDays?: number;
  snapshotBytes?: number;
}

/** Cluster mode: the database lives in the NATS cluster, and this node is one of its holders. */
export interface HostClusterSettings {
  servers: string[];
  /** The database's key in the cluster (its uuid): given per database, by the worker hosting it. */
  database?: string;
  node: string;
  region: string;
  /** Where other nodes send this node the requests it must serve as the primary. */
  url: string;
  leaseTtlMs: number;
  replicas: number;
  sessionWaitMs: number;
}

/** What every worker is started with. */
export interface WorkerSettings {
  index: number;
  servedBy: string;
  history: HistorySettings | false;
  cluster?: HostClusterSettings;
  queryTimeoutMs: number;
  transactionTimeoutMs: number;
  /** The ownership table shared with the pool (slots.ts). */
  slots: SharedArrayBuffer;
  /**
   * Interactive transactions open in the process, one Int32 per worker index (each worker counts
   * its own: the pool clears a worker's count when it exits, whatever state it died in), and how
   * many may be open in all.
   */
  openTransactions: { counter: SharedArrayBuffer; max: number };
}

/** A node to send a request to (the database's primary), or null when none can be found now. */
export interface ForwardTarget {
  node: string;
  url: string;
  region: string;
}

export interface DatabaseInfo {
  num_tables: number;
  file_size: number;
  bookmark: string;
}

/** Where a database stands, as the node asked sees it. */
export interface DatabasePlacement {
  /** 'single': not in a cluster. */
  role: 'primary' | 'follower' | 'single';
  /** Cluster mode: the node writing it (its lease holder, this node when primary); null when none holds it now, and on a single node. */
  primary: ForwardTarget | null;
  /** The commit this node's copy holds. */
  sequence: number;
  /** The newest commit of the database's log, or null when it cannot be asked now. */
  newest: number | null;
}

/** The operations a host runs on one database, each with the value it answers. */
export interface HostOperations {
  execute: { call: { request: ExecuteRequest; writes: boolean }; value: ExecuteResponse };
  info: { call: object; value: DatabaseInfo };
  /** A consistent copy of the database file, written to `file`. */
  dump: { call: { file: string }; value: null };
  export: { call: { file: string; options: DumpOptions }; value: { lines: number; bookmark: string } };
  /** Runs a SQL file as one transaction; `response` is null for a file without statements. */
  /** `settingsChanged`: a PRAGMA of the file set a setting the database's connection keeps (case_sensitive_like…). */
  import: { call: { file: string }; value: { response: ScriptResponse; settingsChanged: boolean } };
  /** Where the database is written: this node answers null; another node is a NotPrimary failure. */
  primary: { call: object; value: null };
  bookmark: { call: { timestamp?: number }; value: { bookmark: string } };
  restore: { call: { point: HistoryPointMessage }; value: RestoreResult };
  fork: { call: { point: HistoryPointMessage; file: string }; value: { bookmark: string; forkBookmark: string } };
  /** Commits per time bucket over a range, from the history's record summaries (any node of a cluster answers). */
  commits: { call: CommitsQuery; value: CommitsOverview };
  /** Where the database stands: its primary and this node's copy (never takes the lease). */
  placement: { call: object; value: DatabasePlacement };
}

export type HostOp = keyof HostOperations;
export type HostCall = { [K in HostOp]: { op: K } & HostOperations[K]['call'] }[HostOp];
export type HostCallOf<K extends HostOp> = { op: K } & HostOperations[K]['call'];

/**
 * Why a host could not do what it was asked. `history`: a point of history that cannot be honoured
 * (the caller's error); `not-primary`: another node writes this database (`holder`, or null while
 * none is known); `refused`: the database refuses work until its write log can be repaired;
 * `error`: anything else (the message says what).
 */
export type HostFailureData =
  | { kind: 'history'; message: string }
  | { kind: 'not-primary'; holder: ForwardTarget | null }
  | { kind: 'refused'; message: string }
  | { kind: 'error'; message: string };

/** A database as the pool hands it to a worker: its slot in the ownership table and the epoch of this assignment. */
export interface DatabaseRef {
  uuid: string;
  file: string;
  slot: number;
  epoch: number;
  /** Take the history lock on opening; false while a stale copy on a stalled worker still holds it (a 'lock' message follows). */
  lock: boolean;
}

export type ToWorker =
  /** `seq` numbers the database's calls in this epoch (from 1), for Slots.take. */
  | { t: 'call'; id: number; seq: number; db: DatabaseRef; call: HostCall }
  /** Close the database (idle, evicted, or before its files are replaced or deleted). */
  | { t: 'close'; db: DatabaseRef }
  /** The database moved to another worker while this one was busy: let the copy go without touching its files. */
  | { t: 'drop'; uuid: string }
  /** Take the history lock the dropped copy held. */
  | { t: 'lock'; db: DatabaseRef }
  /** End at once, as an uncaught error would (tests: what is acknowledged survives a worker's end). */
  | { t: 'exit' };

export type FromWorker =
  | { t: 'reply'; id: number; value: unknown }
  | { t: 'fail'; id: number; failure: HostFailureData }
  /** The worker holds no copy of the database any more (closed, dropped, or, with `failure`, it could not open). */
  | { t: 'released'; uuid: string; lockReleased: boolean; failure?: HostFailureData };

export type { CommitsOverview, CommitsQuery, ExecuteResponse, RestoreResult };
