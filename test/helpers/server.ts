// A real Dione server for tests: its own temp data directory, a free port on 127.0.0.1, an admin
// token, and clean-up. `startTestServer()` runs it in this process; `spawnServer()` runs `dione
// serve` as a child process (for kill tests).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Catalog } from '../../src/server/catalog.ts';
import { type RunningServer, type StartOptions, startServer } from '../../src/server/serve.ts';
import { createToken } from '../../src/server/tokens.ts';
import { root } from './paths.ts';

export interface TestServer {
  server: RunningServer;
  url: string;
  accountId: string;
  /** An admin token for every database. */
  token: string;
  dataDir: string;
  /** `${url}/client/v4/accounts/${accountId}/d1/database` */
  api: string;
  /** fetch() with the admin token (or the given one) and JSON. */
  call(pathOrUrl: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  /** Creates a database through the REST API; returns its uuid. */
  createDatabase(name: string): Promise<string>;
  /** A token with the given scope (optionally for one database). */
  tokenFor(scope: 'read' | 'write' | 'admin', database?: string): string;
  close(): Promise<void>;
}

export async function startTestServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'dione-server-'));
  const server = await startServer({ port: 0, data: dataDir, logger: pino({ level: 'silent' }), ...options });
  const tokenFor = (scope: 'read' | 'write' | 'admin', database?: string) => {
    const catalog = new Catalog(dataDir);
    try {
      const uuid = database ? (catalog.find(database)?.uuid ?? null) : null;
      if (database && !uuid) throw new Error(`no database ${database}`);
      return createToken(catalog, scope, uuid).token;
    } finally {
      catalog.close();
    }
  };
  const token = tokenFor('admin');
  const api = `${server.url}/client/v4/accounts/${server.accountId}/d1/database`;
  const call = (pathOrUrl: string, init: RequestInit & { token?: string | null } = {}) => {
    const headers = new Headers(init.headers);
    const t = init.token === undefined ? token : init.token;
    if (t) headers.set('authorization', `Bearer ${t}`);
    if (init.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
    return fetch(pathOrUrl.startsWith('http') ? pathOrUrl : `${server.url}${pathOrUrl}`, { ...init, headers });
  };
  return {
    server,
    url: server.url,
    accountId: server.accountId,
    token,
    dataDir,
    api,
    call,
    tokenFor,
    async createDatabase(name: string) {
      const response = await call(api, { method: 'POST', body: JSON.stringify({ name }) });
      const body = (await response.json()) as { success: boolean; result: { uuid: string }; errors: unknown };
      if (!body.success) throw new Error(`create ${name} failed: ${JSON.stringify(body.errors)}`);
      return body.result.uuid;
    },
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface SpawnedServer {
  child: ChildProcess;
  url: string;
  accountId: string;
  stderr: () => string;
  /** The request log (JSON lines, warnings and up). */
  stdout: () => string;
}

/**
 * `dione serve` as a child process on a free port; resolves once it prints where it listens.
 * `openFiles`: its open-file limit, lowered by the shell (ulimit -n) before it starts.
 */
export async function spawnServer(dataDir: string, args: string[] = [], options: { openFiles?: number } = {}): Promise<SpawnedServer> {
  const command = [process.execPath, path.join(root, 'bin/dione.js'), 'serve', '--port', '0', '--data', dataDir, ...args];
  const [file, argv] = options.openFiles === undefined ? [command[0]!, command.slice(1)] : ['bash', ['-c', `ulimit -n ${options.openFiles} && exec "$0" "$@"`, ...command]];
  const child = spawn(file, argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DIONE_LOG_LEVEL: 'warn' },
  });
  let err = '';
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dione serve did not start:\n${err}`)), 30_000);
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
      const url = /listening on (http:\/\/\S+)/.exec(err)?.[1];
      const accountId = /account id (\w+)/.exec(err)?.[1];
      if (url && accountId) {
        clearTimeout(timer);
        resolve({ child, url, accountId, stderr: () => err, stdout: () => out });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dione serve exited with ${code}:\n${err}`));
    });
  });
}
