// Time Travel's rules, for every kind of history: which commit a point (a bookmark or a time)
// names, whether it is inside the retention window, and the wording of each refusal. The file
// history of a single node (logged-database.ts, which adds what damage to its files makes
// unreachable) and a cluster's JetStream history (resolvePoint here) refuse alike, word for word.
import { formatBookmark, parseBookmark } from '../api/bookmark.ts';
import { HistoryError, type HistoryPoint } from '../api/time-travel.ts';
import type { CommitPoint, CommitsOverview, CommitsQuery, History } from './history.ts';
import type { SnapshotInfo } from './store.ts';

export const DAY_MS = 24 * 60 * 60 * 1000;

/** How far back Time Travel reaches, seen from `now`. */
export interface TimeWindow {
  now: number;
  retentionMs: number;
}

export const windowStart = (w: TimeWindow): number => w.now - w.retentionMs;

const days = (w: TimeWindow) => w.retentionMs / DAY_MS;

/** The commit a bookmark of this history names; refused when it is malformed or another history's. */
export function bookmarkSequence(bookmark: string, tag: string): number {
  const parsed = parseBookmark(bookmark);
  if (!parsed) throw new HistoryError(`Invalid bookmark '${bookmark}': a bookmark is four groups of hex digits, 8-8-8-32, as getBookmark() returns`);
  if (parsed.tag !== tag) throw new HistoryError(`Invalid bookmark '${bookmark}': it belongs to another database`);
  // This database writes its third group as zeros: any other names none of its commits.
  if (bookmark.slice(18, 26) !== '00000000') throw new HistoryError(`Invalid bookmark '${bookmark}': this database made no such bookmark (its third group is always 00000000)`);
  return parsed.sequence;
}

/** Refuses a bookmark past the newest commit, or before `floor` (the commit current when the window starts). */
export function checkBookmarkInWindow(bookmark: string, seq: number, at: { newest: number; tag: string; floor: number; window: TimeWindow }): void {
  if (seq > at.newest) throw new HistoryError(`Invalid bookmark '${bookmark}': it is in the future (the newest is '${formatBookmark(at.newest, at.tag)}')`);
  if (seq < at.floor) throw new HistoryError(`Invalid bookmark '${bookmark}': it is older than the Time Travel window of ${days(at.window)} days`);
}

export function notHeld(bookmark: string): HistoryError {
  return new HistoryError(`Invalid bookmark '${bookmark}': the history does not hold that commit (it was made while the write log was off)`);
}

/** The time a timestamp names, refused when it is no time, in the future, or before the window. */
export function timestampInWindow(timestamp: Date, window: TimeWindow): number {
  const time = timestamp.getTime();
  if (Number.isNaN(time)) throw new HistoryError('Invalid timestamp: it names no point in time');
  const iso = timestamp.toISOString();
  if (time > window.now) throw new HistoryError(`Invalid timestamp '${iso}': it is in the future`);
  if (time < windowStart(window)) throw new HistoryError(`Invalid timestamp '${iso}': it is older than the Time Travel window of ${days(window)} days`);
  return time;
}

export function beforeHistory(timestamp: Date, horizonTime: number): HistoryError {
  return new HistoryError(`Invalid timestamp '${timestamp.toISOString()}': the database's history starts at ${new Date(horizonTime).toISOString()}`);
}

/** The oldest point the history can rebuild: its oldest snapshot, and the later of its time and the window's start. */
export function horizonOf(snapshots: SnapshotInfo[], window: TimeWindow): { seq: number; time: number } {
  const first = snapshots[0];
  if (!first) throw new HistoryError('the database has no history yet (no snapshot to start from)');
  return { seq: first.seq, time: Math.max(first.time, windowStart(window)) };
}

/**
 * The commit a point of `history` names, checked against what can be rebuilt: the same rules and
 * words as a single node's. `newest` is the newest commit (the writer's view of the history's end).
 */
export async function resolvePoint(history: History, point: HistoryPoint, at: { newest: number; window: TimeWindow }): Promise<number> {
  const snapshots = await history.snapshots();
  const horizon = horizonOf(snapshots, at.window);
  const commitAt = async (time: number): Promise<number | undefined> => {
    const inLog = await history.atTime(time);
    const snapshot = snapshots.filter((s) => s.time <= time).at(-1);
    const seq = Math.max(inLog?.seq ?? -1, snapshot?.seq ?? -1);
    return seq < horizon.seq ? undefined : seq;
  };
  if ('bookmark' in point) {
    const seq = bookmarkSequence(point.bookmark, history.tag);
    // A commit is within the window while its state lasted into it: at or after the one current at the window's start.
    const floor = seq > at.newest ? seq : ((await commitAt(windowStart(at.window))) ?? horizon.seq);
    checkBookmarkInWindow(point.bookmark, seq, { newest: at.newest, tag: history.tag, floor, window: at.window });
    if (!snapshots.some((s) => s.seq === seq) && !(await history.find(seq))) throw notHeld(point.bookmark);
    return seq;
  }
  const time = timestampInWindow(point.timestamp, at.window);
  const seq = await commitAt(time);
  if (seq === undefined) throw beforeHistory(point.timestamp, horizon.time);
  return Math.min(seq, at.newest);
}

/** How many of the newest commits in the range a CommitsOverview lists. */
export const RECENT_COMMITS = 20;

/**
 * Commits per time bucket, the newest commits of the range and the oldest restorable commit, from
 * the history's record summaries (no page is read): a bounded number of lookups for any length of
 * history. The same for a single node's file history and a cluster's JetStream one.
 */
export async function commitsOverview(history: History, query: CommitsQuery, window: TimeWindow): Promise<CommitsOverview> {
  const { since, until, buckets } = query;
  const bucketMs = (until - since) / buckets;
  const bounds = Array.from({ length: buckets + 1 }, (_, i) => (i === buckets ? until : since + i * bucketMs));
  const positions = await history.positionsAt(bounds);
  const counts = positions.slice(1).map((p, i) => p - positions[i]!);
  const total = positions[buckets]! - positions[0]!;
  const recent =
    total === 0
      ? []
      : (await history.newestAt(until, Math.min(RECENT_COMMITS, total))).filter((r) => r.time > since).map((r) => ({ bookmark: formatBookmark(r.seq, history.tag), time: r.time }));
  return { since, until, bucket_ms: bucketMs, counts, total, recent, oldest_restorable: await oldestRestorable(history, window) };
}

/** The oldest commit a restore by bookmark accepts now (as resolvePoint's floor), with its commit time. */
async function oldestRestorable(history: History, window: TimeWindow): Promise<CommitPoint | null> {
  const snapshots = await history.snapshots();
  if (snapshots.length === 0) return null;
  const horizon = horizonOf(snapshots, window);
  const start = windowStart(window);
  const inLog = await history.atTime(start);
  const snapshot = snapshots.filter((s) => s.time <= start).at(-1);
  const current = [inLog, snapshot].filter((c) => c !== undefined && c.seq >= horizon.seq).sort((a, b) => b!.seq - a!.seq)[0];
  const oldest = current ?? snapshots[0]!;
  return { bookmark: formatBookmark(oldest.seq, history.tag), time: oldest.time };
}
