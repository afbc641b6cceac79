// A database with a history: every committed write transaction is captured from the WAL as page
// images and made durable in the write log before its answer goes out; periodic snapshots bound
// the cost of rebuilding any point; Time Travel and forks rebuild points. The engine knows
// nothing of this: it calls back after each commit.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { formatBookmark, parseBookmark } from '../api/bookmark.ts';
import type { ExecuteRequest, ExecuteResponse } from '../api/executor.ts';
import { HistoryError, type HistoryPoint, type RestoreResult } from '../api/time-travel.ts';
import { Connection } from '../engine/connection.ts';
import { Engine, type EngineOptions } from '../engine/engine.ts';
import { DirectorySnapshots, FileLogStore } from './file-store.ts';
import { syncDirectory, syncFile } from './files.ts';
import { headerOfFile, materialize, schemaCookieInHeader, sequenceInHeader, sequenceOfFile, setSequenceOfFile } from './pages.ts';
import { type LogRecord, positionAfter } from './record.ts';
import type { LogStore, SnapshotStore } from './store.ts';
import { type CapturedCommit, NO_POSITION, WalReader } from './wal.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface HistoryOptions {
  /** Where the log and snapshots live (default: next to the database, `<file>-history`). */
  dir?: string;
  /** How far back Time Travel reaches (default 30 days, as D1's paid plan). */
  retentionDays?: number;
  /**
   * A snapshot is taken once the records since the last one hold more page bytes than this and
   * than half the database's size (default 64 MiB), so rebuilding a point never replays more than
   * about one database's worth of pages.
   */
  snapshotBytes?: number;
  /** …and at least this often while there are writes (default a day), so retention can drop old records. */
  snapshotIntervalMs?: number;
  /** The WAL is moved into the database file once it holds this much (default 4 MiB). */
  checkpointBytes?: number;
  /** The clock stamped on commits, ms since the epoch (benchmarks simulate the passing of hours). */
  clock?: () => number;
  /** The tag of a new history (a cluster's nodes share their database's). Default: random. */
  tag?: string;
}

export function historyDirOf(file: string): string {
  return `${path.resolve(file)}-history`;
}

export class LoggedDatabase {
  engine: Engine;
  readonly log: LogStore;
  readonly snapshots: SnapshotStore;
  readonly tag: string;
  private readonly wal: WalReader;
  private readonly dir: string;
  private readonly retentionMs: number;
  private readonly snapshotBytes: number;
  private readonly checkpointBytes: number;
  private readonly clock: () => number;
  private lastSeq: number;
  private lastTime: number;
  private readonly snapshotIntervalMs: number;
  /** Page bytes of the records after the newest snapshot, and when that snapshot was taken. */
  private pageBytesSinceSnapshot: number;
  private lastSnapshotTime: number;
  private snapshotting: Promise<void> | undefined;
  /** A failure of the log: nothing more may be acknowledged until the database is reopened. */
  private broken: Error | undefined;
  private closed = false;
  /** The WAL generation (its salt) last checkpointed. */
  private checkpointedSalt: number | undefined;

  constructor(
    readonly file: string,
    private readonly engineOptions: EngineOptions = {},
    options: HistoryOptions = {},
  ) {
    this.dir = options.dir ?? historyDirOf(file);
    this.retentionMs = (options.retentionDays ?? 30) * DAY_MS;
    this.snapshotBytes = options.snapshotBytes ?? 64 * 1024 * 1024;
    this.checkpointBytes = options.checkpointBytes ?? 4 * 1024 * 1024;
    this.snapshotIntervalMs = options.snapshotIntervalMs ?? DAY_MS;
    this.clock = options.clock ?? Date.now;
    this.log = new FileLogStore(this.dir, options.tag);
    this.snapshots = new DirectorySnapshots(this.dir);
    this.tag = this.log.tag;
    if (this.snapshots.list().length === 0) this.start();
    const last = this.log.lastRecord();
    const base = this.snapshots.list().at(-1)!;
    this.lastSeq = last?.seq ?? base.seq;
    this.lastTime = last?.time ?? base.time;
    // A snapshot past the log's end was stored by a restore that crashed before logging it.
    for (const s of this.snapshots.list()) if (s.seq > this.lastSeq) this.snapshots.remove(s.seq);
    // Commits that reached the WAL but not the log (the process died in between) are taken now,
    // before anything opens the database: closing it would checkpoint them away.
    this.wal = new WalReader(`${file}-wal`, existsSync(`${file}-wal`) ? positionAfter(last) : NO_POSITION);
    for (const commit of this.wal.read()) {
      // Commits made without the log (a server run with --no-history) may have been checkpointed
      // away: the database is then ahead of the log, and recover() starts the history anew.
      if (this.sequenceOf(commit) !== this.lastSeq + 1) break;
      this.append(commit);
    }
    this.log.flush();
    this.engine = this.openEngine();
    this.recover();
    const newest = this.snapshots.list().at(-1)!;
    this.pageBytesSinceSnapshot = this.log.pageBytesAfter(newest.seq);
    this.lastSnapshotTime = newest.time;
  }

  /** A new history starts with a snapshot of the database as it is (created empty if missing). */
  private start(): void {
    if (this.log.last()) throw new Error(`the history in ${this.dir} has records but no snapshot`);
    const connection = new Connection(this.file);
    connection.checkpoint();
    connection.close();
    this.snapshots.put(this.file, sequenceOfFile(this.file), this.clock());
  }

  private openEngine(): Engine {
    return new Engine(this.file, { ...this.engineOptions, durability: 'normal', bookmarkTag: this.tag, onCommit: () => this.capture() });
  }

  /** Makes the database and the log agree after a crash. */
  private recover(): void {
    const inDatabase = this.engine.commitSequence;
    if (inDatabase < this.lastSeq) {
      // The log is ahead: a restore was logged but not swapped in, or the OS lost WAL writes.
      this.engine.close();
      this.wal.close();
      this.replaceFile(this.lastSeq, (to) => materialize(this.log, this.snapshots, this.lastSeq, to));
      this.engine = this.openEngine();
    } else if (inDatabase > this.lastSeq) {
      // Commits the log can no longer capture (someone else checkpointed them away): start anew from here.
      this.resync();
    }
  }

  private resync(): void {
    this.capture();
    const seq = this.engine.commitSequence;
    this.engine.checkpoint();
    this.engine.close();
    this.wal.reopen();
    const time = this.nextTime();
    this.snapshots.put(this.file, seq, time);
    this.appendRecord({ kind: 'image', seq, time, reason: { resync: true }, position: NO_POSITION });
    this.log.flush();
    this.engine = this.openEngine();
  }

  private nextTime(): number {
    return Math.max(this.lastTime, this.clock());
  }

  /** The hook the engine calls after each commit: every new transaction in the WAL goes to the log. */
  capture(): void {
    if (this.broken) throw this.broken;
    try {
      for (const commit of this.wal.read()) this.append(commit);
    } catch (e) {
      this.broken = e as Error;
      throw e;
    }
  }

  /** The commit number a captured transaction wrote into the header (page 1), if it did. */
  private sequenceOf(commit: CapturedCommit): number | undefined {
    const first = commit.images.get(1);
    return first && sequenceInHeader(first);
  }

  private append(commit: CapturedCommit): void {
    const seq = this.lastSeq + 1;
    const found = this.sequenceOf(commit);
    if (found !== seq) {
      throw new Error(
        `the write log cannot follow this database: a transaction committed without Dione's commit number (found ${found ?? 'none'}, expected ${seq}); reopen it to resynchronise`,
      );
    }
    this.appendRecord({ kind: 'pages', seq, time: this.nextTime(), pageSize: commit.pageSize, pages: commit.pages, images: commit.images, position: commit.position });
  }

  private appendRecord(record: LogRecord): void {
    this.log.append(record, this.lastSeq);
    this.lastSeq = record.seq;
    this.lastTime = record.time;
    this.pageBytesSinceSnapshot += this.log.last()!.pageBytes;
  }

  /**
   * Makes every captured commit durable; call before acknowledging writes. Then moves a large
   * WAL into the database file and starts a snapshot when one is due.
   */
  flush(): void {
    if (this.closed) return;
    this.capture();
    this.log.flush();
    // Once per WAL generation: until the next write starts the WAL over, the position stays where it was.
    const { offset, salt2 } = this.wal.position;
    if (offset > this.checkpointBytes && salt2 !== this.checkpointedSalt && this.engine.checkpoint()) this.checkpointedSalt = salt2;
    if (!this.snapshotting && this.snapshotDue()) this.snapshot().catch(() => {});
  }

  private snapshotDue(): boolean {
    const since = this.pageBytesSinceSnapshot;
    if (since === 0) return false;
    if (this.clock() - this.lastSnapshotTime > this.snapshotIntervalMs) return true;
    // Half the database: a database that only grows still gets a snapshot each time it doubles.
    return since > this.snapshotBytes && since > this.engine.info().file_size / 2;
  }

  execute(request: ExecuteRequest): ExecuteResponse {
    const response = this.engine.execute(request);
    this.flush();
    return response;
  }

  /**
   * Takes a snapshot of the database online, then drops what the retention window no longer
   * needs. One at a time: a call while one runs waits for that one.
   */
  snapshot(): Promise<void> {
    if (!this.snapshotting) {
      this.snapshotting = this.takeSnapshot().finally(() => {
        this.snapshotting = undefined;
      });
    }
    return this.snapshotting;
  }

  private async takeSnapshot(): Promise<void> {
    const temporary = this.snapshots.temporaryFile('next');
    rmSync(temporary, { force: true });
    try {
      await this.engine.backup(temporary);
      const seq = sequenceOfFile(temporary);
      const time = this.log.find(seq)?.time ?? this.lastTime;
      if (!this.snapshots.list().some((s) => s.seq === seq)) this.snapshots.put(temporary, seq, time, { move: true });
      this.pageBytesSinceSnapshot = this.log.pageBytesAfter(seq);
      this.lastSnapshotTime = this.clock();
    } finally {
      rmSync(temporary, { force: true });
    }
    this.applyRetention();
  }

  /** Forgets snapshots and records older than the window, keeping the snapshot the window starts from. */
  applyRetention(): void {
    const cutoff = this.clock() - this.retentionMs;
    const snapshots = this.snapshots.list();
    const base = snapshots.filter((s) => s.time <= cutoff).at(-1);
    if (!base) return;
    for (const s of snapshots) if (s.seq < base.seq) this.snapshots.remove(s.seq);
    this.log.compact(base.seq);
  }

  get bookmark(): string {
    return formatBookmark(this.lastSeq, this.tag);
  }

  /** The oldest point Time Travel can reach now. */
  private horizon(): { seq: number; time: number } {
    const cutoff = this.clock() - this.retentionMs;
    const first = this.snapshots.list()[0]!;
    return { seq: first.seq, time: Math.max(first.time, cutoff) };
  }

  /** The commit number a point of the history names, checked against what can be restored. */
  resolve(point: HistoryPoint): number {
    if ('bookmark' in point) return this.resolveBookmark(point.bookmark);
    const time = point.timestamp.getTime();
    if (Number.isNaN(time)) throw new HistoryError('Invalid timestamp: it names no point in time');
    const iso = point.timestamp.toISOString();
    if (time > this.clock()) throw new HistoryError(`Invalid timestamp '${iso}': it is in the future`);
    const cutoff = this.clock() - this.retentionMs;
    if (time < cutoff) throw new HistoryError(`Invalid timestamp '${iso}': it is older than the Time Travel window of ${this.retentionMs / DAY_MS} days`);
    const seq = this.commitAt(time);
    if (seq === undefined) {
      throw new HistoryError(`Invalid timestamp '${iso}': the database's history starts at ${new Date(this.horizon().time).toISOString()}`);
    }
    return seq;
  }

  /** The newest commit at or before `time` that the history can rebuild. */
  private commitAt(time: number): number | undefined {
    const inLog = this.log.atTime(time);
    const snapshot = this.snapshots
      .list()
      .filter((s) => s.time <= time)
      .at(-1);
    const seq = Math.max(inLog?.seq ?? -1, snapshot?.seq ?? -1);
    return seq < this.horizon().seq ? undefined : seq;
  }

  private resolveBookmark(bookmark: string): number {
    const parsed = parseBookmark(bookmark);
    if (!parsed) throw new HistoryError(`Invalid bookmark '${bookmark}': a bookmark is four groups of hex digits, 8-8-8-32, as getBookmark() returns`);
    if (parsed.tag !== this.tag) throw new HistoryError(`Invalid bookmark '${bookmark}': it belongs to another database`);
    const seq = parsed.sequence;
    if (seq > this.lastSeq) throw new HistoryError(`Invalid bookmark '${bookmark}': it is in the future (the newest is '${this.bookmark}')`);
    // A commit is within the window while its state lasted into it: at or after the one current at the window's start.
    const floor = this.commitAt(this.clock() - this.retentionMs) ?? this.horizon().seq;
    if (seq < floor) throw new HistoryError(`Invalid bookmark '${bookmark}': it is older than the Time Travel window of ${this.retentionMs / DAY_MS} days`);
    if (!this.log.find(seq) && !this.snapshots.list().some((s) => s.seq === seq)) {
      throw new HistoryError(`Invalid bookmark '${bookmark}': the history does not hold that commit (it was made while the write log was off)`);
    }
    return seq;
  }

  /** The bookmark of a point in time (now when none is given). */
  bookmarkAt(timestamp?: Date): string {
    if (!timestamp) return this.bookmark;
    return formatBookmark(this.resolve({ timestamp }), this.tag);
  }

  /**
   * Restores the database in place to a point of its history. The restore is itself a commit of
   * the log, so it can be undone with the previous bookmark it answers. Whoever reads sees the
   * old state or the restored one: the swap happens between two requests.
   */
  async restore(point: HistoryPoint): Promise<RestoreResult> {
    // From here to the end nothing awaits, so no snapshot starts and no request runs in between.
    while (this.snapshotting) await this.snapshotting.catch(() => {});
    if (this.broken) throw this.broken;
    this.capture();
    const target = this.resolve(point);
    const previous = this.bookmark;
    const seq = this.lastSeq + 1;
    const time = this.nextTime();
    const temporary = this.snapshots.temporaryFile('restore');
    try {
      materialize(this.log, this.snapshots, target, temporary);
      // Past both the restored state's schema cookie and the current one's: every connection to a copy re-reads the schema.
      const cookie = Math.max(schemaCookieInHeader(headerOfFile(temporary)), this.currentSchemaCookie()) + 1;
      setSequenceOfFile(temporary, seq, cookie);
      this.snapshots.put(temporary, seq, time, { move: true });
    } finally {
      rmSync(temporary, { force: true });
    }
    try {
      // The logged image is the commit point: after a crash from here on, reopening finishes the swap.
      this.appendRecord({ kind: 'image', seq, time, reason: { restoredFrom: target }, position: this.wal.position });
      this.log.flush();
    } catch (e) {
      this.snapshots.remove(seq);
      throw e;
    }
    this.pageBytesSinceSnapshot = 0;
    this.lastSnapshotTime = time;
    try {
      this.engine.close();
      this.wal.close();
      this.replaceFile(seq, (to) => this.snapshots.copyTo(seq, to));
      this.engine = this.openEngine();
    } catch (e) {
      // The log holds the restore but the file could not be swapped: reopening finishes it.
      this.broken = e as Error;
      throw e;
    }
    return { bookmark: this.bookmark, previous_bookmark: previous, message: `Restored to ${formatBookmark(target, this.tag)}` };
  }

  /** The schema cookie of the newest state: from the last record's page 1, or the newest snapshot. */
  private currentSchemaCookie(): number {
    const last = this.log.lastRecord();
    const first = last?.kind === 'pages' ? last.images.get(1) : undefined;
    if (first) return schemaCookieInHeader(first);
    const temporary = this.snapshots.temporaryFile('cookie');
    try {
      this.snapshots.copyTo(this.snapshots.list().at(-1)!.seq, temporary);
      return schemaCookieInHeader(headerOfFile(temporary));
    } finally {
      rmSync(temporary, { force: true });
    }
  }

  /** Swaps a new database file in while no connection is open; never leaves an old WAL beside a new file. */
  private replaceFile(seq: number, write: (file: string) => void): void {
    const temporary = `${this.file}.restore-tmp`;
    write(temporary);
    syncFile(temporary);
    if (sequenceOfFile(temporary) !== seq) throw new Error(`rebuilt database is at ${sequenceOfFile(temporary)}, expected ${seq}`);
    for (const suffix of ['-wal', '-shm', '-journal']) rmSync(this.file + suffix, { force: true });
    renameSync(temporary, this.file);
    syncDirectory(path.dirname(path.resolve(this.file)));
    this.wal.reopen(NO_POSITION);
  }

  /**
   * Writes a new database equal to this one at a point of its history, with a history of its
   * own that starts there. This database keeps taking writes meanwhile. Answers the point as this
   * database's bookmark and as the fork's.
   */
  fork(point: HistoryPoint, file: string, options: { dir?: string } = {}): { bookmark: string; forkBookmark: string } {
    this.capture();
    this.log.flush();
    const seq = this.resolve(point);
    const dir = options.dir ?? historyDirOf(file);
    if (existsSync(file)) throw new HistoryError(`cannot fork into ${file}: it exists`);
    if (existsSync(dir)) throw new HistoryError(`cannot fork into ${file}: a history is already at ${dir}`);
    const temporary = `${file}.fork-tmp`;
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    try {
      materialize(this.log, this.snapshots, seq, temporary);
      const history = new FileLogStore(dir);
      new DirectorySnapshots(dir).put(temporary, seq, this.clock());
      history.close();
      renameSync(temporary, file);
      syncDirectory(path.dirname(path.resolve(file)));
      return { bookmark: formatBookmark(seq, this.tag), forkBookmark: formatBookmark(seq, history.tag) };
    } finally {
      rmSync(temporary, { force: true });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.snapshotting?.catch(() => {});
    this.closeNow();
  }

  /** Closes without waiting for a snapshot in progress (it fails; nothing is lost). */
  closeNow(): void {
    if (this.closed) return;
    if (!this.broken) {
      this.capture();
      this.log.flush();
    }
    this.closed = true;
    try {
      this.engine.close();
    } catch {
      // a snapshot in progress holds the connection: the process is ending, SQLite cleans up on next open
    }
    this.wal.close();
    this.log.close();
  }
}
