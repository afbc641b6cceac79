// Time Travel on a cluster database's primary: points are resolved, and rebuilt, from the
// database's JetStream history (stream + object store), which outlives any node, so a bookmark
// taken before any number of failovers restores and forks as it would on a single node. The
// restore itself is then a commit of the primary's (its image record is shipped like any other).
import { rmSync } from 'node:fs';
import { formatBookmark } from '../api/bookmark.ts';
import type { HistoryPoint, RestoreResult } from '../api/time-travel.ts';
import { finishFork, prepareFork } from '../log/fork.ts';
import type { History, TimeTravel } from '../log/history.ts';
import type { LoggedDatabase } from '../log/logged-database.ts';
import { materializeFrom } from '../log/pages.ts';
import { resolvePoint, type TimeWindow } from '../log/time-travel.ts';

export class ClusterTimeTravel implements TimeTravel {
  constructor(
    private readonly history: History,
    /** The primary's database: every commit in it is in the history (the primary ships before answering). */
    private readonly primary: LoggedDatabase,
    private readonly window: () => TimeWindow,
  ) {}

  private resolve(point: HistoryPoint): Promise<number> {
    return resolvePoint(this.history, point, { newest: this.primary.engine.commitSequence, window: this.window() });
  }

  async bookmarkAt(timestamp?: Date): Promise<string> {
    if (!timestamp) return this.primary.bookmark;
    return formatBookmark(await this.resolve({ timestamp }), this.history.tag);
  }

  async restore(point: HistoryPoint): Promise<RestoreResult> {
    const target = await this.resolve(point);
    const built = this.primary.restoreFile();
    try {
      await materializeFrom(this.history, target, built);
      // No snapshot of the primary's local log may run across the swap.
      await this.primary.snapshotInProgress;
      return this.primary.restoreFrom(target, built);
    } finally {
      rmSync(built, { force: true });
    }
  }

  async fork(point: HistoryPoint, file: string): Promise<{ bookmark: string; forkBookmark: string }> {
    const seq = await this.resolve(point);
    const built = prepareFork(file);
    try {
      await materializeFrom(this.history, seq, built);
      const forkTag = finishFork(built, file, seq, this.window().now);
      return { bookmark: formatBookmark(seq, this.history.tag), forkBookmark: formatBookmark(seq, forkTag) };
    } finally {
      rmSync(built, { force: true });
    }
  }
}
