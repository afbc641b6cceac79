// Builds what Dione needs compiled, on `npm install` (a C/C++ compiler is needed, as for
// better-sqlite3 built from source): native/dione_guard.c, the SQLite extension that gives each
// connection D1's limits and authorizer, against the SQLite headers that better-sqlite3 ships (so
// the extension matches the SQLite it is loaded into); then SQLite with row counters
// (scripts/build-sqlite.mjs).
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSqliteAddon } from './build-sqlite.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const source = path.join(root, 'native', 'dione_guard.c');
const output = path.join(root, 'build', process.platform === 'darwin' ? 'dione_guard.dylib' : 'dione_guard.so');
const require = createRequire(import.meta.url);
const headers = path.join(path.dirname(require.resolve('better-sqlite3/package.json')), 'deps', 'sqlite3');

const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};
const force = process.argv.includes('--force');
if (force || mtime(output) <= mtime(source)) buildGuard();
try {
  const started = Date.now();
  const result = buildSqliteAddon({ force });
  if (result === 'built') console.log(`dione: compiled SQLite with row counters in ${((Date.now() - started) / 1000).toFixed(0)} s`);
} catch (error) {
  console.error(error.message);
  process.exit(1);
}

function buildGuard() {
  mkdirSync(path.dirname(output), { recursive: true });
  const compiler = process.env.CC || 'cc';
  // -pthread: the extension runs a watchdog thread that interrupts statements past their deadline.
  const flags = ['-O2', '-Wall', '-fPIC', '-pthread', process.platform === 'darwin' ? '-dynamiclib' : '-shared'];
  try {
    const libraries = process.platform === 'darwin' ? [] : ['-ldl'];
    // Written beside it, then renamed: a process that has the old one loaded keeps its own copy.
    execFileSync(compiler, [...flags, '-I', headers, source, '-o', `${output}.tmp`, ...libraries], { stdio: 'inherit' });
    renameSync(`${output}.tmp`, output);
  } catch (error) {
    console.error(`dione: could not compile ${path.relative(root, source)} with ${compiler}: ${error.message}`);
    console.error('dione: install a C compiler (Debian: apt-get install build-essential) and run npm install again.');
    process.exit(1);
  }
}
