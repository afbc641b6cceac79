// The package as another project sees it: `npm install` built dist/, `npm pack` ships every file
// package.json's exports name, `import { open } from 'dione'` and dione/platform work from a project
// that depends on it by path, Node loads dist/ directly while bundlers get the loaders (loader/), and
// dione/client pulls in nothing Node-only. (test/install/ installs the package into real apps.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { root } from './helpers/paths.ts';

const dist = path.join(root, 'dist');

test('npm install built dist/ and the native guard', () => {
  for (const file of ['index.js', 'index.d.ts', 'client.js', 'client.d.ts', 'platform/index.js', 'platform/index.d.ts', 'cli/main.js']) {
    assert.ok(existsSync(path.join(dist, file)), `dist/${file} is missing: run npm install`);
  }
  assert.ok(existsSync(path.join(root, 'build', process.platform === 'darwin' ? 'dione_guard.dylib' : 'dione_guard.so')));
});

test('npm pack ships every file the exports name, the CLI and the native sources, and no sources or tests', () => {
  // --ignore-scripts: lists the files without running prepare (which rebuilds dist/ in place).
  const pack = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  assert.equal(pack.status, 0, pack.stderr);
  const files = new Set((JSON.parse(pack.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  const { exports } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, string | Record<string, string>> };
  const targets = Object.values(exports).flatMap((target) => (typeof target === 'string' ? [target] : Object.values(target)));
  assert.ok(targets.includes('./loader/platform.js') && targets.includes('./dist/platform/index.d.ts'));
  const missing = [...targets, './bin/dione.js', './native/dione_guard.c', './scripts/build-native.mjs'].filter((t) => !files.has(t.slice(2)));
  assert.deepEqual(missing, []);
  assert.deepEqual([...files].filter((f) => /^(src|test|bench|conformance)\//.test(f)), []);
});

test('Node resolves dione and dione/platform to dist/; without the "node-addons" condition (bundlers) to the loaders', () => {
  const resolve = (flags: string[]) => {
    const script = "console.log(JSON.stringify(['dione', 'dione/platform', 'dione/client'].map((s) => import.meta.resolve(s))))";
    const run = spawnSync(process.execPath, [...flags, '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    assert.equal(run.status, 0, run.stderr);
    return (JSON.parse(run.stdout) as string[]).map((url) => path.relative(root, fileURLToPath(url)));
  };
  assert.deepEqual(resolve([]), ['dist/index.js', 'dist/platform/index.js', 'dist/client.js']);
  // --no-addons turns the condition off, as a bundler resolving for Node has it.
  assert.deepEqual(resolve(['--no-addons']), ['loader/dione.js', 'loader/platform.js', 'dist/client.js']);
});

test('the loaders hand out the very exports of dist/', async () => {
  const loader = await import(pathToFileURL(path.join(root, 'loader/dione.js')).href);
  const dione = await import(pathToFileURL(path.join(dist, 'index.js')).href);
  assert.deepEqual(Object.keys(loader).sort(), Object.keys(dione).sort());
  for (const name of Object.keys(dione)) assert.equal(loader[name], dione[name], name);
  const platformLoader = await import(pathToFileURL(path.join(root, 'loader/platform.js')).href);
  const platform = await import(pathToFileURL(path.join(dist, 'platform/index.js')).href);
  assert.deepEqual(Object.keys(platformLoader), Object.keys(platform));
  // The options reach the real getPlatformProxy.
  await assert.rejects(platformLoader.getPlatformProxy({ configPath: 'no/such/wrangler.toml' }), /no\/such\/wrangler\.toml .*does not exist/);
});

test('a project that depends on dione by path imports open() from "dione"', (t) => {
  const project = mkdtempSync(path.join(tmpdir(), 'dione-consumer-'));
  t.after(() => rmSync(project, { recursive: true, force: true }));
  mkdirSync(path.join(project, 'node_modules'));
  // What `npm install ../dione` does for a path dependency: a link to the package folder.
  symlinkSync(root, path.join(project, 'node_modules', 'dione'), 'dir');
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ type: 'module', dependencies: { dione: `file:${root}` } }));
  writeFileSync(
    path.join(project, 'main.js'),
    [
      "import { open } from 'dione';",
      "import { D1Database } from 'dione/client';",
      "import { getPlatformProxy } from 'dione/platform';",
      "const db = open(':memory:');",
      "const row = await db.prepare('SELECT ? + 1 AS n').bind(41).first();",
      'const { env, dispose } = await getPlatformProxy();',
      "await env.DB.exec('CREATE TABLE t (x)');",
      'await dispose();',
      'console.log(JSON.stringify({ row, isBinding: db instanceof D1Database, envDB: env.DB instanceof D1Database, vars: env.MODE }));',
    ].join('\n'),
  );
  writeFileSync(path.join(project, 'wrangler.toml'), 'name = "consumer"\n\n[vars]\nMODE = "test"\n\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "consumer"\n');
  const run = spawnSync(process.execPath, ['main.js'], { cwd: project, encoding: 'utf8', timeout: 60_000, env: { ...process.env, DIONE_URL: undefined } });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { row: { n: 42 }, isBinding: true, envDB: true, vars: 'test' });
  assert.ok(existsSync(path.join(project, '.wrangler/state/v3/d1/miniflare-D1DatabaseObject')), 'env.DB is a file where wrangler keeps it');
});

test('dione/client imports nothing Node-only (it must run in Workers, browsers, Deno and Bun)', () => {
  const seen = new Set<string>();
  const external: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/(?:import|export)[^'"]*?from\s*['"]([^'"]+)['"]|import\s*\(\s*['"]([^'"]+)['"]/g)) {
      const spec = match[1] ?? match[2]!;
      if (spec.startsWith('.')) visit(path.resolve(path.dirname(file), spec));
      else external.push(`${path.relative(dist, file)} imports ${spec}`);
    }
  };
  visit(path.join(dist, 'client.js'));
  assert.ok(seen.size > 5, 'the client graph looks too small: was dist/ built?');
  assert.deepEqual(external, []);
});
