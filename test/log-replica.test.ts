// A replica kept equal to a primary from its log's page records, read all along through
// long-lived connections: content equal at every applied bookmark (randomized, seeded), an open
// read transaction defers an apply, and a replica killed mid-apply is rolled back by SQLite to the
// state before it, from which applying again reaches the primary.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import type Database from 'better-sqlite3';
import { openSqlite } from '../src/engine/sqlite.ts';
import type { ExecuteRequest } from '../src/api/executor.ts';
import { DirectorySnapshots, FileLogStore } from '../src/log/file-store.ts';
import { historyDirOf, LoggedDatabase } from '../src/log/logged-database.ts';
import { materialize } from '../src/log/pages.ts';
import type { PagesRecord } from '../src/log/record.ts';
import { imageRecord, prepareReplicaFile, ReplicaFile } from '../src/log/replica.ts';
import { tempDir } from './helpers/binding.ts';
import { root } from './helpers/paths.ts';
import { mulberry32 } from './helpers/random.ts';

function run(primary: LoggedDatabase, sql: string, params: unknown[] = []): void {
  const response = primary.execute({ queries: [{ sql, params: params as never }] } as ExecuteRequest);
  assert.ok(response.success, `${sql}: ${!response.success && response.error}`);
}

/** Every table's rows (schema included), in a stable order, as text. */
function content(db: Database.Database): string {
  const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all() as string[];
  const parts = [JSON.stringify(db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name').raw().all())];
  for (const t of tables) {
    if (t.startsWith('sqlite_stat')) continue;
    const rows = db.prepare(`SELECT * FROM "${t}"`).raw().all() as unknown[][];
    parts.push(`${t}:${JSON.stringify(rows.map((r) => r.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : v))).sort())}`);
  }
  return parts.join('\n');
}

function pagesSince(primary: LoggedDatabase, from: number): PagesRecord[] {
  return [...primary.log.read(from, Number.MAX_SAFE_INTEGER)].filter((r): r is PagesRecord => r.kind === 'pages');
}

/** A replica of `primary` as it is now, with a reader connection. */
function startReplica(primary: LoggedDatabase, file: string) {
  const seq = primary.engine.commitSequence;
  materialize(primary.log, primary.snapshots, seq, file);
  prepareReplicaFile(file, seq);
  const replica = new ReplicaFile(file);
  const reader = openSqlite(file);
  reader.pragma('query_only = 1');
  return { replica, reader };
}

test('a replica fed page records equals the primary at every applied point, read through live connections', () => {
  const seed = Number(process.env.DIONE_SEED ?? Date.now() % 100_000);
  const random = mulberry32(seed);
  const dir = tempDir();
  const primary = new LoggedDatabase(path.join(dir, 'primary.sqlite'), {}, { snapshotBytes: 64 * 1024, checkpointBytes: 256 * 1024 });
  const primaryReader = openSqlite(path.join(dir, 'primary.sqlite'), { readonly: true });
  run(primary, 'CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, made TEXT DEFAULT CURRENT_TIMESTAMP, luck INTEGER DEFAULT (random()))');
  run(primary, 'CREATE TABLE loose (a, b)');
  const { replica, reader } = startReplica(primary, path.join(dir, 'replica.sqlite'));
  // Prepared once, used across every apply: they must see each new state.
  const count = reader.prepare('SELECT count(*) FROM items').pluck();
  const tables = reader.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck();
  let applies = 0;
  let ddl = 0;
  for (let step = 0; step < 300; step++) {
    const r = random();
    if (r < 0.35) run(primary, 'INSERT INTO items (name) VALUES (?)', [`n${step} ${'x'.repeat(Math.floor(random() * 3000))}`]);
    else if (r < 0.45) run(primary, 'INSERT INTO loose SELECT randomblob(?), datetime(\'now\')', [1 + Math.floor(random() * 5000)]);
    else if (r < 0.55) run(primary, 'UPDATE items SET name = upper(name) WHERE id % ? = 0', [2 + Math.floor(random() * 5)]);
    else if (r < 0.62) run(primary, 'DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT ?)', [1 + Math.floor(random() * 20)]);
    else if (r < 0.66) {
      ddl++;
      const name = `t${step}`;
      run(primary, `CREATE TABLE ${name} (k INTEGER PRIMARY KEY, v TEXT)`);
      run(primary, `INSERT INTO ${name} (v) SELECT hex(randomblob(200)) FROM items LIMIT 50`);
      if (random() < 0.5) run(primary, `CREATE INDEX ${name}_v ON ${name} (v)`);
      if (random() < 0.3) run(primary, `DROP TABLE ${name}`);
    } else if (r < 0.7) run(primary, 'DELETE FROM loose');
    else run(primary, 'INSERT INTO loose VALUES (?, unixepoch())', [step]);
    if (random() < 0.3) {
      const records = pagesSince(primary, replica.sequence);
      assert.ok(replica.apply(records), 'no reader holds the replica');
      applies++;
      assert.equal(replica.sequence, primary.engine.commitSequence);
      assert.equal(content(reader), content(primaryReader), `seed ${seed}, step ${step}`);
      assert.equal(count.get(), primaryReader.prepare('SELECT count(*) FROM items').pluck().get());
      assert.equal(tables.get(), primaryReader.prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck().get());
    }
  }
  assert.ok(replica.apply(pagesSince(primary, replica.sequence)));
  assert.equal(content(reader), content(primaryReader), `seed ${seed}`);
  assert.equal(reader.pragma('integrity_check', { simple: true }), 'ok');
  assert.equal(reader.pragma('journal_mode', { simple: true }), 'delete');
  assert.ok(applies > 20 && ddl > 3, `${applies} applies, ${ddl} schema changes`);

  // Negative control: a reader that is one record behind differs.
  run(primary, 'INSERT INTO items (name) VALUES (?)', ['one more']);
  assert.notEqual(content(reader), content(primaryReader));
  primaryReader.close();
  reader.close();
  replica.close();
  primary.closeNow();
});

test('an open read transaction on the replica defers the apply; it goes through once the reader is done', () => {
  const dir = tempDir();
  const primary = new LoggedDatabase(path.join(dir, 'p.sqlite'));
  run(primary, 'CREATE TABLE t (v INTEGER)');
  for (let i = 0; i < 20; i++) run(primary, 'INSERT INTO t VALUES (?)', [i]);
  const { replica, reader } = startReplica(primary, path.join(dir, 'r.sqlite'));
  run(primary, 'INSERT INTO t VALUES (100)');
  const iterator = reader.prepare('SELECT v FROM t').iterate();
  iterator.next();
  const records = pagesSince(primary, replica.sequence);
  assert.equal(replica.apply(records), false);
  // The reader finishes on the state it started with.
  let seen = 1;
  for (const _ of iterator) seen++;
  assert.equal(seen, 20);
  assert.equal(replica.apply(records), true);
  assert.equal(reader.prepare('SELECT count(*) FROM t').pluck().get(), 21);
  reader.close();
  replica.close();
  primary.closeNow();
});

test('a replica killed in the middle of applies comes back whole at a record boundary, and catches up', async () => {
  const dir = tempDir();
  const primaryFile = path.join(dir, 'p.sqlite');
  const primary = new LoggedDatabase(primaryFile);
  run(primary, 'CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)');
  const start = primary.engine.commitSequence;
  const replicaFile = path.join(dir, 'r.sqlite');
  materialize(primary.log, primary.snapshots, start, replicaFile);
  prepareReplicaFile(replicaFile, start);
  // Records that rewrite and shrink many pages, so a kill lands mid-apply.
  for (let i = 0; i < 40; i++) {
    run(primary, 'INSERT INTO t (v) SELECT randomblob(3000) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5)');
    if (i % 7 === 6) run(primary, 'DELETE FROM t WHERE k % 2 = 0');
  }
  primary.closeNow();
  const log = new FileLogStore(historyDirOf(primaryFile));
  const snapshots = new DirectorySnapshots(historyDirOf(primaryFile));
  const worker = path.join(root, 'test', 'fixtures', 'replica-apply-worker.ts');
  const positions: number[] = [];
  let killedMidway = 0;
  for (let round = 0; round < 8; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', worker, primaryFile, replicaFile], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    const closed = new Promise((r) => child.once('close', r));
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    // Each round lets the worker get further before the kill (by its own progress, not by the clock:
    // a loaded machine may take longer than any fixed delay just to read the log).
    let exited = false;
    void closed.then(() => (exited = true));
    for (const until = Date.now() + 10_000; !exited && (out.match(/applied/g)?.length ?? 0) < round * 5 && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 1));
    }
    await new Promise((r) => setTimeout(r, 1 + round));
    if (child.exitCode === null) {
      process.kill(child.pid!, 'SIGKILL');
      killedMidway++;
    }
    await closed;
    // Reopening rolls a hot journal back: the file is exactly the primary at the sequence it names.
    const reopened = new ReplicaFile(replicaFile);
    const at = reopened.sequence;
    reopened.close();
    const expected = path.join(dir, `expected-${round}.sqlite`);
    materialize(log, snapshots, at, expected);
    const a = openSqlite(replicaFile, { readonly: true });
    const b = openSqlite(expected, { readonly: true });
    assert.equal(a.pragma('integrity_check', { simple: true }), 'ok', out);
    assert.equal(content(a), content(b), `round ${round}, replica at ${at}`);
    a.close();
    b.close();
    positions.push(at);
  }
  assert.ok(new Set(positions).size > 2, `the kills landed at different records: ${positions}`);
  assert.ok(killedMidway > 0);
  // Applying to the end after all the kills gives the primary's content exactly.
  const replica = new ReplicaFile(replicaFile);
  const rest = [...log.read(replica.sequence, Number.MAX_SAFE_INTEGER)] as PagesRecord[];
  assert.ok(replica.apply(rest));
  assert.equal(replica.sequence, log.last()!.seq);
  const a = openSqlite(replicaFile, { readonly: true });
  const b = openSqlite(primaryFile, { readonly: true });
  assert.equal(content(a), content(b));
  a.close();
  b.close();
  replica.close();
  log.close();
});

test('after a restore, a long-lived connection to a replica re-reads the schema even where the restored history recreates it', async () => {
  const dir = tempDir();
  const primary = new LoggedDatabase(path.join(dir, 'p.sqlite'));
  run(primary, 'CREATE TABLE one (v)');
  const point = primary.engine.commitSequence;
  const bookmarkOf = (seq: number) => `${primary.bookmark.slice(0, 9)}${seq.toString(16).padStart(8, '0')}${primary.bookmark.slice(17)}`;
  run(primary, 'CREATE TABLE two (v)');
  const { replica, reader } = startReplica(primary, path.join(dir, 'r.sqlite'));
  assert.deepEqual(reader.prepare("SELECT name FROM sqlite_schema WHERE name <> '_cf_METADATA' ORDER BY name").pluck().all(), ['one', 'two']);
  reader.prepare('SELECT * FROM two').all();

  // Restore to before `two`, then create a different table: without care, the schema cookie would
  // be back at the value the reader parsed, with other tables behind it.
  await primary.restore({ bookmark: bookmarkOf(point) });
  const image = [...primary.log.read(replica.sequence, Number.MAX_SAFE_INTEGER)][0]!;
  assert.equal(image.kind, 'image');
  const file = path.join(dir, 'image.sqlite');
  primary.snapshots.copyTo(image.seq, file);
  assert.ok(replica.applyImage(imageRecord(file, image.seq)));
  run(primary, 'CREATE TABLE three (a, b)');
  run(primary, "INSERT INTO three VALUES (1, 'x')");
  assert.ok(replica.apply(pagesSince(primary, replica.sequence)));
  assert.deepEqual(reader.prepare('SELECT a, b FROM three').raw().all(), [[1, 'x']]);
  assert.throws(() => reader.prepare('SELECT * FROM two').all(), /no such table: two/);
  reader.close();
  replica.close();
  primary.closeNow();
});
