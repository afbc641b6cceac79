// Database files at the page level: the commit sequence kept in the header, and building the
// file as it was at a sequence from a snapshot and the records after it.
import { closeSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import type { LogRecord, PagesRecord } from './record.ts';
import type { History } from './history.ts';
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
 * Rebuilds a point: a file that holds the snapshot at `base` takes the records after it, in
 * order. A pages record is written into the file; an image record means "from here the database
 * is the snapshot at this sequence": apply() answers true, and the caller copies that snapshot
 * over the file before going on.
 */
export class PointBuilder {
  private fd: number | undefined;
  private at: number;

  constructor(
    readonly file: string,
    base: number,
  ) {
    this.at = base;
    this.fd = openSync(file, 'r+');
  }

  /** Applies the next record; true when it is an image (copy its snapshot to the file, then call reopen()). */
  apply(record: LogRecord): boolean {
    if (record.seq !== this.at + 1 && record.kind !== 'image') throw new HistoryGap(`the log jumps from commit ${this.at} to ${record.seq}`);
    this.at = record.seq;
    if (record.kind === 'pages') {
      applyPages(this.fd!, record);
      return false;
    }
    this.close();
    return true;
  }

  reopen(): void {
    this.fd = openSync(this.file, 'r+');
  }

  /** Checks that the file is commit `seq` and syncs it. */
  finish(seq: number): void {
    try {
      if (this.at !== seq) throw new HistoryGap(`the log ends at commit ${this.at}, before ${seq}`);
      fsyncSync(this.fd!);
    } finally {
      this.close();
    }
    const found = sequenceOfFile(this.file);
    if (found !== seq) throw new HistoryGap(`rebuilt commit ${seq} but the file says ${found}`);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

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
  const builder = new PointBuilder(file, base.seq);
  try {
    for (const record of log.read(base.seq, seq) as Iterable<LogRecord>) {
      if (builder.apply(record)) {
        snapshots.copyTo(record.seq, file);
        builder.reopen();
      }
    }
  } catch (e) {
    builder.close();
    throw e;
  }
  builder.finish(seq);
}

/** materialize() over any history (a cluster's JetStream one): the same file, from the same snapshot and records. */
export async function materializeFrom(history: History, seq: number, file: string): Promise<void> {
  const base = (await history.snapshots()).filter((s) => s.seq <= seq).at(-1);
  if (!base) throw new HistoryGap(`no snapshot at or before commit ${seq}`);
  await history.copySnapshot(base.seq, file);
  const builder = new PointBuilder(file, base.seq);
  try {
    for await (const record of history.read(base.seq, seq)) {
      if (builder.apply(record)) {
        await history.copySnapshot(record.seq, file);
        builder.reopen();
      }
    }
  } catch (e) {
    builder.close();
    throw e;
  }
  builder.finish(seq);
}
