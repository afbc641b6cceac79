// A node following a database through NATS (3-node cluster): it starts its copy from the newest
// snapshot in the object store, applies the JetStream log (restores included) and equals the
// primary at every point it catches up to, while a long-lived connection keeps reading it.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import type Database from 'better-sqlite3';
import { openSqlite } from '../src/engine/sqlite.ts';
import type { ExecuteRequest } from '../src/api/executor.ts';
import { Follower } from '../src/cluster/follower.ts';
import { ObjectSnapshots } from '../src/cluster/object-snapshots.ts';
import { StreamLog } from '../src/cluster/stream-log.ts';
import { LoggedDatabase } from '../src/log/logged-database.ts';
import { tempDir } from './helpers/binding.ts';
import { useNatsCluster } from './helpers/nats-cluster.ts';
import { mulberry32 } from './helpers/random.ts';

const nats = useNatsCluster();
const { connectTo } = nats;

function run(primary: LoggedDatabase, sql: string): void {
  const response = primary.execute({ queries: [{ sql, params: [] }] } as ExecuteRequest);
  assert.ok(response.success, `${sql}: ${!response.success && response.error}`);
}

function content(db: Database.Database): string {
  const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all() as string[];
  const schema = JSON.stringify(db.prepare('SELECT name, sql FROM sqlite_schema ORDER BY name').raw().all());
  return [schema, ...tables.map((t) => `${t}:${JSON.stringify(db.prepare(`SELECT * FROM "${t}"`).raw().all())}`)].join('\n');
}

test('a follower starts from the object store, applies the JetStream log and equals the primary, restores included', async () => {
  const seed = Number(process.env.DIONE_SEED ?? Date.now() % 100_000);
  const random = mulberry32(seed);
  const dir = tempDir();
  const primaryFile = path.join(dir, 'primary.sqlite');
  const primary = new LoggedDatabase(primaryFile);
  // A restore replaces the primary's file: read it through a new connection each time.
  const primaryContent = () => {
    const db = openSqlite(primaryFile, { readonly: true });
    try {
      return { content: content(db), items: db.prepare('SELECT count(*) FROM items').pluck().get() };
    } finally {
      db.close();
    }
  };
  const writerConnection = await connectTo([nats.cluster().urls[0]!]);
  const log = await StreamLog.open(writerConnection, 'follow', { replicas: 3 });
  const objects = await ObjectSnapshots.open(writerConnection, { replicas: 3 });

  // What a primary node does: its first snapshot to the object store, then every record to the
  // stream; a restore's snapshot goes to the object store before its record.
  const base = primary.snapshots.list()[0]!.seq;
  const scratch = path.join(dir, 'scratch.sqlite');
  primary.snapshots.copyTo(base, scratch);
  await objects.put('follow', base, scratch);
  let shipped = base;
  const ship = async () => {
    for (const record of [...primary.log.read(shipped, Number.MAX_SAFE_INTEGER)]) {
      if (record.kind === 'image') {
        primary.snapshots.copyTo(record.seq, scratch);
        await objects.put('follow', record.seq, scratch);
      }
      await log.append(record);
      shipped = record.seq;
    }
  };

  run(primary, 'CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, made TEXT DEFAULT CURRENT_TIMESTAMP, luck INTEGER DEFAULT (random()))');
  run(primary, 'CREATE TABLE loose (a, b)');
  run(primary, "CREATE TRIGGER stamp AFTER INSERT ON items BEGIN INSERT INTO loose VALUES (new.id, datetime('now')); END");
  await ship();

  const followerConnection = await connectTo([nats.cluster().urls[2]!]);
  const follower = await Follower.start(
    path.join(dir, 'follower.sqlite'),
    'follow',
    await StreamLog.open(followerConnection, 'follow', { replicas: 3 }),
    await ObjectSnapshots.open(followerConnection, { replicas: 3 }),
  );
  assert.equal(follower.sequence, base, 'it starts from the snapshot');
  assert.equal(await follower.catchUp(), primary.engine.commitSequence);
  const reader = openSqlite(path.join(dir, 'follower.sqlite'));
  reader.pragma('query_only = 1');
  const count = reader.prepare('SELECT count(*) FROM items').pluck();
  let restoredTo: string | undefined;
  let checks = 0;
  for (let step = 0; step < 120; step++) {
    const r = random();
    if (step === 60 || step === 100 || (r > 0.75 && r < 0.78 && step > 20)) {
      // A restore on the primary: the follower must take the whole image.
      const target = primary.log.find(Math.max(primary.engine.commitSequence - 15, base + 3))!;
      const { bookmark } = await primary.restore({ bookmark: `${primary.bookmark.slice(0, 9)}${target.seq.toString(16).padStart(8, '0')}${primary.bookmark.slice(17)}` });
      restoredTo = bookmark;
    } else if (r < 0.5) run(primary, `INSERT INTO items (name) VALUES ('n${step} ${'x'.repeat(Math.floor(random() * 2000))}')`);
    else if (r < 0.6) run(primary, `UPDATE items SET name = upper(name) WHERE id % ${2 + Math.floor(random() * 4)} = 0`);
    else if (r < 0.7) run(primary, 'DELETE FROM items WHERE id IN (SELECT id FROM items ORDER BY random() LIMIT 3)');
    else if (r < 0.75) run(primary, `CREATE TABLE IF NOT EXISTS extra${step % 3} (k INTEGER PRIMARY KEY, v BLOB DEFAULT (randomblob(64)))`);
    else run(primary, 'INSERT INTO loose VALUES (randomblob(100), unixepoch())');
    if (random() < 0.25) {
      await ship();
      assert.ok(await follower.waitFor(primary.engine.commitSequence, 10_000), `seed ${seed}: the follower reached ${follower.sequence}`);
      assert.equal(follower.sequence, primary.engine.commitSequence);
      const expected = primaryContent();
      assert.ok(content(reader) === expected.content, `seed ${seed}, step ${step}: the follower differs from the primary`);
      assert.equal(count.get(), expected.items);
      checks++;
    }
  }
  await ship();
  assert.ok(await follower.waitFor(primary.engine.commitSequence, 10_000));
  assert.ok(content(reader) === primaryContent().content, `seed ${seed}: the follower differs at the end`);
  assert.equal(reader.pragma('integrity_check', { simple: true }), 'ok');
  assert.ok(checks > 10 && restoredTo, `seed ${seed}: ${checks} checks, restored: ${restoredTo}`);

  // A new node, with no copy yet, starts from the newest snapshot (the last restore's) and catches up.
  const late = await Follower.start(
    path.join(dir, 'late.sqlite'),
    'follow',
    await StreamLog.open(followerConnection, 'follow', { replicas: 3 }),
    await ObjectSnapshots.open(followerConnection, { replicas: 3 }),
  );
  assert.ok(await late.waitFor(primary.engine.commitSequence, 10_000));
  const lateReader = openSqlite(path.join(dir, 'late.sqlite'), { readonly: true });
  assert.ok(content(lateReader) === primaryContent().content, 'the late follower differs');
  lateReader.close();
  late.close();
  reader.close();
  follower.close();
  primary.closeNow();
});
