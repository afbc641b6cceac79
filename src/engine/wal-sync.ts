// Durable writes for the in-process binding, one sync for many: the engine commits at
// synchronous=NORMAL (SQLite writes the WAL's frames, no sync), and the answers of the writes issued
// together (in one stretch of synchronous code, as `Promise.all([...])` issues them) wait for one
// fdatasync of the -wal file, run as a microtask after it. That is what synchronous=FULL does after
// each commit, shared: concurrent callers pay one sync, not one each. The sync is queued by the first
// commit, and the handle's other answers given before it runs wait for it too (an output gate): no
// caller of the handle sees a commit before it is durable, and when the sync fails, every answer
// that waited for it is that failure (SQLite keeps the commits: at FULL a failed sync hid them).
// A microtask, not the next turn of the event loop: waiting for the turn cost a lone writer ~3%
// (`npm run bench`, single-row inserts 0.87–0.91× raw against 0.92–0.94×). Writes arriving in
// separate callbacks (an HTTP server's requests) are synced one by one, as at synchronous=FULL.
import { closeSync, fdatasyncSync, fsyncSync, openSync } from 'node:fs';
import path from 'node:path';
import type { ExecuteResponse } from '../api/executor.ts';
import { detailOf } from './sqlite-error.ts';

/** Makes a directory's entries durable (a file created in it survives a power loss). */
export function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class WalSync {
  /**
   * Opened with the handle (SQLite has created the file by then): an error the kernel meets
   * writing the file back is reported to descriptors open at that time, and this one is.
   */
  private fd: number | undefined;
  private directorySynced = false;
  private waiting: { response: ExecuteResponse; resolve: (answer: ExecuteResponse) => void }[] = [];
  /**
   * A sync failed: the disk's state is unknown (a failed fsync may drop the pages it did not
   * write), so nothing more is answered as durable; every request gets this until the handle is
   * reopened.
   */
  failure: string | undefined;

  /** `walFile`: SQLite's own path of the -wal (Engine.walFile), so a link in the path cannot name another file. */
  constructor(private readonly walFile: string) {
    this.fd = openSync(walFile, 'r+');
  }

  /** Whether answers wait for a sync (the handle's other answers wait for it too). */
  get pending(): boolean {
    return this.waiting.length > 0;
  }

  /** An answer given once the WAL is synced (a failure instead, when it cannot be). */
  afterSync(response: ExecuteResponse): Promise<ExecuteResponse> {
    return new Promise((resolve) => {
      if (this.waiting.push({ response, resolve }) === 1) queueMicrotask(() => this.sync());
    });
  }

  /** Syncs the WAL for every answer waiting, and gives them out. */
  sync(): void {
    const waiting = this.waiting;
    if (waiting.length === 0) return;
    this.waiting = [];
    let failure = this.failure;
    if (failure === undefined) {
      try {
        if (this.fd === undefined) throw new Error('the WAL is closed');
        fdatasyncSync(this.fd);
        if (!this.directorySynced) {
          // SQLite syncs the directory after creating a WAL at synchronous=FULL; so does the first sync here.
          syncDirectory(path.dirname(this.walFile));
          this.directorySynced = true;
        }
      } catch (e) {
        failure = this.failure = `the database's WAL could not be synced, so its last writes may not be durable (reopen it): ${detailOf(e)}`;
      }
    }
    for (const { response, resolve } of waiting) resolve(failure === undefined ? response : { success: false, error: failure });
  }

  /** Syncs what waits, then lets go of the file (the engine is closing). */
  close(): void {
    this.sync();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
