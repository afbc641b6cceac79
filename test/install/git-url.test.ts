// `npm install git+file://…` of this repository, offline: npm clones it, installs its dependencies
// (dev ones too) to run its `prepare` (the TypeScript build), packs it and installs that into the
// app, where `dione`, `dione/platform` and the `dione` command work. The repository is taken as it
// is in the working tree (a throwaway commit of it), not as its last commit.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { localPrebuildEnv, npmInstall, sh } from '../helpers/installs.ts';
import { root } from '../helpers/paths.ts';

const work = mkdtempSync(path.join(tmpdir(), 'dione-git-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A git repository holding the working tree's files (tracked and new, as .gitignore leaves them) in one commit. */
async function snapshot(): Promise<string> {
  const listed = await sh('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], root);
  assert.equal(listed.code, 0, listed.stderr);
  const repo = path.join(work, 'dione');
  for (const file of listed.stdout.split('\0').filter(Boolean)) {
    if (!existsSync(path.join(root, file))) continue; // deleted in the working tree
    mkdirSync(path.dirname(path.join(repo, file)), { recursive: true });
    copyFileSync(path.join(root, file), path.join(repo, file));
  }
  const git = (...args: string[]) => sh('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.com', '-c', 'commit.gpgsign=false', ...args], repo);
  for (const args of [['init', '--quiet'], ['add', '--all'], ['commit', '--quiet', '--message', 'snapshot']]) {
    const r = await git(...args);
    assert.equal(r.code, 0, `git ${args[0]}: ${r.stderr}`);
  }
  return repo;
}

test('installed from a git+file:// URL: dione, dione/platform and the dione command work', async () => {
  const repo = await snapshot();
  const app = path.join(work, 'app');
  mkdirSync(app);
  writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name: 'from-git', private: true, type: 'module' }, null, 2)}\n`);
  writeFileSync(path.join(app, 'wrangler.toml'), 'name = "app"\n\n[vars]\nMODE = "from git"\n\n[[d1_databases]]\nbinding = "DB"\ndatabase_name = "app"\n');
  const installed = await npmInstall(app, [`git+${pathToFileURL(repo).href}`], await localPrebuildEnv(path.join(work, 'prebuilds')));
  assert.equal(installed.code, 0, installed.stderr);
  console.log(`npm install git+file:// took ${installed.seconds.toFixed(1)}s`);

  writeFileSync(
    path.join(app, 'main.js'),
    [
      "import { open } from 'dione';",
      "import { getPlatformProxy } from 'dione/platform';",
      "const db = open(':memory:');",
      "const sum = await db.prepare('SELECT ? + 1 AS n').bind(41).first('n');",
      'const { env, dispose } = await getPlatformProxy();',
      "await env.DB.exec('CREATE TABLE t (x)');",
      "await env.DB.prepare('INSERT INTO t VALUES (?)').bind('through env.DB').run();",
      'await dispose();',
      'console.log(JSON.stringify({ sum, mode: env.MODE }));',
    ].join('\n'),
  );
  const ran = await sh(process.execPath, ['main.js'], app, { ...process.env, DIONE_URL: undefined });
  assert.equal(ran.code, 0, ran.stderr);
  assert.deepEqual(JSON.parse(ran.stdout), { sum: 42, mode: 'from git' });
  const read = await sh(path.join(app, 'node_modules/.bin/dione'), ['d1', 'execute', 'DB', '--local', '--json', '--command', 'SELECT x FROM t'], app, {
    ...process.env,
    DIONE_URL: undefined,
  });
  assert.equal(read.code, 0, read.stderr);
  assert.deepEqual((JSON.parse(read.stdout) as { results: unknown[] }[])[0]!.results, [{ x: 'through env.DB' }]);
});
