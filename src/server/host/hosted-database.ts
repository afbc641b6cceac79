// One database hosted by a worker: its engine (plain, with a write log, or a cluster node's part),
// the SQL requests waiting for it, and the other operations on it. Requests that arrive together
// run together (group commit); each answer leaves once the write log holds its commit.
import { closeSync, openSync, writeSync } from 'node:fs';
import { parseBookmark } from '../../api/bookmark.ts';
import type { ExecuteRequest, ExecuteResponse, Query } from '../../api/executor.ts';
import { HistoryError, type HistoryPoint } from '../../api/time-travel.ts';
import type { ClusterDatabase, Forward } from '../../cluster/cluster-database.ts';
import { NOT_DURABLE, UNAVAILABLE } from '../../cluster/messages.ts';
import { CLOSED_WHILE_HELD, Engine, type EngineOptions, hasTransactionStatements } from '../../engine/engine.ts';
import { TransactionEngines } from '../../engine/transaction-engines.ts';
import { DEFAULT_BUSY_WAIT_MS, gateReleased } from '../../engine/write-gate.ts';
import { detailOf } from '../../engine/sqlite-error.ts';
import type { TimeTravel } from '../../log/history.ts';
import { LoggedDatabase } from '../../log/logged-database.ts';
import { parseQuery } from '../../sql/parse-cache.ts';
import type { ClusterHost } from './cluster-host.ts';
import { sqlFileWindows } from './sql-file.ts';
import { type DatabaseRef, type FromWorker, HISTORY_OFF, type HistoryPointMessage, type HostCall, type HostFailureData, type HostOperations, type WorkerSettings } from './protocol.ts';

/** A failure with its kind, for the boundary. */
export class Failure extends Error {
  constructor(readonly data: HostFailureData) {
    super('message' in data ? data.message : data.kind);
  }
}

const notPrimary = (forward: Forward['forward']): Failure =>
  new Failure({ kind: 'not-primary', holder: forward ? { node: forward.node, url: forward.url, region: forward.region } : null });

interface Pending {
  id: number;
  seq: number;
  request: ExecuteRequest;
  writes: boolean;
  /** Waiting for another handle's transaction to let the write lock go, until this time (performance.now()). */
  waitUntil?: number;
}

/** A transaction held for a client: its engine, and the logged database it was opened on (cluster: this term's primary). */
interface HeldTransaction {
  engine: Engine;
  owner: LoggedDatabase | undefined;
}

/** One run of a transaction's request: its answer, whether it committed, and the write gate it may wait on. */
interface TransactionStep {
  response: ExecuteResponse;
  committed: boolean;
  gate: string | undefined;
}

/**
 * Interactive transactions open on one database at once, at most: each holds a connection (two file
 * descriptors, and one more until the database closes: SQLite keeps a closed connection's descriptor
 * while others hold locks on the file), outside the server's descriptor budget.
 */
export const MAX_OPEN_TRANSACTIONS = 64;

const openTransactionCounters = new WeakMap<SharedArrayBuffer, Int32Array>();

/** The process's counts of open interactive transactions, one per worker (WorkerSettings.openTransactions). */
function openTransactionsOf(counter: SharedArrayBuffer): Int32Array {
  let view = openTransactionCounters.get(counter);
  if (!view) openTransactionCounters.set(counter, (view = new Int32Array(counter)));
  return view;
}

/**
 * Counts one more open transaction for this worker, unless the process would then hold more than
 * `max`. Each worker adds to its own count before it sums them all, so two workers racing for the
 * last place may both be refused, never both admitted.
 */
function admitTransaction(counts: Int32Array, worker: number, max: number): boolean {
  Atomics.add(counts, worker, 1);
  let open = 0;
  for (let i = 0; i < counts.length; i++) open += Atomics.load(counts, i);
  if (open <= max) return true;
  Atomics.sub(counts, worker, 1);
  return false;
}

/** Handles whose transaction the idle timeout rolled back are told so this long, at most this many. */
const ABANDONED_KEPT_MS = 10 * 60_000;
const ABANDONED_KEPT = 10_000;

/** What a request sent inside a transaction that had already ended by the client's COMMIT (or ROLLBACK) is told. */
export const COMMITTED_BEFORE = 'Transaction already committed: its COMMIT succeeded before this request (start a new transaction with BEGIN)';
export const ROLLED_BACK_BY_RESTORE = 'Transaction rolled back: the database was restored to an earlier point (Time Travel) while it was open';
export const ENDED_BEFORE = 'Transaction already ended: its own COMMIT or ROLLBACK ended it before this request, and it wrote nothing (start a new transaction with BEGIN)';

/** An answer, and what it becomes when the commit it reports is not made durable. */
interface Outgoing {
  message: FromWorker;
  unlessDurable?: (error: string) => FromWorker;
}

/** How long opening waits for another process to let the history go (a server that is still stopping). */
const LOCK_WAIT_MS = 1000;

export class HostedDatabase {
  private logged: LoggedDatabase | undefined;
  private plain: Engine | undefined;
  private cluster: ClusterHost | undefined;
  private queue: Pending[] = [];
  private outgoing: Outgoing[] = [];
  /** Operations under way (an execute drain, an await in another operation): the slot stays held. */
  private busy = 0;
  /** This worker holds the database's slot (Slots.hold). */
  held = false;
  closed = false;
  /** Interactive transactions held for clients, by handle (the caller's token and the client's id). */
  private readonly transactions = new Map<string, HeldTransaction>();
  /** Handles whose transaction the idle timeout rolled back, with what their next request is told and when. */
  private readonly abandoned = new Map<string, { reason: string; at: number; ended: boolean }>();
  /** Settles when the last held transaction ends (the database stays on this worker until then). */
  private transactionsOver: { promise: Promise<void>; resolve: () => void } | undefined;
  /** Requests waiting for a transaction to let the write lock go. */
  private waitingForGate = 0;
  /** Engines for transactions on a database without a write log (with one, the log keeps them). */
  private readonly plainTransactionEngines = new TransactionEngines(() => new Engine(this.ref.file, { ...this.engineOptions(), transactions: true }));

  constructor(
    public ref: DatabaseRef,
    private readonly settings: WorkerSettings,
    private readonly post: (messages: FromWorker[]) => void,
    /** A new task starts (a unit of SQL): the worker's busy clock starts over. */
    private readonly task: () => void,
    /** Requests were queued again (they waited for a transaction): drain them. */
    private readonly wake: () => void = () => {},
  ) {}

  private engineOptions(): EngineOptions {
    return {
      intMode: 'bigint',
      servedBy: this.settings.cluster ? this.settings.cluster.node : this.settings.servedBy,
      queryTimeoutMs: this.settings.queryTimeoutMs,
      transactionTimeoutMs: this.settings.transactionTimeoutMs,
      // A server opens and closes databases all the time (the open-database budget).
      keepWalFiles: !this.settings.cluster,
    };
  }

  /** Opens the database; throws what opening threw. Synchronous except in cluster mode. */
  open(): void | Promise<void> {
    const options = this.engineOptions();
    const { cluster, history } = this.settings;
    if (cluster) {
      // Loaded only in cluster mode: the NATS client is a large part of a worker's start-up.
      return import('./cluster-host.ts').then(({ ClusterHost }) => {
        this.cluster = new ClusterHost({ ...cluster, database: this.ref.uuid }, this.ref.file, { ...options, servedByRegion: cluster.region }, history || undefined);
      });
    }
    if (history) this.logged = new LoggedDatabase(this.ref.file, options, { ...history, lockWaitMs: LOCK_WAIT_MS, lock: this.ref.lock });
    else this.plain = new Engine(this.ref.file, options);
  }

  private engine(): Engine {
    return this.logged?.engine ?? this.plain!;
  }

  /** The engine for reads outside SQL requests (info, exports): in cluster mode, this node's copy. */
  private async localEngine(): Promise<Engine> {
    if (!this.cluster) return this.engine();
    const copy = (await this.cluster.get()).engine;
    if (!copy) throw new Failure({ kind: 'error', message: UNAVAILABLE });
    return copy;
  }

  get idle(): boolean {
    return this.busy === 0 && this.queue.length === 0 && this.transactions.size === 0 && this.waitingForGate === 0;
  }

  get working(): boolean {
    return this.busy > 0;
  }

  /** Work that goes on after an operation returns (a snapshot the write log started). */
  background(): Promise<void> | undefined {
    return this.logged?.snapshotInProgress ?? this.transactionsOver?.promise;
  }

  /**
   * Whether a request of a transactions handle runs on a transaction's own engine: its handle holds
   * one (or lost one), or the request holds transaction statements.
   */
  takesTransaction(request: ExecuteRequest): boolean {
    const key = request.transaction;
    if (key === undefined) return false;
    return this.transactions.has(key) || this.abandoned.has(key) || request.transactionHeld === true || hasTransactionStatements(request);
  }

  /** Runs a request on its handle's transaction engine (opened for it if needed); answers once the log holds any commit. */
  async runTransaction(id: number, request: ExecuteRequest): Promise<void> {
    const key = request.transaction!;
    let response: ExecuteResponse;
    let committed = false;
    try {
      const refused = this.logged?.unavailable();
      if (refused !== undefined) throw new Failure({ kind: 'refused', message: refused });
      const deadline = performance.now() + DEFAULT_BUSY_WAIT_MS;
      for (;;) {
        let outcome: TransactionStep | undefined;
        if (this.cluster) {
          const answer = await (await this.cluster.get()).inTransaction((logged) => {
            outcome = this.step(key, request, logged);
            return outcome.response;
          });
          if ('forward' in answer) {
            this.closeTransaction(key);
            throw notPrimary(answer.forward);
          }
          response = answer;
        } else {
          outcome = this.step(key, request, this.logged);
          response = outcome.response;
        }
        committed = outcome?.committed === true && response.success;
        const left = deadline - performance.now();
        if (response.success || !response.busy || outcome === undefined) break;
        if (left <= 0) {
          response = { success: false, error: response.error, inTransaction: response.inTransaction };
          break;
        }
        // Another handle's transaction holds the write lock: wait for it (bounded), without blocking the worker.
        await gateReleased(outcome.gate, left);
      }
    } catch (e) {
      if (e instanceof Failure && e.data.kind === 'not-primary') {
        this.reply({ t: 'fail', id, failure: e.data });
        return this.flushReplies();
      }
      response = { success: false, error: detailOf(e), inTransaction: false };
    }
    this.reply(
      { t: 'reply', id, value: response },
      committed ? (error) => ({ t: 'reply', id, value: { success: false, error, inTransaction: false } satisfies ExecuteResponse }) : undefined,
    );
    this.flushReplies(committed);
  }

  /** The request once, on the handle's transaction engine on `logged` (or on the plain file). */
  private step(key: string, request: ExecuteRequest, logged: LoggedDatabase | undefined): TransactionStep {
    let held = this.transactions.get(key);
    if (held && held.owner !== logged) {
      // Opened on a database this node no longer writes (it was primary, then not): gone with it.
      this.closeTransaction(key);
      return { response: { success: false, error: CLOSED_WHILE_HELD, inTransaction: false }, committed: false, gate: undefined };
    }
    if (!held) {
      const abandoned = this.abandoned.get(key);
      if ((abandoned && !abandoned.ended) || request.transactionHeld) {
        // Its transaction is gone: running the request on its own would commit what was meant to be part of it.
        this.abandoned.delete(key);
        return { response: { success: false, error: abandoned?.reason ?? CLOSED_WHILE_HELD, inTransaction: false }, committed: false, gate: undefined };
      }
      if (abandoned) this.abandoned.delete(key);
      if (this.transactions.size >= MAX_OPEN_TRANSACTIONS) {
        const error = `Too many open transactions on this database (${MAX_OPEN_TRANSACTIONS}): commit or roll back one first: SQLITE_BUSY`;
        return { response: { success: false, error, inTransaction: false }, committed: false, gate: undefined };
      }
      const { counter, max } = this.settings.openTransactions;
      const counts = openTransactionsOf(counter);
      if (!admitTransaction(counts, this.settings.index, max)) {
        const error = `Too many open transactions on this server (${max}): commit or roll back one first: SQLITE_BUSY`;
        return { response: { success: false, error, inTransaction: false }, committed: false, gate: undefined };
      }
      try {
        held = this.openTransaction(key, logged);
      } catch (e) {
        Atomics.sub(counts, this.settings.index, 1);
        throw e;
      }
    }
    const { engine } = held;
    const before = engine.commitSequence;
    const response = engine.execute(request);
    const committed = response.success && engine.commitSequence !== before;
    if (!engine.inTransaction) {
      this.closeTransaction(key);
      // A client that did not get this answer (its connection dropped) and asks again inside the
      // transaction is told how it ended, not that it was rolled back.
      if (response.success) this.remember(key, committed ? COMMITTED_BEFORE : ENDED_BEFORE, true);
    }
    return { response, committed, gate: engine.gate };
  }

  private openTransaction(key: string, logged: LoggedDatabase | undefined): HeldTransaction {
    const onAbandoned = (reason: string) => {
      this.closeTransaction(key);
      this.remember(key, reason, false);
    };
    const engine = logged ? logged.openTransactionEngine(onAbandoned) : this.plainTransactionEngines.take(onAbandoned);
    const held = { engine, owner: logged };
    this.transactions.set(key, held);
    if (!this.transactionsOver) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.transactionsOver = { promise, resolve };
    }
    return held;
  }

  private closeTransaction(key: string): void {
    const held = this.transactions.get(key);
    if (!held) return;
    this.transactions.delete(key);
    Atomics.sub(openTransactionsOf(this.settings.openTransactions.counter), this.settings.index, 1);
    if (held.owner) held.owner.closeTransactionEngine(held.engine);
    else this.plainTransactionEngines.give(held.engine);
    if (this.transactions.size === 0 && this.transactionsOver) {
      this.transactionsOver.resolve();
      this.transactionsOver = undefined;
    }
  }

  /** Every transaction still held is rolled back (the database closes or moves). */
  private closeTransactions(): void {
    for (const key of [...this.transactions.keys()]) this.closeTransaction(key);
    this.plainTransactionEngines.closeAll();
  }

  /** How the transaction of `key` ended; `ended`: by the client's own COMMIT or ROLLBACK (told only to a request sent inside it). */
  private remember(key: string, reason: string, ended: boolean): void {
    if (this.abandoned.size >= ABANDONED_KEPT) this.forgetAbandoned();
    this.abandoned.set(key, { reason, at: Date.now(), ended });
  }

  private forgetAbandoned(): void {
    const old = Date.now() - ABANDONED_KEPT_MS;
    for (const [key, { at }] of this.abandoned) if (at < old || this.abandoned.size >= ABANDONED_KEPT) this.abandoned.delete(key);
  }

  enter(): void {
    this.busy++;
  }

  leave(): void {
    this.busy--;
  }

  enqueue(id: number, seq: number, request: ExecuteRequest, writes: boolean): void {
    this.queue.push({ id, seq, request, writes });
  }

  get queued(): number {
    return this.queue.length;
  }

  /** The pool re-sent these requests to the database's new worker. */
  discardQueue(): void {
    this.queue = [];
  }

  private reply(message: FromWorker, unlessDurable?: (error: string) => FromWorker): void {
    this.outgoing.push({ message, unlessDurable });
  }

  /**
   * Answers go out once the log holds every commit they report; when it cannot, those answers
   * become failures. Answers that report no commit (reads, failures) need no flush.
   */
  private flushReplies(always = false): void {
    if (this.outgoing.length === 0) return;
    let failure: string | undefined;
    if (always || this.outgoing.some((o) => o.unlessDurable)) {
      try {
        this.logged?.flush();
      } catch (e) {
        failure = detailOf(e);
      }
    }
    const out = this.outgoing.map((o) => (failure !== undefined && o.unlessDurable ? o.unlessDurable(failure) : o.message));
    this.outgoing = [];
    this.post(out);
  }

  /**
   * Runs every queued SQL request; returns when the cluster's answers are in (at once otherwise).
   * `taking` is told the number of the last call taken before any runs.
   */
  drain(taking: (seq: number) => void): void | Promise<void> {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    // Requests that waited for a transaction come first again, with older numbers.
    taking(Math.max(...batch.map((p) => p.seq)));
    if (this.cluster) return this.drainCluster(batch);
    const refused = this.logged?.unavailable();
    if (refused !== undefined) {
      for (const p of batch) this.reply({ t: 'reply', id: p.id, value: { success: false, error: refused } satisfies ExecuteResponse });
      this.flushReplies();
      return;
    }
    // Each unit's answers leave before the next unit runs: a runaway later in the batch must not
    // hold back (or lose) the answers of writes that already committed.
    const running = this.engine();
    // A batch that may write flushes the log after each unit even when nothing committed: a commit
    // the log failed to take is repaired there, before the next unit runs.
    const writing = batch.some((p) => p.writes);
    // A repair (the log failed) reopens the engine between two units: the units after it, which the
    // closed engine refused, run again on the new one.
    const again: Pending[] = [];
    const blocked: Pending[] = [];
    let stale = false;
    let sequenceBefore = running.commitSequence;
    running.executeMany(
      batch.map((p) => p.request),
      (i, response) => {
        const p = batch[i]!;
        if (stale) {
          again.push(p);
          return;
        }
        if (!response.success && response.busy) {
          const answer = this.deferWhileBusy(p, response, blocked);
          if (!answer) return;
          response = answer;
        }
        const committed = response.success && running.commitSequence !== sequenceBefore;
        this.reply(
          { t: 'reply', id: p.id, value: response },
          committed ? (error) => ({ t: 'reply', id: p.id, value: { success: false, error } satisfies ExecuteResponse }) : undefined,
        );
      },
      () => {
        this.flushReplies(writing);
        this.task();
        stale = this.engine() !== running || this.logged?.refused === true;
        sequenceBefore = running.commitSequence;
      },
    );
    this.flushReplies(writing);
    if (again.length > 0) this.queue = [...again, ...this.queue];
    if (blocked.length > 0) this.waitForGate(running.gate, blocked);
  }

  /**
   * Another handle's transaction holds the write lock: the request waits for it (bounded) in
   * `blocked`, without blocking the worker (undefined), or, its time up, gets the busy error.
   */
  private deferWhileBusy(p: Pending, response: ExecuteResponse & { success: false }, blocked: Pending[]): ExecuteResponse | undefined {
    const now = performance.now();
    p.waitUntil ??= now + DEFAULT_BUSY_WAIT_MS;
    if (now < p.waitUntil) {
      blocked.push(p);
      return undefined;
    }
    return { success: false, error: response.error };
  }

  /** The blocked requests go back in the queue when the write lock is let go (or their wait is up). */
  private waitForGate(gate: string | undefined, blocked: Pending[]): void {
    this.waitingForGate += blocked.length;
    const left = Math.min(...blocked.map((p) => p.waitUntil!)) - performance.now();
    void gateReleased(gate, left).then(() => {
      this.waitingForGate -= blocked.length;
      if (this.closed) return;
      this.queue = [...blocked, ...this.queue];
      this.wake();
    });
  }

  /** Cluster mode: the batch runs here (one shipment to the log for all its writes), or is handed on. */
  private async drainCluster(batch: Pending[]): Promise<void> {
    let answers: (ExecuteResponse | Forward)[];
    let gate: string | undefined;
    try {
      const database = await this.cluster!.get();
      answers = await database.executeMany(batch.map((p) => ({ request: p.request, writes: p.writes })));
      gate = database.engine?.gate;
    } catch (e) {
      // NATS's own errors ("TIMEOUT"…) mean the same to the caller: nothing was made durable.
      const error = (e as Error).message === UNAVAILABLE ? UNAVAILABLE : NOT_DURABLE;
      const copy = this.cluster!.offlineCopy();
      answers = batch.map((p) => (copy && !p.writes && readsAnyCopy(p.request, copy) ? copy.execute(p.request) : { success: false, error }));
    }
    const blocked: Pending[] = [];
    answers.forEach((answer, i) => {
      const p = batch[i]!;
      if ('forward' in answer) {
        this.reply({ t: 'fail', id: p.id, failure: notPrimary(answer.forward).data });
        return;
      }
      const response = !answer.success && answer.busy ? this.deferWhileBusy(p, answer, blocked) : answer;
      if (response) this.reply({ t: 'reply', id: p.id, value: response });
    });
    this.flushReplies();
    if (blocked.length > 0) this.waitForGate(gate, blocked);
  }

  /** Runs an operation other than SQL; the answer (or typed failure) is posted when it settles. */
  async run(id: number, call: Exclude<HostCall, { op: 'execute' }>): Promise<void> {
    try {
      const refused = this.logged?.unavailable();
      if (refused !== undefined) throw new Failure({ kind: 'refused', message: refused });
      await this.operate(id, call);
    } catch (e) {
      this.reply({ t: 'fail', id, failure: failureOf(e) });
    }
    this.flushReplies(true);
  }

  private async operate(id: number, call: Exclude<HostCall, { op: 'execute' }>): Promise<void> {
    const answer = <K extends keyof HostOperations>(value: HostOperations[K]['value'], unlessDurable?: (error: string) => FromWorker) =>
      this.reply({ t: 'reply', id, value }, unlessDurable);
    switch (call.op) {
      case 'primary': {
        const where = this.cluster ? await (await this.cluster.get()).primaryNode() : 'self';
        if (where !== 'self') throw notPrimary(where);
        return answer<'primary'>(null);
      }
      case 'info':
        return answer<'info'>((await this.localEngine()).info());
      case 'dump': {
        await (await this.localEngine()).dumpTo(call.file);
        return answer<'dump'>(null);
      }
      case 'export': {
        const source = await this.localEngine();
        const lines = writeDump(source, call.file, call.options);
        return answer<'export'>({ lines, bookmark: source.bookmark });
      }
      case 'import': {
        // Another handle's transaction holding the write lock is waited for (bounded), as SQL requests wait.
        const waitUntil = performance.now() + DEFAULT_BUSY_WAIT_MS;
        let gate: string | undefined;
        let value: HostOperations['import']['value'];
        for (;;) {
          value = await this.asWriter((target) => {
            gate = target.gate;
            let settingsChanged = false;
            const windows = function* (): Generator<Query[]> {
              for (const window of sqlFileWindows(call.file)) {
                // (Only statements that name a PRAGMA are parsed again: an import may hold millions of others.)
                settingsChanged ||= window.some((q) => /pragma/i.test(q.sql) && parseQuery(q.sql).statements.some((s) => s.setsConnection === true));
                yield window;
              }
            };
            const response = target.executeScript(windows());
            return { response, settingsChanged };
          });
          const left = waitUntil - performance.now();
          if (value.response.success || !value.response.busy || left <= 0) break;
          await gateReleased(gate, left);
        }
        // An import the log could not make durable was undone: it failed.
        const committed = value.response.success;
        return answer<'import'>(value, committed ? (error) => ({ t: 'reply', id, value: { ...value, response: { success: false, error } } }) : undefined);
      }
      case 'bookmark':
        return answer<'bookmark'>(
          await this.asWriter(async (_, log) => ({ bookmark: await historyOf(log).bookmarkAt(call.timestamp === undefined ? undefined : new Date(call.timestamp)) })),
        );
      case 'restore': {
        const open = [...this.transactions.keys()];
        const restored = await this.asWriter((_, log) => historyOf(log).restore(pointOf(call.point)));
        // The restore rolled back every transaction open on the database: their handles are told why.
        for (const key of open) {
          this.closeTransaction(key);
          this.remember(key, ROLLED_BACK_BY_RESTORE, false);
        }
        return answer<'restore'>(restored);
      }
      case 'fork':
        return answer<'fork'>(await this.asWriter((_, log) => historyOf(log).fork(pointOf(call.point), call.file)));
      case 'commits': {
        const query = { since: call.since, until: call.until, buckets: call.buckets };
        if (this.cluster) return answer<'commits'>(await (await this.cluster.get()).commits(query));
        if (!this.logged) throw new HistoryError(HISTORY_OFF);
        return answer<'commits'>(await this.logged.commits(query));
      }
      case 'placement': {
        if (!this.cluster) {
          const sequence = this.engine().commitSequence;
          return answer<'placement'>({ role: 'single', primary: null, sequence, newest: sequence });
        }
        const where = await (await this.cluster.get()).placement();
        const primary = where.primary ? { node: where.primary.node, url: where.primary.url, region: where.primary.region } : null;
        return answer<'placement'>({ role: where.role, primary, sequence: where.sequence, newest: where.newest ?? null });
      }
    }
  }

  /**
   * Runs work that writes or needs the write log. In cluster mode it runs only on the primary
   * (serialised with its writes, and shipped to the log before the answer); elsewhere it fails
   * with where the primary is.
   */
  private async asWriter<T>(work: (target: Engine, log: TimeTravel | undefined) => T | Promise<T>): Promise<T> {
    if (!this.cluster) return work(this.engine(), this.logged);
    const database: ClusterDatabase = await this.cluster.get();
    const result = await database.asPrimary((engine, timeTravel) => work(engine, timeTravel));
    if (result !== null && typeof result === 'object' && 'forward' in result) throw notPrimary((result as Forward).forward);
    return result as T;
  }

  applyRetention(): void {
    this.logged?.applyRetention();
  }

  /** Takes the history lock a stale copy elsewhere in this process held until now. */
  takeLock(): void {
    this.logged?.takeLock(LOCK_WAIT_MS);
  }

  /** Closes the database (what is queued has been answered). */
  async close(): Promise<void> {
    this.closed = true;
    this.closeTransactions();
    if (this.cluster) await this.cluster.stop();
    else if (this.logged) await this.logged.close();
    else this.plain?.close();
  }

  /** Lets go of a copy another worker has taken over: nothing is written or checkpointed. */
  abandon(): void {
    this.closed = true;
    this.closeTransactions();
    if (this.logged) this.logged.abandon();
    else this.plain?.close({ keepWal: true });
  }

  /** The process is ending: closes at once. */
  closeNow(): void {
    this.closed = true;
    this.closeTransactions();
    if (this.cluster) void this.cluster.stop();
    else if (this.logged) this.logged.closeNow();
    else this.plain?.close();
  }
}

/** A session read that the copy may serve: any copy will do, or this one has reached its bookmark. */
function readsAnyCopy(request: ExecuteRequest, copy: Engine): boolean {
  if (request.bookmark === 'first-unconstrained') return true;
  const wanted = request.bookmark === undefined ? undefined : parseBookmark(request.bookmark);
  return wanted !== undefined && wanted.sequence <= copy.commitSequence;
}

function writeDump(source: Engine, file: string, options: HostOperations['export']['call']['options']): number {
  const fd = openSync(file, 'w');
  let lines = 0;
  try {
    for (const line of source.dumpSql(options)) {
      writeSync(fd, lines === 0 ? line : `\n${line}`);
      lines++;
    }
  } finally {
    closeSync(fd);
  }
  return lines;
}

function historyOf(log: TimeTravel | undefined): TimeTravel {
  if (!log) throw new HistoryError(HISTORY_OFF);
  return log;
}

function pointOf(message: HistoryPointMessage): HistoryPoint {
  return message.bookmark !== undefined ? { bookmark: message.bookmark } : { timestamp: new Date(message.timestamp!) };
}

export function failureOf(e: unknown): HostFailureData {
  if (e instanceof Failure) return e.data;
  if (e instanceof HistoryError) return { kind: 'history', message: e.message };
  return { kind: 'error', message: e instanceof Error ? e.message : String(e) };
}
