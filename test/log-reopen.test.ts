// The write log across closing and reopening (what a server does to every database that leaves
// its open-database budget): the zeros written ahead of the records stay and take the next
// records, a record torn by a crash after the last one is still cut off, and a small database's
// log holds little unused space. Through `open(file, { history: true })`; the segment files are
// read as bytes (frame: length, CRC-32, body whose first bytes are kind, seq, time).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { crc32 } from 'node:zlib';
import { type D1Database, history, open } from '../src/index.ts';
import { tempDir } from './helpers/binding.ts';

interface Segment {
  file: string;
  size: number;
  /** Sequences of the records, in order. */
  seqs: number[];
  /** Where the records end. */
  end: number;
  /** Whether everything after the records is zero. */
  zerosAfter: boolean;
}

function lastSegment(file: string): Segment {
  const dir = path.join(`${file}-history`, 'segments');
  const name = readdirSync(dir).sort().at(-1)!;
  const bytes = readFileSync(path.join(dir, name));
  const seqs: number[] = [];
  let at = 0;
  while (at + 8 <= bytes.length) {
    const length = bytes.readUInt32LE(at);
    if (length < 17 || at + 8 + length > bytes.length) break;
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(body) !== bytes.readUInt32LE(at + 4)) break;
    seqs.push(body.readDoubleLE(1));
    at += 8 + length;
  }
  const rest = bytes.subarray(at);
  return { file: path.join(dir, name), size: bytes.length, seqs, end: at, zerosAfter: rest.equals(Buffer.alloc(rest.length)) };
}

const consecutive = (seqs: number[]) => seqs.every((s, i) => i === 0 || s === seqs[i - 1]! + 1);

/** A database with a history, its table t and one row holding `value`. */
async function withOneRow(name: string, value: string): Promise<{ file: string; db: D1Database }> {
  const file = path.join(tempDir(), name);
  const db = open(file, { history: true });
  await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  await db.prepare('INSERT INTO t (v) VALUES (?)').bind(value).run();
  return { file, db };
}

const values = async (db: D1Database) => (await db.prepare('SELECT v FROM t ORDER BY id').raw()).flat();

test('the zeros ahead of the records stay when the database is closed and reopened, and take the next records', async () => {
  const { file, db: created } = await withOneRow('reopened.sqlite', 'one');
  let db = created;
  const afterOne = history(db).bookmark();
  await db.close();
  const first = lastSegment(file);
  assert.ok(first.size > first.end && first.zerosAfter, `no zeros ahead of the records: ${JSON.stringify(first)}`);

  // Reads only: the file stays as it was.
  db = open(file, { history: true });
  assert.equal(await db.prepare('SELECT count(*) AS n FROM t').first('n'), 1);
  await db.close();
  assert.deepEqual(lastSegment(file), first, 'opening and closing changed the segment');

  // A write lands right after the last record, in the zeros.
  db = open(file, { history: true });
  await db.prepare('INSERT INTO t (v) VALUES (?)').bind('two').run();
  await db.close();
  const second = lastSegment(file);
  assert.equal(second.size, first.size, 'the segment grew though its zeros had room');
  assert.ok(second.zerosAfter);
  assert.ok(second.seqs.length === first.seqs.length + 1 && consecutive(second.seqs), `records: ${second.seqs.join(', ')}`);

  // The history is whole: back to the first insert, and forward again.
  db = open(file, { history: true });
  const restored = await history(db).restore({ bookmark: afterOne });
  assert.deepEqual(await values(db), ['one']);
  await history(db).restore({ bookmark: restored.previous_bookmark });
  assert.deepEqual(await values(db), ['one', 'two']);
  await db.close();
});

test('bytes after the last record that are not zeros (a record torn by a crash) are cut off on reopening', async () => {
  const { file, db: created } = await withOneRow('torn.sqlite', 'kept');
  let db = created;
  await db.close();
  const before = lastSegment(file);
  // Half a frame: a length and a CRC that do not match what follows.
  const torn = Buffer.alloc(40, 0xab);
  torn.writeUInt32LE(5000, 0);
  const bytes = readFileSync(before.file);
  torn.copy(bytes, before.end);
  writeFileSync(before.file, bytes);

  db = open(file, { history: true });
  assert.equal(statSync(before.file).size, before.end, 'the torn bytes were not cut off');
  await db.prepare('INSERT INTO t (v) VALUES (?)').bind('after').run();
  await db.close();
  const after = lastSegment(file);
  assert.ok(after.zerosAfter);
  assert.ok(after.seqs.length === before.seqs.length + 1 && consecutive(after.seqs), `records: ${after.seqs.join(', ')}`);
  db = open(file, { history: true });
  assert.deepEqual(await values(db), ['kept', 'after']);
  await db.close();
});

test("a small database's log holds little unused space; a growing one's grows with it", async () => {
  const { file, db } = await withOneRow('small.sqlite', 'x');
  const small = lastSegment(file);
  assert.ok(small.size <= 64 * 1024, `a log of ${small.end} bytes of records takes ${small.size} bytes`);
  // Random text: the log compresses its pages.
  for (let i = 0; i < 300; i++) await db.prepare('INSERT INTO t (v) VALUES (?)').bind(randomBytes(1500).toString('base64')).run();
  const grown = lastSegment(file);
  assert.ok(grown.end > 256 * 1024, `records: ${grown.end} bytes`);
  // Each extension adds at most as much as the segment holds (and at least 16 KiB).
  assert.ok(grown.size - grown.end <= Math.max(grown.end, 16 * 1024), `${grown.size - grown.end} bytes of zeros after ${grown.end} bytes of records`);
  assert.ok(grown.zerosAfter && consecutive(grown.seqs));
  await db.close();
});
