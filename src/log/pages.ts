// Database files at the page level: the commit sequence kept in the header, and building the
// file as it was at a sequence from a snapshot and the records after it.
import { closeSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import type { LogRecord, PagesRecord } from './record.ts';
import type { LogStore, SnapshotStore } from './store.ts';

// The engine keeps the commit sequence in the header: low 32 bits as user_version, high as application_id.
const USER_VERSION_OFFSET = 60;
const APPLICATION_ID_OFFSET = 68;
/** SQLite's schema cookie: connections re-read the schema when it differs from the one they parsed. */
const SCHEMA_COOKIE_OFFSET = 40;

export function schemaCookieInHeader(header: Buffer): number {
  return header.readUInt32BE(SCHEMA_COOKIE_OFFSET);
}

export function sequenceInHeader(header: Buffer): number {
  return header.readUInt32BE(APPLICATION_ID_OFFSET) * 2 ** 32 + header.readUInt32BE(USER_VERSION_OFFSET);
}

/** The commit sequence of a closed, checkpointed database file (0 for an empty file). */
export function sequenceOfFile(file: string): number {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(100);
    return readSync(fd, header, 0, 100, 0) < 100 ? 0 : sequenceInHeader(header);
  } finally {
    closeSync(fd);
  }
}

/**
 * Sets the commit sequence in a closed database file's header, and, when given, its schema cookie
 * (a restored image must carry a cookie no connection has seen, or a long-lived connection to a
 * replica could keep a parsed schema whose cookie the restored history happens to reach again).
 */
export function setSequenceOfFile(file: string, seq: number, schemaCookie?: number): void {
  const fd = openSync(file, 'r+');
  try {
    const word = Buffer.alloc(4);
    word.writeUInt32BE(seq % 2 ** 32 >>> 0);
    writeSync(fd, word, 0, 4, USER_VERSION_OFFSET);
    word.writeUInt32BE(Math.floor(seq / 2 ** 32) >>> 0);
    writeSync(fd, word, 0, 4, APPLICATION_ID_OFFSET);
    if (schemaCookie !== undefined) {
      word.writeUInt32BE(schemaCookie >>> 0);
      writeSync(fd, word, 0, 4, SCHEMA_COOKIE_OFFSET);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The first 100 bytes of a closed database file. */
export function headerOfFile(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const header = Buffer.alloc(100);
    readSync(fd, header, 0, 100, 0);
    return header;
  } finally {
    closeSync(fd);
  }
}

/** Writes a commit's pages into an open, closed-to-SQLite database file and sets its size. */
export function applyPages(fd: number, record: PagesRecord): void {
  for (const [pageNumber, image] of record.images) {
    if (pageNumber <= record.pages) writeSync(fd, image, 0, record.pageSize, (pageNumber - 1) * record.pageSize);
  }
  ftruncateSync(fd, record.pages * record.pageSize);
}

export class HistoryGap extends Error {}

/**
 * Writes the database as it was after commit `seq` to `file`: the newest snapshot at or before
 * it, then every record up to it. The cost depends on the tail since that snapshot, not on the
 * database's age.
 */
export function materialize(log: LogStore, snapshots: SnapshotStore, seq: number, file: string): void {
  const base = snapshots
    .list()
    .filter((s) => s.seq <= seq)
    .at(-1);
  if (!base) throw new HistoryGap(`no snapshot at or before commit ${seq}`);
  snapshots.copyTo(base.seq, file);
  let fd = openSync(file, 'r+');
  let at = base.seq;
  try {
    for (const record of log.read(base.seq, seq) as Iterable<LogRecord>) {
      if (record.seq !== at + 1 && record.kind !== 'image') throw new HistoryGap(`the log jumps from commit ${at} to ${record.seq}`);
      if (record.kind === 'pages') applyPages(fd, record);
      else {
        closeSync(fd);
        snapshots.copyTo(record.seq, file);
        fd = openSync(file, 'r+');
      }
      at = record.seq;
    }
    if (at !== seq) throw new HistoryGap(`the log ends at commit ${at}, before ${seq}`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const found = sequenceOfFile(file);
  if (found !== seq) throw new HistoryGap(`rebuilt commit ${seq} but the file says ${found}`);
}
