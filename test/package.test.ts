// The package as another project sees it: `npm install` built dist/, `import { open } from 'dione'`
// works from a project that depends on it by path, and dione/client pulls in nothing Node-only.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { root } from './helpers/paths.ts';

const dist = path.join(root, 'dist');

test('npm install built dist/ and the native guard', () => {
  for (const file of ['index.js', 'index.d.ts', 'client.js', 'client.d.ts', 'cli/main.js']) {
    assert.ok(existsSync(path.join(dist, file)), `dist/${file} is missing: run npm install`);
  }
  assert.ok(existsSync(path.join(root, 'build', process.platform === 'darwin' ? 'dione_guard.dylib' : 'dione_guard.so')));
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
      "const db = open(':memory:');",
      "const row = await db.prepare('SELECT ? + 1 AS n').bind(41).first();",
      'console.log(JSON.stringify({ row, isBinding: db instanceof D1Database }));',
    ].join('\n'),
  );
  const run = spawnSync(process.execPath, ['main.js'], { cwd: project, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, run.stderr);
  assert.deepEqual(JSON.parse(run.stdout), { row: { n: 42 }, isBinding: true });
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
