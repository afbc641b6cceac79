// A replica: a database file kept equal to a primary by writing the primary's page records into
// it, while connections keep reading it (design/physical-replication.md, "Replica (apply)").
// The file is in rollback-journal mode; each apply
//   - takes an exclusive lock through a second connection, so no reader is mid-transaction;
//   - writes a hot journal of the pages it is about to overwrite (SQLite's own format), so a
//     crash mid-apply is rolled back by SQLite itself on the next open;
//   - writes the pages, with page 1 patched: rollback mode, and the change counter set to the
//     sequence, so every reader drops its cache and the applied position is in the file;
//   - syncs, deletes the journal, releases the lock.
// A replica made with `sync: false` (a cluster node's copy) skips the syncs: a process that dies
// loses nothing the kernel holds, and SQLite rolls back the hot journal of an apply it cut short;
// after an operating-system crash its owner discards the copy (see unsynced-copy.ts).
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { openSqlite } from '../engine/sqlite.ts';
import { sequenceInHeader } from './pages.ts';
import type { PagesRecord } from './record.ts';
import { NO_POSITION } from './wal.ts';

const JOURNAL_MAGIC = Buffer.from('d9d505f920a163d7', 'hex');
const SECTOR_BYTES = 512;
// Database header fields the replica owns.
const WRITE_VERSION = 18;
const READ_VERSION = 19;
const CHANGE_COUNTER = 24;
const VERSION_VALID_FOR = 92;

/** Patches a page-1 image for a replica: rollback mode, change counter = `seq` (low 32 bits). */
export function patchFirstPage(page: Buffer, seq: number): void {
  page[WRITE_VERSION] = 1;
  page[READ_VERSION] = 1;
  page.writeUInt32BE(seq % 2 ** 32 >>> 0, CHANGE_COUNTER);
  page.writeUInt32BE(seq % 2 ** 32 >>> 0, VERSION_VALID_FOR);
}

/** Makes a closed database file (a snapshot copy) a replica's starting point. */
export function prepareReplicaFile(file: string, seq: number): void {
  const fd = openSync(file, 'r+');
  try {
    const header = Buffer.alloc(100);
    readSync(fd, header, 0, 100, 0);
    patchFirstPage(header, seq);
    writeSync(fd, header, 0, 100, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A closed database file (a restore's snapshot) as one record holding all of its pages, at `seq`. */
export function imageRecord(file: string, seq: number): PagesRecord {
  const bytes = readFileSync(file);
  const raw = bytes.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  const images = new Map<number, Buffer>();
  for (let n = 1; n * pageSize <= bytes.length; n++) images.set(n, bytes.subarray((n - 1) * pageSize, n * pageSize));
  return { kind: 'pages', seq, time: 0, pageSize, pages: images.size, images, position: NO_POSITION };
}

/** Several consecutive records as one: the last version of each page, the last size. */
export function mergeRecords(records: PagesRecord[]): PagesRecord {
  const last = records.at(-1)!;
  const images = new Map<number, Buffer>();
  for (const r of records) for (const [n, image] of r.images) images.set(n, image);
  for (const n of images.keys()) if (n > last.pages) images.delete(n);
  return { ...last, images };
}

export interface ReplicaOptions {
  /** false: applies are not synced to disk (default true). flush() syncs what was applied. */
  sync?: boolean;
}

export class ReplicaFile {
  private readonly fd: number;
  private readonly sync: boolean;
  private readonly lock: Database.Database;
  private readonly journal: string;
  private position: number;

  /** `file` must have been prepared (prepareReplicaFile) or be a replica already. */
  constructor(
    readonly file: string,
    options: ReplicaOptions = {},
  ) {
    this.sync = options.sync ?? true;
    // One descriptor for the life of the replica: closing any descriptor of a file drops every
    // POSIX lock this process holds on it, SQLite's included.
    this.lock = openSqlite(file, { timeout: 0 });
    this.lock.pragma('journal_mode = DELETE');
    // Reading rolls back a hot journal left by an apply that crashed, before the header is read.
    this.lock.prepare('SELECT count(*) FROM sqlite_schema').get();
    this.fd = openSync(file, 'r+');
    this.journal = `${file}-journal`;
    const header = Buffer.alloc(100);
    readSync(this.fd, header, 0, 100, 0);
    this.position = sequenceInHeader(header);
  }

  /** The commit sequence the replica holds (the primary's, from the applied page 1). */
  get sequence(): number {
    return this.position;
  }

  /**
   * Writes consecutive records (the next after `sequence` first). False, with nothing written,
   * when a reader holds the file: try again later (records queue up and merge).
   */
  apply(records: PagesRecord[]): boolean {
    if (records.length === 0) return true;
    if (records[0]!.seq !== this.position + 1) throw new Error(`replica at ${this.position} cannot apply record ${records[0]!.seq}`);
    return this.applyLocked(records);
  }

  /** Makes the replica a whole database image (every page of it) at `image.seq`, wherever it stood. */
  applyImage(image: PagesRecord): boolean {
    return this.applyLocked([image]);
  }

  private applyLocked(records: PagesRecord[]): boolean {
    try {
      this.lock.exec('BEGIN EXCLUSIVE');
    } catch (e) {
      if ((e as { code?: string }).code === 'SQLITE_BUSY') return false;
      throw e;
    }
    try {
      const merged = mergeRecords(records);
      this.write(merged);
      this.position = merged.seq;
    } finally {
      this.lock.exec('COMMIT');
    }
    return true;
  }

  private write(record: PagesRecord): void {
    const { pageSize } = record;
    const oldPages = Math.floor(fstatSync(this.fd).size / pageSize);
    this.writeJournal(record, oldPages);
    let firstWritten = false;
    for (const [n, image] of record.images) {
      if (n > record.pages) continue;
      let page = image;
      if (n === 1) {
        page = Buffer.from(image);
        patchFirstPage(page, record.seq);
        firstWritten = true;
      }
      writeSync(this.fd, page, 0, pageSize, (n - 1) * pageSize);
    }
    if (!firstWritten) {
      const counter = Buffer.alloc(4);
      counter.writeUInt32BE(record.seq % 2 ** 32 >>> 0);
      writeSync(this.fd, counter, 0, 4, CHANGE_COUNTER);
      writeSync(this.fd, counter, 0, 4, VERSION_VALID_FOR);
    }
    if (record.pages !== oldPages) ftruncateSync(this.fd, record.pages * pageSize);
    if (this.sync) fsyncSync(this.fd);
    rmSync(this.journal, { force: true });
  }

  /**
   * The old version of every page the apply touches (page 1 always, and the pages a shrinking
   * apply cuts off), in SQLite's rollback-journal format, made hot only once it is durable.
   */
  private writeJournal(record: PagesRecord, oldPages: number): void {
    const { pageSize } = record;
    const saved = new Set<number>([1]);
    for (const n of record.images.keys()) if (n <= oldPages && n <= record.pages) saved.add(n);
    for (let n = record.pages + 1; n <= oldPages; n++) saved.add(n);
    const nonce = randomBytes(4).readUInt32BE();
    const header = Buffer.alloc(SECTOR_BYTES);
    header.writeUInt32BE(saved.size, 8);
    header.writeUInt32BE(nonce, 12);
    header.writeUInt32BE(oldPages, 16);
    header.writeUInt32BE(SECTOR_BYTES, 20);
    header.writeUInt32BE(pageSize, 24);
    const fd = openSync(this.journal, 'w');
    try {
      writeSync(fd, header, 0, SECTOR_BYTES, 0);
      let at = SECTOR_BYTES;
      const entry = Buffer.alloc(4 + pageSize + 4);
      for (const n of [...saved].sort((a, b) => a - b)) {
        entry.writeUInt32BE(n, 0);
        const page = entry.subarray(4, 4 + pageSize);
        page.fill(0);
        readSync(this.fd, page, 0, pageSize, (n - 1) * pageSize);
        let sum = nonce;
        for (let i = pageSize - 200; i > 0; i -= 200) sum = (sum + page[i]!) >>> 0;
        entry.writeUInt32BE(sum, 4 + pageSize);
        writeSync(fd, entry, 0, entry.length, at);
        at += entry.length;
      }
      if (this.sync) fsyncSync(fd);
      // Only now is the journal hot: a crash before this line leaves a journal SQLite ignores.
      writeSync(fd, JOURNAL_MAGIC, 0, 8, 0);
      if (this.sync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Syncs every apply so far to disk (for a replica made with `sync: false`). */
  flush(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    this.lock.close();
    closeSync(this.fd);
  }
}
