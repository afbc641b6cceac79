// Database snapshots in the NATS object store (3-node cluster), as a node that must rebuild its copy
// reads them: listed per database with their times and sizes, copied byte for byte (in several
// chunks), a missing one answered false, a corrupt one refused; and all of it still quick while a
// NATS server is dead. Reading used nats.js's list() and get(), each through a new single-replica
// consumer that NATS could place on the dead server: every such read then took 5 s to time out (a
// node rebuilding its copy after a failover waited up to 40 s in test/cluster-failover.test.ts).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Base64UrlPaddedCodec } from '@nats-io/obj';
import { ObjectSnapshots } from '../src/cluster/object-snapshots.ts';
import { tempDir } from './helpers/binding.ts';
import { useNatsCluster } from './helpers/nats-cluster.ts';

const nats = useNatsCluster();
const { connectTo } = nats;

test('snapshots in the object store: listed per database, copied exactly, missing and corrupt ones told apart, quick with a NATS server dead', async (t) => {
  const dir = tempDir();
  const nc = await connectTo(nats.cluster().urls);
  const snapshots = await ObjectSnapshots.open(nc, { replicas: 3 });

  // Files of several 128 KiB chunks, and one empty.
  const files = new Map<string, Buffer>();
  const put = async (database: string, seq: number, bytes: Buffer, time: number) => {
    const file = path.join(dir, `${database}-${seq}.sqlite`);
    writeFileSync(file, bytes);
    files.set(`${database}/${seq}`, bytes);
    await snapshots.put(database, seq, file, time);
  };
  await put('db-a', 1, randomBytes(300 * 1024), 1_000);
  await put('db-a', 17, randomBytes(520 * 1024 + 3), 2_000);
  await put('db-b', 5, randomBytes(64 * 1024), 3_000);
  await put('db-a', 9, Buffer.alloc(0), 1_500);

  assert.deepEqual(await snapshots.infos('db-a'), [
    { seq: 1, time: 1_000, bytes: 300 * 1024 },
    { seq: 9, time: 1_500, bytes: 0 },
    { seq: 17, time: 2_000, bytes: 520 * 1024 + 3 },
  ]);
  assert.deepEqual(await snapshots.list('db-b'), [5]);
  assert.deepEqual(await snapshots.list('db'), [], 'a name that only starts like a database is another database');
  const copy = path.join(dir, 'copy.sqlite');
  for (const [key, bytes] of files) {
    const [database, seq] = key.split('/') as [string, string];
    assert.equal(await snapshots.copyTo(database, Number(seq), copy), true);
    assert.ok(readFileSync(copy).equals(bytes), `${key} copied byte for byte`);
  }
  assert.equal(await snapshots.copyTo('db-a', 2, copy), false, 'no snapshot at 2');
  await snapshots.remove('db-a', 1);
  assert.deepEqual(await snapshots.list('db-a'), [9, 17]);
  assert.equal(await snapshots.copyTo('db-a', 1, copy), false, 'a removed snapshot is gone');

  // A snapshot whose stored digest does not match its chunks is refused, never written out as a copy.
  const jsm = await jetstreamManager(nc);
  const stream = 'OBJ_dione-snapshots';
  const metaSubject = (name: string) => `$O.dione-snapshots.M.${Base64UrlPaddedCodec.encode(name)}`;
  const good = await jsm.streams.getMessage(stream, { last_by_subj: metaSubject('db-a/0000000000000011') });
  const meta = good!.json<Record<string, unknown>>();
  await jetstream(nc).publish(metaSubject('db-a/0000000000000063'), JSON.stringify({ ...meta, name: 'db-a/0000000000000063', digest: 'SHA-256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' }));
  writeFileSync(copy, 'before');
  await assert.rejects(snapshots.copyTo('db-a', 0x63, copy), /snapshot db-a\/0000000000000063 is corrupt/);
  assert.equal(readFileSync(copy, 'utf8'), 'before', 'nothing was written');

  // One NATS server dead (not the one leading the object store's stream, whose election is another
  // matter): every listing and copy still answers at once.
  const leader = (await jsm.streams.info(stream)).cluster?.leader;
  const victim = nats.cluster().nodes.findIndex((n) => n.name !== leader);
  const others = nats.cluster().urls.filter((_, i) => i !== victim);
  const survivor = await ObjectSnapshots.open(await connectTo(others), { replicas: 3 });
  await nats.cluster().kill(victim);
  t.after(() => nats.cluster().restart(victim));
  const slowest: number[] = [];
  for (let i = 0; i < 6; i++) {
    const started = Date.now();
    assert.deepEqual(await survivor.list('db-a'), [9, 17, 0x63]);
    assert.equal(await survivor.copyTo('db-a', 17, copy), true);
    assert.ok(readFileSync(copy).equals(files.get('db-a/17')!));
    slowest.push(Date.now() - started);
  }
  t.diagnostic(`list + copy with a NATS server dead: ${slowest.join(', ')} ms`);
  assert.ok(Math.max(...slowest) < 4000, `every list + copy took under 4 s (a read through a consumer on the dead server waits 5 s): ${slowest.join(', ')} ms`);
});
