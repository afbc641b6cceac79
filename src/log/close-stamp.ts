// What a clean close leaves beside a history: the database file as it was then (size, inode,
// modification and change times) and the last commit. Another program's commits carry no Dione
// commit number, so once its connection has checkpointed them into the file (SQLite's last
// connection does on closing) and removed the WAL, neither the file's header nor the WAL shows
// them; without this the next opening would log its commits as pages over a base the history does
// not have, and forks and restores of those commits would lack the other program's changes.
//
// The stamp is taken when the writer closes cleanly with the WAL moved into the file, and removed
// when it opens again, so it only ever describes a file nobody with the history had open since.
// After a crash there is none, and nothing is concluded. A file changed by anything other than
// SQLite writes (copied back from a backup, its data directory moved, chmod) is taken as changed
// too: the cost is a snapshot.
//
// Filesystems keep times in ticks (a second on ext3, HFS+, FAT, many network mounts; a few ms on
// ext4 before Linux 6.13): a write within the tick of the close would leave every field as it was.
// So the stamp is kept only once the filesystem's clock has passed the file's times (like git's
// racy index entries), waiting for it up to a bound; past it, no stamp, and nothing is checked.
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

interface CloseStamp {
  /** The last commit in the log at the close. */
  seq: number;
  size: string;
  ino: string;
  mtimeNs: string;
  ctimeNs: string;
}

const STAMP_FILE = 'closed-stamp.json';

function stampOf(file: string, seq: number): CloseStamp | undefined {
  try {
    const s = statSync(file, { bigint: true });
    return { seq, size: String(s.size), ino: String(s.ino), mtimeNs: String(s.mtimeNs), ctimeNs: String(s.ctimeNs) };
  } catch {
    return undefined;
  }
}

/** How long a close waits at most for the filesystem's clock to pass the file's times. */
const RACY_WAIT_MS = 1100;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * After a clean close by the history's writer (the WAL moved into the file). Not synced, and a
 * failure to write it is no failure of the close: without a stamp, nothing is checked.
 */
export function writeCloseStamp(dir: string, file: string, seq: number, racyWaitMs = RACY_WAIT_MS): void {
  const stamp = stampOf(file, seq);
  if (!stamp) return;
  // Written in place (one small write: a torn one does not parse, and counts as none).
  const written = path.join(dir, STAMP_FILE);
  const deadline = Date.now() + racyWaitMs;
  try {
    for (let attempt = 0, wait = 1; ; attempt++) {
      writeFileSync(written, JSON.stringify(stamp));
      // The stamp file's own times are the filesystem's clock now: a later write to the database gets times at least as late.
      const now = statSync(written, { bigint: true });
      if (now.mtimeNs > BigInt(stamp.mtimeNs) && now.ctimeNs > BigInt(stamp.ctimeNs)) break;
      if (Date.now() >= deadline) {
        rmSync(written, { force: true });
        return;
      }
      // At once the first time: on Linux ≥ 6.13 a file whose times were just asked for gets fine-grained ones at its next write.
      if (attempt > 0) {
        Atomics.wait(pause, 0, 0, wait);
        wait = Math.min(wait * 2, 64);
      }
    }
  } catch {
    try {
      rmSync(written, { force: true });
    } catch {
      // left for the next close to write over
    }
  }
}

/** The stamp of the last clean close, if any (unreadable counts as none). */
export function readCloseStamp(dir: string): CloseStamp | undefined {
  try {
    const stamp = JSON.parse(readFileSync(path.join(dir, STAMP_FILE), 'utf8')) as CloseStamp;
    return typeof stamp.seq === 'number' && typeof stamp.size === 'string' ? stamp : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Removes the stamp once the history is open again. Not synced: a stamp a machine crash brings
 * back either names an older commit than the log's (ignored) or, when this writer committed
 * nothing, a file it did not write.
 */
export function removeCloseStamp(dir: string): void {
  try {
    rmSync(path.join(dir, STAMP_FILE), { force: true });
  } catch {
    // not a file (nothing this code wrote): unreadable as a stamp, so never taken as one
  }
}

/**
 * How the database file differs from the stamp of the history's last clean close at commit
 * `seq`, or undefined when it does not (or nothing can be said: no stamp, another commit, no file
 * or an empty one — rebuilt from the log, as after a crash).
 */
export function changedSinceClose(stamp: CloseStamp | undefined, file: string, seq: number): string | undefined {
  if (!stamp || stamp.seq !== seq) return undefined;
  const now = stampOf(file, seq);
  if (!now || now.size === '0') return undefined;
  if (now.size !== stamp.size) return `its size went from ${stamp.size} to ${now.size} bytes`;
  if (now.ino !== stamp.ino) return 'another file was put in its place';
  if (now.mtimeNs !== stamp.mtimeNs) return 'it was written';
  if (now.ctimeNs !== stamp.ctimeNs) return 'its inode was changed';
  return undefined;
}
