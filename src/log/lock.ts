// One writer per history: two handles writing the same log would interleave their records. The
// lock is SQLite's own file lock on a small database in the history directory, held by a
// connection in EXCLUSIVE locking mode that has begun an exclusive transaction (it keeps the lock
// after COMMIT, and nothing is written, so taking it costs no sync): POSIX locks know other processes, SQLite
// tracks the connections of this process on the same file, and the OS drops the lock with the
// process, so a killed holder never leaves it behind (as a PID file would).
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { openSqlite } from '../engine/sqlite.ts';

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

export class HistoryLock {
  private constructor(private readonly db: Database.Database) {}

  /** Takes the lock of the history in `dir` (of database `file`), waiting up to `waitMs`; throws HistoryLocked. */
  static acquire(dir: string, file: string, waitMs = defaultWaitMs): HistoryLock {
    const lockFile = path.join(dir, 'lock.sqlite');
    const ownerFile = path.join(dir, 'lock.owner');
    for (let attempt = 0; ; attempt++) {
      let db: Database.Database | undefined;
      try {
        db = openSqlite(lockFile, { timeout: waitMs });
        // No journal file, should anything ever be written: the lock needs no disk space. One call:
        // taking the lock is part of every open of a database with a history.
        db.exec('PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = MEMORY; BEGIN EXCLUSIVE; COMMIT');
      } catch (e) {
        db?.close();
        const code = (e as { code?: string }).code;
        if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
          const owner = ownerOf(ownerFile);
          const who = owner === process.pid ? ` (pid ${owner}: this process)` : owner ? ` (pid ${owner})` : '';
          throw new HistoryLocked(`dione: ${file} is already open with its write log by another handle or process${who}`);
        }
        // Not a database (a stray file): only the lock lives there, so it is made anew, once.
        if (code === 'SQLITE_NOTADB' && attempt === 0) {
          rmSync(lockFile, { force: true });
          continue;
        }
        throw e;
      }
      try {
        // Only for the message another opener shows; the lock itself is the connection's.
        if (ownerOf(ownerFile) !== process.pid) writeFileSync(ownerFile, `${process.pid}\n`);
      } catch {
        // a full disk: the message goes without the pid
      }
      return new HistoryLock(db);
    }
  }

  /** Lets the history go (closing the connection drops the lock). */
  release(): void {
    if (this.db.open) this.db.close();
  }
}

function ownerOf(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
    return Number.isSafeInteger(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}
