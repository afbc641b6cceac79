// Where a database's history lives. The local backend keeps files under the data directory; a
// JetStream backend keeps the records in a stream (one subject per database, appends fenced by
// the expected last sequence) and the snapshots in an object store.
import type { LogRecord, RecordSummary } from './record.ts';

export interface LogStore {
  /** 32 lowercase hex naming this history: the last group of its bookmarks. */
  readonly tag: string;
  /** The newest record's summary, or undefined for a history with no records yet. */
  last(): RecordSummary | undefined;
  /** The newest record in full (crash recovery resumes WAL capture from its position). */
  lastRecord(): LogRecord | undefined;
  /**
   * Adds a record after the last one. `expectedLast` fences the append: it fails unless the
   * history ends at that sequence (a second writer, or one that lost its lease, cannot append).
   * The record is durable once flush() returns.
   */
  append(record: LogRecord, expectedLast: number): void;
  flush(): void;
  /** Records with from < seq <= to, oldest first. */
  read(from: number, to: number): Iterable<LogRecord>;
  /** The newest record committed at or before `time`, or undefined when every record is newer. */
  atTime(time: number): RecordSummary | undefined;
  /** The summary of record `seq`, if the history holds it. */
  find(seq: number): RecordSummary | undefined;
  /** How many records kept were committed at or before `time` (from the index: no record is read). */
  countThrough(time: number): number;
  /** Up to `count` summaries of the records committed at or before `time`, newest first (no record is read). */
  newestThrough(time: number, count: number): RecordSummary[];
  /** Forgets records with seq <= `seq` (a snapshot covers them). */
  compact(seq: number): void;
  /** Bytes of records kept. */
  bytes(): number;
  /** The uncompressed page bytes of the records after `seq`: what rebuilding from a snapshot at `seq` replays. */
  pageBytesAfter(seq: number): number;
  close(): void;
}

export interface SnapshotInfo {
  seq: number;
  time: number;
  bytes: number;
}

export interface SnapshotStore {
  /** Oldest first. */
  list(): SnapshotInfo[];
  /**
   * Stores `file` (a closed, checkpointed database file) as the snapshot at `seq`: a copy, or the
   * file itself when `move` (it must then be on the same file system, e.g. from temporaryFile()).
   */
  put(file: string, seq: number, time: number, options?: { move?: boolean }): SnapshotInfo;
  /** A path for building a file that put() may move in. */
  temporaryFile(purpose: string): string;
  /** Copies the snapshot at `seq` to `file`. */
  copyTo(seq: number, file: string): void;
  remove(seq: number): void;
}
