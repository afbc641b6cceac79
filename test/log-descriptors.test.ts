// The files of a database with a history, as descriptors of this process: while commits keep
// coming, the log's segment and the WAL (as the log reads it) stay open from one commit to the next
// (they were opened and closed per commit); once the database is idle they are closed again, so a
// server holding thousands of databases holds no descriptor for an idle one's log. Read from
// /proc/self/fd (Linux). SQLite's own connections keep the -wal open too: the log's reader adds one.
import assert from 'node:assert/strict';
import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { open } from '../src/index.ts';
import { tempDir } from './helpers/binding.ts';

/** The descriptors of this process open on `file`'s WAL and on its log's segments (the history's lock file is held while it is open, apart). */
function descriptorsOf(file: string): { wal: number; log: number } {
  let wal = 0;
  let log = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the descriptor readdir itself used, closed by now
    }
    if (target === `${file}-wal`) wal++;
    else if (target.startsWith(path.join(`${file}-history`, 'segments') + path.sep)) log++;
  }
  return { wal, log };
}

const IDLE_CLOSE_MS = 2000;

test('a database with a history keeps its log and WAL open while it writes, and lets them go once idle', { skip: process.platform !== 'linux' }, async (t) => {
  const file = path.join(tempDir(), 'busy.sqlite');
  const db = open(file, { history: true });
  let closed = false;
  t.after(async () => {
    if (!closed) await db.close();
  });
  await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');

  const seen: { wal: number; log: number }[] = [];
  for (let i = 0; i < 20; i++) {
    await db.prepare('INSERT INTO t (v) VALUES (?)').bind(`row ${i}`).run();
    seen.push(descriptorsOf(file));
  }
  const busy = seen[0]!;
  assert.equal(busy.log, 1, "the log's segment is open once while the database writes");
  for (const [i, s] of seen.entries()) assert.deepEqual(s, busy, `after write ${i + 1}: the same descriptors as after the first`);

  // Idle: closed within two idle periods; what stays on the WAL is SQLite's own connections'.
  const deadline = Date.now() + 2 * IDLE_CLOSE_MS + 3000;
  let now = descriptorsOf(file);
  while (now.log > 0 && Date.now() < deadline) {
    await sleep(200);
    now = descriptorsOf(file);
  }
  assert.deepEqual(now, { wal: busy.wal - 1, log: 0 }, "an idle database holds no descriptor for its log, nor the log's reader for its WAL");

  // The next write opens them again, and the write is there.
  await db.prepare('INSERT INTO t (v) VALUES (?)').bind('after idle').run();
  assert.deepEqual(descriptorsOf(file), busy);
  const count = await db.prepare('SELECT count(*) AS n FROM t').first('n');
  assert.equal(count, 21);
  await db.close();
  closed = true;
  assert.deepEqual(descriptorsOf(file), { wal: 0, log: 0 }, 'closing the database lets every file go');
});
