// Keeps a cluster database's shared history within its retention window, on the primary: the
// snapshots the primary's log takes (online, as on a single node) are stored in the object store
// once the stream holds every commit they contain; then, snapshot first, everything the window no
// longer needs goes: the stream's messages below the newest snapshot older than the window
// (a JetStream purge up to a sequence), and the snapshots before that one. A node killed midway
// leaves a history that is only larger, never one with a hole: the next primary finishes the job.
import { rmSync } from 'node:fs';
import type { History } from '../log/history.ts';
import type { LoggedDatabase } from '../log/logged-database.ts';
import { type ClusterLogger, errorText } from './logger.ts';

export interface RetentionSettings {
  /** How far back Time Travel reaches. */
  retentionMs: number;
  /** Compaction runs at most this often (default a minute). */
  compactEveryMs?: number;
  clock?: () => number;
}

export class SharedHistoryKeeper {
  private lastCompaction = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly history: History,
    private readonly primary: LoggedDatabase,
    private readonly settings: RetentionSettings,
    private readonly logger: ClusterLogger,
    /** The newest snapshot the shared history holds. */
    private stored: number,
  ) {}

  private now(): number {
    return (this.settings.clock ?? Date.now)();
  }

  /** Stores the primary's newest local snapshot once every commit it holds is in the stream (at most `shipped`). */
  async storeSnapshots(shipped: number): Promise<void> {
    const newest = this.primary.snapshots
      .list()
      .filter((s) => s.seq > this.stored && s.seq <= shipped)
      .at(-1);
    if (!newest) return;
    const file = this.primary.snapshots.temporaryFile('shared');
    try {
      this.primary.snapshots.copyTo(newest.seq, file);
      await this.history.putSnapshot(file, newest.seq, newest.time);
      this.stored = newest.seq;
    } finally {
      rmSync(file, { force: true });
    }
  }

  /** A restore's image: its snapshot is stored before the record that names it. */
  async storeImage(seq: number, time: number): Promise<void> {
    const file = this.primary.snapshots.temporaryFile('image');
    try {
      this.primary.snapshots.copyTo(seq, file);
      await this.history.putSnapshot(file, seq, time);
      this.stored = Math.max(this.stored, seq);
    } finally {
      rmSync(file, { force: true });
    }
  }

  /** Drops what the window no longer needs (at most every compactEveryMs). */
  async compact(force = false): Promise<void> {
    const now = this.now();
    if (!force && now - this.lastCompaction < (this.settings.compactEveryMs ?? 60_000)) return;
    this.lastCompaction = now;
    const snapshots = await this.history.snapshots();
    const cutoff = now - this.settings.retentionMs;
    // The window starts from this one: the newest snapshot no newer than the window's start.
    const base = snapshots.filter((s) => s.time <= cutoff).at(-1);
    if (!base) return;
    const older = snapshots.filter((s) => s.seq < base.seq);
    try {
      await this.history.compact(base.seq);
      for (const s of older) await this.history.removeSnapshot(s.seq);
    } catch (e) {
      this.logger.warn({ base: base.seq, error: errorText(e) }, 'compacting the shared history failed; the next upkeep tries again');
      this.lastCompaction = Number.NEGATIVE_INFINITY;
      return;
    }
    if (older.length > 0) this.logger.info({ base: base.seq, removedSnapshots: older.length }, 'compacted the shared history to the retention window');
  }
}
