// Reads answered on the HTTP thread. A request to a worker costs two thread hops, which is most of
// a point select's time over HTTP; a database that is read often therefore gets a read-only
// connection on the HTTP thread too, and a request that holds only reads is tried there first.
// The worker stays the authority: whenever the HTTP thread cannot answer exactly as the worker
// would, the request goes to the worker, as every request did before.
//
// Invariants:
// - Only what a worker has acknowledged is served here: a read that saw a commit newer than the
//   newest bookmark a worker has answered with goes to the worker (whose answers wait until the
//   commit is durable), so no answer from here shows a write that could still be undone.
// - A copy exists only while the pool has the database open, and closes before any operation other
//   than SQL runs on it (restore, import, fork, close, a move to another worker); no read runs
//   here until that operation is over. A copy whose file was replaced underneath it (a repair after
//   a write-log failure renames a rebuilt file in, then answers the write as failed) is closed when
//   that failed write's answer comes back, and every second its file is compared anyway.
// - meta.last_row_id is the worker connection's (D1 reports its connection's last insert rowid even
//   on reads): taken from the worker's last answer outside an interactive transaction; unknown after
//   a failed write or once the worker's connection is new (the database moved or reopened). A query
//   that asks the connection's state itself (last_insert_rowid(), changes(), total_changes()) goes
//   to the worker. (Through a view that calls them it would not be seen: such a view is answered here.)
// - Any failure, and any read that runs past a short budget, goes to the worker; statements that
//   ran past the budget once go straight to the worker from then on.
// - The copy is read-only and keeps the WAL when it closes, so closing it can never delete the WAL
//   of a file that replaced the one it had open.
import { statSync } from 'node:fs';
import { parseBookmark } from '../../api/bookmark.ts';
import type { ExecuteRequest, ExecuteResponse } from '../../api/executor.ts';
import { Engine } from '../../engine/engine.ts';
import { parseQuery } from '../../sql/parse-cache.ts';

/** The window in which a database's reads count towards a copy (LocalReadsOptions.hotReads). */
const HOT_WINDOW_MS = 1000;
/** Copies kept open at once (each holds three file descriptors); the least recently used closes. */
const MAX_COPIES = 32;
/** A read still running after this long is interrupted here and runs again on a worker. */
const LOCAL_BUDGET_MS = 20;
/** Statements remembered as too slow for the HTTP thread. */
const SLOW_KEPT = 1024;
/**
 * How often a copy's file is compared with the one it opened (a stat), besides after every failed
 * write: the one file swap that needs no operation of the pool's, a repair, follows a failed write.
 */
const FILE_CHECK_MS = 1000;
/** After a copy failed to open, the next try waits this long. */
const RETRY_OPEN_MS = 10_000;

interface Known {
  file: string;
  /** The history tag of the worker's bookmarks (copies answer with the same). */
  tag: string | undefined;
  /** The newest commit a worker has answered with. */
  acknowledged: number;
  /** The worker connection's last insert rowid, undefined when not known. */
  lastRowId: number | undefined;
  heat: number;
  heatSince: number;
  copy: Engine | undefined;
  /** The inode the copy opened, and when it was last compared with the file's (performance.now()). */
  inode: number;
  checkedAt: number;
  lastUsed: number;
  /** Operations other than SQL running on the database now. */
  operations: number;
  openFailedAt: number;
  /**
   * A PRAGMA changed the worker connection's settings (case_sensitive_like, ignore_check_constraints…):
   * a copy would answer without them, so reads go to the worker until its connection is new.
   */
  settingsChanged: boolean;
}

export interface LocalReadsOptions {
  servedBy: string;
  /** Reads a worker answers within a second that earn a database a copy on this thread (at least 1). */
  hotReads: number;
  /** The server's query timeout (ms, 0: none): a copy's budget never exceeds it. */
  queryTimeoutMs: number;
}

export class LocalReads {
  private readonly known = new Map<string, Known>();
  private readonly slow = new Set<string>();
  private copies = 0;
  /** Reads answered here so far. */
  served = 0;
  private readonly budgetMs: number;

  constructor(private readonly options: LocalReadsOptions) {
    this.budgetMs = options.queryTimeoutMs > 0 ? Math.min(options.queryTimeoutMs, LOCAL_BUDGET_MS) : LOCAL_BUDGET_MS;
  }

  /** Copies open now. */
  get openCopies(): number {
    return this.copies;
  }

  /** The answer from the HTTP thread's copy, or undefined when a worker must answer. */
  answer(uuid: string, request: ExecuteRequest, writes: boolean): ExecuteResponse | undefined {
    if (writes || request.transaction !== undefined) return undefined;
    const k = this.known.get(uuid);
    const copy = k?.copy;
    if (!k || !copy || k.operations > 0 || k.lastRowId === undefined || k.settingsChanged) return undefined;
    for (const q of request.queries) if (this.slow.has(q.sql) || readsConnectionState(q.sql)) return undefined;
    const started = performance.now();
    if (started - k.checkedAt > FILE_CHECK_MS) {
      if (!this.sameFile(k)) {
        this.closeCopy(k);
        return undefined;
      }
      k.checkedAt = started;
    }
    let response: ExecuteResponse;
    try {
      response = copy.execute(request);
    } catch {
      this.closeCopy(k);
      return undefined;
    }
    if (!response.success) {
      if (performance.now() - started >= this.budgetMs) this.rememberSlow(request);
      return undefined;
    }
    if (copy.commitSequence > k.acknowledged) return undefined;
    for (const r of response.results) r.meta.last_row_id = k.lastRowId;
    k.lastUsed = Date.now();
    this.served++;
    return response;
  }

  /** A worker's answer to a SQL request on the database (what the copies follow). */
  observe(uuid: string, file: string, request: ExecuteRequest, writes: boolean, response: ExecuteResponse): void {
    const k = this.entry(uuid, file);
    const ownConnection = request.transaction === undefined;
    // Whether the request succeeded or not: a PRAGMA's setting outlives a rollback.
    if (ownConnection && !k.settingsChanged && setsPragma(request)) this.settingsChanged(uuid, file);
    if (!response.success) {
      if (writes) {
        // A failed write was rolled back, which leaves the connection's last insert rowid unknown here;
        // and a write the log could not take was undone by renaming a rebuilt file in, before this answer.
        if (ownConnection) k.lastRowId = undefined;
        if (k.copy && !this.sameFile(k)) this.closeCopy(k);
      }
      return;
    }
    const bookmark = response.bookmark ? parseBookmark(response.bookmark) : undefined;
    if (bookmark) {
      if (k.tag !== undefined && bookmark.tag !== k.tag) this.closeCopy(k);
      k.tag = bookmark.tag;
      if (bookmark.sequence > k.acknowledged) k.acknowledged = bookmark.sequence;
    }
    const last = response.results.at(-1);
    if (ownConnection && last) k.lastRowId = last.meta.last_row_id;
    if (writes || k.copy || k.operations > 0 || k.tag === undefined || k.settingsChanged) return;
    const now = Date.now();
    if (now - k.heatSince > HOT_WINDOW_MS) {
      k.heat = 0;
      k.heatSince = now;
    }
    if (++k.heat >= this.options.hotReads && now - k.openFailedAt > RETRY_OPEN_MS) this.openCopy(k);
  }

  /**
   * The worker's connection keeps a setting a PRAGMA made (by a request, or an import): a copy would
   * answer without it, so reads go to the worker until its connection is new (forget()).
   */
  settingsChanged(uuid: string, file: string): void {
    const k = this.entry(uuid, file);
    k.settingsChanged = true;
    this.closeCopy(k);
  }

  /**
   * An operation other than SQL starts on the database (a restore, an import, a fork…): its copy
   * closes and nothing is read here until the returned function is called.
   */
  begin(uuid: string, file: string): () => void {
    const k = this.entry(uuid, file);
    this.closeCopy(k);
    // It may reopen the worker's connection (a restore does), whose last insert rowid starts over.
    k.lastRowId = undefined;
    k.operations++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      k.operations--;
    };
  }

  /**
   * The worker's connection to the database is gone or new (closed, moved to another worker): the
   * copy closes and everything learnt from that connection is forgotten.
   */
  forget(uuid: string): void {
    const k = this.known.get(uuid);
    if (!k) return;
    this.closeCopy(k);
    if (k.operations === 0) this.known.delete(uuid);
    else {
      k.lastRowId = undefined;
      k.heat = 0;
      k.settingsChanged = false;
    }
  }

  closeAll(): void {
    for (const k of this.known.values()) this.closeCopy(k);
    this.known.clear();
  }

  private entry(uuid: string, file: string): Known {
    let k = this.known.get(uuid);
    if (!k) {
      k = { file, tag: undefined, acknowledged: 0, lastRowId: undefined, heat: 0, heatSince: 0, copy: undefined, inode: 0, checkedAt: 0, lastUsed: 0, operations: 0, openFailedAt: 0, settingsChanged: false };
      this.known.set(uuid, k);
    }
    return k;
  }

  private openCopy(k: Known): void {
    if (this.copies >= MAX_COPIES) this.closeLeastRecentlyUsed();
    try {
      const inode = statSync(k.file).ino;
      k.copy = new Engine(k.file, { readonly: true, intMode: 'bigint', servedBy: this.options.servedBy, queryTimeoutMs: this.budgetMs, bookmarkTag: k.tag });
      k.inode = inode;
      k.checkedAt = performance.now();
      k.lastUsed = Date.now();
      this.copies++;
    } catch {
      k.openFailedAt = Date.now();
    }
  }

  private closeCopy(k: Known): void {
    const copy = k.copy;
    if (!copy) return;
    k.copy = undefined;
    k.heat = 0;
    this.copies--;
    try {
      copy.close({ keepWal: true });
    } catch {
      // A copy that cannot close cleanly has nothing to lose: it never wrote.
    }
  }

  private closeLeastRecentlyUsed(): void {
    let oldest: Known | undefined;
    for (const k of this.known.values()) if (k.copy && (!oldest || k.lastUsed < oldest.lastUsed)) oldest = k;
    if (oldest) this.closeCopy(oldest);
  }

  private sameFile(k: Known): boolean {
    try {
      return statSync(k.file).ino === k.inode;
    } catch {
      return false;
    }
  }

  private rememberSlow(request: ExecuteRequest): void {
    for (const q of request.queries) {
      if (this.slow.size >= SLOW_KEPT) this.slow.delete(this.slow.values().next().value!);
      this.slow.add(q.sql);
    }
  }
}

/** Whether a query asks its connection's state (last_insert_rowid()…): only the worker's connection has it. */
function readsConnectionState(sql: string): boolean {
  return typeof sql === 'string' && parseQuery(sql).statements.some((s) => s.readsConnectionState === true);
}

/** Whether a request sets a setting its connection keeps (a PRAGMA: case_sensitive_like…). */
function setsPragma(request: ExecuteRequest): boolean {
  return request.queries.some((q) => typeof q.sql === 'string' && parseQuery(q.sql).statements.some((s) => s.setsConnection === true));
}
