// File operations that stay correct across a crash: a file appears whole or not at all.
import { closeSync, copyFileSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import { syncDirectory } from '../engine/wal-sync.ts';

/** Temporary files are named by process and thread: two threads of one process never share one. */
export const temporarySuffix = `${process.pid}-${threadId}`;

/** The names in `dir`, which is made (with its parents) when missing: one call where a check and a listing make two. */
export function listDirectory(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirSync(dir, { recursive: true });
    return [];
  }
}

export { syncDirectory };

export function syncFile(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `file` through a temporary name, synced, then renamed into place. */
export function writeFileDurably(file: string, data: string | Buffer): void {
  const temporary = `${file}.tmp-${temporarySuffix}`;
  writeFileSync(temporary, data);
  syncFile(temporary);
  renameSync(temporary, file);
  syncDirectory(path.dirname(file));
}

/** Copies `from` to `to` through a temporary name, synced, then renamed into place. */
export function copyFileDurably(from: string, to: string): void {
  const temporary = `${to}.tmp-${temporarySuffix}`;
  copyFileSync(from, temporary);
  syncFile(temporary);
  renameSync(temporary, to);
  syncDirectory(path.dirname(to));
}

/**
 * Writes all of `bytes` at `position`. A write to a nearly full disk can take part of the bytes
 * and report how many; the next one then fails (ENOSPC), which is thrown.
 */
export function writeFully(fd: number, bytes: Buffer, position: number): void {
  let done = 0;
  while (done < bytes.length) {
    const n = writeSync(fd, bytes, done, bytes.length - done, position + done);
    if (n <= 0) throw Object.assign(new Error(`ENOSPC: no space left on device, write`), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    done += n;
  }
}

/** Reads into `bytes` from `position` until it is full or the file ends; returns how many bytes were read. */
export function readFully(fd: number, bytes: Buffer, position: number): number {
  let done = 0;
  while (done < bytes.length) {
    const n = readSync(fd, bytes, done, bytes.length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** How long a busy database's log and WAL stay open after their last use. */
export const IDLE_CLOSE_MS = 2000;

/**
 * Closes a descriptor once it has gone unused for between `idleMs` and twice that: a database that
 * writes opens its files once, not per commit (an open and a close were ~6% of a logged commit),
 * and an idle one holds no descriptor (a server keeps thousands of databases). The timer is unref'd,
 * so it keeps no process alive; it runs only while the descriptor is open.
 */
export class IdleCloser {
  private used = false;
  private timer: NodeJS.Timeout | undefined;

  /** `close` lets go of the descriptor and says whether it did (false: busy, asked again later). */
  constructor(
    private readonly close: () => boolean,
    private readonly idleMs = IDLE_CLOSE_MS,
  ) {}

  /** The descriptor was used now. */
  touch(): void {
    this.used = true;
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.sweep(), this.idleMs);
      this.timer.unref();
    }
  }

  private sweep(): void {
    if (this.used) this.used = false;
    else if (this.close()) this.stop();
  }

  /** The descriptor was closed by its owner: nothing to watch until the next touch. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.used = false;
  }
}
