// A real Next.js app (the current major, from the registry through the npm cache: a devDependency
// of this repository) that depends on Dione installed from `npm pack`'s tarball, and again as a
// folder (`npm install <this repository>`, a symlink): a server component and a route handler get
// env.DB from getPlatformProxy (dione/platform) in `next dev`, and in `next build && next start`;
// a route handler uses open() from `dione`. Nothing in the app is there for Dione's sake, except
// turbopack.root for the linked folder, which Turbopack needs for any package outside the app.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { installedVersion, localPrebuildEnv, type NextServer, npmInstall, sh, startNext } from '../helpers/installs.ts';
import { root } from '../helpers/paths.ts';

const work = mkdtempSync(path.join(tmpdir(), 'dione-next-'));
after(() => rmSync(work, { recursive: true, force: true }));
const fixture = path.join(root, 'test/fixtures/next-app');
const nextPackages = [`next@${installedVersion('next')}`, `react@${installedVersion('react')}`, `react-dom@${installedVersion('react-dom')}`];
const timings: string[] = [];
after(() => console.log(`timings: ${timings.join(', ')}`));

let tarball = '';
let prebuildEnv: NodeJS.ProcessEnv = {};

before(async () => {
  const packed = await sh('npm', ['pack', '--json', '--pack-destination', work], root);
  assert.equal(packed.code, 0, packed.stderr);
  tarball = path.join(work, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
  timings.push(`npm pack ${packed.seconds.toFixed(1)}s`);
  prebuildEnv = await localPrebuildEnv(path.join(work, 'prebuilds'));
});

function newApp(name: string): string {
  const app = path.join(work, name);
  cpSync(fixture, app, { recursive: true });
  writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name, private: true }, null, 2)}\n`);
  return app;
}

/** The app's own `dione` command (node_modules/.bin), as a user of the installed package runs it. */
async function dioneIn(app: string, args: string[]): Promise<string> {
  const r = await sh(path.join(app, 'node_modules/.bin/dione'), args, app, { ...process.env, DIONE_URL: undefined, NO_COLOR: '1' });
  assert.equal(r.code, 0, `dione ${args.join(' ')}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function seed(app: string): Promise<void> {
  await dioneIn(app, ['d1', 'execute', 'DB', '--local', '--command', "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL); INSERT INTO notes (body) VALUES ('seeded with dione d1')"]);
}

/** The route handler and the server component read env.DB and env.GREETING; POST writes through env.DB. */
async function checkApp(server: NextServer, write: string): Promise<void> {
  const fail = (what: string, response: Response, text: string) => `${what}: ${response.status}\n${text.slice(0, 2000)}\n--- next said:\n${server.output()}`;
  const posted = await fetch(`${server.url}/api/notes`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ body: write }) });
  assert.equal(posted.status, 201, fail('POST /api/notes', posted, await posted.clone().text()));
  const listed = await fetch(`${server.url}/api/notes`);
  const text = await listed.text();
  assert.equal(listed.status, 200, fail('GET /api/notes', listed, text));
  const { greeting, notes } = JSON.parse(text) as { greeting: string; notes: { body: string }[] };
  assert.equal(greeting, 'hello from wrangler.toml');
  assert.equal(notes[0]!.body, 'seeded with dione d1');
  assert.equal(notes.at(-1)!.body, write);

  const page = await fetch(`${server.url}/`);
  const html = await page.text();
  assert.equal(page.status, 200, fail('GET /', page, html));
  assert.match(html, /<h1>hello from wrangler\.toml<\/h1>/);
  assert.match(html, new RegExp(`<li class="note">${write}</li>`));

  const memory = await fetch(`${server.url}/api/memory`);
  const answer = await memory.text();
  assert.equal(memory.status, 200, fail('GET /api/memory', memory, answer));
  assert.deepEqual(JSON.parse(answer), { n: 42 });
}

async function timed<T>(what: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    timings.push(`${what} ${((performance.now() - started) / 1000).toFixed(1)}s`);
  }
}

test('installed from the tarball: env.DB in next dev, and in next build && next start', async () => {
  const app = newApp('from-tarball');
  const installed = await npmInstall(app, [...nextPackages, tarball], prebuildEnv);
  assert.equal(installed.code, 0, installed.stderr);
  timings.push(`npm install (tarball app) ${installed.seconds.toFixed(1)}s`);
  await seed(app);

  const dev = await timed('next dev', () => startNext(app, 'dev'));
  try {
    await timed('next dev requests', () => checkApp(dev, 'written in next dev'));
  } finally {
    await dev.stop();
  }

  const built = await timed('next build', () => sh(path.join(app, 'node_modules/.bin/next'), ['build'], app, { ...process.env, NEXT_TELEMETRY_DISABLED: '1' }));
  assert.equal(built.code, 0, `${built.stdout}\n${built.stderr}`);
  const start = await timed('next start', () => startNext(app, 'start'));
  try {
    await timed('next start requests', () => checkApp(start, 'written in next start'));
  } finally {
    await start.stop();
  }

  // What the app wrote is in the local database wrangler uses.
  const rows = JSON.parse(await dioneIn(app, ['d1', 'execute', 'DB', '--local', '--json', '--command', 'SELECT body FROM notes ORDER BY id'])) as { results: { body: string }[] }[];
  assert.deepEqual(
    rows[0]!.results.map((r) => r.body),
    ['seeded with dione d1', 'written in next dev', 'written in next start'],
  );
});

test('installed as a folder (a symlink to this repository): env.DB in next dev, with Turbopack and with webpack', async () => {
  const app = newApp('from-folder');
  // Turbopack reads nothing outside its root, and a linked package lives outside the app.
  const common = commonAncestor(app, root);
  writeFileSync(path.join(app, 'next.config.mjs'), `export default { turbopack: { root: ${JSON.stringify(common)} } };\n`);
  // --ignore-scripts: npm would run this repository's prepare and install scripts again, which
  // `npm pack` above has just run (they rebuild dist/ and build/ in place).
  const installed = await npmInstall(app, [...nextPackages, root], prebuildEnv, ['--ignore-scripts']);
  assert.equal(installed.code, 0, installed.stderr);
  timings.push(`npm install (folder app) ${installed.seconds.toFixed(1)}s`);
  await seed(app);
  const dev = await timed('next dev (folder)', () => startNext(app, 'dev'));
  try {
    await timed('next dev requests (folder)', () => checkApp(dev, 'written through the link'));
  } finally {
    await dev.stop();
  }
  // webpack follows the link on its own; bundled from there, better-sqlite3 could not find its addon.
  const webpack = await timed('next dev --webpack (folder)', () => startNext(app, 'dev', ['--webpack']));
  try {
    await timed('next dev --webpack requests (folder)', () => checkApp(webpack, 'written with webpack'));
  } finally {
    await webpack.stop();
  }
});

function commonAncestor(a: string, b: string): string {
  const pa = a.split(path.sep);
  const pb = b.split(path.sep);
  let i = 0;
  while (i < pa.length && i < pb.length && pa[i] === pb[i]) i++;
  return pa.slice(0, i).join(path.sep) || path.sep;
}
