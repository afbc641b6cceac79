// A sealed log segment's index: `<first seq>.idx` next to `<first seq>.log`, written once the
// segment is sealed (no record is appended to it any more). It holds every record's summary and
// place, so opening the log reads ~37 bytes per record of a sealed segment instead of the records
// themselves (a 64 MiB segment of small commits: ~2 MiB). It is trusted only for the segment it was
// written for: its own CRC intact, the segment not modified after it, of the same size, tiled exactly
// by the records it lists, the first and last of them framed there as listed (file-store.ts checks);
// otherwise the segment is read as before. Damage a sealed segment takes later without its time
// changing (the disk's, not a writer's) is found when the damaged record is read (each read checks
// the record's CRC), not on opening.
import { crc32 } from 'node:zlib';
import type { RecordSummary } from './record.ts';

export interface IndexedRecord extends RecordSummary {
  offset: number;
  length: number;
}

const MAGIC = 'DIONEIDX';
const VERSION = 1;
/** magic, version u32, count u32, segment bytes f64. */
const HEAD_BYTES = 8 + 4 + 4 + 8;
/** kind u8, seq f64, time f64, page bytes f64, offset f64, length u32. */
const RECORD_BYTES = 1 + 8 + 8 + 8 + 8 + 4;

export const indexFileOf = (segmentFile: string) => segmentFile.replace(/\.log$/, '.idx');

export function encodeSegmentIndex(records: readonly IndexedRecord[], segmentBytes: number): Buffer {
  const bytes = Buffer.alloc(HEAD_BYTES + records.length * RECORD_BYTES + 4);
  bytes.write(MAGIC, 0, 'latin1');
  bytes.writeUInt32LE(VERSION, 8);
  bytes.writeUInt32LE(records.length, 12);
  bytes.writeDoubleLE(segmentBytes, 16);
  let at = HEAD_BYTES;
  for (const r of records) {
    at = bytes.writeUInt8(r.kind === 'pages' ? 1 : 2, at);
    at = bytes.writeDoubleLE(r.seq, at);
    at = bytes.writeDoubleLE(r.time, at);
    at = bytes.writeDoubleLE(r.pageBytes, at);
    at = bytes.writeDoubleLE(r.offset, at);
    at = bytes.writeUInt32LE(r.length, at);
  }
  bytes.writeUInt32LE(crc32(bytes.subarray(0, at)), at);
  return bytes;
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

/** The records an index lists, when it is whole and was written for a segment of `segmentBytes`; undefined otherwise. */
export function decodeSegmentIndex(bytes: Buffer, segmentBytes: number): SegmentIndexView | undefined {
  if (bytes.length < HEAD_BYTES + 4 || bytes.toString('latin1', 0, 8) !== MAGIC || bytes.readUInt32LE(8) !== VERSION) return undefined;
  const count = bytes.readUInt32LE(12);
  const end = HEAD_BYTES + count * RECORD_BYTES;
  if (bytes.length !== end + 4 || bytes.readUInt32LE(end) !== crc32(bytes.subarray(0, end))) return undefined;
  if (bytes.readDoubleLE(16) !== segmentBytes) return undefined;
  const at = (i: number) => HEAD_BYTES + i * RECORD_BYTES;
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
