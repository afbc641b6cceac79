// Log records' bytes: what encodeRecord writes, decodeRecord reads back exactly, small records and
// large ones alike, one after another (encoding lays a small record's pages out in one kept
// buffer); a record whose compressed pages do not inflate to what its header says is refused as
// damaged, without inflating more than the header allows.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { brotliCompressSync, brotliDecompressSync, constants, deflateRawSync } from 'node:zlib';
import { CorruptRecord, decodeRecord, encodeRecord, type PagesRecord } from '../src/log/record.ts';

const PAGE = 4096;

function pagesRecord(seq: number, numbers: number[]): PagesRecord {
  const images = new Map<number, Buffer>();
  for (const n of numbers) {
    // Half random, half repeated: compressible, and different for every page and record.
    const image = Buffer.alloc(PAGE, seq + n);
    randomBytes(PAGE / 2).copy(image, 0);
    images.set(n, image);
  }
  return {
    kind: 'pages',
    seq,
    time: 1_700_000_000_000 + seq,
    pageSize: PAGE,
    pages: Math.max(...numbers),
    images,
    position: { salt1: 7, salt2: 9, offset: 32 + seq * (24 + PAGE), checksum1: seq, checksum2: seq * 3 },
  };
}

function assertSame(decoded: ReturnType<typeof decodeRecord>, record: PagesRecord): void {
  assert.equal(decoded.kind, 'pages');
  if (decoded.kind !== 'pages') return;
  assert.equal(decoded.seq, record.seq);
  assert.equal(decoded.time, record.time);
  assert.equal(decoded.pages, record.pages);
  assert.deepEqual(decoded.position, record.position);
  assert.deepEqual([...decoded.images.keys()], [...record.images.keys()].sort((a, b) => a - b));
  for (const [n, image] of record.images) assert.ok(decoded.images.get(n)!.equals(image), `page ${n} of record ${record.seq}`);
}

test('records decode to what was encoded, each body its own even when encoded one after another', () => {
  const small = pagesRecord(1, [1, 5, 3]);
  const another = pagesRecord(2, [1, 2]);
  // 100 pages: past what encoding lays out in its kept buffer.
  const large = pagesRecord(3, Array.from({ length: 100 }, (_, i) => i + 1));
  const bodies = [small, another, large, pagesRecord(4, [1])].map((r) => ({ record: r, body: encodeRecord(r) }));
  for (const { record, body } of bodies) assertSame(decodeRecord(body), record);
  // No page at or below the database's size: a record of none (the database shrank to nothing new).
  const none: PagesRecord = { ...pagesRecord(5, [9]), pages: 3 };
  const decoded = decodeRecord(encodeRecord(none));
  assert.equal(decoded.kind === 'pages' && decoded.images.size, 0);
});

/** A pages record's bytes as encodeRecord lays them out, with any compressed bytes (kind 1: deflate, 3: brotli). */
function forged(count: number, packed: Buffer, kind = 1): Buffer {
  const header = Buffer.alloc(17 + 36 + count * 4);
  header.writeUInt8(kind, 0);
  header.writeDoubleLE(9, 1);
  header.writeDoubleLE(1_700_000_000_000, 9);
  header.writeUInt32LE(PAGE, 17);
  header.writeUInt32LE(count, 21);
  header.writeUInt32LE(count, 25);
  for (let i = 0; i < count; i++) header.writeUInt32LE(i + 1, 53 + i * 4);
  return Buffer.concat([header, packed]);
}

test('a record whose pages inflate to more than its header says is refused as damaged, without inflating them all', () => {
  // 256 MiB of zeros compress to a quarter of a megabyte (deflate) or to a few bytes (brotli); the header says one page.
  const zeros = Buffer.alloc(256 * 1024 * 1024);
  for (const [kind, bomb] of [
    [1, deflateRawSync(zeros)],
    [3, brotliCompressSync(zeros, { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } })],
  ] as const) {
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(() => decodeRecord(forged(1, bomb, kind)), (e) => e instanceof CorruptRecord && /do not inflate to the 4096 bytes/.test(e.message), `kind ${kind}`);
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, `kind ${kind}: the pages were not inflated in full`);
  }
});

test('pages are written packed with brotli (kind 3); logs written before, with deflate (kind 1), still read', () => {
  const record = pagesRecord(7, [1, 2, 3]);
  const body = encodeRecord(record);
  assert.equal(body.readUInt8(0), 3);
  const pages = Buffer.concat([1, 2, 3].map((n) => record.images.get(n)!));
  // The old layout is the new one but for the kind byte and the packing.
  const old = Buffer.concat([body.subarray(0, 17 + 36 + 3 * 4), deflateRawSync(pages, { level: 1 })]);
  old.writeUInt8(1, 0);
  assertSame(decodeRecord(old), record);
  assert.ok(body.length < pages.length / 1.5, `packed: ${body.length} bytes for ${pages.length}`);
  // A brotli stream under the deflate kind (or the reverse) is damage, not pages.
  assert.throws(() => decodeRecord(forged(3, body.subarray(17 + 36 + 3 * 4), 1)), CorruptRecord);
  assert.throws(() => decodeRecord(forged(3, deflateRawSync(pages), 3)), CorruptRecord);
});

test('a record whose pages are not a deflate stream, or fewer than its header says, is refused as damaged', () => {
  // 0xff…: a block of the reserved type 3.
  assert.throws(() => decodeRecord(forged(2, Buffer.alloc(300, 0xff))), (e) => e instanceof CorruptRecord && /invalid block type/.test(e.message));
  assert.throws(() => decodeRecord(forged(2, deflateRawSync(Buffer.alloc(PAGE)))), (e) => e instanceof CorruptRecord && /holds 4096 bytes of pages, expected 8192/.test(e.message));
});

test('records compressed with any deflate window decode: logs written before small records got a small context', () => {
  const pages = Buffer.concat([Buffer.alloc(PAGE, 3), randomBytes(PAGE)]);
  for (const options of [{}, { level: 1 }, { level: 9, windowBits: 15, memLevel: 9 }, { level: 1, windowBits: 9, memLevel: 1 }]) {
    const decoded = decodeRecord(forged(2, deflateRawSync(pages, options)));
    assert.ok(decoded.kind === 'pages' && decoded.images.get(1)!.equals(pages.subarray(0, PAGE)) && decoded.images.get(2)!.equals(pages.subarray(PAGE)), JSON.stringify(options));
  }
  // Small records and large ones (past the small context's 64 KiB) round-trip alike.
  for (const count of [1, 2, 16, 17, 40]) {
    const record = pagesRecord(10 + count, Array.from({ length: count }, (_, i) => i + 1));
    assertSame(decodeRecord(encodeRecord(record)), record);
  }
});

/** The pieces of a kind-4 body: pages per piece, then each piece's packed bytes. */
function piecesOf(body: Buffer, count: number): { perPiece: number; pieces: Buffer[]; start: number } {
  const start = 17 + 36 + count * 4;
  const perPiece = body.readUInt32LE(start);
  const pieces: Buffer[] = [];
  for (let at = start + 4; at < body.length; ) {
    const length = body.readUInt32LE(at);
    pieces.push(body.subarray(at + 4, at + 4 + length));
    at += 4 + length;
  }
  return { perPiece, pieces, start };
}

test('a large commit is packed a piece at a time (kind 4: pieces of 256 KiB of pages, each its own brotli stream) and decodes whole', () => {
  // 200 pages of 4 KiB: 64 to a piece, the last piece part full.
  const numbers = Array.from({ length: 200 }, (_, i) => 200 - i);
  const record = pagesRecord(20, numbers);
  const body = encodeRecord(record);
  assert.equal(body.readUInt8(0), 4);
  const { perPiece, pieces } = piecesOf(body, 200);
  assert.equal(perPiece, 64);
  assert.equal(pieces.length, 4);
  // Each piece is the pages in number order, packed on its own.
  const sorted = [...numbers].sort((a, b) => a - b);
  for (let i = 0; i < pieces.length; i++) {
    const expected = Buffer.concat(sorted.slice(i * 64, (i + 1) * 64).map((n) => record.images.get(n)!));
    assert.ok(brotliDecompressSync(pieces[i]!).equals(expected), `piece ${i}`);
  }
  assertSame(decodeRecord(body), record);
  // Exactly one piece's worth stays one stream (kind 3), as does any other page size's.
  assert.equal(encodeRecord(pagesRecord(21, Array.from({ length: 64 }, (_, i) => i + 1))).readUInt8(0), 3);
  const big: PagesRecord = { ...record, pageSize: 65536, images: new Map(sorted.slice(0, 9).map((n) => [n, Buffer.alloc(65536, n)])) };
  const bigBody = encodeRecord(big);
  assert.equal(piecesOf(bigBody, 9).perPiece, 4);
  assertSame(decodeRecord(bigBody), big);
});

test('a large record with a piece missing, cut short, added, or inflating past its share is refused as damaged', () => {
  const record = pagesRecord(30, Array.from({ length: 130 }, (_, i) => i + 1));
  const body = encodeRecord(record);
  const { pieces, start } = piecesOf(body, 130);
  assert.equal(pieces.length, 3);
  const rebuilt = (perPiece: number, parts: Buffer[]) => {
    const lengths = parts.map((p) => {
      const l = Buffer.alloc(4);
      l.writeUInt32LE(p.length);
      return Buffer.concat([l, p]);
    });
    const head = Buffer.alloc(4);
    head.writeUInt32LE(perPiece);
    return Buffer.concat([body.subarray(0, start), head, ...lengths]);
  };
  assertSame(decodeRecord(rebuilt(64, pieces)), record);
  const damaged = (b: Buffer) => assert.throws(() => decodeRecord(b), CorruptRecord);
  damaged(rebuilt(64, pieces.slice(0, 2)));
  damaged(rebuilt(64, [...pieces, pieces[2]!]));
  damaged(body.subarray(0, body.length - 10));
  damaged(rebuilt(0, pieces));
  damaged(rebuilt(32, pieces));
  // A piece that inflates to far more than a piece's pages (a bomb) stops at its share.
  const bomb = brotliCompressSync(Buffer.alloc(256 * 1024 * 1024), { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } });
  const before = process.memoryUsage().arrayBuffers;
  assert.throws(() => decodeRecord(rebuilt(64, [pieces[0]!, bomb, pieces[2]!])), (e) => e instanceof CorruptRecord && /inflate/.test(e.message));
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'the bomb was not inflated in full');
});
