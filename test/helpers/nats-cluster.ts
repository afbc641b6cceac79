// Real nats-server processes for tests: `startNatsCluster({ nodes: 3 })` runs a JetStream cluster of N
// servers, `startNatsServer()` a single JetStream server. Each server gets free 127.0.0.1 ports (client
// and cluster route), its own temp store directory and a generated config file; the helper waits until
// the JetStream cluster has a meta leader and can kill (SIGKILL), stop (SIGTERM) and restart (same
// ports, same store) a node. Everything is bounded in time, server output is kept for error messages,
// and close() stops every process this helper started (by PID) and removes the directories.
//
// It never touches the shared server on 127.0.0.1:4222: clients are always given our own URLs (a NATS
// client with no servers falls back to 4222), and the cluster name is random.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';

export interface NatsClusterOptions {
  /** Number of servers; 1 starts a single server with no cluster block. Default 3. */
  nodes?: number;
  /** Bound for starting all servers and waiting for the JetStream meta leader. Default 30 s. */
  startTimeoutMs?: number;
  /** The nats-server binary; default $NATS_SERVER, then /usr/sbin/nats-server, then PATH. */
  binary?: string;
}

export interface NatsNode {
  name: string;
  /** Client port. */
  port: number;
  /** Cluster route port (0 for a single server). */
  routePort: number;
  url: string;
  storeDir: string;
  configFile: string;
  /** PID of the running process, or null while it is down. */
  pid: number | null;
}

export interface NatsCluster {
  /** One client URL per node (nats://127.0.0.1:PORT), index = node number. */
  urls: string[];
  nodes: NatsNode[];
  /** SIGKILL node i (by PID) and wait until it has exited. */
  kill(i: number): Promise<void>;
  /** SIGTERM node i and wait until it has exited (SIGKILL after a bound). */
  stop(i: number): Promise<void>;
  /** Start node i again with the same ports, config and store directory; resolves when it is ready. */
  restart(i: number): Promise<void>;
  /** Waits (bounded) until the JetStream meta layer answers through the running nodes. */
  waitForMetaLeader(timeoutMs?: number): Promise<number>;
  /** The captured output of node i (every incarnation), for error messages. */
  output(i: number): string;
  /** All nodes' output, labelled. */
  outputs(): string;
  /** Stops every node, removes the temp directory. Safe to call twice and after failures. */
  close(): Promise<void>;
}

const OUTPUT_LIMIT = 256 * 1024;
const READY_TIMEOUT_MS = 15_000;
const EXIT_TIMEOUT_MS = 10_000;

/** Processes this module started and has not seen exit: killed if the test process exits abruptly. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) {
      try {
        if (child.pid) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

export function natsServerBinary(explicit?: string): string {
  const candidates = [explicit, process.env.NATS_SERVER, '/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) if (dir) candidates.push(path.join(dir, 'nats-server'));
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new Error('nats-server not found: install the Debian package nats-server (.ci/run does) or set NATS_SERVER');
}

/** Free 127.0.0.1 ports, all distinct: each is bound to port 0 at the same time, then released. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer();
          server.once('error', reject);
          server.listen(0, '127.0.0.1', () => resolve(server));
        }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  return ports;
}

function configText(node: NatsNode, clusterName: string, all: NatsNode[]): string {
  const lines = [
    `server_name: ${JSON.stringify(node.name)}`,
    `listen: "127.0.0.1:${node.port}"`,
    'jetstream {',
    `  store_dir: ${JSON.stringify(node.storeDir)}`,
    '  max_memory_store: 256MB',
    '  max_file_store: 4GB',
    '}',
  ];
  if (all.length > 1) {
    const routes = all.filter((other) => other !== node).map((other) => JSON.stringify(`nats-route://127.0.0.1:${other.routePort}`));
    lines.push(
      'cluster {',
      `  name: ${JSON.stringify(clusterName)}`,
      `  listen: "127.0.0.1:${node.routePort}"`,
      `  routes: [${routes.join(', ')}]`,
      '}',
    );
  }
  return lines.join('\n') + '\n';
}

class StartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
  }
}

interface NodeState {
  node: NatsNode;
  child: ChildProcess | null;
  exited: Promise<void> | null;
  output: string;
}

/** A JetStream cluster of `nodes` nats-server processes (default 3) on free loopback ports. */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const count = options.nodes ?? 3;
  if (!Number.isInteger(count) || count < 1) throw new Error(`nodes must be a positive integer, not ${count}`);
  const binary = natsServerBinary(options.binary);
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + startTimeoutMs;
  installExitHook();

  const dir = mkdtempSync(path.join(tmpdir(), 'dione-nats-'));
  const clusterName = `dione-test-${randomBytes(4).toString('hex')}`;
  let states: NodeState[] = [];
  let closed = false;

  const appendOutput = (state: NodeState, text: string) => {
    state.output += text;
    if (state.output.length > OUTPUT_LIMIT) state.output = state.output.slice(-OUTPUT_LIMIT);
  };

  const launch = (state: NodeState): Promise<void> => {
    if (state.child) throw new Error(`${state.node.name} is already running (pid ${state.child.pid})`);
    appendOutput(state, `--- start ${new Date().toISOString()}\n`);
    const child = spawn(binary, ['-c', state.node.configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    state.child = child;
    live.add(child);
    let ready = false;
    let onReady: () => void = () => {};
    let onFail: (error: Error) => void = () => {};
    const readyPromise = new Promise<void>((resolve, reject) => {
      onReady = resolve;
      onFail = reject;
    });
    const onData = (chunk: Buffer) => {
      appendOutput(state, chunk.toString());
      if (!ready && state.output.includes('Server is ready')) {
        // only count a "ready" from this incarnation
        const lastStart = state.output.lastIndexOf('--- start ');
        if (state.output.indexOf('Server is ready', lastStart) !== -1) {
          ready = true;
          onReady();
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    state.exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        if (state.child === child) {
          state.child = null;
          state.node.pid = null;
        }
        appendOutput(state, `--- exited code=${code} signal=${signal}\n`);
        if (!ready) {
          const tail = state.output.slice(state.output.lastIndexOf('--- start '));
          onFail(new StartError(`${state.node.name} exited before it was ready:\n${tail}`, /address already in use/i.test(tail)));
        }
        resolve();
      });
      child.once('error', (error) => {
        appendOutput(state, `--- spawn error ${error.message}\n`);
        if (!ready) onFail(new StartError(`${state.node.name} could not be started: ${error.message}`, false));
      });
    });
    state.node.pid = child.pid ?? null;
    const timer = setTimeout(() => {
      if (!ready) onFail(new StartError(`${state.node.name} not ready within ${READY_TIMEOUT_MS} ms:\n${state.output.slice(-4000)}`, false));
    }, READY_TIMEOUT_MS);
    return readyPromise.finally(() => clearTimeout(timer));
  };

  const halt = async (state: NodeState, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> => {
    const child = state.child;
    if (!child || child.pid === undefined) return;
    try {
      process.kill(child.pid, signal);
    } catch {
      // already gone
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      state.exited!.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), EXIT_TIMEOUT_MS))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // gone
      }
      await state.exited;
    }
  };

  const stateAt = (i: number): NodeState => {
    const state = states[i];
    if (!state) throw new Error(`no NATS node ${i} (cluster has ${states.length})`);
    return state;
  };

  const outputs = () => states.map((state) => `=== ${state.node.name}\n${state.output.slice(-8000)}`).join('\n');

  const stopAll = async (signal: 'SIGKILL' | 'SIGTERM') => {
    await Promise.all(states.map((state) => halt(state, signal)));
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    await stopAll('SIGTERM').catch(() => stopAll('SIGKILL'));
    rmSync(dir, { recursive: true, force: true });
  };

  const waitForMetaLeader = async (timeoutMs = 20_000): Promise<number> => {
    const started = Date.now();
    const until = started + timeoutMs;
    const urls = states.filter((state) => state.child).map((state) => state.node.url);
    if (urls.length === 0) throw new Error('no NATS node is running');
    let lastError: unknown = null;
    while (Date.now() < until) {
      let nc: NatsConnection | null = null;
      try {
        nc = await connect({ servers: urls, timeout: 1000, reconnect: false, ignoreClusterUpdates: true });
        const jsm = await jetstreamManager(nc, { timeout: 1000, checkAPI: false });
        // Account info is answered through the JetStream meta leader in a cluster; a stream name
        // listing also needs the meta layer, so both succeeding means there is a working leader.
        await jsm.getAccountInfo();
        await jsm.streams.names().next();
        return Date.now() - started;
      } catch (error) {
        lastError = error;
      } finally {
        await nc?.close().catch(() => {});
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`JetStream meta leader not available within ${timeoutMs} ms (last: ${String(lastError)}):\n${outputs()}`);
  };

  try {
    for (let attempt = 1; ; attempt++) {
      const ports = await freePorts(count * 2);
      states = Array.from({ length: count }, (_, i) => {
        const name = `n${i}`;
        const storeDir = path.join(dir, name, 'store');
        mkdirSync(storeDir, { recursive: true });
        const node: NatsNode = {
          name,
          port: ports[i * 2]!,
          routePort: count > 1 ? ports[i * 2 + 1]! : 0,
          url: `nats://127.0.0.1:${ports[i * 2]}`,
          storeDir,
          configFile: path.join(dir, name, 'nats.conf'),
          pid: null,
        };
        return { node, child: null, exited: null, output: '' };
      });
      for (const state of states) writeFileSync(state.node.configFile, configText(state.node, clusterName, states.map((s) => s.node)));
      try {
        await Promise.all(states.map((state) => launch(state)));
        break;
      } catch (error) {
        await stopAll('SIGKILL');
        // a port taken between picking and binding: pick again, with fresh store dirs
        if (error instanceof StartError && error.addressInUse && attempt < 5 && Date.now() < deadline) {
          for (const state of states) rmSync(path.dirname(state.node.storeDir), { recursive: true, force: true });
          continue;
        }
        throw error;
      }
    }
    await waitForMetaLeader(Math.max(1000, deadline - Date.now()));
  } catch (error) {
    const text = outputs();
    await close();
    if (error instanceof Error && !error.message.includes('===')) error.message += `\n${text}`;
    throw error;
  }

  return {
    urls: states.map((state) => state.node.url),
    nodes: states.map((state) => state.node),
    kill: (i) => halt(stateAt(i), 'SIGKILL'),
    stop: (i) => halt(stateAt(i), 'SIGTERM'),
    async restart(i) {
      if (closed) throw new Error('cluster is closed');
      const state = stateAt(i);
      if (state.child) await halt(state, 'SIGTERM');
      try {
        await launch(state);
      } catch (error) {
        if (error instanceof StartError && error.addressInUse) {
          error.message = `${state.node.name} cannot restart: its port ${state.node.port} or ${state.node.routePort} was taken meanwhile\n${error.message}`;
        }
        throw error;
      }
    },
    waitForMetaLeader,
    output: (i) => stateAt(i).output,
    outputs,
    close,
  };
}

/** One JetStream-enabled nats-server (no cluster) on a free loopback port. */
export function startNatsServer(options: Omit<NatsClusterOptions, 'nodes'> = {}): Promise<NatsCluster> {
  return startNatsCluster({ ...options, nodes: 1 });
}

/**
 * For a test file: a 3-node cluster started before its tests and stopped after them, and client
 * connections to it that are closed after them too.
 */
export function useNatsCluster(): { cluster: () => NatsCluster; connectTo: (servers: string[]) => Promise<NatsConnection> } {
  let cluster: NatsCluster | undefined;
  const connections: NatsConnection[] = [];
  before(async () => {
    cluster = await startNatsCluster({ nodes: 3 });
  });
  after(async () => {
    for (const nc of connections) await nc.close().catch(() => {});
    await cluster?.close();
  });
  return {
    cluster: () => cluster!,
    async connectTo(servers) {
      // Always explicit servers: a client given none would reach the machine's shared server.
      const nc = await connect({ servers, timeout: 2000, reconnectTimeWait: 250, maxReconnectAttempts: -1 });
      connections.push(nc);
      return nc;
    },
  };
}
