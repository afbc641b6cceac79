// A long history's sealed segments are not held in memory record by record
// (src/log/entry-table.ts): their records' summaries are read back from the segments' indexes when
// a search lands in them. Every answer of the log — by sequence, by time, ranges, the newest image,
// page bytes, gaps — is the one a list of all records gives, after appending, after reopening,
// with indexes gone (read back from the segments themselves), across compaction and a rollback.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FileLogStore } from '../src/log/file-store.ts';
import type { LogRecord, RecordSummary } from '../src/log/record.ts';
import { decodeSegmentIndex, encodeSegmentIndex } from '../src/log/segment-index.ts';
import { NO_POSITION } from '../src/log/wal.ts';
import { tempDir } from './helpers/binding.ts';

/** Record `seq`: one small page; every 37th an image that jumps 5 ahead; times repeat in pairs. */
function recordOf(seq: number, image: boolean): LogRecord {
  const time = 1_000_000 + Math.floor(seq / 2) * 1000;
  if (image) return { kind: 'image', seq, time, reason: { restoredFrom: seq - 10 }, position: NO_POSITION };
  const page = Buffer.alloc(512);
  page.writeUInt32LE(seq, 100);
  return { kind: 'pages', seq, time, pageSize: 512, pages: 1, images: new Map([[1, page]]), position: NO_POSITION };
}

const summary = (r: LogRecord): RecordSummary => ({ kind: r.kind, seq: r.seq, time: r.time, pageBytes: r.kind === 'pages' ? r.images.size * r.pageSize : 0 });

/** Appends `count` records after `from` (flushing every 50); returns their summaries. */
function appendRecords(store: FileLogStore, from: number, count: number): RecordSummary[] {
  const written: RecordSummary[] = [];
  let seq = from;
  for (let i = 1; i <= count; i++) {
    const image = i % 37 === 0;
    const record = recordOf(image ? seq + 5 : seq + 1, image);
    store.append(record, seq);
    seq = record.seq;
    written.push(summary(record));
    if (i % 50 === 0) store.flush();
  }
  store.flush();
  return written;
}

/** Compares every answer of `store` with the ones the list of records gives. */
function assertAnswers(store: FileLogStore, all: RecordSummary[], what: string): void {
  assert.deepEqual(store.first(), all[0], `${what}: first`);
  assert.deepEqual(store.last(), all.at(-1), `${what}: last`);
  const lowSeq = all[0]!.seq - 2;
  const highSeq = all.at(-1)!.seq + 2;
  // First, before other searches load segments: page bytes are summed from the indexes in place.
  for (let seq = lowSeq; seq <= highSeq; seq += 5) {
    const after = all.filter((r) => r.seq > seq).reduce((n, r) => n + r.pageBytes, 0);
    assert.equal(store.pageBytesAfter(seq), after, `${what}: pageBytesAfter(${seq}), first pass`);
  }
  for (let seq = lowSeq; seq <= highSeq; seq += 7) {
    assert.deepEqual(store.find(seq), all.find((r) => r.seq === seq), `${what}: find(${seq})`);
    assert.deepEqual(store.lastImage(seq), all.filter((r) => r.seq <= seq && r.kind === 'image').at(-1), `${what}: lastImage(${seq})`);
    const after = all.filter((r) => r.seq > seq).reduce((n, r) => n + r.pageBytes, 0);
    assert.equal(store.pageBytesAfter(seq), after, `${what}: pageBytesAfter(${seq})`);
  }
  for (let time = all[0]!.time - 1500; time <= all.at(-1)!.time + 1500; time += 1700) {
    const through = all.filter((r) => r.time <= time);
    assert.equal(store.countThrough(time), through.length, `${what}: countThrough(${time})`);
    assert.deepEqual(store.atTime(time), through.at(-1), `${what}: atTime(${time})`);
    assert.deepEqual(store.newestThrough(time, 3), through.slice(-3).reverse(), `${what}: newestThrough(${time})`);
  }
  for (const [from, to] of [
    [lowSeq, lowSeq + 20],
    [all[Math.floor(all.length / 2)]!.seq - 3, all[Math.floor(all.length / 2)]!.seq + 40],
    [highSeq - 30, highSeq],
  ] as const) {
    const read = [...store.read(from, to)].map(summary);
    assert.deepEqual(read, all.filter((r) => r.seq > from && r.seq <= to), `${what}: read(${from}, ${to})`);
  }
  // Images jump ahead: no gap. Nothing else is missing.
  assert.deepEqual(store.gaps(), [], `${what}: gaps`);
}

test('every answer of a history of many sealed segments is exact: appended, reopened, indexes gone, compacted, rolled back', () => {
  const dir = path.join(tempDir(), 'history');
  let store = new FileLogStore(dir, undefined, { segmentBytes: 4096, owner: true });
  const all = appendRecords(store, 0, 1500);
  const segments = () => readdirSync(path.join(dir, 'segments')).filter((n) => n.endsWith('.log')).sort();
  assert.ok(segments().length >= 20, `many segments: ${segments().length}`);
  assertAnswers(store, all, 'as written');
  store.close();

  store = new FileLogStore(dir, undefined, { segmentBytes: 4096, owner: true });
  assertAnswers(store, all, 'reopened');
  // Indexes removed under an open log: summaries are read back from the segments themselves.
  for (const name of readdirSync(path.join(dir, 'segments')).filter((n) => n.endsWith('.idx'))) rmSync(path.join(dir, 'segments', name));
  assertAnswers(store, all, 'indexes gone');

  // A rollback after the log started a new segment (starting it made the records before durable):
  // the segment just sealed (indexed, its entries possibly let go) is the last one again.
  const sealedBefore = segments().length;
  let seq = all.at(-1)!.seq;
  const grown: RecordSummary[] = [];
  while (segments().length === sealedBefore) {
    const record = recordOf(seq + 1, false);
    store.append(record, seq);
    seq++;
    grown.push(summary(record));
  }
  store.rollback();
  assert.equal(segments().length, sealedBefore, 'the segment started since the flush is gone');
  all.push(...grown.slice(0, -1));
  assertAnswers(store, all, 'rolled back');
  all.push(...appendRecords(store, all.at(-1)!.seq, 200));
  assertAnswers(store, all, 'appended after the rollback');

  // Compaction drops whole segments: the records left answer as before.
  const cut = all[700]!.seq;
  store.compact(cut);
  const firstKept = store.first()!;
  assert.ok(firstKept.seq <= cut + 1 && firstKept.seq > all[0]!.seq);
  const kept = all.filter((r) => r.seq >= firstKept.seq);
  assertAnswers(store, kept, 'compacted');
  store.close();
  store = new FileLogStore(dir, undefined, { segmentBytes: 4096, owner: true });
  assertAnswers(store, kept, 'compacted and reopened');
  store.close();
});

test("an open history holds its sealed segments' summaries in memory only a few segments at a time", () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const dir = path.join(tempDir(), 'history');
  const count = 100_000;
  const all = (() => {
    const writer = new FileLogStore(dir, undefined, { segmentBytes: 256 * 1024, owner: true });
    const written = appendRecords(writer, 0, count);
    writer.close();
    return written;
  })();
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  const before = heap();
  const store = new FileLogStore(dir, undefined, { segmentBytes: 256 * 1024, owner: true });
  // Searches across the whole history load segments and let them go again.
  for (let i = 0; i < count; i += 997) assert.deepEqual(store.find(all[i]!.seq), all[i]);
  const held = heap() - before;
  store.close();
  // Each record's summary held as an object costs ~100 bytes (10 MB here); a few segments' worth
  // and each segment's bounds are far less.
  assert.ok(held < 4 * 1024 * 1024, `${(held / 1024 / 1024).toFixed(1)} MiB held for ${count} records`);
});

test("an index whose records are damaged, or do not match its head, is read past when a search lands in its segment: the segment's frames answer", () => {
  const dir = path.join(tempDir(), 'history');
  const writer = new FileLogStore(dir, undefined, { segmentBytes: 4096, owner: true });
  const all = appendRecords(writer, 0, 400);
  writer.close();
  const segmentsDir = path.join(dir, 'segments');
  const indexes = readdirSync(segmentsDir)
    .filter((n) => n.endsWith('.idx'))
    .sort()
    .map((n) => path.join(segmentsDir, n));
  assert.ok(indexes.length >= 6);
  // One index: a byte of its last record flipped (its head intact).
  const damaged = readFileSync(indexes[2]!);
  damaged[damaged.length - 6]! ^= 0xff;
  writeFileSync(indexes[2]!, damaged);
  // Another: its own head, then the records of another index (whole, its CRC intact): the last one renumbered.
  const own = readFileSync(indexes[4]!);
  const size = statSync(indexes[4]!.replace(/\.idx$/, '.log')).size;
  const view = decodeSegmentIndex(own, size)!;
  const shifted = Array.from({ length: view.count }, (_, i) => ({
    kind: view.kind(i),
    seq: view.seq(i) + (i === view.count - 1 ? 1000 : 0),
    time: view.time(i),
    pageBytes: view.pageBytes(i),
    offset: view.offset(i),
    length: view.length(i),
  }));
  const other = encodeSegmentIndex(shifted, size);
  // (An index's head length is at byte 24.)
  writeFileSync(indexes[4]!, Buffer.concat([own.subarray(0, own.readUInt32LE(24)), other.subarray(other.readUInt32LE(24))]));
  assert.equal(decodeSegmentIndex(readFileSync(indexes[4]!), size)?.seq(view.count - 1), shifted.at(-1)!.seq, 'a whole index, lying');

  const store = new FileLogStore(dir, undefined, { segmentBytes: 4096 });
  assertAnswers(store, all, 'indexes read past');
  store.close();
});
