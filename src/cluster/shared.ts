// What one database's node needs of the cluster's shared services, as interfaces: the database's
// log (a JetStream stream: stream-log.ts), the snapshot bucket (an object store:
// object-snapshots.ts) and the primary leases (a key-value bucket: leases.ts). ClusterDatabase,
// Follower and StreamHistory depend on these alone, so their role and routing logic runs against
// in-memory fakes too (test/helpers/cluster-fakes.ts), without a nats-server.
import type { LogRecord, RecordSummary } from '../log/record.ts';
import type { SnapshotInfo } from '../log/store.ts';

export interface SharedLog {
  /** A name for messages: the stream's. */
  readonly stream: string;
  /** The newest record's sequence in this writer's view (undefined: no record yet). */
  readonly lastSeq: number | undefined;
  /** Reads the tail again (after being fenced, or before taking over as the writer). */
  refresh(): Promise<void>;
  /** Appends records after this writer's view of the tail; refused (LogFenced) when another writer appended first. */
  appendAll(records: LogRecord[]): Promise<void>;
  append(record: LogRecord): Promise<void>;
  /** appendAll() for records already encoded (encodeRecord). */
  appendEncoded(records: { seq: number; body: Buffer }[]): Promise<void>;
  /** The records after `seq`, oldest first, up to the end of the log as it is now. */
  read(seq: number): AsyncGenerator<LogRecord>;
  /** The records after `seq` as they are appended, until stop(). */
  tail(seq: number): Promise<{ records: AsyncGenerator<LogRecord>; stop: () => void }>;
  /** The newest record now (this writer's view is left alone). */
  lastSummary(): Promise<RecordSummary | undefined>;
  atTime(time: number): Promise<RecordSummary | undefined>;
  find(seq: number): Promise<RecordSummary | undefined>;
  /**
   * For each of `times` (ascending): the sequence of the newest record committed at or before it
   * (before every record kept: the first one's sequence − 1), from record summaries alone.
   */
  positionsAt(times: number[]): Promise<number[]>;
  /** Up to `count` summaries of the records committed at or before `time`, newest first. */
  newestAt(time: number, count: number): Promise<RecordSummary[]>;
  /** Removes every record with sequence <= `seq`, always keeping the newest one. */
  purgeThrough(seq: number): Promise<number>;
  size(): Promise<{ bytes: number; messages: number }>;
}

export interface SnapshotBucket {
  put(database: string, seq: number, file: string, time?: number): Promise<void>;
  list(database: string): Promise<number[]>;
  infos(database: string): Promise<SnapshotInfo[]>;
  /** False when there is no such snapshot. */
  copyTo(database: string, seq: number, file: string): Promise<boolean>;
  remove(database: string, seq: number): Promise<void>;
}

export interface LeaseHolder {
  node: string;
  /** Where the node takes forwarded writes. */
  url: string;
  region: string;
}

export interface PrimaryLease {
  readonly holder: LeaseHolder;
  /** Still ours, as far as this node can tell without asking. */
  readonly valid: boolean;
  /** Extends the lease; false (and never again true) when another node holds it now. */
  renew(): Promise<boolean>;
  release(): Promise<void>;
}

export interface LeaseBook {
  /** Takes the lease of `database` when nobody holds it (or an earlier run of this very node did); undefined when another holds it. */
  acquire(database: string, holder: LeaseHolder): Promise<PrimaryLease | undefined>;
  holder(database: string): Promise<LeaseHolder | undefined>;
}
