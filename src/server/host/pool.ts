// The server side of database hosts: one child process per open database, started on first use,
// stopped when idle, killed when a request runs past the query timeout (SQLite cannot be
// interrupted from outside, a process can), and restarted by the next request.
import { type ChildProcess, fork } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HistorySettings, HostClusterSettings, HostReply, HostRequest } from './protocol.ts';

/** A request that could not be answered because its host was stopped. `message` is D1's text. */
export class HostFailure extends Error {
  constructor(
    readonly kind: 'timeout' | 'crashed' | 'closing',
    message: string,
  ) {
    super(message);
  }
}

export const HOST_MESSAGES = {
  timeout: 'D1 DB storage operation exceeded timeout which caused object to be reset.',
  crashed: 'Internal error in D1 DB storage caused object to be reset.',
  closing: 'D1 DB is shutting down.',
} as const;

export interface PoolOptions {
  /** Per-request limit in ms; the host is killed when a request exceeds it. */
  queryTimeoutMs: number;
  /** Stop a host after this long without requests. */
  idleMs: number;
  /** Soft cap on running hosts: idle ones are stopped first when it is exceeded. */
  maxHosts: number;
  servedBy: string;
  /** Every database keeps a write log (Time Travel, forks) unless false. */
  history: HistorySettings | false;
  /** Cluster mode: every database is the cluster's (NATS), and this server is one node of it. */
  cluster?: Omit<HostClusterSettings, 'database'>;
  /** Processes started ahead of need, so a database's first request does not wait for one (default 1). */
  spares?: number;
  onEvent?: (event: { type: 'spawn' | 'exit' | 'timeout'; database: string; detail?: string }) => void;
}

type Body = HostRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

const { childModule, execArgv } = childEntry();

/**
 * The host process's entry point. The compiled one starts in a third of the time; running from
 * the TypeScript sources (a checkout, the tests), it is used only while the build is newer than
 * every source file, else the child runs the sources through tsx like its parent.
 */
function childEntry(): { childModule: URL; execArgv: string[] } {
  const compiled = import.meta.url.endsWith('.ts') ? new URL('../../../dist/server/host/child.js', import.meta.url) : new URL('./child.js', import.meta.url);
  if (!import.meta.url.endsWith('.ts')) return { childModule: compiled, execArgv: [] };
  const newestSource = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce(
      (newest, e) => Math.max(newest, e.isDirectory() ? newestSource(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).mtimeMs),
      0,
    );
  try {
    if (statSync(fileURLToPath(compiled)).mtimeMs > newestSource(fileURLToPath(new URL('../../', import.meta.url)))) {
      return { childModule: compiled, execArgv: [] };
    }
  } catch {
    // no build: run the sources
  }
  return { childModule: new URL('./child.ts', import.meta.url), execArgv: ['--import', import.meta.resolve('tsx')] };
}

/** Extra node flags for host processes (profiling, inspecting): DIONE_HOST_NODE_FLAGS="--cpu-prof". */
const extraFlags = process.env.DIONE_HOST_NODE_FLAGS?.split(/\s+/).filter(Boolean) ?? [];

function spawnChild(): ChildProcess {
  return fork(fileURLToPath(childModule), [], { serialization: 'advanced', execArgv: [...execArgv, ...extraFlags], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

class Host {
  readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (r: HostReply) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout }>();
  private nextId = 1;
  private idleTimer?: NodeJS.Timeout;
  /** Requests waiting for this turn of the event loop to end: sent to the process as one message. */
  private outbox: HostRequest[] = [];
  private readonly ready: Promise<void>;
  lastUsed = Date.now();
  exited = false;
  /** Being stopped (idle, timed out): it finishes what it has, and new requests go to a new host. */
  retired = false;
  readonly exit: Promise<void>;

  constructor(
    readonly database: string,
    file: string,
    child: ChildProcess,
    private readonly options: PoolOptions,
    onExit: (host: Host) => void,
  ) {
    this.child = child;
    let readyResolve!: () => void;
    this.ready = new Promise((r) => (readyResolve = r));
    const loaded = new Promise<void>((resolve) => {
      if ((child as ChildProcess & { loaded?: boolean }).loaded) resolve();
      else child.once('message', () => resolve());
    });
    loaded.then(() => {
      if (this.exited) return;
      const cluster = options.cluster && { ...options.cluster, database };
      this.child.send({ id: -1, op: 'open', file, servedBy: options.servedBy, history: options.history, cluster } satisfies HostRequest);
    });
    const receive = (reply: HostReply) => {
      if (reply.id === -1) return readyResolve();
      if (reply.id === 0) return;
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      clearTimeout(waiter.timer);
      waiter.resolve(reply);
      if (this.pending.size === 0) this.armIdle();
    };
    // Replies come one by one or, when several are ready together, as an array.
    this.child.on('message', (message: HostReply | HostReply[]) => {
      if (Array.isArray(message)) for (const reply of message) receive(reply);
      else receive(message);
    });
    this.exit = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exited = true;
        readyResolve();
        clearTimeout(this.idleTimer);
        this.failAll(new HostFailure('crashed', HOST_MESSAGES.crashed));
        options.onEvent?.({ type: 'exit', database, detail: signal ?? `code ${code}` });
        onExit(this);
        resolve();
      });
    });
    this.child.on('error', () => {});
  }

  get busy(): boolean {
    return this.pending.size > 0;
  }

  async send(body: Body, timeoutMs = this.options.queryTimeoutMs): Promise<HostReply> {
    clearTimeout(this.idleTimer);
    this.lastUsed = Date.now();
    const id = this.nextId++;
    let waiter!: { resolve: (r: HostReply) => void; reject: (e: Error) => void; timer?: NodeJS.Timeout };
    const reply = new Promise<HostReply>((resolve, reject) => {
      waiter = { resolve, reject };
      this.pending.set(id, waiter);
    });
    // The caller receives the rejection through `reply`; this keeps a rejection that happens while
    // the host is still starting from counting as unhandled.
    reply.catch(() => {});
    await this.ready;
    if (this.exited) {
      this.pending.delete(id);
      throw new HostFailure('crashed', HOST_MESSAGES.crashed);
    }
    // The limit counts from when the host has the request, not from the process start.
    if (timeoutMs > 0 && this.pending.has(id)) waiter.timer = setTimeout(() => this.timeout(), timeoutMs);
    if (this.outbox.push({ ...body, id } as HostRequest) === 1) setImmediate(() => this.flush());
    return reply;
  }

  /** One write for all the requests of an event-loop turn: fewer system calls and wake-ups on both sides. */
  private flush(): void {
    const batch = this.outbox;
    this.outbox = [];
    if (batch.length === 0 || this.exited || !this.child.connected) return;
    this.child.send(batch.length === 1 ? batch[0] : batch);
  }

  private timeout(): void {
    this.retired = true;
    this.options.onEvent?.({ type: 'timeout', database: this.database });
    this.failAll(new HostFailure('timeout', HOST_MESSAGES.timeout));
    this.child.kill('SIGKILL');
  }

  private failAll(error: HostFailure): void {
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
      this.pending.delete(id);
    }
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.stop(), this.options.idleMs);
    this.idleTimer.unref();
  }

  /** Lets in-flight requests finish, then closes the database and ends the process. */
  async stop(): Promise<void> {
    this.retired = true;
    clearTimeout(this.idleTimer);
    while (this.pending.size > 0 && !this.exited) await new Promise((r) => setTimeout(r, 5));
    if (!this.exited && this.child.connected) this.child.disconnect();
    await this.exit;
  }
}

export class HostPool {
  /** The current host of each database. */
  private readonly hosts = new Map<string, Host>();
  /** Every host process still running, current or retiring. */
  private readonly live = new Set<Host>();
  private readonly spares: ChildProcess[] = [];
  private stopped = false;

  constructor(private readonly options: PoolOptions) {
    this.refill();
  }

  /** Keeps `spares` processes started and loaded, waiting for a database. */
  private refill(): void {
    while (!this.stopped && this.spares.length < (this.options.spares ?? 1)) {
      const child = spawnChild();
      const spare = child as ChildProcess & { loaded?: boolean };
      child.once('message', () => (spare.loaded = true));
      child.once('exit', () => {
        const i = this.spares.indexOf(child);
        if (i >= 0) this.spares.splice(i, 1);
      });
      child.on('error', () => {});
      this.spares.push(child);
    }
  }

  private takeChild(): ChildProcess {
    const child = this.spares.shift() ?? spawnChild();
    setImmediate(() => this.refill());
    return child;
  }

  get size(): number {
    return this.hosts.size;
  }

  /** Sends a request to the host of `database` (its file `file`), starting the host if needed. */
  send(database: string, file: string, body: Body, timeoutMs?: number): Promise<HostReply> {
    return this.host(database, file).send(body, timeoutMs);
  }

  private host(database: string, file: string): Host {
    let host = this.hosts.get(database);
    if (host && !host.exited && !host.retired) return host;
    if (this.hosts.size >= this.options.maxHosts) this.evictIdle();
    host = new Host(database, file, this.takeChild(), this.options, (h) => {
      if (this.hosts.get(database) === h) this.hosts.delete(database);
      this.live.delete(h);
    });
    this.hosts.set(database, host);
    this.live.add(host);
    this.options.onEvent?.({ type: 'spawn', database });
    return host;
  }

  private evictIdle(): void {
    const idle = [...this.hosts.values()].filter((h) => !h.busy && !h.retired).sort((a, b) => a.lastUsed - b.lastUsed);
    for (const host of idle.slice(0, Math.max(1, this.hosts.size - this.options.maxHosts + 1))) void host.stop();
  }

  /** Stops every process of a database (before deleting or replacing its file). */
  async stop(database: string): Promise<void> {
    await Promise.all([...this.live].filter((h) => h.database === database).map((h) => h.stop()));
  }

  /** Graceful: every in-flight request finishes, then every host closes its database. */
  async stopAll(): Promise<void> {
    this.stopped = true;
    const spares = this.spares.splice(0).map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null) return resolve(null);
          child.once('exit', resolve);
          child.kill();
        }),
    );
    await Promise.all([...[...this.live].map((h) => h.stop()), ...spares]);
  }
}
