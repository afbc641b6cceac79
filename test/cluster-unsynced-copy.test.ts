// A cluster node's copy takes the log's records without a sync per batch (the log is what is
// durable). Its marker says which boot of the machine it was in use in: a copy in use when the
// machine went down is in doubt and is rebuilt from a snapshot; a copy whose process merely died
// is kept (the kernel held its writes), and a clean stop syncs it and removes the marker.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { copyInDoubt, markSynced, markUnsynced } from '../src/cluster/unsynced-copy.ts';
import { tempDir } from './helpers/binding.ts';
import { fakes, node } from './helpers/cluster-fakes.ts';

const DB = 'unsynced';

test('the marker: absent or of this boot, the copy stands; of another boot, it is in doubt', () => {
  const file = path.join(tempDir(), 'copy.sqlite');
  assert.equal(copyInDoubt(file), false);
  markUnsynced(file);
  assert.equal(copyInDoubt(file), false, 'a process that died in this boot lost nothing the kernel held');
  writeFileSync(`${file}.unsynced`, 'a boot long ago');
  assert.equal(copyInDoubt(file), true);
  markSynced(file);
  assert.equal(copyInDoubt(file), false);
});

test('a follower marks its copy while it applies, and a stop syncs it and clears the mark; a copy in doubt is rebuilt from the log', async () => {
  const dir = tempDir();
  const shared = fakes(60_000, DB);
  const start = async (name: string) => (await node(name, dir, shared)).db;
  const a = await start('a');
  let b = await start('b');
  assert.equal(b.role, 'follower');
  const write = (text: string) => a.execute({ queries: [{ sql: text, params: [] }] }, true);
  await write('CREATE TABLE t (v)');
  for (let i = 0; i < 20; i++) await write(`INSERT INTO t VALUES (${i})`);
  const copies = readdirSync(path.join(dir, 'b'));
  const marker = copies.find((f) => f.endsWith('.unsynced'));
  assert.ok(marker, `no marker beside b's copy: ${copies.join(', ')}`);
  const markerPath = path.join(dir, 'b', marker);
  const copy = markerPath.slice(0, -'.unsynced'.length);
  const caughtUp = async () => {
    for (let i = 0; i < 500 && b.sequence < a.sequence; i++) await new Promise((r) => setTimeout(r, 10));
    return b.sequence;
  };
  assert.equal(await caughtUp(), a.sequence);
  await b.stop();
  assert.equal(existsSync(markerPath), false, 'a clean stop clears the mark');
  assert.equal(existsSync(copy), true);

  // As if the machine went down while b applied: its copy is not trusted, and is rebuilt.
  writeFileSync(markerPath, 'a boot long ago');
  const restarted = await node('b', dir, shared);
  b = restarted.db;
  const logger = restarted.logger;
  assert.ok(
    logger.lines.some((l) => l.message.includes('unsynced applies')),
    `b did not say it dropped its copy: ${JSON.stringify(logger.lines.map((l) => l.message))}`,
  );
  assert.equal(await caughtUp(), a.sequence);
  const read = await b.execute({ queries: [{ sql: 'SELECT count(*) FROM t', params: [] }], bookmark: 'first-unconstrained' }, false);
  assert.ok('success' in read && read.success, JSON.stringify(read));
  assert.deepEqual(read.results[0]!.rows, [[20]]);
  await b.stop();
  await a.stop();
});
