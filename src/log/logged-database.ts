// A database with a history: every committed write transaction is captured from the WAL as page
// images and made durable in the write log before its answer goes out; periodic snapshots bound
// the cost of rebuilding any point; Time Travel and forks rebuild points. The engine knows
// nothing of this: it calls back after each commit.
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { formatBookmark } from '../api/bookmark.ts';
import type { ExecuteRequest, ExecuteResponse } from '../api/executor.ts';
import { HistoryError, type HistoryPoint, type RestoreResult } from '../api/time-travel.ts';
import { Connection } from '../engine/connection.ts';
import { Engine, type EngineOptions } from '../engine/engine.ts';
import { D1Failure, detailOf } from '../engine/sqlite-error.ts';
import { TransactionEngines } from '../engine/transaction-engines.ts';
import { changedSinceClose, readCloseStamp, removeCloseStamp, writeCloseStamp } from './close-stamp.ts';
import { FileHistory } from './file-history.ts';
import { DirectorySnapshots, FileLogStore } from './file-store.ts';
import { syncDirectory, syncFile } from './files.ts';
import { finishFork, historyDirOf, prepareFork } from './fork.ts';
import type { CommitsOverview, CommitsQuery } from './history.ts';
import { HistoryLock } from './lock.ts';
import { headerOfFile, materialize, schemaCookieInHeader, sequenceInHeader, sequenceOfFile, setSequenceOfFile } from './pages.ts';
import { CorruptRecord, type LogRecord, type RecordSummary } from './record.ts';
import { report } from './report.ts';
import type { SnapshotStore } from './store.ts';
import { beforeHistory, bookmarkSequence, checkBookmarkInWindow, commitsOverview, DAY_MS, horizonOf, notHeld, type TimeWindow, timestampInWindow, windowStart } from './time-travel.ts';
import { type CapturedCommit, NO_POSITION, WAL_HEADER_BYTES, type WalPosition, WalReader } from './wal.ts';

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
  /**
   * How long to wait for another handle or process to let the history go (default 0: refuse at
   * once; a server waits a little for another server on the same data that is still stopping).
   */
  lockWaitMs?: number;
  /**
   * Take the history lock on opening (default). False: a stale handle of this process still holds
   * it (a server's database moved off a busy worker); takeLock() follows once that handle let go.
   */
  lock?: boolean;
  /**
   * Sync the log on each flush (default). False for a cluster primary: a write is durable once the
   * JetStream history holds it, and a node that crashed discards its local log and copy.
   */
  syncLog?: boolean;
  /** Keep the encoded bodies of appended records for log.takeAppended() (a cluster primary ships them as they are). */
  keepAppended?: boolean;
  /** The log starts a new segment file once the current one holds this much (default 64 MiB). */
  segmentBytes?: number;
}

/**
 * Commits the log cannot rebuild: records lost to damage in a segment (or a missing segment).
 * Commits lostFrom..lostTo are gone; `next` is the first readable record after them.
 */
interface Damage {
  lostFrom: number;
  lostTo: number;
  /** Commit times around the loss: the last readable commit's before it (if any), the next one's after it. */
  fromTime: number | undefined;
  toTime: number;
  next: RecordSummary;
  /** Where, for people: the files and byte ranges that could not be read. */
  where: string;
}

/** Bringing the database back to the log's last durable record found the files not as the log left them. */
class RepairMismatch extends Error {}

/** A transaction in the WAL without Dione's commit number: another program wrote the database. */
class ForeignCommit extends Error {}

/** Whether a WAL file exists with more than its header (what a checkpoint on the last close leaves: none). */
function walHoldsFrames(walFile: string): boolean {
  try {
    return statSync(walFile).size > WAL_HEADER_BYTES;
  } catch {
    return false;
  }
}

/** A repair that failed is tried again at most this often (each request asks). */
const REPAIR_RETRY_MS = 1000;

export { historyDirOf };

export class LoggedDatabase {
  engine: Engine;
  readonly log: FileLogStore;
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
  /**
   * Page bytes of the records after the newest snapshot (undefined from opening until the first
   * write: summing them may read a long segment's index, which an open to read need not pay), and
   * when that snapshot was taken.
   */
  private pageBytesSinceSnapshot: number | undefined;
  private lastSnapshotTime: number;
  private snapshotting: Promise<void> | undefined;
  /**
   * The log could not take or sync a commit. Until the repair (the next flush, before anything
   * else runs) brings the database back to the log's last durable record, nothing is acknowledged.
   */
  private failure: D1Failure | undefined;
  /** The failure is another program's commit: the repair cannot trust the file, and rebuilds it from the log. */
  private foreignCommit = false;
  /** The repair failed: every request is refused with this (the repair is retried now and then). */
  private refusal: string | undefined;
  private retryRepairAt = 0;
  /** Counts repairs: commits made before a repair and not durable by then were undone by it. */
  generation = 0;
  /** The failure the last repair undid commits for. */
  lastFailure = '';
  private closed = false;
  /** The WAL generation (its salt) last checkpointed. */
  private checkpointedSalt: number | undefined;
  private lock: HistoryLock | undefined;
  /** Commits the log lost to damage, found on opening (or met while rebuilding a point). */
  private readonly damage: Damage[] = [];
  private lastFailureReport = 0;
  private lastCheckpointReport = 0;
  private readonly transactionEngines = new TransactionEngines(() => this.openEngine({ transactions: true }));

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
    // Before anything reads or cuts the log: one writer per history, in this process or another.
    this.lock = options.lock === false ? undefined : HistoryLock.acquire(this.dir, path.resolve(file), options.lockWaitMs);
    let log: FileLogStore | undefined;
    let wal: WalReader | undefined;
    let engine: Engine | undefined;
    try {
      this.log = log = new FileLogStore(this.dir, options.tag, { sync: options.syncLog ?? true, keepAppended: options.keepAppended, segmentBytes: options.segmentBytes, owner: true });
      this.snapshots = new DirectorySnapshots(this.dir);
      this.tag = this.log.tag;
      const closedAs = readCloseStamp(this.dir);
      const fresh = this.snapshots.list().length === 0;
      if (fresh) this.start();
      const last = this.log.last();
      const base = this.snapshots.list().at(-1)!;
      this.lastSeq = last?.seq ?? base.seq;
      this.lastTime = last?.time ?? base.time;
      // Before anything here writes the file: did another program change it since the last clean close?
      const changedWhileClosed = fresh ? undefined : changedSinceClose(closedAs, file, this.lastSeq);
      // A snapshot past the log's end was stored by a restore that crashed before logging it.
      for (const s of this.snapshots.list()) if (s.seq > this.lastSeq) this.snapshots.remove(s.seq);
      this.findDamage();
      // Commits that reached the WAL but not the log (the process died in between) are taken now,
      // before anything opens the database: closing it would checkpoint them away.
      this.wal = wal = new WalReader(`${file}-wal`, this.log.lastPosition());
      let foreign = false;
      for (const commit of this.wal.read()) {
        // Commits made without the log (a server run with --no-history) may have been checkpointed
        // away: the database is then ahead of the log, and recover() starts the history anew. So
        // it does after another program's commits (no number, or not a later one), kept as they are.
        const found = this.sequenceOf(commit);
        if (found !== this.lastSeq + 1) {
          foreign = found === undefined || found <= this.lastSeq;
          break;
        }
        this.append(commit);
      }
      this.log.flush();
      this.engine = engine = this.openEngine();
      this.recover(foreign, changedWhileClosed);
      engine = this.engine;
      if (this.lock) removeCloseStamp(this.dir);
      this.pageBytesSinceSnapshot = undefined;
      this.lastSnapshotTime = this.snapshots.list().at(-1)!.time;
    } catch (e) {
      // Nothing un-logged is checkpointed into the file on the way out.
      try {
        engine?.close({ keepWal: true });
      } catch {
        // closing as far as it goes
      }
      wal?.close();
      try {
        log?.close();
      } catch {
        // the log's own failure is the one thrown
      }
      this.lock?.release();
      throw e;
    }
    // Later points become rebuildable again from a snapshot taken after the damage.
    if (this.damage.length > 0) this.snapshot().catch(() => {});
  }

  /** A new history starts with a snapshot of the database as it is (created empty if missing). */
  private start(): void {
    if (this.log.last()) throw new Error(`the history in ${this.dir} has records but no snapshot`);
    const connection = new Connection(this.file);
    connection.checkpoint();
    connection.close();
    this.snapshots.put(this.file, sequenceOfFile(this.file), this.clock());
  }

  private openEngine(options: EngineOptions = {}): Engine {
    return new Engine(this.file, { ...this.engineOptions, ...options, durability: 'normal', bookmarkTag: this.tag, onCommit: () => this.capture() });
  }

  /**
   * An engine of its own (a connection) for one interactive transaction: its commit is captured and
   * logged like any other. Closed (rolled back) when the database is repaired, restored or closed.
   */
  openTransactionEngine(onAbandoned?: (reason: string) => void): Engine {
    const refused = this.unavailable();
    if (refused !== undefined) throw new D1Failure(refused);
    return this.transactionEngines.take(onAbandoned);
  }

  /** A transaction's engine is done with (rolled back if it left a transaction open; kept for the next). */
  closeTransactionEngine(engine: Engine): void {
    this.transactionEngines.give(engine);
  }

  /** Before the files change under them: every transaction still open is rolled back. */
  private closeTransactions(): void {
    this.transactionEngines.closeAll();
  }

  /**
   * Makes the database and the log agree after a crash. `foreign`: another program's commits are in
   * the WAL; `changedWhileClosed`: how the file differs from what the last clean close left.
   */
  private recover(foreign: boolean, changedWhileClosed: string | undefined): void {
    const inDatabase = this.engine.commitSequence;
    if (changedWhileClosed !== undefined) {
      // Whatever its commit number says: the file as it is now is what was put there.
      report('warn', `${this.file} changed while its write log was closed (${changedWhileClosed}): its history goes on from the file as it is, as a new starting point`, { file: this.file });
      this.resync();
    } else if (inDatabase < this.lastSeq) {
      // The log is ahead: a restore was logged but not swapped in, or the OS lost WAL writes.
      this.engine.close();
      this.wal.close();
      this.replaceFile(this.lastSeq, (to) => materialize(this.log, this.snapshots, this.lastSeq, to));
      this.engine = this.openEngine();
    } else if (inDatabase > this.lastSeq || foreign) {
      // Commits the log can no longer capture (someone else checkpointed them away): start anew from here.
      this.resync();
    }
  }

  private resync(): void {
    this.capture();
    this.log.flush();
    // Another program's commits leave the number as it was: the new start takes the next one.
    const seq = Math.max(this.engine.commitSequence, this.lastSeq + 1);
    // The one checkpoint of commits the log lacks: the file as it is becomes the next snapshot, and
    // the image record logged with it is the history's new starting point.
    if (!this.engine.checkpoint()) throw new Error(`${this.file} could not be checkpointed to start its history anew (another program is using it?)`);
    this.engine.close();
    // Frames left in a WAL another connection keeps are in the file now: the next capture starts after them.
    this.wal.reopen();
    this.wal.read();
    if (sequenceOfFile(this.file) !== seq) setSequenceOfFile(this.file, seq);
    const time = this.nextTime();
    this.snapshots.put(this.file, seq, time);
    this.appendRecord({ kind: 'image', seq, time, reason: { resync: true }, position: NO_POSITION });
    this.log.flush();
    this.engine = this.openEngine();
  }

  private nextTime(): number {
    return Math.max(this.lastTime, this.clock());
  }

  /**
   * The hook the engine calls after each commit: every new transaction in the WAL goes to the log.
   * When the log cannot take it, the failure is kept for the repair and thrown (the engine answers
   * the commit's requests with it: never acknowledged).
   */
  capture(): void {
    if (this.refusal !== undefined) throw new D1Failure(this.refusal);
    if (this.failure) throw this.failure;
    try {
      for (const commit of this.wal.read()) this.append(commit);
    } catch (e) {
      if (e instanceof ForeignCommit) this.foreignCommit = true;
      throw this.fail(e);
    }
  }

  /** Keeps the first failure of the log until the repair; its text is D1's (a full disk reads as SQLITE_FULL). */
  private fail(e: unknown): D1Failure {
    if (!this.failure) {
      this.failure = e instanceof D1Failure ? e : new D1Failure(detailOf(e));
      const now = Date.now();
      // Once in a while, not once per write, while the disk stays full.
      if (now - this.lastFailureReport > 10_000) {
        this.lastFailureReport = now;
        report('error', `the write log of ${this.file} could not take a commit (${(e as Error).message}): the commits after ${this.log.lastDurable()?.seq ?? 'the first snapshot'} are answered as failed and undone`, {
          file: this.file,
          error: (e as Error).message,
        });
      }
    }
    return this.failure;
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
      // No number, or not a later one: another program's. A later number than the next: Dione's, made without the log.
      if (found === undefined || found < seq) {
        throw new ForeignCommit(
          `the write log cannot follow this database: another program committed a transaction to it (with no Dione commit number; expected ${seq}), which is undone: while Dione has a database open, it is its only writer`,
        );
      }
      throw new Error(
        `the write log cannot follow this database: a transaction committed without Dione's commit number (found ${found}, expected ${seq}); reopen it to resynchronise`,
      );
    }
    this.appendRecord({ kind: 'pages', seq, time: this.nextTime(), pageSize: commit.pageSize, pages: commit.pages, images: commit.images, position: commit.position });
  }

  private appendRecord(record: LogRecord): void {
    this.log.append(record, this.lastSeq);
    this.lastSeq = record.seq;
    this.lastTime = record.time;
    if (this.pageBytesSinceSnapshot !== undefined) this.pageBytesSinceSnapshot += this.log.last()!.pageBytes;
    else {
      try {
        this.pageBytesSinceSnapshot = this.log.pageBytesAfter(this.snapshots.list().at(-1)!.seq);
      } catch {
        // A record after the snapshot cannot be read back (damage found since opening): the commit
        // stands, and a snapshot now is what makes later points rebuildable without that record.
        this.pageBytesSinceSnapshot = Number.POSITIVE_INFINITY;
      }
    }
  }

  /**
   * Makes every captured commit durable; call before acknowledging writes. Then moves a large
   * WAL into the database file and starts a snapshot when one is due.
   */
  flush(): void {
    if (this.closed) return;
    this.makeDurable();
    // Once per WAL generation: until the next write starts the WAL over, the position stays where it was.
    const { offset, salt2 } = this.wal.position;
    if (offset > this.checkpointBytes && salt2 !== this.checkpointedSalt) {
      try {
        if (this.checkpointDurable()) this.checkpointedSalt = salt2;
      } catch (e) {
        // The commits are durable in the log: only the WAL stays longer (tried again at the next flush).
        const now = Date.now();
        if (now - this.lastCheckpointReport > 60_000) {
          this.lastCheckpointReport = now;
          report('error', `${this.file}: the WAL could not be checkpointed (${(e as Error).message})`, { file: this.file });
        }
      }
    }
    if (!this.snapshotting && this.snapshotDue()) this.snapshot().catch(() => {});
  }

  /**
   * Captures and syncs every commit in the WAL. When the log cannot, the repair undoes the commits
   * it did not make durable, and the failure is thrown (the refusal, when the repair fails too).
   */
  private makeDurable(): void {
    this.ensureServing();
    if (!this.failure) {
      try {
        // The commit hook captured every commit Dione's engines made or noticed: the WAL is read
        // again only when the engine is somehow ahead of the log (a read found nothing, at ~3% of a write).
        if (this.engine.commitSequence > this.lastSeq) for (const commit of this.wal.read()) this.append(commit);
        this.log.flush();
      } catch (e) {
        this.fail(e);
      }
    }
    if (this.failure) {
      const failure = this.failure;
      this.repair();
      throw failure;
    }
  }

  /**
   * Moves the WAL into the database file. Only here, and only when every commit in the WAL is in
   * the log and synced: so the file never holds a commit the log lacks, and the frames of commits
   * not yet durable are always still in the WAL, where a repair can cut them off.
   */
  private checkpointDurable(): boolean {
    const durable = this.log.lastDurable()?.seq ?? this.snapshots.list().at(-1)!.seq;
    // A transaction's engine may have committed since this engine last looked.
    this.engine.catchUp();
    if (durable !== this.lastSeq || this.engine.commitSequence !== this.lastSeq) {
      throw new Error(`checkpoint refused: the log is durable to commit ${durable}, captured to ${this.lastSeq}, the database is at ${this.engine.commitSequence}`);
    }
    return this.engine.checkpoint();
  }

  /** The log failed and the repair has not succeeded yet: every request is refused. */
  get refused(): boolean {
    return this.refusal !== undefined;
  }

  /** Undefined while the database serves; else why every request is refused (the repair is tried again first). */
  unavailable(): string | undefined {
    try {
      this.ensureServing();
      if (this.failure) {
        this.repair();
      }
      return undefined;
    } catch (e) {
      return detailOf(e);
    }
  }

  /** While refused, tries the repair again (not more than once a second); throws the refusal while it fails. */
  private ensureServing(): void {
    if (this.refusal === undefined) return;
    if (Date.now() < this.retryRepairAt) throw new D1Failure(this.refusal);
    this.repair();
  }

  /**
   * Brings the database back to the log's last durable record, before anything else runs: a commit
   * the log did not durably take is undone, never served. The engine is closed without a
   * checkpoint, so the frames of those commits are still in the WAL (see checkpointDurable); the
   * log is cut back to its last flush, the WAL to that record's position (checked against the
   * frames' running checksum), the stale wal-index (-shm) goes, and the engine reopens. When the
   * files are not as that expects, the file is rebuilt from the log instead. When neither works,
   * the database is refused with the reason until a later try succeeds.
   */
  private repair(): void {
    const cause = this.failure?.detail ?? this.lastFailure;
    this.failure = undefined;
    this.generation++;
    this.closeTransactions();
    this.lastFailure = cause;
    let undone = false;
    try {
      this.engine.close({ keepWal: true });
      this.wal.close();
      this.log.rollback();
      const durable = this.log.lastDurableRecord();
      const base = this.snapshots.list().at(-1)!;
      this.lastSeq = durable?.seq ?? base.seq;
      this.lastTime = durable?.time ?? base.time;
      for (const s of this.snapshots.list()) if (s.seq > this.lastSeq) this.snapshots.remove(s.seq);
      let position: WalPosition;
      try {
        // Another program's commit may already be in the file (its connection checkpointed when it
        // closed) and carries no number to tell by: the file is rebuilt from the log.
        if (this.foreignCommit) throw new RepairMismatch('another program wrote the database');
        position = this.cutWal(durable);
      } catch (e) {
        if (!(e instanceof RepairMismatch)) throw e;
        report('error', `repairing ${this.file}: ${e.message}; rebuilding it from the write log at commit ${this.lastSeq}`, { file: this.file });
        this.replaceFile(this.lastSeq, (to) => materialize(this.log, this.snapshots, this.lastSeq, to));
        position = NO_POSITION;
      }
      undone = true;
      this.foreignCommit = false;
      rmSync(`${this.file}-shm`, { force: true });
      this.engine = this.openEngine();
      if (this.engine.commitSequence !== this.lastSeq) {
        throw new Error(`after the repair the database is at commit ${this.engine.commitSequence}, the log at ${this.lastSeq}`);
      }
      this.wal.reopen(position);
      this.checkpointedSalt = undefined;
      this.pageBytesSinceSnapshot = undefined;
      this.refusal = undefined;
    } catch (e) {
      try {
        this.engine.close({ keepWal: true });
      } catch {
        // already closed
      }
      const outcome = undone
        ? 'the commits it could not take were undone, but the database cannot be opened again'
        : 'the commits it could not take could not be undone (whether they are kept is decided when it is next opened)';
      this.refusal = `dione: ${this.file} is refused: its write log failed (${cause}), ${outcome}: ${detailOf(e)}; it is retried on each request`;
      this.retryRepairAt = Date.now() + REPAIR_RETRY_MS;
      report('error', this.refusal.replace(/^dione: /, ''), { file: this.file });
      throw new D1Failure(this.refusal);
    }
  }

  /**
   * Cuts the WAL back to the state of the log's last durable record and returns the WAL position
   * capture resumes from. Checks, rather than assumes, that the files are as checkpointDurable()
   * leaves them: the database file holds no commit past that record, and the WAL frames up to the
   * record's position are the very frames captured (same salts, same running checksum, page 1
   * numbered as the record). Throws RepairMismatch when they are not.
   */
  private cutWal(durable: LogRecord | undefined): WalPosition {
    const walFile = `${this.file}-wal`;
    const target = this.lastSeq;
    const inFile = sequenceOfFile(this.file);
    if (inFile > target) throw new RepairMismatch(`the database file is at commit ${inFile}, past the log's last durable record ${target}`);
    const position = durable?.kind === 'pages' ? durable.position : NO_POSITION;
    const salts = walSalts(walFile);
    if (position.offset > 0 && salts && salts.salt1 === position.salt1 && salts.salt2 === position.salt2) {
      const fd = openSync(walFile, 'r+');
      try {
        ftruncateSync(fd, position.offset);
        fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
      const reader = new WalReader(walFile, NO_POSITION);
      let last: { sequence: number | undefined } | undefined;
      try {
        // Numbered while the reader is open: a large transaction's page 1 is read from the WAL.
        const commit = reader.read().at(-1);
        last = commit && { sequence: this.sequenceOf(commit) };
      } finally {
        reader.close();
      }
      const end = reader.position;
      if (end.offset !== position.offset || end.checksum1 !== position.checksum1 || end.checksum2 !== position.checksum2) {
        throw new RepairMismatch(`the WAL's frames up to commit ${target} are not the ones the log captured`);
      }
      if (last && last.sequence !== target) throw new RepairMismatch(`the WAL's last commit is numbered ${last.sequence}, not ${target}`);
      return position;
    }
    // The WAL holds nothing durable beyond the file: a checkpoint moved everything before the
    // record's generation into it, or the file was swapped in (a restore, a resync) since.
    if (inFile !== target) throw new RepairMismatch(`the database file is at commit ${inFile} and its WAL does not lead to the log's last durable record ${target}`);
    rmSync(walFile, { force: true });
    syncDirectory(path.dirname(path.resolve(this.file)));
    return NO_POSITION;
  }

  private snapshotDue(): boolean {
    const since = this.pageBytesSinceSnapshot;
    if (since === undefined) {
      // Nothing written since opening: only the interval can make a snapshot due, when there are records after the last one.
      return this.clock() - this.lastSnapshotTime > this.snapshotIntervalMs && (this.log.last()?.seq ?? 0) > this.snapshots.list().at(-1)!.seq;
    }
    if (since === 0) return false;
    if (this.clock() - this.lastSnapshotTime > this.snapshotIntervalMs) return true;
    // Half the database: a database that only grows still gets a snapshot each time it doubles.
    return since > this.snapshotBytes && since > this.engine.info().file_size / 2;
  }

  /** Runs a request and makes its commit durable; a commit the log cannot take is answered as failed. */
  execute(request: ExecuteRequest): ExecuteResponse {
    const refused = this.unavailable();
    if (refused !== undefined) return { success: false, error: refused };
    const response = this.engine.execute(request);
    try {
      this.flush();
    } catch (e) {
      return { success: false, error: detailOf(e) };
    }
    return response;
  }

  /** The snapshot being taken in the background, if any (it settles without throwing). */
  get snapshotInProgress(): Promise<void> | undefined {
    return this.snapshotting?.catch(() => {});
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
    return horizonOf(this.snapshots.list(), this.window());
  }

  /** The commit number a point of the history names, checked against what can be restored. */
  resolve(point: HistoryPoint): number {
    if ('bookmark' in point) return this.resolveBookmark(point.bookmark);
    const time = timestampInWindow(point.timestamp, this.window());
    const iso = point.timestamp.toISOString();
    for (const d of this.damage) {
      if (time >= (d.fromTime ?? Number.NEGATIVE_INFINITY) && time < d.toTime) {
        throw new HistoryError(`Invalid timestamp '${iso}': the history was damaged around that time: ${this.damageText(d)}`);
      }
    }
    const seq = this.commitAt(time);
    if (seq === undefined) throw beforeHistory(point.timestamp, this.horizon().time);
    const blocked = this.blockedBy(seq);
    if (blocked) throw new HistoryError(`Invalid timestamp '${iso}': the history was damaged before it, so it cannot be rebuilt exactly: ${this.damageText(blocked)}`);
    return seq;
  }

  private window(): TimeWindow {
    return { now: this.clock(), retentionMs: this.retentionMs };
  }

  /**
   * Finds commits the log lost (damaged bytes in a segment, a missing segment file) and reports
   * each at error level, naming the files and byte ranges.
   */
  private findDamage(): void {
    const first = this.snapshots.list()[0]!;
    const gaps = this.log.gaps();
    // The log starts right after its oldest snapshot (retention keeps it so); later, records are missing.
    const start = this.log.first();
    if (start && start.kind === 'pages' && start.seq > first.seq + 1 && !gaps.some((g) => g.next.seq === start.seq)) {
      gaps.unshift({ after: undefined, next: start, unreadable: [] });
    }
    for (const gap of gaps) {
      const lostFrom = (gap.after?.seq ?? first.seq) + 1;
      const lostTo = gap.next.seq - 1;
      const where =
        gap.unreadable.length > 0
          ? gap.unreadable.map((u) => `${u.file} bytes ${u.from}-${u.to} unreadable`).join(', ')
          : `no segment in ${path.join(this.dir, 'segments')} holds them (a segment file is missing)`;
      if (lostFrom > lostTo) {
        report('warn', `the write log of ${this.file} has unreadable bytes (${where}); no commit is missing`, { file: this.file, damaged: gap.unreadable });
        continue;
      }
      const damage: Damage = { lostFrom, lostTo, fromTime: gap.after?.time, toTime: gap.next.time, next: gap.next, where };
      this.damage.push(damage);
      report(
        'error',
        `the write log of ${this.file} is damaged: ${where}. ${capitalized(lostText(damage))}: Time Travel refuses points there, and later points until a snapshot taken after the loss (one is being taken now)`,
        { file: this.file, damaged: gap.unreadable, lostCommits: [lostFrom, lostTo] },
      );
    }
  }

  /** The damage that keeps commit `seq` from being rebuilt exactly, if any. */
  private blockedBy(seq: number): Damage | undefined {
    for (const d of this.damage) {
      if (seq < d.lostFrom) continue;
      // From a snapshot at or after the loss (or an image record: a restore, a resync) the history is whole again.
      const base = Math.max(this.snapshots.list().filter((s) => s.seq <= seq).at(-1)?.seq ?? -1, this.log.lastImage(seq)?.seq ?? -1);
      if (base >= Math.min(seq, d.lostTo)) continue;
      return d;
    }
    return undefined;
  }

  /** What was lost, where, and which points can still be restored. */
  private damageText(d: Damage): string {
    const afterwards = [...this.snapshots.list().map((s) => s.seq), ...(d.next.kind === 'image' ? [d.next.seq] : [])].filter((seq) => seq >= d.lostTo).sort((a, b) => a - b)[0];
    const later = afterwards === undefined ? 'later points once a snapshot is taken after it' : `points from commit ${afterwards} on`;
    return `${lostText(d)} (${d.where}); points up to commit ${d.lostFrom - 1} and ${later} can be restored`;
  }

  /** Rebuilds commit `seq` into `file`; a record found damaged on the way is reported and refused as damage. */
  private materialize(seq: number, file: string): void {
    try {
      materialize(this.log, this.snapshots, seq, file);
    } catch (e) {
      if (!(e instanceof CorruptRecord)) throw e;
      report('error', `the write log of ${this.file} is damaged: ${e.message}`, { file: this.file });
      throw new HistoryError(`commit ${seq} cannot be rebuilt: the history was damaged: ${e.message}`);
    }
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
    const seq = bookmarkSequence(bookmark, this.tag);
    const window = this.window();
    // A commit is within the window while its state lasted into it: at or after the one current at the window's start.
    const floor = seq > this.lastSeq ? seq : (this.commitAt(windowStart(window)) ?? this.horizon().seq);
    checkBookmarkInWindow(bookmark, seq, { newest: this.lastSeq, tag: this.tag, floor, window });
    const blocked = this.blockedBy(seq);
    if (blocked) {
      const there = seq <= blocked.lostTo ? 'the history was damaged there' : 'the history was damaged before it, so it cannot be rebuilt exactly';
      throw new HistoryError(`Invalid bookmark '${bookmark}': ${there}: ${this.damageText(blocked)}`);
    }
    if (!this.log.find(seq) && !this.snapshots.list().some((s) => s.seq === seq)) throw notHeld(bookmark);
    return seq;
  }

  /** Commits per time bucket over a range, from the log's index of record summaries (no record is read). */
  commits(query: CommitsQuery): Promise<CommitsOverview> {
    return commitsOverview(new FileHistory(this.log, this.snapshots), query, this.window());
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
    // Everything captured is durable first (a failure is repaired and thrown).
    this.makeDurable();
    const target = this.resolve(point);
    const temporary = this.restoreFile();
    try {
      this.materialize(target, temporary);
      return this.restoreFrom(target, temporary);
    } finally {
      rmSync(temporary, { force: true });
    }
  }

  /** Where to build a file for restoreFrom(): beside the snapshots, so it can be moved in. */
  restoreFile(): string {
    return this.snapshots.temporaryFile('restore');
  }

  /**
   * Restores the database in place to `built`, a closed file holding commit `target` of this
   * history (rebuilt by the caller: from this log, or from a cluster's). Synchronous: no request
   * and no snapshot runs in between (a caller that awaited first waits for snapshotInProgress).
   */
  restoreFrom(target: number, built: string): RestoreResult {
    this.makeDurable();
    const previous = this.bookmark;
    const seq = this.lastSeq + 1;
    const time = this.nextTime();
    try {
      // Past both the restored state's schema cookie and the current one's: every connection to a copy re-reads the schema.
      const cookie = Math.max(schemaCookieInHeader(headerOfFile(built)), this.currentSchemaCookie()) + 1;
      setSequenceOfFile(built, seq, cookie);
      this.snapshots.put(built, seq, time, { move: true });
    } finally {
      rmSync(built, { force: true });
    }
    try {
      // The logged image is the commit point: after a crash from here on, reopening finishes the swap.
      this.appendRecord({ kind: 'image', seq, time, reason: { restoredFrom: target }, position: this.wal.position });
      this.log.flush();
    } catch (e) {
      this.snapshots.remove(seq);
      const failure = this.fail(e);
      // Cuts the image record back off the log (nothing else is past its last flush).
      this.repair();
      throw failure;
    }
    this.pageBytesSinceSnapshot = 0;
    this.lastSnapshotTime = time;
    try {
      this.engine.close();
      this.wal.close();
      this.replaceFile(seq, (to) => this.snapshots.copyTo(seq, to));
      this.engine = this.openEngine();
    } catch (e) {
      // The log holds the restore but the file could not be swapped: the repair rebuilds the file
      // from the log (at the image), or refuses the database until it can.
      this.fail(e);
      this.repair();
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
    this.closeTransactions();
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
    this.makeDurable();
    const seq = this.resolve(point);
    const temporary = prepareFork(file, options.dir);
    try {
      this.materialize(seq, temporary);
      const forkTag = finishFork(temporary, file, seq, this.clock(), options.dir);
      return { bookmark: formatBookmark(seq, this.tag), forkBookmark: formatBookmark(seq, forkTag) };
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
    let clean = this.refusal === undefined && this.failure === undefined;
    if (clean) {
      try {
        // All of it (not only what the engine knows of): the file is checkpointed on the way out.
        for (const commit of this.wal.read()) this.append(commit);
        this.log.flush();
      } catch (e) {
        this.fail(e);
        clean = false;
      }
    }
    if (!clean) {
      try {
        this.repair();
        clean = true;
      } catch {
        // refused: the file is left as it is, without a checkpoint; the next open decides
      }
    }
    // Only a file whose every commit is in the log is checkpointed on the way out.
    this.letGo(clean);
  }

  /** Closes the engine (checkpointing the WAL only when `checkpoint`), the WAL reader and the log, and releases the lock. */
  private letGo(checkpoint: boolean): void {
    this.closed = true;
    this.closeTransactions();
    let checkpointed = checkpoint;
    try {
      this.engine.close(checkpoint ? {} : { keepWal: true });
    } catch {
      // a snapshot in progress holds the connection: the process is ending, SQLite cleans up on next open
      checkpointed = false;
    }
    this.wal.close();
    try {
      // A clean close by the writer: the next opening reads the open segment's index, not all of it.
      this.log.close({ seal: checkpoint && this.lock !== undefined });
      // Only when the WAL is gone: kept by another connection, its frames (Dione's) may reach the file later.
      if (checkpointed && this.lock !== undefined && !walHoldsFrames(`${this.file}-wal`)) writeCloseStamp(this.dir, this.file, this.lastSeq);
    } finally {
      this.lock?.release();
      this.lock = undefined;
    }
  }

  /** Takes the history lock this handle was opened without (see HistoryOptions.lock). */
  takeLock(waitMs = 0): void {
    this.lock ??= HistoryLock.acquire(this.dir, path.resolve(this.file), waitMs);
  }

  /**
   * Lets go of a handle another handle of this process has taken over: nothing is read, written or
   * checkpointed (the other handle owns the files now), and the lock, if held, is released.
   */
  abandon(): void {
    if (!this.closed) this.letGo(false);
  }
}

const lostText = (d: Damage) => (d.lostFrom === d.lostTo ? `commit ${d.lostFrom} is lost` : `commits ${d.lostFrom} to ${d.lostTo} are lost`);
const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

/** The salts of a WAL file's header, or undefined when it has none (missing, empty, not a WAL). */
function walSalts(walFile: string): { salt1: number; salt2: number } | undefined {
  let fd: number;
  try {
    fd = openSync(walFile, 'r');
  } catch {
    return undefined;
  }
  try {
    const header = Buffer.alloc(WAL_HEADER_BYTES);
    if (readSync(fd, header, 0, WAL_HEADER_BYTES, 0) < WAL_HEADER_BYTES) return undefined;
    const magic = header.readUInt32BE(0);
    if (magic !== 0x377f0682 && magic !== 0x377f0683) return undefined;
    return { salt1: header.readUInt32BE(16), salt2: header.readUInt32BE(20) };
  } finally {
    closeSync(fd);
  }
}
