// Sealed log segments carry an index (src/log/segment-index.ts): opening a history reads the
// indexes of its sealed segments instead of the segments themselves, and everything the history
// answers stays exact. An index is trusted only while it matches its segment: a segment changed
// after its index (newer time), or an index that is cut short or names records the segment does
// not hold, is read past (the segment is scanned, damage found there is reported on opening, and the
// writer writes the index again). Damage that leaves a sealed segment's time alone is found when the damaged
// record is read. A sealed segment that takes appends again (a failed write's rollback) loses its
// index; the segment that takes appends never has one.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { D1Database, HistoryError } from '../src/index.ts';
import { LoggedExecutor } from '../src/log/executor.ts';
import { FileLogStore } from '../src/log/file-store.ts';
import { CorruptRecord, type PagesRecord } from '../src/log/record.ts';
import { setHistoryReporter } from '../src/log/report.ts';
import { decodeSegmentIndex, encodeSegmentIndex } from '../src/log/segment-index.ts';
import { NO_POSITION } from '../src/log/wal.ts';
import { tempDir } from './helpers/binding.ts';

const SEGMENT_BYTES = 16 * 1024;

const listing = (historyDir: string, ext: string) =>
  readdirSync(path.join(historyDir, 'segments'))
    .filter((n) => n.endsWith(ext))
    .sort();

/** The byte offset of record `seq`'s frame in a segment file (frames: length u32, CRC u32, body: kind u8, seq f64…). */
function frameOf(segment: string, seq: number): { offset: number; length: number } {
  const bytes = readFileSync(segment);
  for (let at = 0; at + 8 <= bytes.length; ) {
    const length = bytes.readUInt32LE(at);
    if (length === 0) break;
    if (bytes.readDoubleLE(at + 9) === seq) return { offset: at, length: 8 + length };
    at += 8 + length;
  }
  throw new Error(`no record ${seq} in ${segment}`);
}

/**
 * Flips bytes in the middle of record `seq`. `keepTime`: the file's modification time is put back
 * as damage by the disk would leave it (a second earlier: utimes rounds, and the index of a segment
 * can be stamped in the same clock tick as the segment).
 */
function damage(segment: string, seq: number, keepTime: boolean): void {
  const { mtimeMs, atime } = statSync(segment);
  const frame = frameOf(segment, seq);
  const bytes = readFileSync(segment);
  const middle = frame.offset + Math.floor(frame.length / 2);
  for (let i = middle; i < middle + 8; i++) bytes[i] = bytes[i]! ^ 0xff;
  writeFileSync(segment, bytes);
  if (keepTime) utimesSync(segment, atime, new Date(mtimeMs - 1000));
}

/**
 * A database whose history holds `count` one-row commits, a second apart, over small segments
 * (closed); `openIt` opens it again with its history. Answers each row's bookmark.
 */
async function writtenHistory(name: string, count: number) {
  let now = Date.parse('2026-05-01T00:00:00.000Z');
  const options = { clock: () => now, segmentBytes: SEGMENT_BYTES };
  const file = path.join(tempDir(), `${name}.sqlite`);
  const openIt = () => {
    const executor = new LoggedExecutor(file, {}, options);
    return { executor, db: new D1Database(executor) };
  };
  const { executor, db } = openIt();
  await db.exec('CREATE TABLE t (v INTEGER, pad BLOB)');
  const bookmarks: string[] = [];
  for (let v = 1; v <= count; v++) {
    now += 1000;
    await db.prepare('INSERT INTO t VALUES (?, randomblob(600))').bind(v).run();
    bookmarks[v] = executor.database.bookmark;
  }
  await db.close();
  return { historyDir: `${file}-history`, openIt, bookmarks };
}

async function rows(db: D1Database): Promise<number[]> {
  return (await db.prepare('SELECT v FROM t ORDER BY v').raw<[number]>()).map(([v]) => v);
}

test('sealed segments are indexed; reopening reads the indexes and Time Travel stays exact; stale or broken indexes are read past', async (t) => {
  const reports: string[] = [];
  setHistoryReporter((level, message) => reports.push(`${level}: ${message}`));
  t.after(() => setHistoryReporter((level, message) => process.stderr.write(`dione: ${level}: ${message}\n`)));
  const { historyDir, openIt, bookmarks } = await writtenHistory('indexed', 120);
  const seqOf = (v: number) => Number.parseInt(bookmarks[v]!.slice(9, 17), 16);

  const segments = listing(historyDir, '.log');
  assert.ok(segments.length >= 5, `several segments: ${segments.join(', ')}`);
  // Every sealed segment has its index, the last one too: the clean close sealed it (it holds more
  // than a sixteenth of a segment).
  assert.deepEqual(
    listing(historyDir, '.idx'),
    segments.map((n) => n.replace(/\.log$/, '.idx')),
  );
  // A sealed segment in the middle, and a row whose record it holds.
  const middle = path.join(historyDir, 'segments', segments[2]!);
  const v = Array.from({ length: 120 }, (_, i) => i + 1).find((row) => {
    try {
      frameOf(middle, seqOf(row));
      return true;
    } catch {
      return false;
    }
  })!;
  assert.ok(v > 1 && v < 120);

  // 1. Damage the disk leaves without changing the time: opening trusts the index and reports
  //    nothing; restoring a point whose rebuild reads the damaged record says it is damaged.
  damage(middle, seqOf(v), true);
  let { executor, db } = openIt();
  try {
    assert.equal(reports.length, 0, `opening read the index, not the segment: ${JSON.stringify(reports)}`);
    assert.deepEqual(await rows(db), Array.from({ length: 120 }, (_, i) => i + 1));
    await assert.rejects(
      async () => executor.database.restore({ bookmark: bookmarks[v]! }),
      (e: unknown) => e instanceof HistoryError && /damaged/.test(e.message),
    );
    assert.deepEqual(await rows(db), Array.from({ length: 120 }, (_, i) => i + 1), 'nothing changed');
    // Points before the damaged record are exact; points after it are rebuilt across it: refused alike.
    await executor.database.restore({ bookmark: bookmarks[3]! });
    assert.deepEqual(await rows(db), [1, 2, 3]);
    await assert.rejects(
      async () => executor.database.restore({ bookmark: bookmarks[v + 1]! }),
      (e: unknown) => e instanceof HistoryError && /damaged/.test(e.message),
    );
  } finally {
    await db.close();
  }

  // 2. The same damage written by a writer (the segment's time moves on): the index is read past,
  //    the segment is scanned, and the loss is reported on opening, naming the segment.
  reports.length = 0;
  const before = statSync(middle).mtimeMs;
  await new Promise((r) => setTimeout(r, 20));
  damage(middle, seqOf(v), false);
  damage(middle, seqOf(v), false);
  assert.ok(statSync(middle).mtimeMs > before);
  ({ executor, db } = openIt());
  try {
    const error = reports.find((r) => r.startsWith('error:'));
    assert.ok(error?.includes(middle), `the damage is reported on opening: ${JSON.stringify(reports)}`);
  } finally {
    await db.close();
  }
});

test('a broken, foreign or missing index is not trusted, and the writer writes it again', async () => {
  const { historyDir, openIt, bookmarks } = await writtenHistory('reindexed', 60);
  const indexes = listing(historyDir, '.idx').map((n) => path.join(historyDir, 'segments', n));
  assert.ok(indexes.length >= 3);
  const good = indexes.map((f) => readFileSync(f));
  // Cut short; whole (CRC and all) and of the segment's shape, but naming other records (as an index
  // of another segment that happens to have the same size would); gone (a history from before indexes).
  writeFileSync(indexes[0]!, good[0]!.subarray(0, good[0]!.length - 10));
  const size = statSync(indexes[1]!.replace(/\.idx$/, '.log')).size;
  const own = decodeSegmentIndex(good[1]!, size)!;
  const renumbered = Array.from({ length: own.count }, (_, i) => ({
    kind: own.kind(i),
    seq: own.seq(i) + 1000,
    time: own.time(i),
    pageBytes: own.pageBytes(i),
    offset: own.offset(i),
    length: own.length(i),
  }));
  writeFileSync(indexes[1]!, encodeSegmentIndex(renumbered, size));
  rmSync(indexes[2]!);

  const { executor, db } = openIt();
  try {
    for (const v of [2, 10, 25, 40, 60]) {
      await executor.database.restore({ bookmark: bookmarks[v]! });
      assert.deepEqual(await rows(db), Array.from({ length: v }, (_, i) => i + 1), `restored to ${v}`);
    }
  } finally {
    await db.close();
  }
  // Written again on opening, as they were.
  for (const [i, f] of indexes.entries()) assert.ok(readFileSync(f).equals(good[i]!), `${path.basename(f)} written again`);
});

function record(seq: number): PagesRecord {
  const image = Buffer.alloc(4096);
  randomBytes(3000).copy(image);
  return { kind: 'pages', seq, time: 1_000 + seq, pageSize: 4096, pages: 1, images: new Map([[1, image]]), position: NO_POSITION };
}

test('a sealed segment that takes appends again after a rollback loses its index; reopening reads every record', () => {
  const dir = path.join(tempDir(), 'history');
  // Each record is more than 1 KiB, so every append after the first in a segment starts a new one.
  let store = new FileLogStore(dir, undefined, { segmentBytes: 1024, owner: true });
  store.append(record(1), 0);
  store.flush();
  store.append(record(2), 1);
  store.flush();
  assert.deepEqual(listing(dir, '.log').length, 2);
  const sealedIndex = path.join(dir, 'segments', listing(dir, '.idx')[0]!);
  assert.ok(existsSync(sealedIndex));
  // Record 3 starts a third segment (sealing the second), then is rolled back before a flush.
  store.append(record(3), 2);
  assert.equal(listing(dir, '.idx').length, 2);
  store.rollback();
  assert.equal(listing(dir, '.log').length, 2);
  assert.deepEqual(listing(dir, '.idx'), [path.basename(sealedIndex)], 'the second segment takes appends again: no index');
  store.close();

  store = new FileLogStore(dir, undefined, { segmentBytes: 1024 * 1024, owner: true });
  try {
    // The second segment now takes appends (a larger segment size): its records follow on.
    store.append(record(3), 2);
    store.append(record(4), 3);
    store.flush();
  } finally {
    store.close();
  }
  store = new FileLogStore(dir, undefined, { segmentBytes: 1024 * 1024 });
  try {
    assert.deepEqual(
      [...store.read(0, 10)].map((r) => r.seq),
      [1, 2, 3, 4],
    );
  } finally {
    store.close();
  }
});

test('the last record of an indexed segment before an empty last one is checked whole: damaged, the log opens at the record before', () => {
  const dir = path.join(tempDir(), 'history');
  // Two records per segment.
  let store = new FileLogStore(dir, undefined, { segmentBytes: 5000, owner: true });
  store.append(record(1), 0);
  store.append(record(2), 1);
  store.flush();
  store.append(record(3), 2);
  store.flush();
  store.close();
  const [first, second] = listing(dir, '.log').map((n) => path.join(dir, 'segments', n));
  assert.ok(existsSync(first!.replace(/\.log$/, '.idx')));
  // A crash right after the second segment was started: its first record never became durable.
  truncateSync(second!, 0);
  // The disk damages the last record of the first segment (its time unchanged).
  damage(first!, 2, true);
  // An index whose segment is gone (compaction crashed between the two removals) is removed too.
  const orphan = path.join(dir, 'segments', '00000000000000ff.idx');
  writeFileSync(orphan, 'left behind');

  store = new FileLogStore(dir, undefined, { segmentBytes: 5000, owner: true });
  try {
    assert.equal(store.last()?.seq, 1, 'the damaged record is not taken from the index');
    assert.deepEqual(store.lastPosition(), NO_POSITION);
    assert.equal(store.gaps().length, 0);
    assert.ok(!existsSync(orphan));
  } finally {
    store.close();
  }
});

test('a clean close seals an open segment holding a sixteenth of a segment: opening reads its index, and appends go to a new segment', () => {
  const dir = path.join(tempDir(), 'history');
  // Records of ~3 KiB: five fill 15 KiB of a 64 KiB segment (the seal takes 4 KiB).
  const options = { segmentBytes: 64 * 1024, owner: true };
  let store = new FileLogStore(dir, undefined, options);
  for (let seq = 1; seq <= 5; seq++) store.append(record(seq), seq - 1);
  store.close({ seal: true });
  const [segment] = listing(dir, '.log').map((n) => path.join(dir, 'segments', n));
  assert.deepEqual(listing(dir, '.idx'), [path.basename(segment!).replace(/\.log$/, '.idx')]);
  assert.equal(statSync(segment!).size, frameOf(segment!, 5).offset + frameOf(segment!, 5).length, 'the segment ends at its last record');

  // Opening takes the records from the index: damage in the middle (the time kept, as the disk
  // leaves it) is not seen by opening, only by reading that record.
  const intact = readFileSync(segment!);
  const stamp = statSync(segment!);
  damage(segment!, 3, true);
  store = new FileLogStore(dir, undefined, options);
  try {
    assert.deepEqual(store.gaps(), []);
    assert.equal(store.last()?.seq, 5);
    assert.throws(() => [...store.read(2, 3)], CorruptRecord);
  } finally {
    store.close();
  }
  writeFileSync(segment!, intact);
  utimesSync(segment!, stamp.atime, new Date(stamp.mtimeMs - 1000));

  store = new FileLogStore(dir, undefined, options);
  try {
    assert.deepEqual(
      [...store.read(0, 10)].map((r) => r.seq),
      [1, 2, 3, 4, 5],
    );
    store.append(record(6), 5);
    store.append(record(7), 6);
    store.flush();
    assert.equal(listing(dir, '.log').length, 2, 'the sealed segment takes no appends');
    assert.ok(readFileSync(segment!).equals(intact), 'the sealed segment is as it was');
  } finally {
    store.close({ seal: true });
  }
  store = new FileLogStore(dir, undefined, options);
  try {
    assert.deepEqual(
      [...store.read(0, 10)].map((r) => r.seq),
      [1, 2, 3, 4, 5, 6, 7],
    );
    assert.equal(store.lastRecord()?.seq, 7);
    assert.equal(listing(dir, '.idx').length, 2);
  } finally {
    store.close();
  }
});

test('the open segment stays open below a sixteenth of a segment, on an unclean close, and when its index no longer fits it', () => {
  const dir = path.join(tempDir(), 'history');
  const options = { segmentBytes: 64 * 1024, owner: true };
  let store = new FileLogStore(dir, undefined, options);
  store.append(record(1), 0);
  store.close({ seal: true });
  assert.deepEqual(listing(dir, '.idx'), [], 'one record of ~3 KiB: not sealed');
  store = new FileLogStore(dir, undefined, options);
  for (let seq = 2; seq <= 5; seq++) store.append(record(seq), seq - 1);
  store.close();
  assert.deepEqual(listing(dir, '.idx'), [], 'closed without sealing (a handle another took over)');

  store = new FileLogStore(dir, undefined, options);
  store.close({ seal: true });
  const [segment] = listing(dir, '.log').map((n) => path.join(dir, 'segments', n));
  const index = segment!.replace(/\.log$/, '.idx');
  assert.ok(existsSync(index));
  // Bytes after the indexed records (zeros a writer unaware of the seal wrote ahead): the index is
  // dropped, the segment read, and it takes appends again.
  writeFileSync(segment!, Buffer.alloc(8192), { flag: 'a' });
  store = new FileLogStore(dir, undefined, options);
  try {
    assert.ok(!existsSync(index));
    assert.deepEqual(store.gaps(), []);
    store.append(record(6), 5);
    store.flush();
    assert.equal(listing(dir, '.log').length, 1);
  } finally {
    store.close();
  }
  store = new FileLogStore(dir, undefined, options);
  try {
    assert.deepEqual(
      [...store.read(0, 10)].map((r) => r.seq),
      [1, 2, 3, 4, 5, 6],
    );
  } finally {
    store.close();
  }
});
