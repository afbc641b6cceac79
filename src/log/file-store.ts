// The local backend of a database's history: records in segment files, snapshots as database
// files, under one directory:
//   tag                         32 hex naming the history
//   segments/<first seq>.log    records, each framed as length, CRC-32, body
//   segments/<first seq>.idx    a sealed segment's index (segment-index.ts): read on opening instead of the segment
//   snapshots/<seq>-<time>.sqlite
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import path from 'node:path';
import { copyFileDurably, IdleCloser, listDirectory, readFully, syncDirectory, syncFile, temporarySuffix, writeFileDurably, writeFully } from './files.ts';
import {
  decodeSegmentIndex,
  decodeSegmentSummary,
  encodeSegmentIndex,
  type IndexedRecord,
  indexFileOf,
  indexHeadBytes,
  type SegmentIndexView,
  type SegmentSummary,
} from './segment-index.ts';
import { CorruptRecord, checkFrame, decodeRecord, encodeRecord, FRAME_HEAD_BYTES, frame, frameHead, type LogRecord, kindOfByte, positionOf, type RecordSummary, SUMMARY_BYTES, summarize } from './record.ts';
import { type Backing, type Entry, EntryTable, entryFor, type Segment, summaryOf } from './entry-table.ts';
import type { LogStore, SnapshotInfo, SnapshotStore } from './store.ts';
import { NO_POSITION, type WalPosition } from './wal.ts';

/** A new segment is started once the current one holds this much (default; FileLogOptions.segmentBytes). */
const SEGMENT_BYTES = 64 * 1024 * 1024;
/**
 * The active segment is extended with zeros ahead of the records: syncing data written over
 * allocated blocks is about twice as fast as syncing a file that grows (the size change is a
 * metadata write too). Each extension adds as much as the segment holds, between these bounds, so
 * a small database's log carries little unused space, and opening it (which reads the zeros, to
 * tell them from damage) stays cheap. The zeros stay when the log is closed and reopened.
 */
const PREALLOCATE_MIN_BYTES = 16 * 1024;
const PREALLOCATE_MAX_BYTES = 4 * 1024 * 1024;
const ZEROS = Buffer.alloc(1024 * 1024);
/** After the disk had no room for the zeros ahead, records are written without them this long. */
const PREALLOCATE_RETRY_MS = 10_000;
/**
 * The open segment is sealed (indexed) when the writer closes the log once it holds a sixteenth of
 * a segment: opening reads the last segment's records whole (a 60 MiB one took ~60 ms), an indexed
 * one only its index's head. Smaller ones stay open for appends, so a database closed and opened
 * often does not leave many small segments.
 */
const SEAL_ON_CLOSE_PARTS = 16;

/** Bytes of a segment file that hold no readable record, found while opening the log. */
export interface UnreadableRange {
  file: string;
  /** [from, to) in the file. */
  from: number;
  to: number;
}

/**
 * Records missing from the middle of the history: damaged bytes in a segment, or a segment file
 * that is gone. Commits after `after` and before `next` cannot be rebuilt from the log.
 */
export interface LogGap {
  /** The last readable record before the gap (undefined: the gap is at the log's start). */
  after: RecordSummary | undefined;
  /** The first readable record after it. */
  next: RecordSummary;
  /** Where the missing records were: unreadable byte ranges (none when a whole segment file is missing). */
  unreadable: UnreadableRange[];
}

const ZERO_CHUNK = Buffer.alloc(64 * 1024);
/** A record body past this is written after its frame's head instead of copied behind it. */
const LARGE_BODY_BYTES = 64 * 1024;

/** The index of the last non-zero byte of `bytes` (-1 when all are zero). */
function lastNonZero(bytes: Buffer): number {
  let end = bytes.length;
  while (end > 0) {
    const start = Math.max(0, end - ZERO_CHUNK.length);
    if (bytes.compare(ZERO_CHUNK, 0, end - start, start, end) !== 0) {
      for (let i = end - 1; i >= start; i--) if (bytes[i] !== 0) return i;
    }
    end = start;
  }
  return -1;
}

/** Whether a file's bytes [from, to) are all zero. */
function allZero(fd: number, from: number, to: number): boolean {
  const chunk = Buffer.allocUnsafe(Math.min(to - from, ZERO_CHUNK.length));
  for (let at = from; at < to; ) {
    const n = readSync(fd, chunk, 0, Math.min(chunk.length, to - at), at);
    if (n === 0) break;
    if (chunk.compare(ZERO_CHUNK, 0, n, 0, n) !== 0) return false;
    at += n;
  }
  return true;
}

const entryOf = (index: SegmentIndexView, i: number, segment: Segment): Entry => ({
  kind: index.kind(i),
  seq: index.seq(i),
  time: index.time(i),
  pageBytes: index.pageBytes(i),
  segment,
  offset: index.offset(i),
  length: index.length(i),
});

/**
 * The summary in the head of a segment's index, when the index is not older than the segment
 * (`segmentMtime`) and whole as far as its head says; reads only the head.
 */
function readIndexSummary(file: string, segmentMtime: number, segmentBytes: number): SegmentSummary | undefined {
  const fd = openSync(file, 'r');
  try {
    const stat = fstatSync(fd);
    if (stat.mtimeMs < segmentMtime) return undefined;
    let head = Buffer.alloc(Math.min(stat.size, 4096));
    readFully(fd, head, 0);
    const headBytes = indexHeadBytes(head);
    if (headBytes === undefined || headBytes > stat.size) return undefined;
    if (headBytes > head.length) {
      head = Buffer.alloc(headBytes);
      if (readFully(fd, head, 0) < headBytes) return undefined;
    }
    return decodeSegmentSummary(head, segmentBytes, stat.size);
  } finally {
    closeSync(fd);
  }
}

/**
 * The page bytes of a sealed segment's records after sequence `seq`, from its index read in place,
 * when the index is whole and lists `count` records of `total` page bytes (else undefined).
 */
function indexedPageBytes(segment: Segment, seq: number, count: number, total: number): number | undefined {
  try {
    const index = decodeSegmentIndex(readFileSync(indexFileOf(segment.file)), statSync(segment.file).size);
    if (index?.count !== count) return undefined;
    let all = 0;
    let after = 0;
    for (let i = 0; i < count; i++) {
      const bytes = index.pageBytes(i);
      all += bytes;
      if (index.seq(i) > seq) after += bytes;
    }
    return all === total ? after : undefined;
  } catch {
    return undefined;
  }
}

const seqName = (seq: number) => seq.toString(16).padStart(16, '0');

/**
 * Whether a segment file holds the first and last records of its index where the index says (each
 * frame's length and sequence), and, with `checkLast`, the last one intact (its CRC).
 */
function framesAsIndexed(file: string, first: IndexedRecord, last: IndexedRecord, checkLast: boolean): boolean {
  const head = Buffer.alloc(FRAME_HEAD_BYTES + 9);
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    for (const r of [first, last]) {
      if (readFully(fd, head, r.offset) < head.length) return false;
      if (head.readUInt32LE(0) !== r.length || kindOfByte(head.readUInt8(FRAME_HEAD_BYTES)) !== r.kind || head.readDoubleLE(FRAME_HEAD_BYTES + 1) !== r.seq) return false;
    }
    if (checkLast) {
      const body = Buffer.alloc(last.length);
      if (readFully(fd, body, last.offset + FRAME_HEAD_BYTES) < body.length || !checkFrame(body, head.readUInt32LE(4))) return false;
    }
    return true;
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** How much of a segment opening reads at a time. */
const WINDOW_BYTES = 1024 * 1024;

/**
 * A segment read forward through a window of its bytes while the log opens: one read per megabyte,
 * not two reads and two buffers per record (opening a log of 50,000 records took ~0.5 s that way).
 */
class SegmentWindow {
  private bytes = Buffer.alloc(0);
  private start = 0;
  private filled = 0;

  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {}

  /** The file's bytes [offset, offset + length) (within its size), valid until the next call; undefined when they cannot all be read. */
  slice(offset: number, length: number): Buffer | undefined {
    if (offset < this.start || offset + length > this.start + this.filled) {
      const wanted = Math.min(Math.max(length, WINDOW_BYTES), this.size - offset);
      if (this.bytes.length < wanted) this.bytes = Buffer.allocUnsafe(Math.max(wanted, Math.min(WINDOW_BYTES, this.size)));
      this.start = offset;
      this.filled = readFully(this.fd, this.bytes.subarray(0, wanted), offset);
      if (this.filled < length) return undefined;
    }
    return this.bytes.subarray(offset - this.start, offset - this.start + length);
  }
}

export class LogConflict extends Error {}

export interface FileLogOptions {
  /**
   * False: flush() makes records durable without syncing them (a cluster primary's log, whose
   * records are durable once JetStream holds them; the node discards this log after a crash).
   */
  sync?: boolean;
  /** Keep the encoded bodies of appended records until takeAppended() (a cluster primary ships them as they are). */
  keepAppended?: boolean;
  /** A new segment is started once the current one holds this much (default 64 MiB). */
  segmentBytes?: number;
  /**
   * The opener holds the history's lock (the writer): it indexes sealed segments found without an
   * index (a history written before indexes) and removes what a crash left half-written. Readers
   * of another's log use indexes but write nothing.
   */
  owner?: boolean;
}

/** A record as appended: its sequence and its encoded body. */
export interface AppendedRecord {
  seq: number;
  body: Buffer;
}

/** The history's tag, written (durably) the first time with `tag` or a random one. */
function readTag(file: string, tag: string | undefined): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  writeFileDurably(file, tag ?? randomBytes(16).toString('hex'));
  return readFileSync(file, 'utf8').trim();
}

export class FileLogStore implements LogStore {
  readonly tag: string;
  private readonly sync: boolean;
  private readonly segmentBytes: number;
  private readonly owner: boolean;
  private appended: AppendedRecord[] | undefined;
  private readonly segmentsDir: string;
  private readonly entries = new EntryTable();
  private segments: Segment[] = [];
  private fd: number | undefined;
  private dirty = false;
  private totalBytes = 0;
  /** Entries [0, durableCount) are synced; the ones after were appended since the last flush. */
  private durableCount = 0;
  /** At the last flush: how many segments there were, and where the last one's records ended. */
  private durable = { segments: 0, bytes: 0 };
  /** No zeros are written ahead before this time (the disk was full). */
  private preallocateAfter = 0;
  /** Closes the open segment once idle, never while it holds records not yet flushed. */
  private readonly idle = new IdleCloser(() => {
    if (this.dirty) return false;
    this.closeFile();
    return true;
  });
  /** A rollback could not cut the last segment back: nothing is appended until it can. */
  private cutPending = false;
  /** The last record found on opening and where WAL capture resumes after it, while it is still the last. */
  private scannedLast: { entry: Entry; position: WalPosition } | undefined;
  /** Unreadable ranges found on opening, each with the index of the entry that follows it. */
  private readonly unreadable: (UnreadableRange & { before: number })[] = [];

  /** Opens (or creates) the history in `dir`, dropping a record torn by a crash at its end. */
  constructor(
    readonly dir: string,
    /** The tag of a new history (default: random); an existing history keeps its own. */
    tag?: string,
    options: FileLogOptions = {},
  ) {
    this.sync = options.sync ?? true;
    this.segmentBytes = options.segmentBytes ?? SEGMENT_BYTES;
    this.owner = options.owner ?? false;
    this.appended = options.keepAppended ? [] : undefined;
    this.segmentsDir = path.join(dir, 'segments');
    const listed = listDirectory(this.segmentsDir);
    this.tag = readTag(path.join(dir, 'tag'), tag);
    const names = listed
      .filter((n) => /^[0-9a-f]{16}\.log$/.test(n))
      .sort();
    if (options.owner) {
      // What a crash left: an index half written, or the index of a segment compaction removed.
      for (const name of listed) {
        const orphan = name.endsWith('.idx') && !names.includes(name.replace(/\.idx$/, '.log'));
        if (name.includes('.idx.tmp-') || orphan) rmSync(path.join(this.segmentsDir, name), { force: true });
      }
    }
    names.forEach((name, i) => {
      const segment = { file: path.join(this.segmentsDir, name), first: Number.parseInt(name.slice(0, 16), 16), bytes: 0, allocated: 0 };
      this.segments.push(segment);
      const last = i === names.length - 1;
      // The last segment takes appends unless the writer sealed it on closing (or a crash came after
      // its index was written, before the next segment was): an index that does not hold goes.
      if (last) {
        if (listed.includes(path.basename(indexFileOf(segment.file))) && this.loadIndex(segment, true)) return;
        if (options.owner && listed.includes(path.basename(indexFileOf(segment.file)))) rmSync(indexFileOf(segment.file), { force: true });
        this.scan(segment, true);
      } else if (!this.loadIndex(segment, i === names.length - 2)) {
        const unreadable = this.unreadable.length;
        this.scan(segment, false);
        if (options.owner && this.unreadable.length === unreadable) this.tryWriteIndex(segment);
      }
    });
    this.markDurable();
  }

  /**
   * Takes a sealed segment's bounds from its index's head (segment-index.ts) when the head is whole,
   * the index not older than the segment and as long as the head says, and the head agrees with the
   * segment and the history: its first record at the start and its last ending the segment, both
   * framed there as listed, continuing the records before. Its records stay on disk until a search
   * needs them. `checkLast`: the last record's CRC is checked too (the segment before the last one:
   * when the last is empty, its last record is where WAL capture resumes). False: the segment is to
   * be read instead.
   */
  private loadIndex(segment: Segment, checkLast: boolean): boolean {
    let summary: SegmentSummary | undefined;
    let size: number;
    try {
      const segmentStat = statSync(segment.file);
      size = segmentStat.size;
      summary = readIndexSummary(indexFileOf(segment.file), segmentStat.mtimeMs, size);
    } catch {
      return false;
    }
    if (!summary) return false;
    const { count, first, last, lastImage, jumps } = summary;
    const previous = this.entries.last();
    const bounded = (r: IndexedRecord) =>
      Number.isSafeInteger(r.seq) && Number.isFinite(r.time) && r.length >= SUMMARY_BYTES && r.offset >= 0 && r.offset + FRAME_HEAD_BYTES + r.length <= size;
    if (!bounded(first) || !bounded(last) || (lastImage && !bounded(lastImage))) return false;
    if (first.offset !== 0 || last.offset + FRAME_HEAD_BYTES + last.length !== size) return false;
    if (count === 1 ? last.offset !== 0 || last.seq !== first.seq : last.seq < first.seq + 1 || !(last.time >= first.time) || last.offset === 0) return false;
    if (previous && (first.seq <= previous.seq || !(first.time >= previous.time))) return false;
    if (jumps.some((j, i) => j < 1 || j >= count || (i > 0 && j <= jumps[i - 1]!))) return false;
    if (!framesAsIndexed(segment.file, first, last, checkLast)) return false;
    const entry = (r: IndexedRecord): Entry => ({ ...r, segment });
    this.entries.pushBounds(segment, { ...summary, first: entry(first), last: entry(last), lastImage: lastImage && entry(lastImage) }, this.backingOf(segment));
    segment.bytes = size;
    segment.allocated = size;
    segment.sealed = true;
    this.totalBytes += size;
    return true;
  }

  /**
   * Writes the index of a sealed segment that ends at its last record (a segment with damage or
   * anything after its records gets none: it is read on opening); from then on its entries can be
   * let go from memory and read back from the index.
   */
  private tryWriteIndex(segment: Segment): void {
    if (this.unreadable.some((u) => u.file === segment.file)) return;
    const records = this.entries.entriesOf(segment);
    const last = records.at(-1);
    if (!last || last.offset + FRAME_HEAD_BYTES + last.length !== segment.bytes || segment.allocated !== segment.bytes) return;
    try {
      writeFileDurably(indexFileOf(segment.file), encodeSegmentIndex(records, segment.bytes));
    } catch {
      // A full disk: only opening is slower without the index (the segment is read then), and
      // the segment's entries stay in memory.
      return;
    }
    segment.sealed = true;
    this.entries.indexed(segment, this.backingOf(segment));
  }

  private backingOf(segment: Segment): Backing {
    return { entries: (fits) => this.readBack(segment, fits), pageBytesAfter: (seq, count, total) => indexedPageBytes(segment, seq, count, total) };
  }

  /**
   * A sealed segment's entries, read back from its index (or, when the index is gone, damaged, or
   * no longer agrees with the segment or with what the log held, from the segment's own frames).
   */
  private readBack(segment: Segment, fits: (entries: Entry[]) => boolean): Entry[] {
    try {
      const index = decodeSegmentIndex(readFileSync(indexFileOf(segment.file)), statSync(segment.file).size);
      const entries = index ? Array.from({ length: index.count }, (_, i) => entryOf(index, i, segment)) : [];
      // Its records still tile the segment, one after another (the table checks they are the ones it held).
      let end = 0;
      let seq = Number.NEGATIVE_INFINITY;
      let time = Number.NEGATIVE_INFINITY;
      for (const e of entries) {
        if (e.offset !== end || !(e.seq > seq) || !(e.time >= time) || e.length < SUMMARY_BYTES) break;
        end += FRAME_HEAD_BYTES + e.length;
        seq = e.seq;
        time = e.time;
      }
      if (entries.length > 0 && end === segment.bytes && fits(entries)) return entries;
    } catch {
      // Read the segment itself.
    }
    const entries: Entry[] = [];
    const fd = openSync(segment.file, 'r');
    try {
      const window = new SegmentWindow(fd, segment.bytes);
      for (let offset = 0; offset + FRAME_HEAD_BYTES <= segment.bytes; ) {
        const head = window.slice(offset, FRAME_HEAD_BYTES);
        const length = head?.readUInt32LE(0) ?? 0;
        const crc = head?.readUInt32LE(4) ?? 0;
        // (The head's bytes are gone once the window moves on to the body.)
        const body = length >= SUMMARY_BYTES ? window.slice(offset + FRAME_HEAD_BYTES, length) : undefined;
        if (!body || !checkFrame(body, crc)) {
          throw new CorruptRecord(`log segment ${segment.file} is damaged at byte ${offset}: its records cannot be listed again`);
        }
        entries.push(entryFor(summarize(body), segment, offset, length));
        offset += FRAME_HEAD_BYTES + length;
      }
    } finally {
      closeSync(fd);
    }
    if (!fits(entries)) throw new CorruptRecord(`log segment ${segment.file} no longer holds the records it held when the log was opened`);
    return entries;
  }

  /**
   * Indexes a segment's records. Bytes that hold no record are skipped up to the next record that
   * continues the history (damage in the middle of the log is kept and reported by gaps(), never
   * cut away). After the last record of the last segment, zeros (written ahead of the records)
   * stay for the next appends; anything else there (a record torn by a crash) is cut off.
   */
  private scan(segment: Segment, last: boolean): void {
    const fd = openSync(segment.file, last ? 'r+' : 'r');
    try {
      const size = fstatSync(fd).size;
      const window = new SegmentWindow(fd, size);
      let offset = 0;
      let zerosAfter = false;
      while (offset + FRAME_HEAD_BYTES <= size) {
        const found = this.recordAt(window, offset, size);
        if (found) {
          const { kind, seq, time, pageBytes } = found.summary;
          this.entries.push({ kind, seq, time, pageBytes, segment, offset, length: found.length });
          offset += FRAME_HEAD_BYTES + found.length;
          continue;
        }
        if (allZero(fd, offset, size)) {
          zerosAfter = true;
          break;
        }
        const next = this.nextRecord(fd, offset, size);
        if (next === undefined) break;
        this.unreadable.push({ file: segment.file, from: offset, to: next, before: this.entries.length });
        offset = next;
      }
      if (offset < size && !zerosAfter) zerosAfter = allZero(fd, offset, size);
      if (offset < size && !zerosAfter) {
        if (last) ftruncateSync(fd, offset);
        // A sealed segment ends at its last record: anything else after it is damage.
        else this.unreadable.push({ file: segment.file, from: offset, to: size, before: this.entries.length });
      }
      const lastEntry = this.entries.last();
      if (last && lastEntry?.segment === segment) {
        // Where WAL capture resumes, asked next by every open (saves reading the record again).
        const body = window.slice(lastEntry.offset + FRAME_HEAD_BYTES, lastEntry.length);
        if (body) this.scannedLast = { entry: lastEntry, position: positionOf(body) };
      }
      const end = last ? offset : size;
      segment.bytes = end;
      segment.allocated = last && zerosAfter ? size : end;
      this.totalBytes += end;
    } finally {
      closeSync(fd);
    }
  }

  /** The record framed at `offset`, when it is whole, intact and continues the history. */
  private recordAt(window: SegmentWindow, offset: number, size: number): { summary: RecordSummary; length: number } | undefined {
    const head = window.slice(offset, FRAME_HEAD_BYTES);
    if (!head) return undefined;
    const length = head.readUInt32LE(0);
    const crc = head.readUInt32LE(4);
    if (length < SUMMARY_BYTES || offset + FRAME_HEAD_BYTES + length > size) return undefined;
    const body = window.slice(offset + FRAME_HEAD_BYTES, length);
    if (!body || !checkFrame(body, crc)) return undefined;
    let summary: RecordSummary;
    try {
      summary = summarize(body);
    } catch {
      return undefined;
    }
    return this.follows(summary) ? { summary, length } : undefined;
  }

  /** Sequences only go up and commit times never go back: anything else is not this history's next record. */
  private follows(summary: RecordSummary): boolean {
    const previous = this.entries.last();
    if (!Number.isSafeInteger(summary.seq) || !Number.isFinite(summary.time)) return false;
    return !previous || (summary.seq > previous.seq && summary.time >= previous.time);
  }

  /**
   * After bytes that hold no record: the offset of the next intact record that continues the
   * history, or undefined when there is none (the end of the records). Every offset is tried;
   * the cheap checks (length, kind, sequence, time) leave the CRC for the rare candidate.
   */
  private nextRecord(fd: number, from: number, size: number): number | undefined {
    const bytes = Buffer.alloc(size - from);
    readSync(fd, bytes, 0, bytes.length, from);
    const previous = this.entries.last();
    // A frame starts with a non-zero length: nothing starts past the last non-zero byte (the zeros
    // written ahead of the records, often megabytes, are skipped at once).
    const end = Math.min(lastNonZero(bytes) + 1, bytes.length - FRAME_HEAD_BYTES - SUMMARY_BYTES + 1);
    for (let at = 1; at < end; at++) {
      const length = bytes.readUInt32LE(at);
      if (length < SUMMARY_BYTES || at + FRAME_HEAD_BYTES + length > bytes.length) continue;
      const kind = bytes[at + FRAME_HEAD_BYTES]!;
      if (kindOfByte(kind) === undefined) continue;
      const seq = bytes.readDoubleLE(at + FRAME_HEAD_BYTES + 1);
      if (!Number.isSafeInteger(seq) || seq < 0 || (previous && seq <= previous.seq)) continue;
      const time = bytes.readDoubleLE(at + FRAME_HEAD_BYTES + 9);
      if (!Number.isFinite(time) || (previous && time < previous.time)) continue;
      const body = bytes.subarray(at + FRAME_HEAD_BYTES, at + FRAME_HEAD_BYTES + length);
      if (!checkFrame(body, bytes.readUInt32LE(at + 4))) continue;
      try {
        summarize(body);
      } catch {
        continue;
      }
      return from + at;
    }
    return undefined;
  }

  /**
   * Where records are missing from the middle of the history: a record that does not follow the
   * one before it (a pages record whose sequence is not the next, or anything after unreadable
   * bytes). The start of the log is the caller's to check against its snapshots.
   */
  gaps(): LogGap[] {
    const gaps: LogGap[] = [];
    // Only where the sequence jumps or unreadable bytes were found can a gap be.
    const candidates = [...new Set([...this.entries.jumps(), ...this.unreadable.map((u) => u.before)])].sort((a, b) => a - b);
    for (const i of candidates) {
      const entry = this.entries.at(i);
      if (!entry) continue;
      const previous = this.entries.at(i - 1);
      const unreadable = this.unreadable.filter((u) => u.before === i).map(({ file, from, to }) => ({ file, from, to }));
      const jump = previous !== undefined && entry.seq !== previous.seq + 1 && entry.kind !== 'image';
      if (jump || (unreadable.length > 0 && (previous === undefined || entry.seq !== previous.seq + 1))) {
        gaps.push({ after: previous && summaryOf(previous), next: summaryOf(entry), unreadable });
      }
    }
    return gaps;
  }

  /** The oldest record kept. */
  first(): RecordSummary | undefined {
    const e = this.entries.first();
    return e && summaryOf(e);
  }

  last(): RecordSummary | undefined {
    const e = this.entries.last();
    return e && summaryOf(e);
  }

  lastRecord(): LogRecord | undefined {
    const e = this.entries.last();
    return e && this.load(e);
  }

  append(record: LogRecord, expectedLast: number): void {
    const last = this.entries.last();
    // Pages follow one another; an image may jump ahead (the database moved on without the log).
    const next = record.kind === 'image' ? record.seq > expectedLast : record.seq === expectedLast + 1;
    if ((last?.seq ?? expectedLast) !== expectedLast || !next) {
      throw new LogConflict(`log append out of order: the log ends at ${last?.seq}, expected ${expectedLast}, record ${record.seq}`);
    }
    if (this.cutPending) this.rollback();
    let segment = this.segments.at(-1);
    if (!segment || segment.bytes >= this.segmentBytes || segment.sealed) segment = this.startSegment(record.seq);
    if (this.fd === undefined) this.fd = openSync(segment.file, 'r+');
    const body = encodeRecord(record);
    const length = FRAME_HEAD_BYTES + body.length;
    if (segment.bytes + length > segment.allocated) this.preallocate(segment, segment.bytes + length);
    // Dirty before the write: a failed write may still have changed the file (a rollback cuts it).
    this.dirty = true;
    // A small record in one write; a large one's body is not copied behind its head.
    if (body.length <= LARGE_BODY_BYTES) writeFully(this.fd, frame(body), segment.bytes);
    else {
      writeFully(this.fd, frameHead(body), segment.bytes);
      writeFully(this.fd, body, segment.bytes + FRAME_HEAD_BYTES);
    }
    if (segment.bytes + length > segment.allocated) segment.allocated = segment.bytes + length;
    this.entries.push(entryFor(summarize(body), segment, segment.bytes, body.length));
    this.appended?.push({ seq: record.seq, body });
    segment.bytes += length;
    this.totalBytes += length;
    this.dirty = true;
  }

  private preallocate(segment: Segment, needed: number): void {
    if (Date.now() < this.preallocateAfter) return;
    const target = Math.max(needed, segment.allocated + Math.min(PREALLOCATE_MAX_BYTES, Math.max(PREALLOCATE_MIN_BYTES, segment.bytes)));
    this.dirty = true;
    try {
      for (let at = segment.allocated; at < target; at += ZEROS.length) writeFully(this.fd!, ZEROS.subarray(0, Math.min(ZEROS.length, target - at)), at);
      segment.allocated = target;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
      // A nearly full disk: no zeros ahead for a while; each record is written as it is (and fails
      // with ENOSPC when it does not fit).
      ftruncateSync(this.fd!, segment.bytes);
      segment.allocated = segment.bytes;
      this.preallocateAfter = Date.now() + PREALLOCATE_RETRY_MS;
    }
  }

  private startSegment(first: number): Segment {
    const sealed = this.segments.at(-1);
    if (sealed && !sealed.sealed) this.seal(sealed);
    else this.flush();
    this.closeFile();
    const segment = { file: path.join(this.segmentsDir, `${seqName(first)}.log`), first, bytes: 0, allocated: 0 };
    closeSync(openSync(segment.file, 'w'));
    syncDirectory(this.segmentsDir);
    this.segments.push(segment);
    return segment;
  }

  /** Ends a segment at its last record, made durable, and writes its index (when it can). */
  private seal(segment: Segment): void {
    if (segment.allocated > segment.bytes) {
      this.fd ??= openSync(segment.file, 'r+');
      ftruncateSync(this.fd, segment.bytes);
      segment.allocated = segment.bytes;
      this.dirty = true;
    }
    this.flush();
    this.tryWriteIndex(segment);
  }

  /**
   * Makes the records appended since the last flush durable. The segment stays open for the next
   * append and is closed once idle (IdleCloser): an idle database holds no descriptor for its log.
   */
  flush(): void {
    if (this.fd !== undefined) {
      if (this.dirty && this.sync) fdatasyncSync(this.fd);
      this.dirty = false;
      this.idle.touch();
    }
    this.markDurable();
  }

  private closeFile(): void {
    this.idle.stop();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private markDurable(): void {
    this.durableCount = this.entries.length;
    this.durable = { segments: this.segments.length, bytes: this.segments.at(-1)?.bytes ?? 0 };
  }

  /** The newest record made durable by a flush (or found on opening). */
  lastDurable(): RecordSummary | undefined {
    const e = this.entries.at(this.durableCount - 1);
    return e && summaryOf(e);
  }

  /** The newest durable record in full. */
  lastDurableRecord(): LogRecord | undefined {
    const e = this.entries.at(this.durableCount - 1);
    return e && this.load(e);
  }

  /**
   * Forgets every record appended since the last flush, in the files too: the last segment is cut
   * back to the end of its last durable record (and synced), a segment started since is removed.
   * When the cut fails, the error is thrown, the records are forgotten all the same, and no append
   * is taken until a later rollback manages the cut (an append over them would leave old records
   * after the new ones).
   */
  rollback(): void {
    this.entries.truncate(this.durableCount);
    const kept = this.entries.last()?.seq ?? Number.NEGATIVE_INFINITY;
    if (this.appended) this.appended = this.appended.filter((a) => a.seq <= kept);
    this.cutPending = true;
    // Segments started since the last flush hold nothing durable.
    let reopened = false;
    while (this.segments.length > this.durable.segments) {
      const gone = this.segments.pop()!;
      this.closeFile();
      rmSync(gone.file, { force: true });
      syncDirectory(this.segmentsDir);
      this.totalBytes -= gone.bytes;
      reopened = true;
    }
    const segment = this.segments.at(-1);
    // A segment sealed since takes appends again: its index would be stale.
    if (segment && reopened) {
      try {
        this.entries.reopened(segment);
      } finally {
        rmSync(indexFileOf(segment.file), { force: true });
        segment.sealed = false;
      }
    }
    if (segment) {
      const end = this.durable.bytes;
      const fd = this.fd ?? openSync(segment.file, 'r+');
      try {
        ftruncateSync(fd, end);
        fdatasyncSync(fd);
      } finally {
        if (fd !== this.fd) closeSync(fd);
      }
      this.totalBytes += end - segment.bytes;
      segment.bytes = end;
      segment.allocated = end;
    }
    this.dirty = false;
    this.cutPending = false;
  }

  /** The records appended (and not rolled back) since the last call, encoded, when the log keeps them (keepAppended). */
  takeAppended(): AppendedRecord[] {
    const taken = this.appended ?? [];
    if (this.appended) this.appended = [];
    return taken;
  }

  *read(from: number, to: number): Iterable<LogRecord> {
    for (let i = this.entries.indexOf(from + 1); i < this.entries.length; i++) {
      const entry = this.entries.at(i)!;
      if (entry.seq > to) break;
      yield this.load(entry);
    }
  }

  find(seq: number): RecordSummary | undefined {
    const e = this.entries.at(this.entries.indexOf(seq));
    return e?.seq === seq ? summaryOf(e) : undefined;
  }

  /** The newest image record at or before `seq` (a restore or resync: the history is whole again from there). */
  lastImage(seq: number): RecordSummary | undefined {
    const e = this.entries.lastImageBefore(this.entries.indexOf(seq + 1));
    return e && summaryOf(e);
  }

  atTime(time: number): RecordSummary | undefined {
    const e = this.entries.at(this.countThrough(time) - 1);
    return e && summaryOf(e);
  }

  countThrough(time: number): number {
    return this.entries.countThrough(time);
  }

  newestThrough(time: number, count: number): RecordSummary[] {
    const end = this.countThrough(time);
    const newest: RecordSummary[] = [];
    for (let i = end - 1; i >= Math.max(0, end - Math.max(0, count)); i--) newest.push(summaryOf(this.entries.at(i)!));
    return newest;
  }

  private load(entry: Entry): LogRecord {
    return decodeRecord(this.bodyOf(entry));
  }

  /** Where WAL capture resumes after the last record (its pages are not decoded). */
  lastPosition(): WalPosition {
    const e = this.entries.last();
    if (e && e === this.scannedLast?.entry) return { ...this.scannedLast.position };
    return e ? positionOf(this.bodyOf(e)) : NO_POSITION;
  }

  private bodyOf(entry: Entry): Buffer {
    const fd = entry.segment === this.segments.at(-1) && this.fd !== undefined ? this.fd : openSync(entry.segment.file, 'r');
    try {
      const bytes = Buffer.alloc(FRAME_HEAD_BYTES + entry.length);
      readSync(fd, bytes, 0, bytes.length, entry.offset);
      const body = bytes.subarray(FRAME_HEAD_BYTES);
      if (!checkFrame(body, bytes.readUInt32LE(4))) {
        throw new CorruptRecord(`log record ${entry.seq} is damaged (CRC mismatch): ${entry.segment.file}, bytes ${entry.offset}-${entry.offset + bytes.length}`);
      }
      return body;
    } finally {
      if (fd !== this.fd) closeSync(fd);
    }
  }

  compact(seq: number): void {
    // A segment goes once the next one starts at or before seq + 1: all its records are covered.
    while (this.segments.length > 1 && this.segments[1]!.first <= seq + 1) {
      const gone = this.segments.shift()!;
      // The index first: a crash in between leaves a segment without one (read on opening), not an index without its segment.
      rmSync(indexFileOf(gone.file), { force: true });
      rmSync(gone.file, { force: true });
      this.totalBytes -= gone.bytes;
      const n = this.entries.dropSegment(gone);
      this.durableCount = Math.max(0, this.durableCount - n);
      this.durable.segments--;
      for (let i = this.unreadable.length - 1; i >= 0; i--) {
        const u = this.unreadable[i]!;
        if (u.file === gone.file || u.before < n) this.unreadable.splice(i, 1);
        else u.before -= n;
      }
    }
  }

  bytes(): number {
    return this.totalBytes;
  }

  pageBytesAfter(seq: number): number {
    return this.entries.pageBytesAfter(seq);
  }

  /**
   * Flushes and lets go of the files. `seal`: the writer is done with the log for now (a clean close),
   * and seals the open segment once it holds enough for its index to save the next opening a read
   * of it (SEAL_ON_CLOSE_PARTS); the next append starts a new segment.
   */
  close(options: { seal?: boolean } = {}): void {
    const open = this.segments.at(-1);
    if (options.seal && this.owner && !this.cutPending && open && !open.sealed && open.bytes >= this.segmentBytes / SEAL_ON_CLOSE_PARTS) this.seal(open);
    else this.flush();
    this.closeFile();
  }
}

/** Snapshots as database files named by sequence and time. */
export class DirectorySnapshots implements SnapshotStore {
  private readonly dir: string;
  /** The snapshots as last read from the directory; only this store adds or removes any (the history's lock holder's). */
  private listed: SnapshotInfo[] | undefined;

  constructor(logDir: string) {
    this.dir = path.join(logDir, 'snapshots');
    const names = listDirectory(this.dir);
    for (const name of names) if (name.includes('.tmp-')) rmSync(path.join(this.dir, name), { force: true });
    this.listed = this.read(names.filter((name) => !name.includes('.tmp-')));
  }

  list(): SnapshotInfo[] {
    this.listed ??= this.read(readdirSync(this.dir));
    return [...this.listed];
  }

  private read(names: string[]): SnapshotInfo[] {
    return names
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
    this.listed = undefined;
    const target = path.join(this.dir, `${seqName(seq)}-${Math.round(time)}.sqlite`);
    if (options.move) {
      syncFile(file);
      renameSync(file, target);
      syncDirectory(this.dir);
    } else copyFileDurably(file, target);
    return { seq, time: Math.round(time), bytes: statSync(target).size };
  }

  temporaryFile(purpose: string): string {
    return path.join(this.dir, `${purpose}.sqlite.tmp-${temporarySuffix}`);
  }

  copyTo(seq: number, file: string): void {
    copyFileSync(this.fileOf(seq), file);
  }

  remove(seq: number): void {
    this.listed = undefined;
    rmSync(this.fileOf(seq), { force: true });
  }
}
