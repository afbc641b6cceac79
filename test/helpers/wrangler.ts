// The real wrangler CLI (a devDependency) run against a Dione server, for the tests that use it: a child process with a fresh HOME/XDG_CONFIG_HOME/TMPDIR, CLOUDFLARE_API_BASE_URL at the
// server, and fixtures/wrangler/no-network.cjs preloaded so that nothing leaves 127.0.0.1 (every
// run reports what it refused). Its npm update check is pointed at the server, which answers 404
// (4.86 reads the registry from `npm_registry`), and answered from its cache beforehand (4.164 asks
// registry.npmjs.org unless <tmpdir>/update-check/ holds an answer younger than an hour).
//
// Which wrangler: the devDependency (4.86.0, the newest that runs on Node 20), unless
// DIONE_WRANGLER names another one's bin/wrangler.js (`npm run toolchains` installs the newest the
// registry serves, which needs Node >= 22.12) and DIONE_WRANGLER_NODE the node binary to run it with
// (default: this process's). .ci/run runs them that way on Node 24, and with 4.86 on Node 20.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { root } from './paths.ts';

/** A wrangler CLI (its bin/wrangler.js), the node that runs it, and its version. */
export interface WranglerTool {
  bin: string;
  node: string;
  version: string;
}

export function wranglerTool(bin: string, node: string = process.execPath): WranglerTool {
  const { version } = JSON.parse(readFileSync(path.join(path.dirname(bin), '..', 'package.json'), 'utf8')) as { version: string };
  return { bin, node, version };
}

/** The wrangler the tests run by default: the devDependency, or DIONE_WRANGLER on DIONE_WRANGLER_NODE. */
export const defaultWrangler: WranglerTool = wranglerTool(
  process.env.DIONE_WRANGLER || path.join(root, 'node_modules/wrangler/bin/wrangler.js'),
  process.env.DIONE_WRANGLER_NODE || process.execPath,
);
const NO_NETWORK = path.join(root, 'test/fixtures/wrangler/no-network.cjs');
const RUN_TIMEOUT_MS = 60_000;

export interface WranglerRun {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Connections and lookups beyond 127.0.0.1 that the guard refused. */
  refused: string[];
}

export interface RunOptions {
  /** Default: the runner's own project folder. */
  cwd?: string;
  /** The API token wrangler sends (default: the server's admin token). */
  token?: string;
  /** Leave wrangler's npm update check pointed at the real registry (only to prove the guard works). */
  realRegistry?: boolean;
  /** Leave CLOUDFLARE_ACCOUNT_ID unset, so wrangler asks /memberships. */
  noAccountId?: boolean;
}

export interface WranglerRunner {
  /** The runner's scratch folder (HOME, TMPDIR, and room for project folders). */
  readonly dir: string;
  run(args: string[], options?: RunOptions): Promise<WranglerRun>;
  /** Removes the runner's scratch folder. */
  close(): void;
}

export function show(run: WranglerRun): string {
  return `wrangler ${run.args.join(' ')} → code ${run.code}${run.signal ? ` signal ${run.signal}` : ''}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

/** The JSON document wrangler printed: from the first line that opens one (the banner comes first). */
export function jsonOf(run: WranglerRun): any {
  const start = /^[[{]/m.exec(run.stdout);
  if (!start) throw new Error(`no JSON on stdout\n${show(run)}`);
  return JSON.parse(run.stdout.slice(start.index));
}

export function wranglerFor(server: { url: string; token: string; accountId: string }, tool: WranglerTool = defaultWrangler): WranglerRunner {
  const scratch = mkdtempSync(path.join(tmpdir(), 'dione-wrangler-'));
  for (const dir of ['home/.config', 'tmp', 'net', 'project']) mkdirSync(path.join(scratch, dir), { recursive: true });
  let runs = 0;
  return {
    dir: scratch,
    run(args, options = {}) {
      const netLog = path.join(scratch, 'net', `run-${++runs}.log`);
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: path.join(scratch, 'home'),
        XDG_CONFIG_HOME: path.join(scratch, 'home/.config'),
        TMPDIR: path.join(scratch, 'tmp'),
        CLOUDFLARE_API_BASE_URL: `${server.url}/client/v4`,
        CLOUDFLARE_API_TOKEN: options.token ?? server.token,
        CLOUDFLARE_ACCOUNT_ID: server.accountId,
        WRANGLER_SEND_METRICS: 'false',
        WRANGLER_SEND_ERROR_REPORTS: 'false',
        CI: 'true',
        NO_COLOR: '1',
        NODE_OPTIONS: `--require ${NO_NETWORK}`,
        DIONE_NET_LOG: netLog,
      };
      // Newer wranglers (4.164) ask https://registry.npmjs.org/ itself, unless the answer of the last
      // hour is in <tmpdir>/update-check/ (4.86 reads that cache too): that answer is its own version.
      // A run that must reach for the registry gets a temp folder of its own, without that answer.
      const updateCheck = path.join(scratch, 'tmp', 'update-check', 'wrangler-latest.json');
      if (options.realRegistry) env.TMPDIR = mkdtempSync(path.join(scratch, 'tmp-registry-'));
      else {
        env.npm_registry = `${server.url}/npm-registry-stand-in/`;
        // Written beside it and renamed: wranglers running at the same time read it whole.
        mkdirSync(path.dirname(updateCheck), { recursive: true });
        writeFileSync(`${updateCheck}.${runs}`, JSON.stringify({ latest: tool.version, lastUpdate: Date.now() }));
        renameSync(`${updateCheck}.${runs}`, updateCheck);
      }
      if (options.noAccountId) delete env.CLOUDFLARE_ACCOUNT_ID;
      const cwd = options.cwd ?? path.join(scratch, 'project');
      return new Promise((resolve, reject) => {
        const child = spawn(tool.node, [tool.bin, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
        child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            child.kill('SIGKILL');
          }
        }, RUN_TIMEOUT_MS);
        child.once('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
        child.once('close', (code, signal) => {
          clearTimeout(timer);
          const refused = existsSync(netLog) ? readFileSync(netLog, 'utf8').split('\n').filter(Boolean) : [];
          const run = { args, code, signal, stdout, stderr, refused };
          if (timedOut) reject(new Error(`wrangler ${args.join(' ')} did not finish within ${RUN_TIMEOUT_MS} ms\n${show(run)}`));
          else resolve(run);
        });
      });
    },
    close: () => rmSync(scratch, { recursive: true, force: true }),
  };
}
