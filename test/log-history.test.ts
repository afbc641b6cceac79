// The History interface over a single node's files (FileHistory): Time Travel's shared resolution
// (resolvePoint) and rebuilding (materializeFrom) answer exactly as the single node's own
// LoggedDatabase does, for every commit and for times across and around the window, refusals
// word for word: the same code a cluster runs over its JetStream history.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { formatBookmark } from '../src/api/bookmark.ts';
import type { HistoryPoint } from '../src/api/time-travel.ts';
import { FileHistory } from '../src/log/file-history.ts';
import { LoggedDatabase } from '../src/log/logged-database.ts';
import { materialize, materializeFrom } from '../src/log/pages.ts';
import { resolvePoint } from '../src/log/time-travel.ts';
import { tempDir } from './helpers/binding.ts';

const HOUR = 3_600_000;

function outcome(run: () => number): string {
  try {
    return `commit ${run()}`;
  } catch (e) {
    return (e as Error).message;
  }
}

async function outcomeOf(run: () => Promise<number>): Promise<string> {
  try {
    return `commit ${await run()}`;
  } catch (e) {
    return (e as Error).message;
  }
}

test('resolvePoint and materializeFrom over FileHistory answer as the single node does', async () => {
  const dir = tempDir();
  let now = Date.now() - 100 * HOUR;
  const clock = () => now;
  const db = new LoggedDatabase(path.join(dir, 'db.sqlite'), {}, { clock, retentionDays: 1, snapshotIntervalMs: 3 * HOUR });
  const run = (sql: string) => assert.ok(db.execute({ queries: [{ sql, params: [] }] }).success, sql);
  run('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const times: number[] = [];
  for (let i = 1; i <= 120; i++) {
    now += HOUR / 2;
    run(`INSERT INTO t VALUES (${i}, 'v${i}')`);
    if (i % 10 === 0) run(`UPDATE t SET v = upper(v) WHERE id > ${i - 5}`);
    times.push(now);
    if (i % 8 === 0) await db.snapshot();
  }
  db.applyRetention();
  const history = new FileHistory(db.log, db.snapshots);
  const newest = db.engine.commitSequence;
  const window = () => ({ now: clock(), retentionMs: 24 * HOUR });
  const points: HistoryPoint[] = [
    ...Array.from({ length: newest + 3 }, (_, seq) => ({ bookmark: formatBookmark(seq, db.tag) })),
    { bookmark: formatBookmark(newest, '0'.repeat(32)) },
    { bookmark: 'not-a-bookmark' },
    ...times.map((time) => ({ timestamp: new Date(time - 1) })),
    { timestamp: new Date(now + HOUR) },
    { timestamp: new Date(Number.NaN) },
  ];
  let restorable = 0;
  for (const point of points) {
    const single = outcome(() => db.resolve(point));
    const shared = await outcomeOf(() => resolvePoint(history, point, { newest, window: window() }));
    assert.equal(shared, single, JSON.stringify(point));
    if (single.startsWith('commit ')) restorable++;
  }
  assert.ok(restorable > 40, `${restorable} points restorable`);
  for (const seq of [newest - 40, newest - 17, newest]) {
    const a = path.join(dir, `a-${seq}.sqlite`);
    const b = path.join(dir, `b-${seq}.sqlite`);
    materialize(db.log, db.snapshots, seq, a);
    await materializeFrom(history, seq, b);
    assert.ok(readFileSync(a).equals(readFileSync(b)), `commit ${seq} is rebuilt to the same bytes`);
  }
  db.closeNow();
});
