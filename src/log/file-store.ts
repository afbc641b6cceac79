// The local backend of a database's history: records in segment files, snapshots as database
// files, under one directory:
//   tag                         32 hex naming the history
//   segments/<first seq>.log    records, each framed as length, CRC-32, body
//   snapshots/<seq>-<time>.sqlite
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { copyFileDurably, syncDirectory, syncFile, writeFileDurably } from './files.ts';
import { checkFrame, CorruptRecord, decodeRecord, encodeRecord, FRAME_HEAD_BYTES, frame, type LogRecord, type RecordSummary, SUMMARY_BYTES, summarize } from './record.ts';
import type { LogStore, SnapshotInfo, SnapshotStore } from './store.ts';

/** A new segment is started once the current one holds this much. */
const SEGMENT_BYTES = 64 * 1024 * 1024;
/**
 * The active segment is extended with zeros ahead of the records, this much at a time: syncing
 * data written over allocated blocks is about twice as fast as syncing a file that grows (the
 * size change is a metadata write too). A scan stops at the zeros and cuts them off.
 */
const PREALLOCATE_BYTES = 4 * 1024 * 1024;
const ZEROS = Buffer.alloc(1024 * 1024);

interface Entry extends RecordSummary {
  segment: Segment;
  offset: number;
  length: number;
}

interface Segment {
  file: string;
  first: number;
  bytes: number;
  /** The file's size, zeros past `bytes` included. */
  allocated: number;
}

const summaryOf = (e: Entry): RecordSummary => ({ kind: e.kind, seq: e.seq, time: e.time, pageBytes: e.pageBytes });

const seqName = (seq: number) => seq.toString(16).padStart(16, '0');

export class LogConflict extends Error {}

export class FileLogStore implements LogStore {
  readonly tag: string;
  private readonly segmentsDir: string;
  private readonly entries: Entry[] = [];
  private segments: Segment[] = [];
  private fd: number | undefined;
  private dirty = false;
  private totalBytes = 0;

  /** Opens (or creates) the history in `dir`, dropping a record torn by a crash at its end. */
  constructor(
    readonly dir: string,
    /** The tag of a new history (default: random); an existing history keeps its own. */
    tag?: string,
  ) {
    this.segmentsDir = path.join(dir, 'segments');
    mkdirSync(this.segmentsDir, { recursive: true });
    const tagFile = path.join(dir, 'tag');
    if (!existsSync(tagFile)) writeFileDurably(tagFile, tag ?? randomBytes(16).toString('hex'));
    this.tag = readFileSync(tagFile, 'utf8').trim();
    const names = readdirSync(this.segmentsDir)
      .filter((n) => /^[0-9a-f]{16}\.log$/.test(n))
      .sort();
    for (const name of names) {
      const segment = { file: path.join(this.segmentsDir, name), first: Number.parseInt(name.slice(0, 16), 16), bytes: 0, allocated: 0 };
      this.segments.push(segment);
      this.scan(segment);
    }
  }

  /** Indexes a segment's records; at the first torn or corrupt one, cuts the segment there. */
  private scan(segment: Segment): void {
    const fd = openSync(segment.file, 'r+');
    try {
      const size = fstatSync(fd).size;
      const head = Buffer.alloc(FRAME_HEAD_BYTES);
      let offset = 0;
      while (offset + FRAME_HEAD_BYTES <= size) {
        readSync(fd, head, 0, FRAME_HEAD_BYTES, offset);
        const length = head.readUInt32LE(0);
        if (length < SUMMARY_BYTES || offset + FRAME_HEAD_BYTES + length > size) break;
        const body = Buffer.alloc(length);
        readSync(fd, body, 0, length, offset + FRAME_HEAD_BYTES);
        if (!checkFrame(body, head.readUInt32LE(4))) break;
        let summary: RecordSummary;
        try {
          summary = summarize(body);
        } catch {
          break;
        }
        const previous = this.entries.at(-1);
        if (previous && !(summary.seq === previous.seq + 1 || (summary.kind === 'image' && summary.seq > previous.seq))) break;
        this.entries.push({ ...summary, segment, offset, length });
        offset += FRAME_HEAD_BYTES + length;
      }
      if (offset < size) ftruncateSync(fd, offset);
      segment.bytes = offset;
      segment.allocated = offset;
      this.totalBytes += offset;
    } finally {
      closeSync(fd);
    }
  }

  last(): RecordSummary | undefined {
    const e = this.entries.at(-1);
    return e && summaryOf(e);
  }

  lastRecord(): LogRecord | undefined {
    const e = this.entries.at(-1);
    return e && this.load(e);
  }

  append(record: LogRecord, expectedLast: number): void {
    const last = this.entries.at(-1);
    // Pages follow one another; an image may jump ahead (the database moved on without the log).
    const next = record.kind === 'image' ? record.seq > expectedLast : record.seq === expectedLast + 1;
    if ((last?.seq ?? expectedLast) !== expectedLast || !next) {
      throw new LogConflict(`log append out of order: the log ends at ${last?.seq}, expected ${expectedLast}, record ${record.seq}`);
    }
    let segment = this.segments.at(-1);
    if (!segment || segment.bytes >= SEGMENT_BYTES) segment = this.startSegment(record.seq);
    if (this.fd === undefined) this.fd = openSync(segment.file, 'r+');
    const body = encodeRecord(record);
    const bytes = frame(body);
    if (segment.bytes + bytes.length > segment.allocated) this.preallocate(segment, segment.bytes + bytes.length);
    writeSync(this.fd, bytes, 0, bytes.length, segment.bytes);
    this.entries.push({ ...summarize(body), segment, offset: segment.bytes, length: body.length });
    segment.bytes += bytes.length;
    this.totalBytes += bytes.length;
    this.dirty = true;
  }

  private preallocate(segment: Segment, needed: number): void {
    const target = Math.max(needed, segment.allocated + PREALLOCATE_BYTES);
    for (let at = segment.allocated; at < target; at += ZEROS.length) writeSync(this.fd!, ZEROS, 0, Math.min(ZEROS.length, target - at), at);
    segment.allocated = target;
    this.dirty = true;
  }

  private startSegment(first: number): Segment {
    const sealed = this.segments.at(-1);
    if (this.fd !== undefined && sealed) {
      ftruncateSync(this.fd, sealed.bytes);
      sealed.allocated = sealed.bytes;
      this.dirty = true;
    }
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    const segment = { file: path.join(this.segmentsDir, `${seqName(first)}.log`), first, bytes: 0, allocated: 0 };
    closeSync(openSync(segment.file, 'w'));
    syncDirectory(this.segmentsDir);
    this.segments.push(segment);
    return segment;
  }

  flush(): void {
    if (!this.dirty || this.fd === undefined) return;
    fdatasyncSync(this.fd);
    this.dirty = false;
  }

  *read(from: number, to: number): Iterable<LogRecord> {
    let i = this.indexOf(from + 1);
    for (; i < this.entries.length && this.entries[i]!.seq <= to; i++) yield this.load(this.entries[i]!);
  }

  /** The position of the first entry with seq >= `seq`. */
  private indexOf(seq: number): number {
    let low = 0;
    let high = this.entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.entries[mid]!.seq < seq) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  find(seq: number): RecordSummary | undefined {
    const e = this.entries[this.indexOf(seq)];
    return e?.seq === seq ? summaryOf(e) : undefined;
  }

  atTime(time: number): RecordSummary | undefined {
    let low = 0;
    let high = this.entries.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.entries[mid]!.time <= time) low = mid + 1;
      else high = mid;
    }
    const e = this.entries[low - 1];
    return e && summaryOf(e);
  }

  private load(entry: Entry): LogRecord {
    const fd = entry.segment === this.segments.at(-1) && this.fd !== undefined ? this.fd : openSync(entry.segment.file, 'r');
    try {
      const bytes = Buffer.alloc(FRAME_HEAD_BYTES + entry.length);
      readSync(fd, bytes, 0, bytes.length, entry.offset);
      const body = bytes.subarray(FRAME_HEAD_BYTES);
      if (!checkFrame(body, bytes.readUInt32LE(4))) throw new CorruptRecord(`log record ${entry.seq} is corrupt (CRC mismatch) in ${entry.segment.file}`);
      return decodeRecord(body);
    } finally {
      if (fd !== this.fd) closeSync(fd);
    }
  }

  compact(seq: number): void {
    // A segment goes once the next one starts at or before seq + 1: all its records are covered.
    while (this.segments.length > 1 && this.segments[1]!.first <= seq + 1) {
      const gone = this.segments.shift()!;
      rmSync(gone.file, { force: true });
      this.totalBytes -= gone.bytes;
      let n = 0;
      while (n < this.entries.length && this.entries[n]!.segment === gone) n++;
      this.entries.splice(0, n);
    }
  }

  bytes(): number {
    return this.totalBytes;
  }

  pageBytesAfter(seq: number): number {
    let total = 0;
    for (let i = this.indexOf(seq + 1); i < this.entries.length; i++) total += this.entries[i]!.pageBytes;
    return total;
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Snapshots as database files named by sequence and time. */
export class DirectorySnapshots implements SnapshotStore {
  private readonly dir: string;

  constructor(logDir: string) {
    this.dir = path.join(logDir, 'snapshots');
    mkdirSync(this.dir, { recursive: true });
    for (const name of readdirSync(this.dir)) if (name.includes('.tmp-')) rmSync(path.join(this.dir, name), { force: true });
  }

  list(): SnapshotInfo[] {
    return readdirSync(this.dir)
      .map((name) => /^([0-9a-f]{16})-(\d+)\.sqlite$/.exec(name))
      .filter((m) => m !== null)
      .map((m) => ({ seq: Number.parseInt(m[1]!, 16), time: Number(m[2]), bytes: statSync(path.join(this.dir, m[0])).size }))
      .sort((a, b) => a.seq - b.seq);
  }

  private fileOf(seq: number): string {
    const name = readdirSync(this.dir).find((n) => n.startsWith(`${seqName(seq)}-`) && n.endsWith('.sqlite'));
    if (!name) throw new Error(`no snapshot at ${seq}`);
    return path.join(this.dir, name);
  }

  put(file: string, seq: number, time: number, options: { move?: boolean } = {}): SnapshotInfo {
    const target = path.join(this.dir, `${seqName(seq)}-${Math.round(time)}.sqlite`);
    if (options.move) {
      syncFile(file);
      renameSync(file, target);
      syncDirectory(this.dir);
    } else copyFileDurably(file, target);
    return { seq, time: Math.round(time), bytes: statSync(target).size };
  }

  temporaryFile(purpose: string): string {
    return path.join(this.dir, `${purpose}.sqlite.tmp-${process.pid}`);
  }

  copyTo(seq: number, file: string): void {
    copyFileSync(this.fileOf(seq), file);
  }

  remove(seq: number): void {
    rmSync(this.fileOf(seq), { force: true });
  }
}
