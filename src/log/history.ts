// One database's history, wherever it is kept: the records of its committed write transactions
// and the snapshots that rebuilding starts from. A single node keeps it in files beside the
// database (file-history.ts); a cluster keeps it in a JetStream stream and an object store
// (src/cluster/stream-history.ts), where every node reaches the same history across failovers.
// Time Travel (time-travel.ts) and rebuilding a point (pages.ts, materializeFrom) work on this
// interface alone, so they answer alike whichever backend holds the history.
import type { HistoryPoint, RestoreResult } from '../api/time-travel.ts';
import type { LogRecord, RecordSummary } from './record.ts';
import type { SnapshotInfo } from './store.ts';

export interface History {
  /** 32 lowercase hex naming this history: the last group of its bookmarks. */
  readonly tag: string;
  /** The newest record's summary, or undefined for a history with no records yet. */
  last(): Promise<RecordSummary | undefined>;
  /**
   * Adds records after the last one, durable once this resolves. Fenced: refused unless the
   * history ends at `expectedLast` (a second writer, or one that lost its lease, cannot append).
   */
  append(records: LogRecord[], expectedLast: number): Promise<void>;
  /** Records with from < seq <= to, oldest first. */
  read(from: number, to: number): AsyncIterable<LogRecord>;
  /** The newest record committed at or before `time`, or undefined when every record kept is newer. */
  atTime(time: number): Promise<RecordSummary | undefined>;
  /** The summary of record `seq`, if the history holds it. */
  find(seq: number): Promise<RecordSummary | undefined>;
  /** Snapshots, oldest first. */
  snapshots(): Promise<SnapshotInfo[]>;
  /** Stores a closed, checkpointed database file as the snapshot at `seq` (commit time `time`). */
  putSnapshot(file: string, seq: number, time: number): Promise<void>;
  /** Writes the snapshot at `seq` to `file`. */
  copySnapshot(seq: number, file: string): Promise<void>;
  removeSnapshot(seq: number): Promise<void>;
  /** Forgets the records with seq <= `seq` (a snapshot at `seq` covers them). */
  compact(seq: number): Promise<void>;
  /** Bytes the records kept take in their store. */
  bytes(): Promise<number>;
}

/** Time Travel's operations on one database, as the server's host runs them (a single node's or a cluster primary's). */
export interface TimeTravel {
  bookmarkAt(timestamp?: Date): string | Promise<string>;
  restore(point: HistoryPoint): Promise<RestoreResult>;
  fork(point: HistoryPoint, file: string): { bookmark: string; forkBookmark: string } | Promise<{ bookmark: string; forkBookmark: string }>;
}
