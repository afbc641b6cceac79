// A node's copy of a database it does not write: started from a snapshot in the object store,
// kept current by applying the records of the database's JetStream log, in order, while readers
// keep reading it (ReplicaFile). An image record (a restore) is applied as every page of its snapshot.
// Applies are not synced one by one (unsynced-copy.ts): the copy is synced when the follower stops.
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { sequenceOfFile } from '../log/pages.ts';
import type { LogRecord, PagesRecord } from '../log/record.ts';
import { imageRecord, prepareReplicaFile, ReplicaFile } from '../log/replica.ts';
import { type ClusterLogger, errorText, lineLogger } from './logger.ts';
import type { SharedLog, SnapshotBucket } from './shared.ts';
import { markSynced, markUnsynced } from './unsynced-copy.ts';

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Follower {
  private replica: ReplicaFile;
  /** One applier at a time: catching up and the live tail take turns. */
  private turns: Promise<unknown> = Promise.resolve();
  private tailing: { stop: () => void } | undefined;
  private closed = false;
  /** A catch-up after a failure to apply is scheduled (one at a time). */
  private retrying = false;
  /** Called after each batch applied. */
  onAdvance: (() => void) | undefined;

  private constructor(
    readonly file: string,
    readonly database: string,
    private readonly log: SharedLog,
    private readonly snapshots: SnapshotBucket,
    private readonly logger: ClusterLogger,
  ) {
    this.replica = new ReplicaFile(file, { sync: false });
  }

  /**
   * Opens the local copy, or makes one from the newest snapshot in the object store. A copy the
   * caller cannot vouch for (copyInDoubt) must be removed first.
   */
  static async start(file: string, database: string, log: SharedLog, snapshots: SnapshotBucket, logger: ClusterLogger = lineLogger({ database })): Promise<Follower> {
    if (!existsSync(file)) await Follower.fetchSnapshot(file, database, snapshots);
    markUnsynced(file);
    return new Follower(file, database, log, snapshots, logger);
  }

  private static async fetchSnapshot(file: string, database: string, snapshots: SnapshotBucket): Promise<void> {
    Follower.installSnapshot(file, await Follower.downloadSnapshot(file, database, snapshots));
  }

  /** The newest snapshot, as a copy ready to replace `file` (a temporary file beside it). */
  private static async downloadSnapshot(file: string, database: string, snapshots: SnapshotBucket): Promise<string> {
    const newest = (await snapshots.list(database)).at(-1);
    if (newest === undefined) throw new Error(`no snapshot of ${database} in the object store to start a copy from`);
    const temporary = `${file}.fetch-tmp`;
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    try {
      if (!(await snapshots.copyTo(database, newest, temporary))) throw new Error(`the snapshot of ${database} at ${newest} went away while it was fetched`);
      prepareReplicaFile(temporary, newest);
    } catch (e) {
      rmSync(temporary, { force: true });
      throw e;
    }
    return temporary;
  }

  private static installSnapshot(file: string, downloaded: string): void {
    for (const suffix of ['', '-journal']) rmSync(file + suffix, { force: true });
    renameSync(downloaded, file);
  }

  /** The commit this copy holds. */
  get sequence(): number {
    return this.replica.sequence;
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.turns.then(work, work);
    this.turns = next.catch(() => {});
    return next;
  }

  /** Applies every record the log holds after this copy's; resolves with the sequence reached. */
  catchUp(): Promise<number> {
    return this.exclusive(async () => {
      const reached = await this.pull();
      this.onAdvance?.();
      return reached;
    });
  }

  /**
   * Applies records as they are appended, until close(): the low-latency path. Anything it cannot
   * apply from what arrives (a gap, a restore's image) is read from the stream instead. When the
   * tail breaks (NATS lost), it starts again after `retryMs`.
   */
  follow(retryMs = 250): void {
    // Records that arrive while a batch is being applied wait and go in together as the next one.
    let arrived: LogRecord[] = [];
    let draining = false;
    const drain = () =>
      this.exclusive(async () => {
        const fresh = arrived.filter((r) => r.seq > this.replica.sequence);
        arrived = [];
        draining = false;
        if (fresh.length === 0 || this.closed) return;
        if (fresh[0]!.seq !== this.replica.sequence + 1 || fresh.some((r) => r.kind !== 'pages')) await this.pull();
        else await this.apply(fresh as PagesRecord[]);
        this.onAdvance?.();
      });
    const run = async () => {
      let broken: string | undefined;
      while (!this.closed) {
        try {
          const tail = await this.log.tail(this.replica.sequence);
          this.tailing = tail;
          if (this.closed) tail.stop();
          if (broken !== undefined) this.logger.info({ sequence: this.replica.sequence }, 'the copy follows the log again');
          broken = undefined;
          for await (const record of tail.records) {
            arrived.push(record);
            if (!draining) {
              draining = true;
              drain().catch((e) => this.failedToApply(e, retryMs));
            }
          }
        } catch (e) {
          // NATS unreachable, or the stream went away: said once per outage, tried again all along.
          if (broken === undefined && !this.closed) {
            this.logger.warn({ sequence: this.replica.sequence, error: errorText(e) }, `the copy stopped following the log; retrying every ${retryMs} ms`);
          }
          broken = errorText(e);
        }
        if (!this.closed) await pause(retryMs);
      }
    };
    void run();
  }

  /** Records could not be applied: says so, and catches up from the stream until it works. */
  private failedToApply(e: unknown, retryMs: number): void {
    if (this.closed) return;
    this.logger.error({ sequence: this.replica.sequence, error: errorText(e) }, `the copy could not apply records from the log; catching up from the stream every ${retryMs} ms until it can`);
    if (this.retrying) return;
    this.retrying = true;
    void (async () => {
      for (let attempt = 1; !this.closed; attempt++) {
        await pause(retryMs);
        try {
          await this.catchUp();
          this.logger.info({ sequence: this.replica.sequence, attempts: attempt }, 'the copy applies records again');
          break;
        } catch (again) {
          if (attempt % 20 === 0) this.logger.error({ sequence: this.replica.sequence, error: errorText(again), attempts: attempt }, 'the copy still cannot apply records from the log');
        }
      }
      this.retrying = false;
    })();
  }

  private async pull(): Promise<number> {
    let pending: PagesRecord[] = [];
    let next = this.replica.sequence + 1;
    for await (const record of this.log.read(this.replica.sequence)) {
      if (record.seq !== next && record.kind === 'pages') {
        // The log no longer holds what comes right after this copy (compacted): start again from a snapshot.
        await this.restart();
        return this.pull();
      }
      if (record.kind === 'image') {
        await this.apply(pending);
        pending = [];
        const temporary = `${this.file}.image-tmp`;
        try {
          if (!(await this.snapshots.copyTo(this.database, record.seq, temporary))) throw new Error(`the snapshot of restore ${record.seq} is missing`);
          if (sequenceOfFile(temporary) !== record.seq) throw new Error(`the snapshot of restore ${record.seq} names another commit`);
          await this.apply([imageRecord(temporary, record.seq)], true);
        } finally {
          rmSync(temporary, { force: true });
        }
      } else pending.push(record);
      next = record.seq + 1;
    }
    await this.apply(pending);
    return this.replica.sequence;
  }

  /** Applies, waiting while readers hold the file (they finish their read transactions quickly). */
  private async apply(records: PagesRecord[], jump = false): Promise<void> {
    if (records.length === 0) return;
    for (let waited = 0; !(jump ? this.replica.applyImage(records[0]!) : this.replica.apply(records)); waited++) {
      if (waited > 2000) throw new Error(`readers kept ${this.file} busy for too long`);
      await pause(1);
    }
  }

  /**
   * Replaces the copy with the newest snapshot. The snapshot is fetched first: when that fails, the
   * copy stays open and whole (its readers go on; the next catch-up tries again).
   */
  private async restart(): Promise<void> {
    const downloaded = await Follower.downloadSnapshot(this.file, this.database, this.snapshots);
    this.replica.close();
    Follower.installSnapshot(this.file, downloaded);
    this.replica = new ReplicaFile(this.file, { sync: false });
  }

  /** Catches up until this copy holds `seq`, for at most `timeoutMs`; false when it could not. */
  async waitFor(seq: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.replica.sequence < seq) {
      await this.catchUp();
      if (this.replica.sequence >= seq) break;
      if (Date.now() >= deadline) return false;
      await pause(5);
    }
    return true;
  }

  /** Stops following once the batch being applied (if any) is in. */
  async close(): Promise<void> {
    this.closed = true;
    this.tailing?.stop();
    await this.turns;
    this.replica.flush();
    this.replica.close();
    markSynced(this.file);
  }
}
