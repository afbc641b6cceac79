// A worker thread of the pool: it hosts many databases, opening each on its first request and
// closing it when the pool says so. SQLite work runs here, off the server's HTTP thread; a query
// that runs past the query timeout is interrupted in place by the engine, so a worker is never
// killed to stop one.
import { hostname } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { setHistoryReporter } from '../../log/report.ts';
import { Failure, failureOf, HostedDatabase } from './hosted-database.ts';
import type { DatabaseRef, FromWorker, HostCall, HostFailureData, ToWorker, WorkerSettings } from './protocol.ts';
import { Slots } from './slots.ts';

const settings = workerData as WorkerSettings;
const me = settings.index;
const slots = new Slots(settings.slots);
const port = parentPort!;

/** The copies this worker holds, by database uuid. */
const databases = new Map<string, HostedDatabase>();
/** Copies still opening (cluster mode opens asynchronously), with the calls waiting for them. */
const opening = new Map<string, Promise<HostedDatabase | HostFailureData>>();
/** Assignments whose open failed (by uuid, the epoch): their other calls were failed by the pool. */
const failedOpens = new Map<string, number>();
const toDrain = new Set<HostedDatabase>();
let drainScheduled = false;
const RETENTION_CHECK_MS = 60_000;

// What the write log reports (damage found, a write it could not take) goes to stderr as
// structured lines at the report's level (pino's numbers), like the server's own log.
setHistoryReporter((level, msg, details) => {
  const line = { level: level === 'error' ? 50 : 40, time: Date.now(), pid: process.pid, hostname: hostname(), worker: me, ...details, msg };
  process.stderr.write(`${JSON.stringify(line)}\n`);
});

/** The worker's busy clock counts one task at a time (an open, a unit of SQL): a worker is stuck only when one task runs long. */
function task(): void {
  slots.working(me, true);
}

function post(messages: FromWorker[]): void {
  if (messages.length > 0) port.postMessage(messages);
}

/** Marks the database worked on (its slot held) for the duration of `work`; false when it moved away meanwhile. */
function within(db: HostedDatabase, work: () => void | Promise<void>): boolean {
  if (!db.held) {
    if (!slots.hold(db.ref.slot, db.ref.epoch, me)) return false;
    db.held = true;
  }
  db.enter();
  const done = () => {
    db.leave();
    if (db.working) return;
    // A snapshot the log started goes on across turns: the database stays held (unmovable) until it ends.
    const background = db.background();
    if (background) {
      db.enter();
      void background.then(done);
      return;
    }
    db.held = false;
    slots.release(db.ref.slot, db.ref.epoch, me);
    if (db.queued > 0) scheduleDrain(db);
  };
  let result: void | Promise<void>;
  try {
    result = work();
  } catch (e) {
    done();
    throw e;
  }
  if (result instanceof Promise) result.then(done, done);
  else done();
  return true;
}

/** The copy of `ref`, opened on first use; undefined when opening failed (the failure was posted for call `id`). */
function copyOf(ref: DatabaseRef, id: number): HostedDatabase | Promise<HostedDatabase | HostFailureData> | undefined {
  const existing = databases.get(ref.uuid);
  if (existing && existing.ref.epoch === ref.epoch) return existing;
  if (existing) {
    // An older assignment the pool did not close: it is let go like a dropped one.
    existing.abandon();
    databases.delete(ref.uuid);
  }
  const waiting = opening.get(ref.uuid);
  if (waiting) return waiting;
  failedOpens.delete(ref.uuid);
  const db: HostedDatabase = new HostedDatabase(ref, settings, post, task, () => scheduleDrain(db));
  // Opening is work on the database: the pool must not move it meanwhile (two threads would open
  // one history at once). Moved before it starts, the call was sent to the new owner.
  if (!slots.hold(ref.slot, ref.epoch, me)) return undefined;
  let opened: void | Promise<void>;
  try {
    opened = db.open();
  } catch (e) {
    const failure = failureOf(e);
    failedOpens.set(ref.uuid, ref.epoch);
    post([{ t: 'fail', id, failure }, { t: 'released', uuid: ref.uuid, lockReleased: true, failure }]);
    return undefined;
  } finally {
    slots.release(ref.slot, ref.epoch, me);
  }
  if (!opened) {
    databases.set(ref.uuid, db);
    return db;
  }
  const later = opened.then(
    () => {
      databases.set(ref.uuid, db);
      return db;
    },
    (e: unknown) => {
      const failure = failureOf(e);
      failedOpens.set(ref.uuid, ref.epoch);
      post([{ t: 'fail', id, failure }, { t: 'released', uuid: ref.uuid, lockReleased: true, failure }]);
      return failure;
    },
  );
  opening.set(ref.uuid, later);
  void later.finally(() => opening.delete(ref.uuid));
  return later;
}

function scheduleDrain(db: HostedDatabase): void {
  toDrain.add(db);
  if (drainScheduled) return;
  drainScheduled = true;
  setImmediate(drainAll);
}

function drainAll(): void {
  drainScheduled = false;
  const batch = [...toDrain];
  toDrain.clear();
  slots.working(me, true);
  try {
    for (const db of batch) {
      if (db.closed || db.queued === 0) continue;
      task();
      // A database the pool moved to another worker meanwhile: the pool sent its requests there.
      if (!within(db, () => db.drain((seq) => slots.take(db.ref.slot, seq)))) db.discardQueue();
    }
  } finally {
    slots.working(me, false);
  }
}

function call(ref: DatabaseRef, id: number, seq: number, request: HostCall): void {
  if (!slots.owns(ref.slot, ref.epoch, me)) return; // re-sent to the database's new worker
  if (failedOpens.get(ref.uuid) === ref.epoch) return; // failed with the open's failure
  const copy = copyOf(ref, id);
  if (copy === undefined) return;
  if (copy instanceof Promise) {
    void copy.then((db) => {
      if (db instanceof HostedDatabase) call(ref, id, seq, request);
    });
    return;
  }
  if (request.op === 'execute' && copy.takesTransaction(request.request)) {
    const held = copy;
    within(held, () => {
      // In order: the SQL requests queued before this one run first.
      if (held.queued > 0) void held.drain((queued) => slots.take(ref.slot, queued));
      slots.take(ref.slot, seq);
      return held.runTransaction(id, request.request);
    });
    return;
  }
  if (request.op === 'execute') {
    copy.enqueue(id, seq, request.request, request.writes);
    scheduleDrain(copy);
    return;
  }
  within(copy, () => {
    // Calls are taken in order: the SQL requests queued before this one run first.
    if (copy.queued > 0) void copy.drain((queued) => slots.take(ref.slot, queued));
    slots.take(ref.slot, seq);
    return copy.run(id, request);
  });
}

async function close(ref: DatabaseRef): Promise<void> {
  await opening.get(ref.uuid);
  const db = databases.get(ref.uuid);
  if (!db || db.ref.epoch !== ref.epoch) return post([{ t: 'released', uuid: ref.uuid, lockReleased: false }]);
  // What is queued is answered first (its drain is scheduled).
  while (!db.idle) await new Promise((r) => setTimeout(r, 2));
  databases.delete(ref.uuid);
  try {
    await db.close();
  } catch (e) {
    process.stderr.write(`dione: closing ${ref.file}: ${(e as Error).message}\n`);
  }
  post([{ t: 'released', uuid: ref.uuid, lockReleased: true }]);
}

function receive(message: ToWorker): void {
  switch (message.t) {
    case 'call':
      call(message.db, message.id, message.seq, message.call);
      return;
    case 'close':
      void close(message.db);
      return;
    case 'drop': {
      const db = databases.get(message.uuid);
      databases.delete(message.uuid);
      db?.discardQueue();
      db?.abandon();
      post([{ t: 'released', uuid: message.uuid, lockReleased: true }]);
      return;
    }
    case 'exit':
      process.exit(70);
      return;
    case 'lock': {
      const db = databases.get(message.db.uuid);
      if (!db || db.ref.epoch !== message.db.epoch) return;
      try {
        db.takeLock();
      } catch (e) {
        // Another process took the history in the moment it was free: this copy must not write it.
        process.stderr.write(`dione: ${message.db.file}: ${(e as Error).message}\n`);
        databases.delete(message.db.uuid);
        db.abandon();
        post([{ t: 'released', uuid: message.db.uuid, lockReleased: true }]);
      }
      return;
    }
  }
}

// The pool sends the messages of one event-loop turn together.
port.on('message', (messages: ToWorker[]) => {
  slots.working(me, true);
  try {
    for (const m of messages) {
      task();
      try {
        receive(m);
      } catch (e) {
        if (m.t === 'call') post([{ t: 'fail', id: m.id, failure: e instanceof Failure ? e.data : failureOf(e) }]);
        else throw e;
      }
    }
  } finally {
    slots.working(me, false);
  }
});

setInterval(() => {
  slots.working(me, true);
  try {
    for (const db of databases.values()) {
      if (db.idle) within(db, () => db.applyRetention());
    }
  } finally {
    slots.working(me, false);
  }
}, RETENTION_CHECK_MS).unref();

// The pool closes every database before it ends the worker; this covers a worker ended otherwise.
process.on('exit', () => {
  for (const db of databases.values()) {
    try {
      db.closeNow();
    } catch {
      // closing as far as it goes
    }
  }
});
