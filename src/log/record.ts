// Log records and their bytes. A record is one committed write transaction (the page images it
// left behind) or an image: "from here on, the database is the snapshot with this sequence"
// (a restore, a fork's start, a resynchronisation).
import { brotliCompressSync, brotliDecompressSync, constants, crc32, inflateRawSync } from 'node:zlib';
import type { WalPosition } from './wal.ts';

export interface PagesRecord {
  kind: 'pages';
  seq: number;
  /** Commit time, ms since the epoch; never earlier than the previous record's. */
  time: number;
  pageSize: number;
  /** Database size in pages after the commit. */
  pages: number;
  images: Map<number, Buffer>;
  /** Where WAL capture stood after this commit: crash recovery resumes capture from here. */
  position: WalPosition;
}

export interface ImageRecord {
  kind: 'image';
  seq: number;
  time: number;
  /** Why the database became a snapshot: restored to that bookmark's sequence, forked, resynchronised. */
  reason: { restoredFrom: number } | { resync: true };
  /** Where WAL capture stood when the image was logged (the old WAL, until the image is swapped in). */
  position: WalPosition;
}

export type LogRecord = PagesRecord | ImageRecord;

/** Pages packed with raw deflate: what logs written before brotli hold (read, never written). */
const KIND_PAGES_DEFLATE = 1;
const KIND_IMAGE = 2;
/** Pages packed with brotli. */
const KIND_PAGES = 3;
const isPages = (kind: number) => kind === KIND_PAGES || kind === KIND_PAGES_DEFLATE;
/** What a record body's first byte says it is (undefined: not a record). */
export function kindOfByte(byte: number): LogRecord['kind'] | undefined {
  return isPages(byte) ? 'pages' : byte === KIND_IMAGE ? 'image' : undefined;
}
/** kind u8, seq f64, time f64, then per kind. */
const COMMON_BYTES = 17;
/** pageSize, pages, count u32; salt1, salt2 u32, offset f64, checksum1, checksum2 u32. */
const PAGES_HEADER_BYTES = 12 + 24;

export class CorruptRecord extends Error {}

/**
 * Encoding a record allocates no buffer that lives until a GC: the pages of a small record are laid
 * out in one kept buffer, and its compressed bytes come from Buffer's shared pool (zlib's default
 * output is a fresh 16 KiB buffer). Such per-commit buffers made most of a history's garbage: with
 * the WAL reader's, a full mark-compact every ~0.2 s under steady writes.
 */
const SMALL_RECORD_BYTES = 256 * 1024;
const pagesScratch = Buffer.allocUnsafeSlow(SMALL_RECORD_BYTES);
/**
 * Pages are packed with brotli at quality 1 and a 64 KiB window: on the pages of the benchmark's
 * commits (a row into a table with an index: 3 pages; a 100-row batch: ~120) it packs 2.3–2.9×
 * faster than the raw deflate at level 1 used before, and 5–19% smaller; unpacking is ~1.6× slower,
 * which only replaying (restores, forks, replicas) pays. The packing is on every logged commit's
 * path, before its answer. Output in 2 KiB pieces for a small record, so it comes from Buffer's pool.
 */
const SMALL_PACK_BYTES = 64 * 1024;

function pack(pages: Buffer): Buffer {
  return brotliCompressSync(pages, {
    chunkSize: pages.length <= SMALL_PACK_BYTES ? 2048 : 64 * 1024,
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 1,
      [constants.BROTLI_PARAM_LGWIN]: 16,
      [constants.BROTLI_PARAM_SIZE_HINT]: pages.length,
    },
  });
}

export function encodeRecord(record: LogRecord): Buffer {
  if (record.kind === 'image') {
    const reason = Buffer.from(JSON.stringify(record.reason));
    const body = Buffer.alloc(COMMON_BYTES + POSITION_BYTES + reason.length);
    writeCommon(body, KIND_IMAGE, record);
    writePosition(body, COMMON_BYTES, record.position);
    reason.copy(body, COMMON_BYTES + POSITION_BYTES);
    return body;
  }
  const numbers = [...record.images.keys()].filter((n) => n <= record.pages).sort((a, b) => a - b);
  const bytes = numbers.length * record.pageSize;
  const small = bytes <= SMALL_RECORD_BYTES;
  const pages = small ? pagesScratch.subarray(0, bytes) : Buffer.allocUnsafe(bytes);
  for (let i = 0; i < numbers.length; i++) record.images.get(numbers[i]!)!.copy(pages, i * record.pageSize);
  const packed = pack(pages);
  const body = Buffer.alloc(COMMON_BYTES + PAGES_HEADER_BYTES + numbers.length * 4 + packed.length);
  writeCommon(body, KIND_PAGES, record);
  let at = COMMON_BYTES;
  at = body.writeUInt32LE(record.pageSize, at);
  at = body.writeUInt32LE(record.pages, at);
  at = body.writeUInt32LE(numbers.length, at);
  at = writePosition(body, at, record.position);
  for (const n of numbers) at = body.writeUInt32LE(n, at);
  packed.copy(body, at);
  return body;
}

const POSITION_BYTES = 24;

function writePosition(body: Buffer, at: number, p: WalPosition): number {
  at = body.writeUInt32LE(p.salt1, at);
  at = body.writeUInt32LE(p.salt2, at);
  at = body.writeDoubleLE(p.offset, at);
  at = body.writeUInt32LE(p.checksum1, at);
  return body.writeUInt32LE(p.checksum2, at);
}

function readPosition(body: Buffer, at: number): WalPosition {
  return {
    salt1: body.readUInt32LE(at),
    salt2: body.readUInt32LE(at + 4),
    offset: body.readDoubleLE(at + 8),
    checksum1: body.readUInt32LE(at + 16),
    checksum2: body.readUInt32LE(at + 20),
  };
}

function writeCommon(body: Buffer, kind: number, record: LogRecord): void {
  body.writeUInt8(kind, 0);
  body.writeDoubleLE(record.seq, 1);
  body.writeDoubleLE(record.time, 9);
}

/** What every record says about itself, readable from its first bytes. */
export interface RecordSummary {
  kind: LogRecord['kind'];
  seq: number;
  time: number;
  /** The bytes of the pages it holds, uncompressed: the work of replaying it. */
  pageBytes: number;
}

export const SUMMARY_BYTES = COMMON_BYTES + 12;

export function summarize(body: Buffer): RecordSummary {
  const kind = body.readUInt8(0);
  const named = kindOfByte(kind);
  if (named === undefined) throw new CorruptRecord(`unknown log record kind ${kind}`);
  const pageBytes = named === 'pages' ? body.readUInt32LE(COMMON_BYTES) * body.readUInt32LE(COMMON_BYTES + 8) : 0;
  return { kind: named, seq: body.readDoubleLE(1), time: body.readDoubleLE(9), pageBytes };
}

export function decodeRecord(body: Buffer): LogRecord {
  const { kind, seq, time } = summarize(body);
  if (kind === 'image') {
    return { kind, seq, time, position: readPosition(body, COMMON_BYTES), reason: JSON.parse(body.subarray(COMMON_BYTES + POSITION_BYTES).toString()) };
  }
  let at = COMMON_BYTES;
  const pageSize = body.readUInt32LE(at);
  const pages = body.readUInt32LE(at + 4);
  const count = body.readUInt32LE(at + 8);
  const position = readPosition(body, at + 12);
  at += PAGES_HEADER_BYTES;
  const numbers: number[] = [];
  for (let i = 0; i < count; i++, at += 4) numbers.push(body.readUInt32LE(at));
  const expected = count * pageSize;
  let unpacked: Buffer;
  try {
    // One buffer of the size the header promises (with a byte to spare, so zlib does not ask for
    // another; pieces past 64 MiB), and never more: a damaged or forged record cannot inflate to gigabytes.
    const options = { chunkSize: Math.max(64, Math.min(expected + 1, 64 * 1024 * 1024)), maxOutputLength: Math.max(1, expected) };
    unpacked = body.readUInt8(0) === KIND_PAGES ? brotliDecompressSync(body.subarray(at), options) : inflateRawSync(body.subarray(at), options);
  } catch (e) {
    throw new CorruptRecord(`log record ${seq}: its pages do not inflate to the ${expected} bytes its header says (${(e as Error).message})`);
  }
  if (unpacked.length !== expected) throw new CorruptRecord(`log record ${seq} holds ${unpacked.length} bytes of pages, expected ${expected}`);
  const images = new Map<number, Buffer>();
  for (let i = 0; i < count; i++) images.set(numbers[i]!, unpacked.subarray(i * pageSize, (i + 1) * pageSize));
  return { kind, seq, time, pageSize, pages, images, position };
}

/** A record as stored: length, CRC-32 of the body, body. */
export function frame(body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(body.length, 0);
  head.writeUInt32LE(crc32(body), 4);
  return Buffer.concat([head, body]);
}

export const FRAME_HEAD_BYTES = 8;

export function checkFrame(body: Buffer, expected: number): boolean {
  return crc32(body) === expected;
}

/** Where capture resumes after the record with this body, read without decoding its pages. */
export function positionOf(body: Buffer): WalPosition {
  return readPosition(body, isPages(body.readUInt8(0)) ? COMMON_BYTES + 12 : COMMON_BYTES);
}
