// A user's clone has nothing beside it: the committed tree alone must carry the conformance
// scenarios, their recorded results and everything the tests read. Clones this repository's HEAD
// into a temp folder with no siblings and runs the conformance test there.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { root } from './helpers/paths.ts';

const run = promisify(execFile);

async function isGitCheckout(): Promise<boolean> {
  try {
    await run('git', ['rev-parse', '--git-dir'], { cwd: root });
    return true;
  } catch {
    return false;
  }
}

test('a fresh clone with no sibling folders passes the conformance test on its own', async (t) => {
  if (!(await isGitCheckout())) return t.skip('not a git checkout: nothing to clone');
  const parent = mkdtempSync(path.join(tmpdir(), 'dione-clone-'));
  t.after(() => rmSync(parent, { recursive: true, force: true }));
  const clone = path.join(parent, 'dione');
  await run('git', ['clone', '--quiet', '--no-hardlinks', root, clone]);
  assert.deepEqual(readdirSync(parent), ['dione'], 'the clone is alone in its folder');

  // Nothing committed reaches outside the repository for test data.
  const { stdout: tracked } = await run('git', ['ls-files', 'test', 'conformance', 'package.json'], { cwd: clone });
  const sibling = new RegExp(`\\.\\./${'shared'}\\b`); // written so, this file does not match itself
  for (const file of tracked.split('\n').filter((f) => /\.(ts|mjs|js|json)$/.test(f))) {
    assert.doesNotMatch(readFileSync(path.join(clone, file), 'utf8'), sibling, `${file} reads the sibling folder`);
  }

  // The installed packages are the same as here; the native extension is built as npm install
  // builds it, and SQLite with row counters copied from here when built from the same sources.
  symlinkSync(path.join(root, 'node_modules'), path.join(clone, 'node_modules'), 'dir');
  await run(process.execPath, ['scripts/build-native.mjs'], {
    cwd: clone,
    env: { ...process.env, DIONE_SQLITE_ADDON: path.join(root, 'build', 'better_sqlite3.node') },
  });
  const result = await run(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', 'test/conformance.test.ts'], {
    cwd: clone,
    // Without the runner's own marker, which would make the child skip its files as a nested run.
    env: { ...process.env, NODE_TEST_CONTEXT: undefined },
    maxBuffer: 64 * 1024 * 1024,
  }).then(
    (done) => ({ ...done, code: 0 }),
    (e: { stdout: string; stderr: string; code: number }) => e,
  );
  assert.equal(result.code, 0, result.stdout.slice(-5000) + result.stderr);
  assert.match(result.stdout, /ℹ fail 0\b/);
  assert.match(result.stdout, /✔ conformance: embedded binding/);
  assert.match(result.stdout, /✔ conformance: http binding/);
});
