// One writer per history: two handles writing the same log would interleave their records. The
// lock is an exclusive flock on the file `lock` in the history directory, taken through a
// descriptor the lock keeps open: it conflicts with any other open of the file, in this process
// (another handle, another thread) or another, and the OS drops it with the descriptor or the
// process, so a killed holder never leaves it behind (as a PID file would). The file holds the
// holder's pid, for the message another opener shows.
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import { tryLockFile } from '../engine/sqlite.ts';

/** Another handle or process holds the history. */
export class HistoryLocked extends Error {
  override name = 'HistoryLocked';
}

let defaultWaitMs = 0;

/**
 * How long opening a history waits for the lock by default (0: it refuses at once, as an embedded
 * open does). A server waits a little: another server on the same data may still be stopping.
 */
export function setHistoryLockWait(ms: number): void {
  defaultWaitMs = ms;
}

/** How often a waiting open tries the lock again. */
const RETRY_MS = 10;
const pause = new Int32Array(new SharedArrayBuffer(4));

export class HistoryLock {
  private constructor(private fd: number | undefined) {}

  /** Takes the lock of the history in `dir` (of database `file`), waiting up to `waitMs`; throws HistoryLocked. */
  static acquire(dir: string, file: string, waitMs = defaultWaitMs): HistoryLock {
    const fd = openLockFile(dir);
    try {
      const deadline = Date.now() + waitMs;
      while (!tryLockFile(fd)) {
        const left = deadline - Date.now();
        if (left <= 0) {
          const owner = ownerOf(fd);
          const who = owner === process.pid ? ` (pid ${owner}: this process)` : owner ? ` (pid ${owner})` : '';
          throw new HistoryLocked(`dione: ${file} is already open with its write log by another handle or process${who}`);
        }
        Atomics.wait(pause, 0, 0, Math.min(RETRY_MS, left));
      }
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    try {
      // Only for the message another opener shows; the lock itself is the descriptor's.
      if (ownerOf(fd) !== process.pid) {
        ftruncateSync(fd, 0);
        writeSync(fd, `${process.pid}\n`, 0);
      }
    } catch {
      // a full disk: the message goes without the pid
    }
    return new HistoryLock(fd);
  }

  /** Lets the history go (closing the descriptor drops the lock). */
  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The lock file of the history in `dir`, made (with the directory) when missing. */
function openLockFile(dir: string): number {
  const file = path.join(dir, 'lock');
  try {
    return openSync(file, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dir, { recursive: true });
    return openSync(file, constants.O_RDWR | constants.O_CREAT, 0o644);
  }
}

function ownerOf(fd: number): number | undefined {
  try {
    const bytes = Buffer.alloc(24);
    const pid = Number.parseInt(bytes.toString('latin1', 0, readSync(fd, bytes, 0, bytes.length, 0)), 10);
    return Number.isSafeInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}
