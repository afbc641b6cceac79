// A sealed log segment's index: `<first seq>.idx` next to `<first seq>.log`, written once the
// segment is sealed (no record is appended to it any more). Its head summarises the segment — the
// number of records, the first and last, their page bytes, the newest image, where sequences jump —
// so opening the log reads a few hundred bytes per sealed segment; its body lists every record's
// summary and place (37 bytes each), read when a search lands in the segment. The head is trusted
// only for the segment it was written for: its CRC intact, the file as long as the head says, the
// segment not modified after it, of the same size, its first record at the start and its last ending
// the segment, both framed there as listed, continuing the history (file-store.ts checks); otherwise
// the segment is read as before. The body has its own CRC, checked when it is read, and its records
// must tile the segment and agree with the head (else the segment's frames are read instead).
// Damage a sealed segment takes later without its time changing (the disk's, not a writer's) is found
// when the damaged record is read (each read checks the record's CRC), not on opening.
import { crc32 } from 'node:zlib';
import type { RecordSummary } from './record.ts';

export interface IndexedRecord extends RecordSummary {
  offset: number;
  length: number;
}

/** What a segment's index says of the segment as a whole. */
export interface SegmentSummary {
  count: number;
  first: IndexedRecord;
  last: IndexedRecord;
  /** The page bytes of all its records. */
  pageBytes: number;
  /** Its newest image record. */
  lastImage: IndexedRecord | undefined;
  /** Positions (from 1) of records that are no image and not the one after the record before them. */
  jumps: number[];
}

const MAGIC = 'DIONEIDX';
const VERSION = 2;
/** magic, version u32, count u32, segment bytes f64, head bytes u32. */
const INDEX_FIXED_BYTES = 8 + 4 + 4 + 8 + 4;
/** kind u8, seq f64, time f64, page bytes f64, offset f64, length u32. */
const RECORD_BYTES = 1 + 8 + 8 + 8 + 8 + 4;

export const indexFileOf = (segmentFile: string) => segmentFile.replace(/\.log$/, '.idx');

export function summarizeSegment(records: readonly IndexedRecord[]): SegmentSummary {
  const jumps: number[] = [];
  let pageBytes = 0;
  let lastImage: IndexedRecord | undefined;
  records.forEach((r, i) => {
    if (i > 0 && r.kind !== 'image' && r.seq !== records[i - 1]!.seq + 1) jumps.push(i);
    if (r.kind === 'image') lastImage = r;
    pageBytes += r.pageBytes;
  });
  return { count: records.length, first: records[0]!, last: records.at(-1)!, pageBytes, lastImage, jumps };
}

function writeRecord(bytes: Buffer, at: number, r: IndexedRecord | undefined): number {
  if (!r) return at + RECORD_BYTES;
  at = bytes.writeUInt8(r.kind === 'pages' ? 1 : 2, at);
  at = bytes.writeDoubleLE(r.seq, at);
  at = bytes.writeDoubleLE(r.time, at);
  at = bytes.writeDoubleLE(r.pageBytes, at);
  at = bytes.writeDoubleLE(r.offset, at);
  return bytes.writeUInt32LE(r.length, at);
}

function readRecord(bytes: Buffer, at: number): IndexedRecord | undefined {
  const kind = bytes.readUInt8(at);
  if (kind !== 1 && kind !== 2) return undefined;
  return {
    kind: kind === 1 ? 'pages' : 'image',
    seq: bytes.readDoubleLE(at + 1),
    time: bytes.readDoubleLE(at + 9),
    pageBytes: bytes.readDoubleLE(at + 17),
    offset: bytes.readDoubleLE(at + 25),
    length: bytes.readUInt32LE(at + 33),
  };
}

const headBytesOf = (jumps: number) => INDEX_FIXED_BYTES + 3 * RECORD_BYTES + 8 + 1 + 4 + 4 * jumps + 4;

export function encodeSegmentIndex(records: readonly IndexedRecord[], segmentBytes: number): Buffer {
  const summary = summarizeSegment(records);
  const headBytes = headBytesOf(summary.jumps.length);
  const bytes = Buffer.alloc(headBytes + records.length * RECORD_BYTES + 4);
  bytes.write(MAGIC, 0, 'latin1');
  bytes.writeUInt32LE(VERSION, 8);
  bytes.writeUInt32LE(records.length, 12);
  bytes.writeDoubleLE(segmentBytes, 16);
  bytes.writeUInt32LE(headBytes, 24);
  let at = writeRecord(bytes, INDEX_FIXED_BYTES, summary.first);
  at = writeRecord(bytes, at, summary.last);
  at = bytes.writeDoubleLE(summary.pageBytes, at);
  at = bytes.writeUInt8(summary.lastImage ? 1 : 0, at);
  at = writeRecord(bytes, at, summary.lastImage);
  at = bytes.writeUInt32LE(summary.jumps.length, at);
  for (const j of summary.jumps) at = bytes.writeUInt32LE(j, at);
  at = bytes.writeUInt32LE(crc32(bytes.subarray(0, at)), at);
  const body = at;
  for (const r of records) at = writeRecord(bytes, at, r);
  bytes.writeUInt32LE(crc32(bytes.subarray(body, at)), at);
  return bytes;
}

/** The length of an index's head, from its fixed part (the first INDEX_FIXED_BYTES); undefined when it is not an index. */
export function indexHeadBytes(fixed: Buffer): number | undefined {
  if (fixed.length < INDEX_FIXED_BYTES || fixed.toString('latin1', 0, 8) !== MAGIC || fixed.readUInt32LE(8) !== VERSION) return undefined;
  const headBytes = fixed.readUInt32LE(24);
  return headBytes >= headBytesOf(0) ? headBytes : undefined;
}

/**
 * The summary in an index's head (`head`: at least its head bytes), when the head is whole, was
 * written for a segment of `segmentBytes`, and the index file is `fileBytes` long as it says.
 */
export function decodeSegmentSummary(head: Buffer, segmentBytes: number, fileBytes: number): SegmentSummary | undefined {
  const headBytes = indexHeadBytes(head);
  if (headBytes === undefined || head.length < headBytes) return undefined;
  if (head.readUInt32LE(headBytes - 4) !== crc32(head.subarray(0, headBytes - 4))) return undefined;
  const count = head.readUInt32LE(12);
  if (count === 0 || head.readDoubleLE(16) !== segmentBytes || fileBytes !== headBytes + count * RECORD_BYTES + 4) return undefined;
  const first = readRecord(head, INDEX_FIXED_BYTES);
  const last = readRecord(head, INDEX_FIXED_BYTES + RECORD_BYTES);
  let at = INDEX_FIXED_BYTES + 2 * RECORD_BYTES;
  const pageBytes = head.readDoubleLE(at);
  const hasImage = head.readUInt8(at + 8) === 1;
  const lastImage = hasImage ? readRecord(head, at + 9) : undefined;
  at += 9 + RECORD_BYTES;
  const jumpCount = head.readUInt32LE(at);
  if (!first || !last || (hasImage && !lastImage) || headBytes !== headBytesOf(jumpCount)) return undefined;
  const jumps = Array.from({ length: jumpCount }, (_, i) => head.readUInt32LE(at + 4 + 4 * i));
  return { count, first, last, pageBytes, lastImage, jumps };
}

/** An index's records, read in place. */
export interface SegmentIndexView {
  count: number;
  kind(i: number): RecordSummary['kind'];
  seq(i: number): number;
  time(i: number): number;
  pageBytes(i: number): number;
  offset(i: number): number;
  length(i: number): number;
}

/** The records a whole index lists (head and body intact), written for a segment of `segmentBytes`; undefined otherwise. */
export function decodeSegmentIndex(bytes: Buffer, segmentBytes: number): SegmentIndexView | undefined {
  if (!decodeSegmentSummary(bytes, segmentBytes, bytes.length)) return undefined;
  const headBytes = bytes.readUInt32LE(24);
  const count = bytes.readUInt32LE(12);
  const end = headBytes + count * RECORD_BYTES;
  if (bytes.readUInt32LE(end) !== crc32(bytes.subarray(headBytes, end))) return undefined;
  const at = (i: number) => headBytes + i * RECORD_BYTES;
  for (let i = 0; i < count; i++) {
    const kind = bytes.readUInt8(at(i));
    if (kind !== 1 && kind !== 2) return undefined;
  }
  return {
    count,
    kind: (i) => (bytes.readUInt8(at(i)) === 1 ? 'pages' : 'image'),
    seq: (i) => bytes.readDoubleLE(at(i) + 1),
    time: (i) => bytes.readDoubleLE(at(i) + 9),
    pageBytes: (i) => bytes.readDoubleLE(at(i) + 17),
    offset: (i) => bytes.readDoubleLE(at(i) + 25),
    length: (i) => bytes.readUInt32LE(at(i) + 33),
  };
}
