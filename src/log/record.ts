// Log records and their bytes. A record is one committed write transaction (the page images it
// left behind) or an image: "from here on, the database is the snapshot with this sequence"
// (a restore, a fork's start, a resynchronisation).
import { brotliCompressSync, brotliDecompressSync, constants, crc32, inflateRawSync } from 'node:zlib';
import type { PageImages, WalPosition } from './wal.ts';

export interface PagesRecord {
  kind: 'pages';
  seq: number;
  /** Commit time, ms since the epoch; never earlier than the previous record's. */
  time: number;
  pageSize: number;
  /** Database size in pages after the commit. */
  pages: number;
  images: PageImages;
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
/** Pages packed with brotli, in one stream (a record of up to PIECE_BYTES of pages). */
const KIND_PAGES = 3;
/** Pages packed with brotli in pieces: u32 pages per piece, then each piece's u32 length and its own stream. */
const KIND_PAGES_PIECES = 4;
const isPages = (kind: number) => kind === KIND_PAGES || kind === KIND_PAGES_PIECES || kind === KIND_PAGES_DEFLATE;
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
 * A larger record (a bulk insert, an index built, an import: one transaction of gigabytes) is
 * packed a piece at a time through that same buffer, never laid out whole. Logging a 200 MiB commit
 * of pages that do not compress held ~5.8× its size (the WAL's frames, the pages laid out, zlib's
 * output and its concatenation, the body, the framed copy); in pieces, with the WAL reader keeping
 * no images past 16 MiB (wal.ts), about 2× (the pieces and the body).
 */
const PIECE_BYTES = SMALL_RECORD_BYTES;
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
  const perPiece = Math.max(1, Math.floor(PIECE_BYTES / record.pageSize));
  const pieces: Buffer[] = [];
  for (let first = 0; first < numbers.length || first === 0; first += perPiece) {
    const count = Math.min(perPiece, numbers.length - first);
    const bytes = count * record.pageSize;
    const pages = bytes <= SMALL_RECORD_BYTES ? pagesScratch.subarray(0, bytes) : Buffer.allocUnsafe(bytes);
    for (let i = 0; i < count; i++) record.images.get(numbers[first + i]!)!.copy(pages, i * record.pageSize);
    pieces.push(pack(pages));
  }
  const whole = pieces.length === 1;
  const packedBytes = pieces.reduce((sum, piece) => sum + piece.length + (whole ? 0 : 4), whole ? 0 : 4);
  const body = Buffer.allocUnsafe(COMMON_BYTES + PAGES_HEADER_BYTES + numbers.length * 4 + packedBytes);
  writeCommon(body, whole ? KIND_PAGES : KIND_PAGES_PIECES, record);
  let at = COMMON_BYTES;
  at = body.writeUInt32LE(record.pageSize, at);
  at = body.writeUInt32LE(record.pages, at);
  at = body.writeUInt32LE(numbers.length, at);
  at = writePosition(body, at, record.position);
  for (const n of numbers) at = body.writeUInt32LE(n, at);
  if (!whole) at = body.writeUInt32LE(perPiece, at);
  for (const piece of pieces) {
    if (!whole) at = body.writeUInt32LE(piece.length, at);
    at += piece.copy(body, at);
  }
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
  const kindByte = body.readUInt8(0);
  let unpacked: Buffer;
  try {
    unpacked = kindByte === KIND_PAGES_PIECES ? unpackPieces(body, at, pageSize, count) : unpackWhole(body.subarray(at), expected, kindByte === KIND_PAGES);
  } catch (e) {
    throw new CorruptRecord(`log record ${seq}: its pages do not inflate to the ${expected} bytes its header says (${(e as Error).message})`);
  }
  if (unpacked.length !== expected) throw new CorruptRecord(`log record ${seq} holds ${unpacked.length} bytes of pages, expected ${expected}`);
  const images = new Map<number, Buffer>();
  for (let i = 0; i < count; i++) images.set(numbers[i]!, unpacked.subarray(i * pageSize, (i + 1) * pageSize));
  return { kind, seq, time, pageSize, pages, images, position };
}

/**
 * Packed pages inflated into one buffer of the size expected (with a byte to spare, so zlib does
 * not ask for another; pieces past 64 MiB), and never more: a damaged or forged record cannot
 * inflate to gigabytes.
 */
function unpackWhole(packed: Buffer, expected: number, brotli: boolean): Buffer {
  const options = { chunkSize: Math.max(64, Math.min(expected + 1, 64 * 1024 * 1024)), maxOutputLength: Math.max(1, expected) };
  return brotli ? brotliDecompressSync(packed, options) : inflateRawSync(packed, options);
}

/** The pieces of a large record (KIND_PAGES_PIECES), each inflated to its pages and laid out in one buffer. */
function unpackPieces(body: Buffer, at: number, pageSize: number, count: number): Buffer {
  if (at + 4 > body.length) throw new Error('the pages per piece are missing');
  const perPiece = body.readUInt32LE(at);
  if (perPiece < 1) throw new Error('a piece of no pages');
  // SQLite's page sizes only (before the buffer the header asks for is allocated).
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) throw new Error(`a page size of ${pageSize}`);
  at += 4;
  const unpacked = Buffer.allocUnsafe(count * pageSize);
  for (let first = 0; first < count; first += perPiece) {
    if (at + 4 > body.length) throw new Error('a piece is missing');
    const length = body.readUInt32LE(at);
    if (at + 4 + length > body.length) throw new Error('a piece is cut short');
    const expected = Math.min(perPiece, count - first) * pageSize;
    const pages = unpackWhole(body.subarray(at + 4, at + 4 + length), expected, true);
    if (pages.length !== expected) throw new Error(`a piece holds ${pages.length} bytes, expected ${expected}`);
    pages.copy(unpacked, first * pageSize);
    at += 4 + length;
  }
  if (at !== body.length) throw new Error('bytes follow the last piece');
  return unpacked;
}

/** A record as stored: length, CRC-32 of the body, body. */
export function frame(body: Buffer): Buffer {
  return Buffer.concat([frameHead(body), body]);
}

/** The head of a record's frame: its body's length and CRC-32 (a large body is written after it, not copied). */
export function frameHead(body: Buffer): Buffer {
  const head = Buffer.alloc(FRAME_HEAD_BYTES);
  head.writeUInt32LE(body.length, 0);
  head.writeUInt32LE(crc32(body), 4);
  return head;
}

export const FRAME_HEAD_BYTES = 8;

export function checkFrame(body: Buffer, expected: number): boolean {
  return crc32(body) === expected;
}

/** Where capture resumes after the record with this body, read without decoding its pages. */
export function positionOf(body: Buffer): WalPosition {
  return readPosition(body, isPages(body.readUInt8(0)) ? COMMON_BYTES + 12 : COMMON_BYTES);
}
