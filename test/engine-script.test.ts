// Engine.executeScript: a script too large to hold at once (an import) arrives a window of queries at
// a time and runs as one transaction: one commit for all of it, its meta summed, nothing kept when
// any statement fails. Real SQLite files in a temp dir.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type { ExecuteRequest, Query } from '../src/api/executor.ts';
import { Engine } from '../src/engine/engine.ts';
import { tempDir } from './helpers/binding.ts';

const q = (sql: string): Query => ({ sql, params: [] });
const one = (sql: string): ExecuteRequest => ({ queries: [q(sql)] });

function rows(engine: Engine, sql: string): unknown[][] {
  const r = engine.execute(one(sql));
  assert.ok(r.success, r.success ? '' : r.error);
  return r.results[0]!.rows;
}

function setUp(name: string): Engine {
  const engine = new Engine(path.join(tempDir(), name));
  engine.execute({ queries: [q('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'), q('CREATE TABLE log (id)'), q('CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.id); END')] });
  return engine;
}

/** Windows of inserts: `count` windows of `size` statements, ids from 1. */
function* inserts(count: number, size: number): Generator<Query[]> {
  for (let w = 0; w < count; w++) yield Array.from({ length: size }, (_, i) => q(`INSERT INTO t VALUES (${w * size + i + 1}, 'v${w * size + i + 1}')`));
}

test('every window in one commit, with the meta of all its statements summed and the state after the last', () => {
  const engine = setUp('script-sum.sqlite');
  try {
    const sequence = engine.commitSequence;
    const answer = engine.executeScript(inserts(5, 300));
    assert.ok(answer.success, JSON.stringify(answer));
    assert.equal(answer.statements, 1500);
    assert.equal(engine.commitSequence, sequence + 1, 'one commit');
    assert.equal(answer.bookmark, engine.bookmark);
    const meta = answer.meta!;
    assert.equal(meta.changes, 3000, 'each insert and its trigger row');
    assert.equal(meta.rows_written, 3000);
    assert.equal(meta.last_row_id, 1500);
    assert.equal(meta.changed_db, true);
    // The size as a request made now measures it.
    const after = engine.execute(one('SELECT 1'));
    assert.ok(after.success);
    assert.equal(meta.size_after, after.results[0]!.meta.size_after);
    assert.deepEqual(rows(engine, 'SELECT count(*), (SELECT count(*) FROM log) FROM t'), [[1500, 1500]]);
  } finally {
    engine.close();
  }
});

test('a statement failing in a late window: its error, nothing of any window kept, no commit, and the database serves on', () => {
  const engine = setUp('script-fail.sqlite');
  try {
    const sequence = engine.commitSequence;
    const windows = (function* () {
      yield* inserts(3, 100);
      yield [q("INSERT INTO t VALUES (1000, 'x')"), q("INSERT INTO t VALUES (1, 'again')")];
      yield* inserts(2, 10);
    })();
    const answer = engine.executeScript(windows);
    assert.deepEqual(answer, { success: false, error: 'UNIQUE constraint failed: t.id: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_PRIMARYKEY)' });
    assert.equal(engine.commitSequence, sequence);
    assert.deepEqual(rows(engine, 'SELECT count(*), (SELECT count(*) FROM log) FROM t'), [[0, 0]]);
    const next = engine.executeScript(inserts(1, 3));
    assert.ok(next.success && next.statements === 3);
  } finally {
    engine.close();
  }
});

test('D1 refuses transaction statements in a script as in any request; an empty script commits nothing', () => {
  const engine = setUp('script-rules.sqlite');
  try {
    const sequence = engine.commitSequence;
    const refused = engine.executeScript([[q("INSERT INTO t VALUES (1, 'a')")], [q('BEGIN TRANSACTION')]]);
    assert.equal(refused.success, false);
    const request = engine.execute({ queries: [q("INSERT INTO t VALUES (1, 'a')"), q('BEGIN TRANSACTION')] });
    assert.equal(request.success, false);
    assert.equal(refused.success === false && refused.error, request.success === false && request.error, 'the same error as a request');
    assert.deepEqual(rows(engine, 'SELECT count(*) FROM t'), [[0]]);

    const empty = engine.executeScript([[], []]);
    assert.deepEqual(empty, { success: true, statements: 0, meta: undefined, bookmark: engine.bookmark });
    assert.equal(engine.commitSequence, sequence);
    const reads = engine.executeScript([[q('SELECT 1'), q('SELECT count(*) FROM t')]]);
    assert.ok(reads.success && reads.statements === 2 && reads.meta!.changed_db === false);
    assert.equal(engine.commitSequence, sequence, 'a script that wrote nothing is no commit');
    // Reads first, a write in a later window: the write lock is taken then, and the script commits.
    const later = engine.executeScript([[q('SELECT count(*) FROM t')], [q("INSERT INTO t VALUES (7, 'late')")]]);
    assert.ok(later.success && later.statements === 2, JSON.stringify(later));
    assert.equal(engine.commitSequence, sequence + 1);
    assert.deepEqual(rows(engine, 'SELECT id, v FROM t'), [[7, 'late']]);
  } finally {
    engine.close();
  }
});
