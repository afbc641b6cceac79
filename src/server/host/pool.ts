// The server side of database hosting: a fixed pool of worker threads, each hosting many databases.
// A database is opened on its first request by the least busy worker, and stays with it while it is
// used; it is closed when idle, or to stay within the open-database budget (least recently used
// first; a database used less recently than every open one is opened for its requests only:
// admission.ts). A worker busy with a long query does not hold up the other databases it hosts: those with
// requests waiting move to a free worker (or, when every worker is busy, to an extra one, up to
// twice the pool; a standby thread waits, started, for that moment). The ownership table (slots.ts)
// makes every move safe against the worker it leaves.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ExecuteRequest } from '../../api/executor.ts';
import { Admission } from './admission.ts';
import { failureFrom, HOST_MESSAGES, HostUnavailable } from './failures.ts';
import { IdleCores } from './idle-cores.ts';
import { LocalReads } from './local-reads.ts';
import type { DatabaseRef, FromWorker, HistorySettings, HostCall, HostCallOf, HostClusterSettings, HostFailureData, HostOp, HostOperations, ToWorker, WorkerSettings } from './protocol.ts';
import { MAX_SLOTS, MAX_WORKERS, Slots } from './slots.ts';

export interface PoolOptions {
  /** Worker threads hosting the databases. */
  workers: number;
  /** Per-request limit in ms: the engine interrupts a query that runs longer (0: none). */
  queryTimeoutMs: number;
  /** An interactive transaction idle this long is rolled back. */
  transactionTimeoutMs: number;
  /** Close a database after this long without requests. */
  idleMs: number;
  /** Databases kept open at once (each holds a few file descriptors); least recently used ones close first. */
  maxOpenDatabases: number;
  /** Interactive transactions open at once, across every database. */
  maxOpenTransactions: number;
  servedBy: string;
  /** Every database keeps a write log (Time Travel, forks) unless false. */
  history: HistorySettings | false;
  /** Cluster mode: every database is the cluster's (NATS), and this server is one node of it. */
  cluster?: HostClusterSettings;
  /** Reads of databases read this often (a second) are answered on the pool's own thread (never in cluster mode); false: none. */
  localReads?: number | false;
  /**
   * Whether the catalogue still lists a database: one that is not is never opened (a request that
   * raced its deletion must not create its files again). Absent: every database exists.
   */
  exists?: (uuid: string) => boolean;
  onEvent?: (event: { type: 'open' | 'close' | 'move' | 'worker-start' | 'worker-exit'; database?: string; worker?: number; detail?: string }) => void;
}

/** A worker that has run one task this long is busy: databases waiting on it move elsewhere. */
const STALL_MS = 100;
const RESCUE_EVERY_MS = 25;
/** How often the server thread's load is sampled, and above which share of busy time reads go to the workers. */
const LOAD_WATCH_MS = 50;
const BUSY_UTILIZATION = 0.85;
/** With this many calls already on the workers, the server is under load: reads join them there. */
const LOCAL_READS_MAX_IN_FLIGHT = 4;
/**
 * …but only while the machine has at least this many cores idle for the workers to run on: with every
 * core busy, a read answered here costs less CPU than one handed over (measured on 2 cores at 64
 * connections: 38 µs of server CPU per point select here, 51 µs through the workers).
 */
const SPARE_CORES_TO_HAND_OVER = 0.5;
/** Operations that neither replace a database's file nor reopen its connection: reads on this thread go on. */
const KEEP_LOCAL_READS: ReadonlySet<HostOp> = new Set<HostOp>(['execute', 'info', 'primary', 'bookmark', 'commits', 'placement']);
/** An extra worker (started when every worker was busy) ends after this long without work. */
const EXTRA_IDLE_MS = 30_000;

/**
 * File descriptors a database holds while open: its file, WAL and shared memory, and with a write
 * log its lock, its log's segment and the log's reader of the WAL; the last two only while it writes
 * and for a few seconds after (IdleCloser), so a database that writes opens them once, not per commit.
 */
export function fdsPerDatabase(history: boolean): number {
  return history ? 6 : 3;
}

/** The process's limit on open files (Linux: /proc/self/limits), or undefined where it cannot be read. */
export function openFileLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isFinite(soft) && soft > 0 ? soft : undefined;
  } catch {
    return undefined;
  }
}

/** Client connections the file-descriptor budget leaves room for: the quarter of the limit databases do not take. */
export function defaultMaxConnections(): number {
  return Math.max(64, Math.floor((openFileLimit() ?? 1024) * 0.25));
}

/**
 * Interactive transactions open at once in the process, across its databases: each holds a
 * connection of its own (two or three descriptors) outside the databases' budget, so together they
 * may take a tenth of the open-file limit, and at least as many as one database may hold (a write
 * token opening 64 on each of a few databases took them all: other databases' writes and new
 * connections failed with EMFILE).
 */
export function defaultMaxOpenTransactions(): number {
  // 64: what one database may hold (hosted-database.ts, MAX_OPEN_TRANSACTIONS).
  return Math.max(64, Math.floor(((openFileLimit() ?? 1024) * 0.1) / 3));
}

/** How many databases fit in the file-descriptor budget: three quarters of the limit, less room for sockets. */
export function defaultMaxOpenDatabases(history: boolean): number {
  const limit = openFileLimit() ?? 1024;
  return Math.max(16, Math.floor((limit * 0.75 - 256) / fdsPerDatabase(history)));
}

interface Waiter {
  id: number;
  seq: number;
  call: HostCall;
  resident: Resident;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

class WorkerHandle {
  readonly worker: Worker;
  readonly pending = new Map<number, Waiter>();
  /** Databases this worker owns now. */
  readonly owned = new Set<Resident>();
  private outbox: ToWorker[] = [];
  exited = false;
  lastWork = Date.now();
  readonly started = Date.now();

  constructor(
    readonly index: number,
    /** Beyond the pool's size: started when every worker was stuck, it ends once idle. */
    public extra: boolean,
    /** Kept started and empty, to stand in at once when every worker is stuck. */
    public standby: boolean,
    settings: WorkerSettings,
    onMessages: (handle: WorkerHandle, messages: FromWorker[]) => void,
    onExit: (handle: WorkerHandle, detail: string) => void,
  ) {
    this.worker = new Worker(bootstrap, { eval: true, workerData: settings, execArgv: flags.execArgv, stdout: false, stderr: false });
    this.worker.on('message', (messages: FromWorker[]) => onMessages(this, messages));
    this.worker.on('error', (e) => process.stderr.write(`dione: database worker ${index} failed: ${e.stack ?? e.message}\n`));
    this.worker.once('exit', (code) => {
      this.exited = true;
      onExit(this, `code ${code}`);
    });
  }

  send(message: ToWorker): void {
    if (this.exited) return;
    // The messages of one event-loop turn go as one: fewer wake-ups on both sides.
    if (this.outbox.push(message) === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.outbox;
    this.outbox = [];
    if (batch.length > 0 && !this.exited) this.worker.postMessage(batch);
  }
}

/** An open database: which worker owns it, and the workers still holding a copy of it. */
interface Resident {
  uuid: string;
  file: string;
  slot: number;
  epoch: number;
  owner: WorkerHandle | undefined;
  /** Workers with a copy: the owner, and copies left on workers it moved away from until they let go. */
  holders: Set<WorkerHandle>;
  /** The worker whose copy holds the history lock (a moved database's new owner takes it once the old copy let go). */
  lockHolder: WorkerHandle | undefined;
  /** Calls numbered in the current epoch. */
  seq: number;
  lastUsed: number;
  /** The pool's use number of its last call (admission.ts compares them). */
  lastUse: number;
  /** Opened for the calls at hand only (admission.ts): closed once they are answered, unless used again first. */
  transient: boolean;
  /** Closing: calls wait for it, then open the database again. */
  closing: Promise<void> | undefined;
  released: (() => void) | undefined;
}

const fromSources = import.meta.url.endsWith('.ts');
const workerEntry = workerModule();

/**
 * The worker's module. Run from the TypeScript sources (a checkout, the tests), a thread starts in
 * a fraction of the time from the compiled build, which is used while it is newer than every
 * source file; otherwise the worker runs the sources through tsx, like this thread.
 */
function workerModule(): { url: string; typescript: boolean } {
  const compiled = new URL(fromSources ? '../../../dist/server/host/worker.js' : './worker.js', import.meta.url);
  if (!fromSources) return { url: compiled.href, typescript: false };
  const newestSource = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce(
      (newest, e) => Math.max(newest, e.isDirectory() ? newestSource(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).mtimeMs),
      0,
    );
  try {
    if (statSync(fileURLToPath(compiled)).mtimeMs > newestSource(fileURLToPath(new URL('../../', import.meta.url)))) return { url: compiled.href, typescript: false };
  } catch {
    // no build: run the sources
  }
  return { url: new URL('./worker.ts', import.meta.url).href, typescript: true };
}

/**
 * Extra node flags for the workers (profiling, fault injection in tests): DIONE_HOST_NODE_FLAGS.
 * Modules given with --import are loaded by the worker's bootstrap, after tsx when they are
 * TypeScript (tsx's own --import does not take effect in a worker thread).
 */
function workerFlags(): { execArgv: string[]; preload: string[]; tsx: boolean } {
  const flags = process.env.DIONE_HOST_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [];
  const execArgv: string[] = [];
  const preload: string[] = [];
  let tsx = workerEntry.typescript;
  for (let i = 0; i < flags.length; i++) {
    if (flags[i] !== '--import') execArgv.push(flags[i]!);
    else {
      const module = flags[++i]!;
      if (/(^|[\\/])tsx([\\/]|$)|^tsx$/.test(module) || module.includes('/node_modules/tsx/')) tsx = true;
      else preload.push(module.startsWith('file:') ? module : pathToFileURL(module).href);
    }
  }
  // The server's own node flags, less its module loaders (the bootstrap loads what a worker needs).
  const own = process.execArgv.filter((a, i, all) => a !== '--import' && all[i - 1] !== '--import');
  return { execArgv: takenByWorkers([...own, ...execArgv]), preload, tsx };
}

/**
 * The flags a worker thread accepts. Process-wide options (Node 24's test runner passes its children
 * --secure-heap-min, --v8-pool-size, --tls-cipher-list…) make `new Worker` throw; Node has no list of
 * them, so a worker is tried once and the flags its error names are left out.
 */
function takenByWorkers(execArgv: string[]): string[] {
  if (execArgv.length === 0) return execArgv;
  try {
    void new Worker('', { eval: true, execArgv, stdout: true, stderr: true }).terminate();
    return execArgv;
  } catch (e) {
    if ((e as { code?: string }).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw e;
    const refused = new Set((e as Error).message.match(/--[\w-]+/g) ?? []);
    return execArgv.filter((flag) => !refused.has(flag.split('=')[0]!));
  }
}

const flags = workerFlags();
const bootstrap = `(async () => {
  ${flags.tsx ? `(await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})).register();` : ''}
  for (const module of ${JSON.stringify(flags.preload)}) await import(module);
  await import(${JSON.stringify(workerEntry.url)});
})().catch((e) => { process.stderr.write(String(e && e.stack || e) + '\\n'); process.exit(70); });`;

export class WorkerPool {
  private readonly slots = new Slots();
  /** Interactive transactions open in each worker (an Int32 per worker index, counted by the workers with Atomics). */
  private readonly openTransactions = new SharedArrayBuffer(4 * MAX_WORKERS);
  private readonly workers: WorkerHandle[] = [];
  /** Open databases, least recently used first. */
  private readonly residents = new Map<string, Resident>();
  private readonly freeSlots: number[] = [];
  private nextSlot = 0;
  private nextEpoch = 1;
  private nextId = 1;
  /** Numbers the calls, for admission.ts. */
  private uses = 0;
  /** Residents opened for their calls only, and admitted ones closing: neither counts as kept open. */
  private transients = 0;
  private closingAdmitted = 0;
  private readonly admission: Admission | undefined;
  /** Databases opened so far: to be kept open, and for their requests only (admission.ts). */
  readonly openCounts = { kept: 0, forRequests: 0 };
  private stopped = false;
  private readonly sweeper: NodeJS.Timeout;
  private readonly rescuer: NodeJS.Timeout;
  /** Reads of often-read databases answered on this thread (single node only: see local-reads.ts). */
  private readonly localReads: LocalReads | undefined;
  private readonly loadWatch: NodeJS.Timeout | undefined;
  private loadSample = performance.eventLoopUtilization();
  private threadBusy = false;
  private readonly idleCores = new IdleCores();
  private spareCores = true;

  constructor(private readonly options: PoolOptions) {
    if (options.workers < 1 || options.workers > MAX_WORKERS / 2) throw new Error(`the pool takes 1 to ${MAX_WORKERS / 2} workers, got ${options.workers}`);
    // A cluster node's copy of a database is kept current only while it is open: each one stays.
    this.admission = options.cluster ? undefined : Admission.forBudget(options.maxOpenDatabases);
    for (let i = 0; i < options.workers; i++) this.startWorker(i, false);
    // Starting a thread (loading the modules) takes a while: one waits, ready, for the moment every worker is stuck.
    if (this.movable()) this.startStandby();
    const sweepMs = Math.max(10, Math.min(1000, options.idleMs / 4));
    this.sweeper = setInterval(() => this.sweep(), sweepMs).unref();
    this.rescuer = setInterval(() => this.rescue(), RESCUE_EVERY_MS).unref();
    if (!options.cluster && options.localReads !== undefined && options.localReads !== false) {
      this.localReads = new LocalReads({ servedBy: options.servedBy, queryTimeoutMs: options.queryTimeoutMs, hotReads: options.localReads });
      this.loadWatch = setInterval(() => this.watchLoad(), LOAD_WATCH_MS).unref();
    }
  }

  /**
   * A busy thread answers faster by handing reads to the workers when other cores are idle; one with
   * time to spare, or on a machine with none, answers them itself (no thread hops).
   */
  private watchLoad(): void {
    const now = performance.eventLoopUtilization();
    const utilization = performance.eventLoopUtilization(now, this.loadSample).utilization;
    this.loadSample = now;
    this.threadBusy = utilization > BUSY_UTILIZATION;
    this.spareCores = this.idleCores.sample() >= SPARE_CORES_TO_HAND_OVER;
  }

  /** Reads go to the workers: the server is under load, and the machine has cores for them. */
  private handOverReads(): boolean {
    return this.spareCores && (this.threadBusy || this.callsInFlight() >= LOCAL_READS_MAX_IN_FLIGHT);
  }

  private startWorker(index: number, extra: boolean, standby = false): WorkerHandle {
    const settings: WorkerSettings = {
      index,
      servedBy: this.options.servedBy,
      history: this.options.history,
      cluster: this.options.cluster,
      queryTimeoutMs: this.options.queryTimeoutMs,
      transactionTimeoutMs: this.options.transactionTimeoutMs,
      slots: this.slots.buffer,
      openTransactions: { counter: this.openTransactions, max: this.options.maxOpenTransactions },
    };
    this.slots.working(index, false);
    const handle = new WorkerHandle(
      index,
      extra,
      standby,
      settings,
      (h, messages) => this.receive(h, messages),
      (h, detail) => this.exited(h, detail),
    );
    this.workers[index] = handle;
    this.options.onEvent?.({ type: 'worker-start', worker: index, detail: standby ? 'standby' : extra ? 'extra' : undefined });
    return handle;
  }

  /** Open databases now. */
  get openDatabases(): number {
    return this.residents.size;
  }

  /** The database is open on this server now (not closing). */
  isOpen(uuid: string): boolean {
    const r = this.residents.get(uuid);
    return r !== undefined && r.closing === undefined;
  }

  /** Workers hosting databases now (the pool's and extra ones; not the standby). */
  get workerCount(): number {
    return this.workers.filter((w) => w && !w.exited && !w.standby).length;
  }

  /** Runs a SQL request on the database. Cluster mode: a NotPrimary failure when another node must. */
  execute(database: { uuid: string; file: string }, request: ExecuteRequest, writes: boolean): Promise<HostOperations['execute']['value']> {
    const reads = this.localReads;
    if (!reads) return this.call(database, { op: 'execute', request, writes });
    const resident = this.residents.get(database.uuid);
    if (resident && !resident.closing && !this.handOverReads()) {
      const answer = reads.answer(database.uuid, request, writes);
      if (answer) {
        this.touch(resident);
        return Promise.resolve(answer);
      }
    }
    return this.call(database, { op: 'execute', request, writes }).then((response) => {
      reads.observe(database.uuid, database.file, request, writes, response);
      return response;
    });
  }

  /** Reads answered on this thread so far, and the copies of databases open for them (local-reads.ts). */
  get localReadStats(): { served: number; copies: number } {
    return { served: this.localReads?.served ?? 0, copies: this.localReads?.openCopies ?? 0 };
  }

  /** Calls sent to workers and not answered yet. */
  private callsInFlight(): number {
    let n = 0;
    for (const w of this.workers) if (w) n += w.pending.size;
    return n;
  }

  private touch(r: Resident): void {
    // Most recently used last.
    this.residents.delete(r.uuid);
    this.residents.set(r.uuid, r);
    r.lastUsed = Date.now();
    r.lastUse = ++this.uses;
  }

  /** Runs an operation on the database's host; rejects with the typed failures of failures.ts (or HistoryError). */
  async call<K extends HostOp>(database: { uuid: string; file: string }, call: HostCallOf<K>): Promise<HostOperations[K]['value']> {
    for (;;) {
      if (this.stopped) throw new HostUnavailable('closing', HOST_MESSAGES.closing);
      const resident = this.residents.get(database.uuid);
      if (resident?.closing) {
        await resident.closing;
        continue;
      }
      if (!resident && this.options.exists?.(database.uuid) === false) throw new HostUnavailable('deleted', HOST_MESSAGES.deleted);
      const r = resident ?? this.open(database, call.op);
      if (r === resident && r.transient && (call.op !== 'execute' || this.admitsAgain(r))) this.admit(r);
      this.touch(r);
      if (r.owner && this.stalled(r.owner) && this.movable()) this.moveAway(r);
      if (!this.localReads || KEEP_LOCAL_READS.has(call.op)) return this.dispatch(r, call as HostCall) as Promise<HostOperations[K]['value']>;
      // Other operations may replace the file or reopen the worker's connection: no read on this thread meanwhile.
      const reads = this.localReads;
      const end = reads.begin(database.uuid, database.file);
      return this.dispatch(r, call as HostCall)
        .then((value) => {
          if (call.op === 'import' && (value as HostOperations['import']['value']).settingsChanged) reads.settingsChanged(database.uuid, database.file);
          return value;
        })
        .finally(end) as Promise<HostOperations[K]['value']>;
    }
  }

  private dispatch(r: Resident, call: HostCall): Promise<unknown> {
    const owner = r.owner!;
    const id = this.nextId++;
    const seq = ++r.seq;
    return new Promise((resolve, reject) => {
      owner.pending.set(id, { id, seq, call, resident: r, resolve, reject });
      owner.send({ t: 'call', id, seq, db: this.refOf(r, owner), call });
    });
  }

  private refOf(r: Resident, owner: WorkerHandle): DatabaseRef {
    return { uuid: r.uuid, file: r.file, slot: r.slot, epoch: r.epoch, lock: r.lockHolder === owner };
  }

  private open(database: { uuid: string; file: string }, op: HostOp): Resident {
    // Only a plain SQL request is answered on a database opened for it alone (nothing it starts outlives it).
    const transient = op === 'execute' && this.turnsAway(database.uuid);
    if (!transient) this.makeRoom();
    const slot = this.freeSlots.pop() ?? this.nextSlot++;
    if (slot >= MAX_SLOTS) throw new Error(`more than ${MAX_SLOTS} databases open at once`);
    const owner = this.leastBusy();
    const r: Resident = {
      uuid: database.uuid,
      file: database.file,
      slot,
      epoch: this.nextEpoch++,
      owner,
      holders: new Set([owner]),
      lockHolder: owner,
      seq: 0,
      lastUsed: Date.now(),
      lastUse: this.uses,
      transient,
      closing: undefined,
      released: undefined,
    };
    this.slots.assign(slot, r.epoch, owner.index);
    owner.owned.add(r);
    this.residents.set(r.uuid, r);
    if (transient) {
      this.transients++;
      this.openCounts.forRequests++;
    } else this.openCounts.kept++;
    this.options.onEvent?.({ type: 'open', database: r.uuid, worker: owner.index, detail: transient ? 'for its requests only' : undefined });
    return r;
  }

  /** Databases kept open now (not closing, not opened for their requests only). */
  private get keptOpen(): number {
    return this.residents.size - this.transients - this.closingAdmitted;
  }

  /** Closes least recently used databases until one more may be kept open, within the budget (and its file descriptors). */
  private makeRoom(): void {
    const capacity = this.admission?.capacity ?? this.options.maxOpenDatabases;
    const over = Math.max(this.residents.size - this.options.maxOpenDatabases + 1, this.keptOpen - capacity + 1);
    if (over > 0) this.evict(over);
  }

  /** The database eviction would close first: the least recently used idle one kept open. */
  private victim(): Resident | undefined {
    for (const r of this.residents.values()) if (!r.closing && !r.transient && !this.busyResident(r)) return r;
    return undefined;
  }

  /** Whether a database not open is opened for the call at hand only (admission.ts), rather than closing another. */
  private turnsAway(uuid: string): boolean {
    const admission = this.admission;
    if (!admission || this.keptOpen < admission.capacity) return false;
    if (this.transients >= admission.headroom || this.residents.size >= this.options.maxOpenDatabases) return false;
    const victim = this.victim();
    return victim !== undefined && !admission.admits(uuid, this.uses + 1, victim.lastUse);
  }

  /** A database opened for its requests only, used again while open: kept if it was used more recently than the victim. */
  private admitsAgain(r: Resident): boolean {
    const victim = this.victim();
    return victim === undefined || r.lastUse > victim.lastUse;
  }

  private admit(r: Resident): void {
    r.transient = false;
    this.transients--;
    this.makeRoom();
  }

  /** The worker to give a database to: the one with the fewest calls waiting, then the fewest databases, not stuck in a long task. */
  private leastBusy(): WorkerHandle {
    let best: WorkerHandle | undefined;
    let bestScore = Number.POSITIVE_INFINITY;
    for (const w of this.workers) {
      if (!w || w.exited || w.standby || this.stalled(w)) continue;
      const score = w.pending.size * 1_000_000 + w.owned.size;
      if (score < bestScore) {
        best = w;
        bestScore = score;
      }
    }
    const fallback = best ?? this.extraWorker() ?? this.workers.filter((w) => w && !w.exited && !w.standby).sort((a, b) => a.pending.size - b.pending.size)[0];
    if (!fallback) throw new HostUnavailable('crashed', HOST_MESSAGES.crashed);
    return fallback;
  }

  /** Every worker is busy with a long query: the standby steps in (and another is started), up to twice the pool. */
  private extraWorker(): WorkerHandle | undefined {
    const standby = this.workers.find((w) => w && !w.exited && w.standby);
    if (standby) {
      standby.standby = false;
      standby.extra = true;
      this.options.onEvent?.({ type: 'worker-start', worker: standby.index, detail: 'extra (the standby)' });
      this.startStandby();
      return standby;
    }
    return this.startExtra(false);
  }

  private startStandby(): void {
    this.startExtra(true);
  }

  private startExtra(standby: boolean): WorkerHandle | undefined {
    const running = this.workers.filter((w) => w && !w.exited).length;
    if (running >= this.options.workers * 2) return undefined;
    let index = this.workers.findIndex((w, i) => i >= this.options.workers && (!w || w.exited));
    if (index < 0) index = Math.max(this.workers.length, this.options.workers);
    return this.startWorker(index, true, standby);
  }

  private stalled(w: WorkerHandle): boolean {
    return this.slots.busyFor(w.index) > STALL_MS;
  }

  /** Databases move between workers only outside cluster mode: a cluster database's lease and follower live in its worker. */
  private movable(): boolean {
    return !this.options.cluster;
  }

  /**
   * Moves a database off a worker stuck in a long task, to a free one: the calls its old worker
   * never took are sent again to the new one. Nothing happens when the old worker is working on
   * this database itself (its requests wait their turn, as they would anyway).
   */
  private moveAway(r: Resident): void {
    // A database being closed stays where it is: its worker is told to close it.
    if (r.closing || !r.owner || this.slots.held(r.slot)) return;
    const from = r.owner;
    const to = this.leastBusy();
    if (to === from || this.stalled(to)) return;
    const taken = this.slots.move(r.slot, r.epoch, from.index, to.index);
    if (taken === undefined) return;
    // The new worker's connection starts afresh (its last insert rowid too).
    this.localReads?.forget(r.uuid);
    r.epoch++;
    // Epochs are never reused, so a message of an earlier epoch never matches a later owner of the slot.
    this.nextEpoch = Math.max(this.nextEpoch, r.epoch + 1);
    r.seq = 0;
    r.owner = to;
    r.holders.add(to);
    from.owned.delete(r);
    to.owned.add(r);
    from.send({ t: 'drop', uuid: r.uuid });
    this.options.onEvent?.({ type: 'move', database: r.uuid, worker: to.index, detail: `from worker ${from.index}` });
    for (const [id, waiter] of from.pending) {
      if (waiter.resident !== r || waiter.seq <= taken) continue;
      from.pending.delete(id);
      const seq = ++r.seq;
      to.pending.set(id, { ...waiter, seq });
      to.send({ t: 'call', id, seq, db: this.refOf(r, to), call: waiter.call });
    }
  }

  /** Runs every few ms: databases with calls waiting on a stuck worker move; idle extra workers end. */
  private rescue(): void {
    if (!this.movable()) return;
    for (const w of this.workers) {
      if (!w || w.exited) continue;
      if (w.pending.size > 0 || this.slots.busyFor(w.index) > 0) w.lastWork = Date.now();
      if (w.extra && !w.standby && w.owned.size === 0 && w.pending.size === 0 && Date.now() - w.lastWork > EXTRA_IDLE_MS) {
        void this.end(w);
        continue;
      }
      if (w.pending.size === 0 || !this.stalled(w)) continue;
      const waiting = new Set<Resident>();
      for (const waiter of w.pending.values()) if (waiter.resident.owner === w) waiting.add(waiter.resident);
      for (const r of waiting) this.moveAway(r);
    }
  }

  private receive(w: WorkerHandle, messages: FromWorker[]): void {
    for (const m of messages) {
      if (m.t === 'released') {
        this.released(w, m.uuid, m.lockReleased, m.failure);
        continue;
      }
      const waiter = w.pending.get(m.id);
      if (!waiter) continue;
      w.pending.delete(m.id);
      const r = waiter.resident;
      r.lastUsed = Date.now();
      if (m.t === 'reply') waiter.resolve(m.value);
      else waiter.reject(failureFrom(m.failure));
      if (r.transient && !r.closing && !this.busyResident(r)) void this.beginClose(r);
    }
  }

  /** A worker let go of its copy of a database. */
  private released(w: WorkerHandle, uuid: string, lockReleased: boolean, failure: HostFailureData | undefined): void {
    const r = this.residents.get(uuid);
    if (!r || !r.holders.has(w)) return;
    r.holders.delete(w);
    if (lockReleased && r.lockHolder === w) this.passLock(r, w);
    if (r.owner === w && failure) {
      // It could not open: the calls sent to it meanwhile fail alike; the next call tries again.
      for (const [id, waiter] of w.pending) {
        if (waiter.resident !== r) continue;
        w.pending.delete(id);
        waiter.reject(failureFrom(failure));
      }
      w.owned.delete(r);
      r.owner = undefined;
      if (!r.closing) void this.beginClose(r);
    }
    this.settle(r);
  }

  /** The copy on `from` let the history lock go: the database moved meanwhile, so its owner takes it. */
  private passLock(r: Resident, from: WorkerHandle): void {
    r.lockHolder = undefined;
    if (r.owner && r.owner !== from && !r.closing) {
      r.lockHolder = r.owner;
      r.owner.send({ t: 'lock', db: this.refOf(r, r.owner) });
    }
  }

  private beginClose(r: Resident): Promise<void> {
    if (r.closing) return r.closing;
    if (!r.transient) this.closingAdmitted++;
    this.localReads?.forget(r.uuid);
    r.closing = new Promise<void>((resolve) => (r.released = resolve));
    if (r.owner) r.owner.send({ t: 'close', db: this.refOf(r, r.owner) });
    this.settle(r);
    return r.closing;
  }

  /** A closing database is gone once no worker holds a copy: its slot is free, and calls waiting for it open it again. */
  private settle(r: Resident): void {
    if (!r.closing || r.holders.size > 0 || !r.released) return;
    if (this.residents.get(r.uuid) === r) this.residents.delete(r.uuid);
    if (r.transient) this.transients--;
    else this.closingAdmitted--;
    if (r.owner) r.owner.owned.delete(r);
    this.freeSlots.push(r.slot);
    this.options.onEvent?.({ type: 'close', database: r.uuid });
    // Once: a worker's release and its exit may both find the database settled.
    const released = r.released;
    r.released = undefined;
    released();
  }

  private close(r: Resident): Promise<void> {
    return this.beginClose(r);
  }

  /** Closes the least recently used idle databases. */
  private evict(count: number): void {
    for (const r of this.residents.values()) {
      if (count <= 0) break;
      if (r.closing || this.busyResident(r)) continue;
      void this.close(r);
      count--;
    }
  }

  private busyResident(r: Resident): boolean {
    for (const w of r.holders) for (const waiter of w.pending.values()) if (waiter.resident === r) return true;
    return false;
  }

  /** Closes databases idle for longer than idleMs. */
  private sweep(): void {
    const before = Date.now() - this.options.idleMs;
    for (const r of this.residents.values()) {
      // Least recently used first: the first one used since `before` ends the sweep.
      if (r.lastUsed > before) break;
      if (!r.closing && !this.busyResident(r)) void this.close(r);
    }
  }

  /** A worker ended (it failed, or was ended): its calls fail, its databases open again elsewhere on their next call. */
  private exited(w: WorkerHandle, detail: string): void {
    this.options.onEvent?.({ type: 'worker-exit', worker: w.index, detail });
    // Its transactions ended with it (their connections closed, uncommitted), counted or not.
    Atomics.store(new Int32Array(this.openTransactions), w.index, 0);
    for (const waiter of w.pending.values()) waiter.reject(new HostUnavailable('crashed', HOST_MESSAGES.crashed));
    w.pending.clear();
    for (const r of [...this.residents.values()]) {
      if (!r.holders.has(w)) continue;
      r.holders.delete(w);
      if (r.owner === w) {
        r.owner = undefined;
        if (!r.closing) void this.beginClose(r);
      }
      // Its copy's history lock died with it: the owner, if another worker, takes it now.
      if (r.lockHolder === w) this.passLock(r, w);
      this.settle(r);
    }
    if (this.stopped) return;
    if (w.standby) {
      this.startStandby();
      return;
    }
    if (w.extra) return;
    // A worker that fails as it starts would fail again at once: the next one starts a second later.
    if (Date.now() - w.started < 1000) setTimeout(() => this.stopped || this.startWorker(w.index, false), 1000).unref();
    else this.startWorker(w.index, false);
  }

  /** Closes a database on every worker (before its files are deleted or replaced). */
  async stop(uuid: string): Promise<void> {
    const r = this.residents.get(uuid);
    if (r) await this.close(r);
  }

  /**
   * Ends a worker as an uncaught error in it would: between two tasks, with the requests it holds
   * unanswered (tests). Not Worker.terminate(), unless asked: that may stop a worker inside a SQLite
   * call, which better-sqlite3 does not survive.
   */
  async crashWorker(index: number, how: 'between tasks' | 'abruptly' = 'between tasks'): Promise<void> {
    const handle = this.workers[index];
    if (!handle) return;
    // 'abruptly': as a worker out of memory ends, without running its exit handlers (tests; idle workers only).
    if (how === 'abruptly') await handle.worker.terminate();
    else await this.end(handle);
  }

  /** Ends a worker between two of its tasks; resolves once it has exited. */
  private end(handle: WorkerHandle): Promise<void> {
    if (handle.exited) return Promise.resolve();
    const exited = new Promise<void>((resolve) => handle.worker.once('exit', () => resolve()));
    handle.worker.postMessage([{ t: 'exit' } satisfies ToWorker]);
    return exited;
  }

  /** Graceful: every in-flight request finishes, every database closes, then the workers end. */
  async stopAll(): Promise<void> {
    if (this.stopped) return;
    clearInterval(this.sweeper);
    clearInterval(this.rescuer);
    clearInterval(this.loadWatch);
    // Calls already made finish first.
    while (this.workers.some((w) => w && !w.exited && w.pending.size > 0)) await new Promise((r) => setTimeout(r, 5));
    this.stopped = true;
    this.localReads?.closeAll();
    await Promise.all([...this.residents.values()].map((r) => this.close(r)));
    await Promise.all(this.workers.filter((w) => w && !w.exited).map((w) => this.end(w)));
  }
}

