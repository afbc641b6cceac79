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
  /**
   * For each of `times` (ascending), a commit counter at that time: the difference between two
   * counters is the number of commits made in between. From record summaries alone (no page is
   * read), in a bounded number of lookups (binary searches), however long the history.
   */
  positionsAt(times: number[]): Promise<number[]>;
  /** Up to `count` summaries of the records committed at or before `time`, newest first (no page is read). */
  newestAt(time: number, count: number): Promise<RecordSummary[]>;
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

/** Commits over a time range, for a chart: `buckets` equal buckets of (since, until], times in ms since the epoch. */
export interface CommitsQuery {
  since: number;
  until: number;
  buckets: number;
}

/** A commit: its bookmark and its commit time (ms since the epoch). */
export interface CommitPoint {
  bookmark: string;
  time: number;
}

/** The answer to a CommitsQuery (snake_case: it is the console API's answer as is). */
export interface CommitsOverview {
  since: number;
  until: number;
  /** (until - since) / buckets; bucket i holds the commits with since + i·bucket_ms < time <= since + (i+1)·bucket_ms. */
  bucket_ms: number;
  /** Commits per bucket, oldest bucket first. */
  counts: number[];
  total: number;
  /** The newest commits in (since, until], newest first (at most 20). */
  recent: CommitPoint[];
  /** The oldest commit a restore by bookmark accepts now, or null when the history has no snapshot yet. */
  oldest_restorable: CommitPoint | null;
}

/** Time Travel's operations on one database, as the server's host runs them (a single node's or a cluster primary's). */
export interface TimeTravel {
  bookmarkAt(timestamp?: Date): string | Promise<string>;
  restore(point: HistoryPoint): Promise<RestoreResult>;
  fork(point: HistoryPoint, file: string): { bookmark: string; forkBookmark: string } | Promise<{ bookmark: string; forkBookmark: string }>;
}
