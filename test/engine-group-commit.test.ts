// Group commit when SQLite itself rolls the whole transaction back: on a full disk a statement can
// end the transaction, and every request of the group must then get the real error (the old code
// answered "no such savepoint" to all of them). Real SQLite on a real, small tmpfs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ExecuteRequest } from '../src/api/executor.ts';
import { Engine } from '../src/engine/engine.ts';
import { tempDir } from './helpers/binding.ts';

const one = (sql: string): ExecuteRequest => ({ queries: [{ sql, params: [] }] });

test('a group whose transaction SQLite rolled back (disk full) answers every request with the real error, and keeps nothing', (t) => {
  if (process.getuid?.() !== 0) return t.skip('mounting a tmpfs needs root: this test cannot make a small disk');
  const disk = tempDir();
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', disk]);
  try {
    const engine = new Engine(path.join(disk, 'group.sqlite'));
    try {
      assert.equal(engine.execute(one('CREATE TABLE t (v)')).success, true);
      const before = engine.commitSequence;
      const tooBig = one('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) INSERT INTO t SELECT randomblob(1000) FROM c');
      const answers = engine.executeMany([one('INSERT INTO t VALUES (1)'), tooBig, one('INSERT INTO t VALUES (2)')]);
      assert.deepEqual(
        answers.map((a) => (a.success ? 'committed' : a.error)),
        Array(3).fill('database or disk is full: SQLITE_FULL'),
      );
      const count = engine.execute(one('SELECT count(*) FROM t'));
      assert.ok(count.success);
      assert.deepEqual(count.results[0]!.rows, [[0]]);
      assert.equal(engine.commitSequence, before, 'nothing was committed');
      // The connection is usable: a small group commits once there is room again.
      const small = engine.executeMany([one('INSERT INTO t VALUES (3)'), one('INSERT INTO t VALUES (4)')]);
      assert.deepEqual(
        small.map((a) => a.success),
        [true, true],
      );
    } finally {
      engine.close();
    }
  } finally {
    execFileSync('umount', [disk]);
    rmSync(disk, { recursive: true, force: true });
  }
});

// FTS5 writes out its pending terms when the next request's savepoint opens: in D1 each request is
// its own transaction, so those writes are in no request's changes (miniflare 4.20260426: 3 and 1).
// Before the fix the request after an FTS5 insert counted them (5, once 39 with a merge).
test("in a group, FTS5's pending writes flushed at the next request's savepoint are in no request's changes", () => {
  const engine = new Engine(path.join(tempDir(), 'fts.sqlite'));
  try {
    assert.equal(engine.execute({ queries: [{ sql: 'CREATE VIRTUAL TABLE f USING fts5(body)', params: [] }, { sql: 'CREATE TABLE e (x)', params: [] }] }).success, true);
    for (let round = 0; round < 3; round++) {
      const answers = engine.executeMany([
        one("INSERT INTO f VALUES ('hello world')"),
        one('INSERT INTO e VALUES (1)'),
        one("INSERT INTO f VALUES ('hello there')"),
        one('INSERT INTO e VALUES (2)'),
      ]);
      assert.deepEqual(
        answers.map((a) => (a.success ? [a.results[0]!.meta.changes, a.results[0]!.meta.rows_written] : a.error)),
        [
          [3, 1],
          [1, 1],
          [3, 1],
          [1, 1],
        ],
      );
    }
  } finally {
    engine.close();
  }
});
