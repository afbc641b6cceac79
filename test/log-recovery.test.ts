// A history outlives runs without it: commits made with the log off (and checkpointed away) are not
// in the log, so reopening with the log starts the history again from the database as it is;
// bookmarks from before stay restorable, and the gap is refused with its reason.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { HistoryError, history, open } from '../src/index.ts';
import { tempDir } from './helpers/binding.ts';

test('commits made without the log are picked up as a new starting point, older bookmarks still restore', async () => {
  const file = path.join(tempDir(), 'gap.sqlite');
  const logged = open(file, { history: true });
  await logged.exec('CREATE TABLE t (v INTEGER)');
  await logged.prepare('INSERT INTO t VALUES (1)').run();
  const early = history(logged).bookmark();
  await logged.close();

  // Without the log: enough writes that SQLite checkpoints on its own, then a close that checkpoints.
  const plain = open(file);
  const blob = 'x'.repeat(3000);
  for (let i = 0; i < 30; i++) {
    await plain.batch(Array.from({ length: 50 }, () => plain.prepare('INSERT INTO t VALUES (?)').bind(blob.length + i)));
  }
  const plainSession = plain.withSession();
  await plainSession.prepare('SELECT 1').first();
  const gapBookmark = plainSession.getBookmark()!;
  await plain.close();

  const again = open(file, { history: true });
  const resumed = history(again).bookmark();
  assert.equal(resumed.slice(0, 17), gapBookmark.slice(0, 17), 'the history continues at the commit the database reached');
  assert.equal(resumed.slice(27), early.slice(27), 'same history, same tag');
  assert.equal((await again.prepare('SELECT count(*) AS n FROM t').first('n')) as number, 1501);
  await again.prepare('INSERT INTO t VALUES (2)').run();

  const midGap = `${gapBookmark.slice(0, 9)}${(Number.parseInt(gapBookmark.slice(9, 17), 16) - 10).toString(16).padStart(8, '0')}${resumed.slice(17)}`;
  await assert.rejects(history(again).restore({ bookmark: midGap }), (e: unknown) => e instanceof HistoryError && /does not hold that commit/.test(e.message));
  assert.equal((await again.prepare('SELECT count(*) AS n FROM t').first('n')) as number, 1502);

  await history(again).restore({ bookmark: early });
  assert.deepEqual((await again.prepare('SELECT v FROM t').all()).results, [{ v: 1 }]);
  await again.close();
});
