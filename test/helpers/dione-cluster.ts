// Real Dione clusters for end-to-end tests: N `dione serve` processes, each one node of a cluster on
// a NATS JetStream cluster of our own (test/helpers/nats-cluster.ts), each with its own data
// directory and a fixed free loopback port (kept across restarts, so its URL stays the same).
//
// - An admin token is made in the first node's data directory (as `dione token create` does, while
//   the server runs) and reaches the other nodes through the shared catalogue: startDioneCluster
//   waits, bounded, until every node accepts it.
// - kill(i) SIGKILLs a node together with its database host processes (children forked by
//   src/server/host/pool.ts): the node is stopped with SIGSTOP first, so it cannot fork while its
//   tree is collected from /proc; then every process of the tree is SIGKILLed at once (a host whose
//   parent died first would notice the disconnect and give its leases up: that is a clean stop,
//   not a crash). Only processes descending from one this helper spawned are ever signalled.
// - restart(i) starts the node again with the same data directory, port and flags; add() starts a
//   brand-new node (empty data directory).
// - close() kills every node's tree, stops NATS (when the helper started it) and removes the
//   directories. A process exit hook kills whatever is still running.
//
// Never 127.0.0.1:4222: every node is given the URLs of this helper's own nats-server processes.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import type { IntMode } from '../../src/api/types.ts';
import type { D1Database } from '../../src/binding/database.ts';
import { connect } from '../../src/client/connect.ts';
import { type NatsCluster, startNatsCluster } from './nats-cluster.ts';
import { root } from './paths.ts';
import { tokenIn } from './server-checks.ts';

export interface NodeSpec {
  name: string;
  region: string;
}

export interface DioneNode extends NodeSpec {
  readonly dataDir: string;
  readonly port: number;
  /** http://127.0.0.1:PORT (the same across restarts). */
  readonly url: string;
  /** The `dione serve` process while it runs. */
  child: ChildProcess | null;
  /** Every incarnation's stderr / stdout (pino logs to stdout), labelled by start. */
  stderr(): string;
  stdout(): string;
}

export interface StartOptions {
  /** Resolve as soon as the process is spawned instead of when it prints where it listens. */
  wait?: boolean;
  /** Bound for it to print where it listens (default 40 s). */
  timeoutMs?: number;
}

export interface DioneClusterOptions {
  nodes: NodeSpec[];
  /** Lease TTL for every node (default 3000 ms). */
  leaseTtlMs?: number;
  replicas?: number;
  /** Number of NATS servers to start (default 3). */
  natsNodes?: number;
}

export interface DioneCluster {
  nats: NatsCluster;
  nodes: DioneNode[];
  accountId: string;
  /** An admin token every node accepts. */
  token: string;
  /** How long the token took to be accepted by each node (ms after it was made on node 0). */
  tokenSpreadMs: number[];
  /** `${url}/client/v4/accounts/${accountId}/d1/database` on node i. */
  api(i: number): string;
  /** A JSON request to node i with the admin token; resolves with status and parsed body. */
  request<T = any>(i: number, pathOrUrl: string, init?: RequestInit & { timeoutMs?: number }): Promise<{ status: number; body: T; ms: number }>;
  /** Creates a database through node i's REST API; returns its uuid. */
  createDatabase(i: number, name: string): Promise<string>;
  /** dione/client on node i (INTEGER values as numbers, or as exact bigints). */
  client(i: number, database: string, options?: { intMode?: IntMode }): D1Database;
  /** SIGKILL node i's whole process tree; returns the PIDs killed (the node's first). */
  kill(i: number): Promise<number[]>;
  /** Starts node i again: same data directory, port and flags. */
  restart(i: number, options?: StartOptions): Promise<DioneNode>;
  /** A new node with an empty data directory. */
  add(spec: NodeSpec, options?: StartOptions): Promise<DioneNode>;
  /** Whether node i's process runs. */
  running(i: number): boolean;
  /** The PIDs of node i's process tree (node first), for diagnostics. */
  tree(i: number): number[];
  close(): Promise<void>;
}

const OUTPUT_LIMIT = 512 * 1024;

/** Every process tree root this module started and has not seen exit. */
const liveRoots = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of liveRoots) if (child.pid) killTreeNow(child.pid);
  });
}

/** Ports already given to a node by this process: the kernel may hand a port it just freed out again. */
const handedOut = new Set<number>();

async function freePort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const port = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolve(port));
      });
    });
    if (!handedOut.has(port) || attempt >= 50) {
      handedOut.add(port);
      return port;
    }
  }
}

/** pid → ppid of every process (Linux /proc), and whether it is a zombie. */
function processTable(): Map<number, { ppid: number; zombie: boolean }> {
  const table = new Map<number, { ppid: number; zombie: boolean }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid …: comm may hold spaces and parentheses, so parse after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(entry), { ppid: Number(fields[1]), zombie: fields[0] === 'Z' || fields[0] === 'X' });
    } catch {
      // ended while we looked
    }
  }
  return table;
}

/** `pid` and all its live descendants. */
function descendantsOf(pid: number, table = processTable()): number[] {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [p, info] of table) if (info.ppid === tree[i] && !info.zombie && !tree.includes(p)) tree.push(p);
  }
  return tree;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Stops the root (so it cannot fork), then its descendants level by level until the tree no
 * longer grows, then SIGKILLs every process of it. Returns the PIDs killed.
 */
function killTreeNow(pid: number): number[] {
  signal(pid, 'SIGSTOP');
  let tree: number[] = [pid];
  for (let round = 0; round < 20; round++) {
    const next = descendantsOf(pid);
    for (const p of next) if (!tree.includes(p)) signal(p, 'SIGSTOP');
    const grew = next.some((p) => !tree.includes(p));
    tree = [...new Set([...tree, ...next])];
    if (!grew && round > 0) break;
  }
  for (const p of tree) signal(p, 'SIGKILL');
  return tree;
}

function gone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface NodeState {
  node: DioneNode;
  /** The node has listened once: its port and URL are its for good. */
  listened?: boolean;
  args: string[];
  err: string;
  out: string;
  exited: Promise<void> | null;
}

export async function startDioneCluster(options: DioneClusterOptions): Promise<DioneCluster> {
  installExitHook();
  const leaseTtl = options.leaseTtlMs ?? 3000;
  const replicas = options.replicas ?? 3;
  const nats = await startNatsCluster({ nodes: options.natsNodes ?? 3 });
  const dirs: string[] = [];
  const states: NodeState[] = [];
  let closed = false;
  let accountId = '';
  let token = '';

  const append = (text: string, more: string) => {
    const all = text + more;
    return all.length > OUTPUT_LIMIT ? all.slice(-OUTPUT_LIMIT) : all;
  };

  const launch = (state: NodeState, startOptions: StartOptions = {}): Promise<DioneNode> => {
    if (closed) throw new Error('the cluster is closed');
    if (state.node.child) throw new Error(`${state.node.name} is running already (pid ${state.node.child.pid})`);
    const stamp = `--- start ${new Date().toISOString()}\n`;
    state.err = append(state.err, stamp);
    state.out = append(state.out, stamp);
    const child = spawn(process.execPath, [path.join(root, 'bin/dione.js'), 'serve', ...state.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DIONE_LOG_LEVEL: process.env.DIONE_LOG_LEVEL ?? 'warn' },
    });
    state.node.child = child;
    liveRoots.add(child);
    const startedAt = state.err.lastIndexOf(stamp);
    child.stdout!.on('data', (chunk: Buffer) => (state.out = append(state.out, chunk.toString())));
    let onListening: () => void = () => {};
    let onFail: (e: Error) => void = () => {};
    const listening = new Promise<DioneNode>((resolve, reject) => {
      onListening = () => {
        state.listened = true;
        resolve(state.node);
      };
      onFail = reject;
    });
    listening.catch(() => {});
    child.stderr!.on('data', (chunk: Buffer) => {
      state.err = append(state.err, chunk.toString());
      const mine = state.err.slice(Math.max(0, startedAt));
      const id = /account id (\w+)/.exec(mine)?.[1];
      if (/listening on http:\/\//.test(mine) && id) {
        if (accountId && id !== accountId) onFail(new Error(`${state.node.name} reports account id ${id}, the cluster's is ${accountId}`));
        accountId ||= id;
        onListening();
      }
    });
    state.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, sig) => {
        liveRoots.delete(child);
        if (state.node.child === child) state.node.child = null;
        state.err = append(state.err, `--- exited code=${code} signal=${sig}\n`);
        onFail(new Error(`${state.node.name} exited (code ${code}, signal ${sig}) before it listened:\n${state.err.slice(-4000)}`));
        resolve();
      });
    });
    if (startOptions.wait === false) return Promise.resolve(state.node);
    const timeoutMs = startOptions.timeoutMs ?? 40_000;
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      listening,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${state.node.name} did not listen within ${timeoutMs} ms:\n${state.err.slice(-4000)}`)), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  };

  /**
   * launch(), again when the node's port was taken between freePort() and the node binding it (a
   * concurrent test's connection may get it from the kernel): a node that never listened gets a new
   * port, a restarted one (its URL must stay) tries the same port again a little later.
   */
  const launchRetrying = async (state: NodeState, startOptions: StartOptions = {}): Promise<DioneNode> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await launch(state, startOptions);
      } catch (e) {
        const lastStart = state.err.slice(state.err.lastIndexOf('--- start'));
        if (attempt >= 5 || !/ is in use \(another `dione serve`\?\)/.test(lastStart)) throw e;
        if (state.listened) await sleep(500);
        else repoint(state, await freePort());
      }
    }
  };

  const repoint = (state: NodeState, port: number): void => {
    // In place: the cluster's list of nodes holds this object.
    Object.assign(state.node as { port: number; url: string }, { port, url: `http://127.0.0.1:${port}` });
    state.args[state.args.indexOf('--port') + 1] = String(port);
  };

  const makeNode = async (spec: NodeSpec): Promise<NodeState> => {
    const dataDir = mkdtempSync(path.join(tmpdir(), `dione-cluster-${spec.name}-`));
    dirs.push(dataDir);
    const port = await freePort();
    const state: NodeState = {
      node: {
        ...spec,
        dataDir,
        port,
        url: `http://127.0.0.1:${port}`,
        child: null,
        stderr: () => state.err,
        stdout: () => state.out,
      },
      args: [
        '--host', '127.0.0.1',
        '--port', String(port),
        '--data', dataDir,
        '--nats', nats.urls.join(','),
        '--node-id', spec.name,
        '--region', spec.region,
        '--lease-ttl', String(leaseTtl),
        '--replicas', String(replicas),
      ],
      err: '',
      out: '',
      exited: null,
    };
    states.push(state);
    return state;
  };

  const stateAt = (i: number): NodeState => {
    const state = states[i];
    if (!state) throw new Error(`no Dione node ${i} (the cluster has ${states.length})`);
    return state;
  };

  const kill = async (i: number): Promise<number[]> => {
    const state = stateAt(i);
    const child = state.node.child;
    if (!child?.pid) return [];
    const killed = killTreeNow(child.pid);
    const deadline = Date.now() + 10_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([state.exited, new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]);
    clearTimeout(timer);
    while (!killed.every(gone)) {
      if (Date.now() > deadline) throw new Error(`${state.node.name}: processes ${killed.filter((p) => !gone(p)).join(', ')} survived SIGKILL`);
      await sleep(20);
    }
    return killed;
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    await Promise.all(states.map((_, i) => kill(i).catch(() => {})));
    await nats.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };

  const api = (i: number) => `${stateAt(i).node.url}/client/v4/accounts/${accountId}/d1/database`;

  const request = async <T>(i: number, pathOrUrl: string, init: RequestInit & { timeoutMs?: number } = {}) => {
    const { timeoutMs = 30_000, ...rest } = init;
    const headers = new Headers(rest.headers);
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
    if (rest.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${stateAt(i).node.url}${pathOrUrl}`;
    const started = Date.now();
    const response = await fetch(url, { ...rest, headers, signal: AbortSignal.timeout(timeoutMs) });
    const text = await response.text();
    let body: T;
    try {
      body = JSON.parse(text) as T;
    } catch {
      throw new Error(`${rest.method ?? 'GET'} ${url} answered ${response.status} with a body that is not JSON: ${text.slice(0, 300)}`);
    }
    return { status: response.status, body, ms: Date.now() - started };
  };

  const cluster: DioneCluster = {
    nats,
    nodes: [],
    get accountId() {
      return accountId;
    },
    get token() {
      return token;
    },
    tokenSpreadMs: [],
    api,
    request,
    async createDatabase(i, name) {
      const { status, body } = await request<{ success: boolean; result: { uuid: string }; errors: unknown }>(i, api(i), {
        method: 'POST',
        body: JSON.stringify({ name }),
      });
      if (status !== 200 || !body.success) throw new Error(`create ${name} on ${stateAt(i).node.name}: ${status} ${JSON.stringify(body.errors)}`);
      return body.result.uuid;
    },
    client: (i, database, clientOptions = {}) => connect({ url: stateAt(i).node.url, token, database, intMode: clientOptions.intMode }),
    kill,
    restart: (i, startOptions) => launchRetrying(stateAt(i), startOptions),
    async add(spec, startOptions) {
      const state = await makeNode(spec);
      cluster.nodes.push(state.node);
      return launchRetrying(state, startOptions);
    },
    running: (i) => stateAt(i).node.child !== null,
    tree: (i) => {
      const pid = stateAt(i).node.child?.pid;
      return pid ? descendantsOf(pid) : [];
    },
    close,
  };

  try {
    for (const spec of options.nodes) cluster.nodes.push((await makeNode(spec)).node);
    // The first node creates the shared catalogue (and the account id); the others join it.
    await launchRetrying(states[0]!);
    await Promise.all(states.slice(1).map((state) => launchRetrying(state)));
    // As `dione token create --data <node 0's directory>` does while the server runs.
    token = tokenIn(states[0]!.node.dataDir, 'admin');
    const made = Date.now();
    cluster.tokenSpreadMs = await Promise.all(
      states.map(async (state, i) => {
        for (;;) {
          const { status } = await request(i, api(i)).catch(() => ({ status: 0 }));
          if (status === 200) return Date.now() - made;
          if (Date.now() - made > 10_000) throw new Error(`the token made on ${states[0]!.node.name} is not accepted by ${state.node.name} after 10 s (last status ${status})`);
          await sleep(50);
        }
      }),
    );
  } catch (e) {
    const text = states.map((s) => `=== ${s.node.name}\n${s.err.slice(-3000)}`).join('\n');
    await close();
    if (e instanceof Error) e.message += `\n${text}`;
    throw e;
  }
  return cluster;
}

/** Meta of a D1 result, with the cluster fields. */
export interface ClusterMeta {
  served_by?: string;
  served_by_region?: string;
  served_by_primary?: boolean;
  [key: string]: unknown;
}

/**
 * Calls `probe` until it returns something other than undefined, at most `ms`; undefined if it never
 * did. A probe that throws counts as "not yet", except for a failed assertion, which is thrown.
 */
export async function within<T>(ms: number, probe: () => Promise<T | undefined>, intervalMs = 50): Promise<T | undefined> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe().catch((e: unknown) => {
      if (e instanceof assert.AssertionError) throw e;
      return undefined;
    });
    if (value !== undefined) return value;
    if (Date.now() >= deadline) return undefined;
    await sleep(intervalMs);
  }
}

/** Three nodes in three regions: the cluster the end-to-end tests run. */
export const THREE_NODES: NodeSpec[] = [
  { name: 'a', region: 'WEUR' },
  { name: 'b', region: 'ENAM' },
  { name: 'c', region: 'APAC' },
];

/** A read that touches the database file (its answer carries the bookmark of the copy it read). */
export const PROBE = 'SELECT count(*) AS n FROM sqlite_master';

/** THREE_NODES (lease TTL 3 s) on their own NATS cluster for one test file: started before its tests, closed after. */
export function useDioneCluster(): () => DioneCluster {
  let cluster: DioneCluster | undefined;
  before(async () => {
    cluster = await startDioneCluster({ nodes: THREE_NODES, leaseTtlMs: 3000 });
  });
  after(async () => {
    await cluster?.close();
  });
  return () => cluster!;
}
