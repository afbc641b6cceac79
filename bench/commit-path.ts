// npm run bench:commit-path: where a durable single-row insert's time goes when a write log follows
// the WAL, one step at a time, against raw better-sqlite3 in the same run. It answers how fast the
// history column of `npm run bench` could be under each way of making a commit durable, without
// the binding and engine on top (that column is this last path plus Dione's own work).
// Every path inserts one row into a 100k-row table and writes a number into the header (as Dione's
// commit sequence does) in one transaction, on its own file:
//   raw                 synchronous=FULL: SQLite syncs the WAL at each commit (the baseline);
//   wal synced          synchronous=NORMAL, then the caller syncs the -wal itself (what answering
//                       on the WAL's own sync costs: the same sync, taken by Dione);
//   + capture           and the new commit is read out of the WAL (src/log/wal.ts);
//   + packed            and packed as a log record is (src/log/record.ts), but not written;
//   + log written       and appended to a log that is not synced (src/log/file-store.ts): the WAL
//                       is the durable tail, as crash recovery already allows;
//   log synced          Dione's path today: SQLite at NORMAL, the commit captured, appended, and
//                       the log synced before the answer;
//   wal synced, thread  the WAL synced by the caller, and a thread of its own told of each commit:
//                       it captures, appends and syncs the log every 5 ms (commit-path-thread.ts),
//                       off the writer's path (a design that answers before the log holds a commit).
// Reproduce: npm run bench:commit-path [-- --rounds 5 --seconds 0.5]
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { FileLogStore } from '../src/log/file-store.ts';
import { encodeRecord, type LogRecord } from '../src/log/record.ts';
import { WalReader } from '../src/log/wal.ts';
import { numberFlag } from './harness.ts';

const ROUNDS = numberFlag('rounds', 5);
const SECONDS = numberFlag('seconds', 0.5, 0.05);
const ROWS = 100_000;
// A worker's .ts module is loaded through tsx's loader, registered in the worker first (Node 20
// does not apply the parent's --import to a worker's entry).
const THREAD_SOURCE = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(new URL('./commit-path-thread.ts', import.meta.url).href)}); });`;
const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-commit-path-'));

interface Path {
  name: string;
  /** The WAL is synced by SQLite at each commit (FULL) or not (NORMAL). */
  synchronous: 'FULL' | 'NORMAL';
  capture: boolean;
  /** Where captured commits go: nowhere, packed only, a log left to the OS, a log synced per commit. */
  log: 'none' | 'packed' | 'written' | 'synced';
  /** The caller syncs the -wal after each commit. */
  syncWal: boolean;
  /** A log-writer thread captures and logs the commits (capture and log are then false/'none' here). */
  thread?: boolean;
}

const paths: Path[] = [
  { name: 'raw', synchronous: 'FULL', capture: false, log: 'none', syncWal: false },
  { name: 'wal synced', synchronous: 'NORMAL', capture: false, log: 'none', syncWal: true },
  { name: '+ capture', synchronous: 'NORMAL', capture: true, log: 'none', syncWal: true },
  { name: '+ packed', synchronous: 'NORMAL', capture: true, log: 'packed', syncWal: true },
  { name: '+ log written', synchronous: 'NORMAL', capture: true, log: 'written', syncWal: true },
  { name: 'log synced (today)', synchronous: 'NORMAL', capture: true, log: 'synced', syncWal: false },
  { name: 'wal synced, thread', synchronous: 'NORMAL', capture: false, log: 'none', syncWal: true, thread: true },
];

/** One path's database, seeded, with what its commits go through. */
async function prepare(p: Path, index: number) {
  const file = path.join(dir, `path-${index}.sqlite`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, qty INTEGER)');
  const insert = db.prepare('INSERT INTO items (id, name, price, qty) VALUES (?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= ROWS; i++) insert.run(i, `item ${i}`, i * 0.25, i % 100);
  })();
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.pragma(`synchronous = ${p.synchronous}`);
  let nextId = ROWS + 1;
  let seq = 0;
  const commit = db.transaction(() => {
    insert.run(nextId++, 'new', 2.5, 1);
    db.pragma(`user_version = ${++seq}`);
  });
  const wal = p.capture ? new WalReader(`${file}-wal`) : undefined;
  const log = p.log === 'none' || p.log === 'packed' ? undefined : new FileLogStore(path.join(dir, `path-${index}-history`), undefined, { sync: p.log === 'synced', owner: true });
  let walFd: number | undefined;
  let logged = 0;
  const durable = new Int32Array(new SharedArrayBuffer(4));
  const thread = p.thread ? new Worker(THREAD_SOURCE, { eval: true, workerData: { file, historyDir: path.join(dir, `path-${index}-history`), durable: durable.buffer } }) : undefined;
  // The thread's path checkpoints as Dione does: once the WAL holds 4 MiB and the log holds every
  // commit in it durably (asked for, and waited on, then).
  if (thread) db.pragma('wal_autocheckpoint = 0');
  let walFrames = 0;
  if (thread) await once(thread, 'message');
  const op = () => {
    commit();
    if (wal) {
      for (const c of wal.read()) {
        const record: LogRecord = { kind: 'pages', seq: logged + 1, time: Date.now(), pageSize: c.pageSize, pages: c.pages, images: c.images, position: c.position };
        if (p.log === 'packed') encodeRecord(record);
        else log?.append(record, logged);
        logged++;
      }
      log?.flush();
    }
    if (p.syncWal) {
      walFd ??= openSync(`${file}-wal`, 'r+');
      fdatasyncSync(walFd);
    }
    if (thread) {
      thread.postMessage('commit');
      walFrames += 2;
      if (walFrames * 4120 > 4 * 1024 * 1024) {
        thread.postMessage('sync');
        const deadline = Date.now() + 10_000;
        while (Atomics.load(durable, 0) < seq) {
          if (Date.now() > deadline) throw new Error(`the log-writer thread holds ${Atomics.load(durable, 0)} of ${seq} commits after 10 s`);
          Atomics.wait(durable, 0, Atomics.load(durable, 0), 100);
        }
        db.pragma('wal_checkpoint(RESTART)');
        walFrames = 0;
      }
    }
  };
  const close = async () => {
    if (thread) {
      thread.postMessage('end');
      await once(thread, 'exit');
      if (Atomics.load(durable, 0) !== seq) throw new Error(`the log-writer thread logged ${Atomics.load(durable, 0)} commits of ${seq}`);
    }
    wal?.close();
    log?.close();
    if (walFd !== undefined) closeSync(walFd);
    db.close();
  };
  return { op, close };
}

/** Runs `op` for SECONDS, each call awaited as the binding's are, returns ops/s. */
async function measure(op: () => void): Promise<number> {
  let n = 0;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  while (performance.now() < deadline || n < 5) {
    for (let k = 0; k < 16; k++) {
      op();
      await null;
      n++;
    }
  }
  return (n / (performance.now() - start)) * 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const prepared = [];
  for (const [index, p] of paths.entries()) prepared.push(await prepare(p, index));
  const runs = paths.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < paths.length; k++) runs[k]!.push(await measure(prepared[k]!.op));
  }
  for (const p of prepared) await p.close();
  console.log(`dione bench:commit-path: single-row durable inserts into ${ROWS} rows, each with a header number; ${ROUNDS} rounds of ${SECONDS}s, median`);
  console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  const raw = median(runs[0]!);
  console.log(`${'path'.padEnd(20)} ${'ops/s'.padStart(8)} ${'µs/op'.padStart(7)} ${'ratio'.padStart(6)}`);
  paths.forEach((p, k) => {
    const ops = median(runs[k]!);
    console.log(`${p.name.padEnd(20)} ${ops.toFixed(0).padStart(8)} ${(1e6 / ops).toFixed(1).padStart(7)} ${(ops / raw).toFixed(2).padStart(5)}×`);
  });
  console.log(`reproduce: npm run bench:commit-path -- --rounds ${ROUNDS} --seconds ${SECONDS}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
