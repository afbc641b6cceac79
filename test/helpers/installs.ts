// Installing Dione into a fresh app the way a user does (npm pack, a git URL, a folder) with npm
// and packages from the npm cache, and running the app's `next dev` / `next start`.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { root } from './paths.ts';

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

export function sh(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env, timeoutMs = 600_000): Promise<Run> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr, seconds: (performance.now() - started) / 1000 }));
  });
}

/** The version of a package in this repository's node_modules (a devDependency, so in the npm cache). */
export function installedVersion(name: string): string {
  return (JSON.parse(readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * better-sqlite3's install script takes a prebuilt addon from a local folder before compiling
 * SQLite (a minute or more): this points it at the addon this repository's own install compiled,
 * for the same better-sqlite3 version, Node ABI and platform, packed as prebuild-install expects.
 * Dione's install likewise copies its SQLite with row counters from this repository's build when
 * it was built from the same sources (DIONE_SQLITE_ADDON, see scripts/build-sqlite.mjs).
 */
export async function localPrebuildEnv(dir: string): Promise<NodeJS.ProcessEnv> {
  mkdirSync(dir, { recursive: true });
  const libc = process.platform === 'linux' && !(process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime ? '-musl' : '';
  const name = `better-sqlite3-v${installedVersion('better-sqlite3')}-node-v${process.versions.modules}-${process.platform}${libc}-${process.arch}.tar.gz`;
  const packed = await sh('tar', ['-czf', path.join(dir, name), 'build/Release/better_sqlite3.node'], path.join(root, 'node_modules/better-sqlite3'));
  if (packed.code !== 0) throw new Error(`packing the prebuilt addon failed: ${packed.stderr}`);
  return { npm_config_better_sqlite3_local_prebuilds: dir, DIONE_SQLITE_ADDON: path.join(root, 'build', 'better_sqlite3.node') };
}

/** `npm install <specs>` in `app`, from the npm cache where it can. */
export function npmInstall(app: string, specs: string[], env: NodeJS.ProcessEnv, extra: string[] = []): Promise<Run> {
  return sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...extra, ...specs], app, { ...process.env, ...env });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface NextServer {
  url: string;
  /** Everything it printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/** `next dev` or `next start` (with `args`) in `app` on a free port, once it says it is ready. */
export async function startNext(app: string, command: 'dev' | 'start', args: string[] = []): Promise<NextServer> {
  const port = await freePort();
  const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', DIONE_URL: undefined, DIONE_TOKEN: undefined };
  // Its own process group: next starts workers of its own, and stop() ends them all.
  const child: ChildProcess = spawn(path.join(app, 'node_modules/.bin/next'), [command, ...args, '--port', String(port), '--hostname', '127.0.0.1'], {
    cwd: app,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {}
      const killTimer = setTimeout(() => {
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {}
      }, 5000);
      await exited;
      clearTimeout(killTimer);
    }
  };
  const deadline = Date.now() + 120_000;
  while (!/Ready in/.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`next ${command} did not start:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `http://127.0.0.1:${port}`, output: () => output, stop };
}
