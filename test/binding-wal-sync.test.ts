// The embedded binding's durable writes share syncs: a file database commits at
// synchronous=NORMAL, and every write's answer waits for an fdatasync of the -wal file that covers
// it; writes issued together wait for the same one, and a read issued with them reaches its caller
// after it. The syncs are observed by wrapping node:fs's fdatasyncSync and fsyncSync (the real calls
// still run) and naming the file behind each descriptor (Linux's /proc/self/fd).
import assert from 'node:assert/strict';
import fs, { fstatSync, mkdirSync, readlinkSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import path from 'node:path';
import { after, test } from 'node:test';
import { beginTransaction, open, withTransaction } from '../src/index.ts';
import { tempDir } from './helpers/binding.ts';

const linux = process.platform === 'linux';
const events: string[] = [];
const fileOf = (fd: number) => {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return '';
  }
};
const realFdatasync = fs.fdatasyncSync;
const realFsync = fs.fsyncSync;
/** The next sync of a -wal fails with EIO (as a disk that cannot write the pages back). */
let failNextWalSync = false;
fs.fdatasyncSync = (fd: number) => {
  const file = fileOf(fd);
  if (file.endsWith('-wal') && failNextWalSync) {
    failNextWalSync = false;
    throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO', errno: -5, syscall: 'fdatasync' });
  }
  realFdatasync(fd);
  if (file.endsWith('-wal')) events.push(`sync ${file}`);
};
fs.fsyncSync = (fd: number) => {
  realFsync(fd);
  if (fstatSync(fd).isDirectory()) events.push(`dirsync ${fileOf(fd)}`);
};
syncBuiltinESMExports();
after(() => {
  fs.fdatasyncSync = realFdatasync;
  fs.fsyncSync = realFsync;
  syncBuiltinESMExports();
});

const SCHEMA = 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)';
const insert = 'INSERT INTO t (id, v) VALUES (?, ?)';
const syncs = () => events.filter((e) => e.startsWith('sync '));

function opened(name: string, options: Parameters<typeof open>[1] = {}) {
  const file = path.join(tempDir(), name);
  return { file, db: open(file, options) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A transaction on `db` that has written row 1 and holds the write lock until release() (then it
 * commits, or rolls back with `rollBack`); `ended` settles once it has.
 */
async function holdTransaction(db: ReturnType<typeof open>, options: { rollBack?: boolean } = {}) {
  let release!: () => void;
  const ended = withTransaction(db, async (tx) => {
    await tx.prepare(insert).bind(1, 'tx').run();
    await new Promise<void>((resolve) => {
      release = resolve;
    });
    if (options.rollBack) throw new Error('rolled back');
  }).catch((e) => {
    if (!options.rollBack) throw e;
  });
  await sleep(20);
  return { release, ended };
}

test('a write is answered only after a sync of the WAL that holds it; the first sync also syncs the directory', { skip: !linux && 'reads /proc/self/fd' }, async () => {
  const { file, db } = opened('one.sqlite');
  events.length = 0;
  await db.exec(SCHEMA);
  events.push('answered');
  for (let id = 1; id <= 4; id++) {
    await db.prepare(insert).bind(id, 'x').run();
    events.push('answered');
  }
  const wal = `sync ${realpathSync(file)}-wal`;
  assert.deepEqual(events, [wal, `dirsync ${realpathSync(path.dirname(file))}`, 'answered', ...Array.from({ length: 4 }, () => [wal, 'answered']).flat()]);
  await db.close();
});

test('writes issued together share one sync, and a read issued with them reaches its caller after it', { skip: !linux && 'reads /proc/self/fd' }, async () => {
  const { db } = opened('together.sqlite');
  await db.exec(SCHEMA);
  events.length = 0;
  const note =
    (what: string) =>
    <T>(r: T) => {
      events.push(what);
      return r;
    };
  const answers = Array.from({ length: 16 }, (_, i) =>
    db
      .prepare(insert)
      .bind(i + 1, 'x')
      .run()
      .then(note('answered')),
  );
  // A batch and an exec() issued with them join the group; so does a read that sees their rows.
  const batch = db.batch([db.prepare(insert).bind(100, 'b'), db.prepare(insert).bind(101, 'b')]).then(note('answered'));
  const exec = db.exec("INSERT INTO t (id, v) VALUES (200, 'e')").then(note('answered'));
  const read = db.prepare('SELECT count(*) AS n FROM t').first('n').then(note('read'));
  const results = await Promise.all(answers);
  await Promise.all([batch, exec]);
  assert.equal(await read, 19);
  assert.equal(syncs().length, 1, `one sync for the group: ${events.join(', ')}`);
  assert.ok(events[0]!.startsWith('sync '), `nothing answered before the sync: ${events.join(', ')}`);
  assert.equal(events.filter((e) => e === 'answered').length, 18);
  assert.ok(results.every((r) => r.success && r.meta.changes === 1));
  await db.close();
});

test('reads and failed writes issued without commits wait for no sync', async () => {
  const { db } = opened('reads.sqlite');
  await db.exec(SCHEMA);
  await db.prepare(insert).bind(1, 'x').run();
  events.length = 0;
  for (let i = 0; i < 10; i++) assert.equal(await db.prepare('SELECT v FROM t WHERE id = ?').bind(1).first('v'), 'x');
  await assert.rejects(db.prepare(insert).bind(1, 'again').run(), /UNIQUE constraint failed/);
  assert.deepEqual(syncs(), []);
  await db.close();
});

test("durability 'normal' leaves the syncs to SQLite's checkpoints", async () => {
  const { db } = opened('normal.sqlite', { durability: 'normal' });
  await db.exec(SCHEMA);
  events.length = 0;
  for (let id = 1; id <= 5; id++) await db.prepare(insert).bind(id, 'x').run();
  assert.deepEqual(syncs(), []);
  await db.close();
});

test('a write still waiting for its sync when the handle closes is synced before it is answered', { skip: !linux && 'reads /proc/self/fd' }, async () => {
  const { file, db } = opened('closing.sqlite');
  await db.exec(SCHEMA);
  events.length = 0;
  const pending = db
    .prepare(insert)
    .bind(7, 'last')
    .run()
    .then((r) => {
      events.push('answered');
      return r;
    });
  await db.close();
  assert.equal((await pending).success, true);
  assert.deepEqual(events, [`sync ${realpathSync(file)}-wal`, 'answered']);
  const again = open(file);
  assert.equal(await again.prepare('SELECT v FROM t WHERE id = 7').first('v'), 'last');
  await again.close();
});

test("a write that waited for another handle's transaction waits for its sync too", { skip: !linux && 'reads /proc/self/fd' }, async () => {
  const { file, db } = opened('waits.sqlite', { transactions: true });
  await db.exec(SCHEMA);
  const other = open(file, { transactions: true });
  const { release, ended: held } = await holdTransaction(other);
  events.length = 0;
  const waiting = db
    .prepare(insert)
    .bind(2, 'after')
    .run()
    .then((r) => {
      events.push('answered');
      return r;
    });
  await sleep(20);
  assert.deepEqual(events, [], 'the write waits while the transaction holds the lock');
  release();
  await held;
  assert.equal((await waiting).success, true);
  assert.deepEqual(events.slice(-2), [`sync ${realpathSync(file)}-wal`, 'answered']);
  assert.deepEqual(await db.prepare('SELECT id FROM t ORDER BY id').raw(), [[1], [2]]);
  await other.close();
  await db.close();
});

test("reads issued at every step after another handle's transaction ends never see the waiting write before its sync", { skip: !linux && 'reads /proc/self/fd' }, async () => {
  const { file, db } = opened('steps.sqlite', { transactions: true });
  await db.exec(SCHEMA);
  const other = open(file, { transactions: true });
  const { release, ended: held } = await holdTransaction(other, { rollBack: true });
  const write = db.prepare(insert).bind(2, 'waited').run();
  await sleep(20);
  events.length = 0;
  // One read per microtask step from the moment the transaction lets go: the write runs somewhere among them.
  const reads: Promise<unknown>[] = [];
  const probe = (left: number) => {
    if (left === 0) return;
    reads.push(
      db
        .prepare('SELECT count(*) AS n FROM t WHERE id = 2')
        .first('n')
        .then((n) => events.push(n === 1 ? 'saw the write' : 'did not see it')),
    );
    void Promise.resolve().then(() => probe(left - 1));
  };
  release();
  probe(12);
  await held;
  assert.equal((await write).success, true);
  await Promise.all(reads);
  const seen = events.indexOf('saw the write');
  const synced = events.findIndex((e) => e.startsWith('sync '));
  assert.ok(seen === -1 || (synced !== -1 && synced < seen), `a read saw the write before its sync: ${events.join(', ')}`);
  await other.close();
  await db.close();
});

test('a path through a symbolic link: the WAL synced is the one SQLite writes', { skip: !linux && 'reads /proc/self/fd' }, async () => {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'real', 'sub'), { recursive: true });
  symlinkSync(path.join(dir, 'real', 'sub'), path.join(dir, 'link'));
  // link/.. is real/ to the filesystem (and SQLite), the temp dir to a path read as text: a stray
  // -wal there must not be the file synced.
  fs.writeFileSync(path.join(dir, 'db.sqlite-wal'), '');
  const db = open(`${path.join(dir, 'link')}/../db.sqlite`);
  await db.exec(SCHEMA);
  events.length = 0;
  await db.prepare(insert).bind(1, 'x').run();
  assert.deepEqual(syncs(), [`sync ${realpathSync(path.join(dir, 'real'))}/db.sqlite-wal`]);
  await db.close();
});

test("two handles on one file through different paths (a symbolic link) wait for each other's transactions without blocking the thread", async () => {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'real'));
  symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
  const direct = open(path.join(dir, 'real', 'db.sqlite'), { transactions: true });
  const linked = open(path.join(dir, 'link', 'db.sqlite'), { transactions: true });
  await direct.exec(SCHEMA);
  const { release, ended: held } = await holdTransaction(direct);
  const started = performance.now();
  const write = linked.prepare(insert).bind(2, 'linked').run();
  // The thread stays free while the write waits (SQLite's busy handler would sleep it, and the transaction with it).
  await sleep(50);
  assert.ok(performance.now() - started < 1000, `the thread was blocked for ${Math.round(performance.now() - started)} ms`);
  release();
  await held;
  assert.equal((await write).success, true);
  assert.deepEqual(await linked.prepare('SELECT id FROM t ORDER BY id').raw(), [[1], [2]]);
  await linked.close();
  await direct.close();
});

test('a relative path keeps naming the same file after a chdir (a transaction opens its own connection later)', async () => {
  const dir = tempDir();
  const cwd = process.cwd();
  process.chdir(dir);
  let db: ReturnType<typeof open>;
  try {
    db = open('relative.sqlite', { transactions: true });
  } finally {
    process.chdir(cwd);
  }
  await db.exec(SCHEMA);
  process.chdir(tempDir());
  try {
    await withTransaction(db, async (tx) => {
      await tx.prepare(insert).bind(1, 'in a transaction').run();
    });
  } finally {
    process.chdir(cwd);
  }
  assert.equal(await db.prepare('SELECT v FROM t WHERE id = 1').first('v'), 'in a transaction');
  await db.close();
});

test("the database's directory removed under an open handle: the write is answered as not durable, and every later request is refused", async () => {
  const dir = tempDir();
  const file = path.join(dir, 'gone', 'removed.sqlite');
  const db = open(file, { transactions: true });
  await db.exec(SCHEMA);
  await db.close();
  // A fresh handle, whose first sync is the first to sync the directory: it is gone.
  const handle = open(file, { transactions: true });
  assert.equal(await handle.prepare('SELECT count(*) AS n FROM t').first('n'), 0);
  rmSync(path.dirname(file), { recursive: true });
  const refusal = /the database's WAL could not be synced, so its last writes may not be durable \(reopen it\)/;
  await assert.rejects(handle.prepare(insert).bind(1, 'lost').run(), refusal);
  await assert.rejects(handle.prepare('SELECT count(*) FROM t').first(), refusal);
  await assert.rejects(handle.exec('SELECT 1'), refusal);
  await assert.rejects(
    withTransaction(handle, async () => {}),
    refusal,
  );
  await handle.close();
});

test('a sync that fails: every answer that waited for it is the failure, and the handle and its open transaction refuse from then on', { skip: !linux && 'reads /proc/self/fd' }, async () => {
  const { file, db } = opened('eio.sqlite', { transactions: true });
  await db.exec(SCHEMA);
  const tx = await beginTransaction(db, { mode: 'deferred' });
  failNextWalSync = true;
  const [write, read] = await Promise.allSettled([db.prepare(insert).bind(1, 'maybe lost').run(), db.prepare('SELECT count(*) AS n FROM t').first('n')]);
  const refusal = /the database's WAL could not be synced, so its last writes may not be durable \(reopen it\): disk I\/O error: SQLITE_IOERR/;
  assert.ok(write.status === 'rejected' && refusal.test((write.reason as Error).message), String(write.status === 'rejected' ? write.reason : 'acknowledged'));
  // The read saw the row the failed sync may have lost: it is not shown.
  assert.ok(read.status === 'rejected' && refusal.test((read.reason as Error).message), String(read.status === 'rejected' ? read.reason : read.value));
  await assert.rejects(db.prepare('SELECT 1').first(), refusal);
  await assert.rejects(tx.db.prepare('SELECT 1').first(), refusal);
  await assert.rejects(
    withTransaction(db, async () => {}),
    refusal,
  );
  await tx.rollback().catch(() => {});
  await db.close();
  // What SQLite kept is served again after reopening (the sync's failure said it may not be durable).
  const again = open(file);
  assert.equal(await again.prepare('SELECT count(*) AS n FROM t').first('n'), 1);
  await again.close();
});

test('in memory and read-only handles sync nothing', async () => {
  const memory = open(':memory:');
  await memory.exec(SCHEMA);
  events.length = 0;
  await memory.prepare(insert).bind(1, 'm').run();
  assert.deepEqual(syncs(), []);
  await memory.close();
  const { file, db } = opened('readonly.sqlite');
  await db.exec(SCHEMA);
  await db.prepare(insert).bind(1, 'r').run();
  await db.close();
  const readonly = open(file, { readonly: true });
  events.length = 0;
  assert.equal(await readonly.prepare('SELECT v FROM t').first('v'), 'r');
  assert.deepEqual(syncs(), []);
  await readonly.close();
});
