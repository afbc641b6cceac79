// Log records' bytes: what encodeRecord writes, decodeRecord reads back exactly, small records and
// large ones alike, one after another (encoding lays a small record's pages out in one kept
// buffer); a record whose compressed pages do not inflate to what its header says is refused as
// damaged, without inflating more than the header allows.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { brotliCompressSync, constants, deflateRawSync } from 'node:zlib';
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
