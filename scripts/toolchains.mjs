// The toolchains Dione is tested with beyond its own dependencies, from the npm registry only
// (nothing else is downloaded), into a cache folder (DIONE_TOOLCHAINS, default
// node_modules/.cache/dione-toolchains):
//
//   node@24, node@22   Node.js itself: the registry's node-<platform>-<arch> package (the official
//                      build, with its headers in include/node, so node-gyp builds against them
//                      when npm_config_nodedir points at the folder). -> <cache>/node-24/bin/node
//   wrangler           the newest wrangler (DIONE_WRANGLER_VERSION, default the `latest` tag), in
//                      its own folder with its own workerd and miniflare. It needs Node >= 22.12, so
//                      it runs on node@24 here. -> <cache>/wrangler/node_modules/wrangler
//
// `node scripts/toolchains.mjs node@24 wrangler` installs what is missing and prints, one a line,
// what to export: DIONE_NODE_24=<node binary>, DIONE_NODE_24_DIR=<its folder, for
// npm_config_nodedir>, DIONE_WRANGLER=<bin/wrangler.js>, DIONE_WRANGLER_VERSION=<version>. Progress
// goes to stderr. What is installed is kept; `--refresh` asks the registry for newer ones (one look-up
// each) and replaces what is older.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const cacheDir = process.env.DIONE_TOOLCHAINS || path.join(root, 'node_modules', '.cache', 'dione-toolchains');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const quiet = ['--loglevel=error', '--no-audit', '--no-fund', '--no-update-notifier'];

const say = (line) => process.stderr.write(`dione toolchains: ${line}\n`);
const run = (args, cwd) => execFileSync(npm, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();

/** Node `major` from the registry's node-<platform>-<arch> package: its folder (bin/node, include/node). */
export function installNode(major, { refresh = false } = {}) {
  const dir = path.join(cacheDir, `node-${major}`);
  const binary = path.join(dir, 'bin', process.platform === 'win32' ? 'node.exe' : 'node');
  const spec = `node-${process.platform}-${process.arch}@${major}`;
  let stale = !existsSync(binary);
  if (!stale && refresh) {
    const installed = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim().replace(/^v/, '');
    const versions = JSON.parse(run(['view', spec, 'version', '--json', ...quiet], cacheDir));
    const newest = Array.isArray(versions) ? versions.at(-1) : versions;
    stale = newest !== installed;
  }
  if (stale) {
    say(`installing ${spec} (npm pack)`);
    mkdirSync(cacheDir, { recursive: true });
    const work = mkdtempSync(path.join(cacheDir, '.node-'));
    try {
      const [packed] = JSON.parse(run(['pack', spec, '--json', ...quiet], work));
      execFileSync('tar', ['xzf', packed.filename], { cwd: work });
      rmSync(dir, { recursive: true, force: true });
      renameSync(path.join(work, 'package'), dir);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  return { dir, binary, version };
}

/** The newest wrangler (or DIONE_WRANGLER_VERSION) in a folder of its own. */
export function installWrangler({ refresh = false } = {}) {
  const dir = path.join(cacheDir, 'wrangler');
  const packageFile = path.join(dir, 'node_modules', 'wrangler', 'package.json');
  const installed = existsSync(packageFile) ? JSON.parse(readFileSync(packageFile, 'utf8')).version : undefined;
  let wanted = process.env.DIONE_WRANGLER_VERSION;
  if (!wanted && (refresh || !installed)) wanted = run(['view', 'wrangler@latest', 'version', ...quiet], cacheDir);
  if (wanted && wanted !== installed) {
    say(`installing wrangler@${wanted}${installed ? ` (was ${installed})` : ''}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'dione-toolchain-wrangler', private: true }));
    // --ignore-scripts is not used: workerd's install script checks its platform binary.
    run(['install', '--no-save', '--no-package-lock', ...quiet, `wrangler@${wanted}`], dir);
  }
  const version = JSON.parse(readFileSync(packageFile, 'utf8')).version;
  return { dir, bin: path.join(dir, 'node_modules', 'wrangler', 'bin', 'wrangler.js'), version };
}

/** Installs what `args` name; the lines to export. */
export function toolchains(args) {
  const lines = [];
  const refresh = args.includes('--refresh');
  for (const arg of args.filter((a) => !a.startsWith('--'))) {
    const node = /^node@(\d+)$/.exec(arg);
    if (node) {
      const { dir, binary, version } = installNode(node[1], { refresh });
      say(`node ${version}: ${binary}`);
      lines.push(`DIONE_NODE_${node[1]}=${binary}`, `DIONE_NODE_${node[1]}_DIR=${dir}`);
    } else if (arg === 'wrangler') {
      const { bin, version } = installWrangler({ refresh });
      say(`wrangler ${version}: ${bin}`);
      lines.push(`DIONE_WRANGLER=${bin}`, `DIONE_WRANGLER_VERSION=${version}`);
    } else {
      throw new Error(`dione toolchains: unknown toolchain "${arg}" (node@<major>, wrangler)`);
    }
  }
  return lines;
}

/** What is in the cache already, without installing anything (for tests that use it when present). */
export function installedToolchains() {
  const found = {};
  if (!existsSync(cacheDir)) return found;
  for (const entry of readdirSync(cacheDir)) {
    const node = /^node-(\d+)$/.exec(entry);
    const binary = path.join(cacheDir, entry, 'bin', 'node');
    if (node && existsSync(binary)) found[`node@${node[1]}`] = binary;
  }
  const wrangler = path.join(cacheDir, 'wrangler', 'node_modules', 'wrangler', 'bin', 'wrangler.js');
  if (existsSync(wrangler)) found.wrangler = wrangler;
  return found;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    const lines = toolchains(process.argv.slice(2));
    process.stdout.write(lines.map((l) => `${l}\n`).join(''));
  } catch (error) {
    say(error.message);
    process.exit(1);
  }
}
