// The web console's files (console/, bundled into dist/console by scripts/build-console.mjs):
// the page at /, its script and stylesheet under /console/. They are read once, when the app is
// made; the page then talks to the same API as every other client, with the token it was given.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono } from 'hono';
import type { Env } from '../context.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

// The page runs only its own script and talks only to this server; no other site may frame it.
const HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

/** dist/console of this package, from src/server/routes (run from source) or dist/server/routes (built). */
export function consoleDirectory(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return path.join(dir, 'dist', 'console');
}

function readFiles(dir: string): Map<string, { body: Buffer; type: string }> {
  const files = new Map<string, { body: Buffer; type: string }>();
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (type) files.set(name, { body: readFileSync(path.join(dir, name)), type });
  }
  return files;
}

export function consolePages(dir = consoleDirectory()) {
  const app = new Hono<Env>();
  const files = readFiles(dir);
  const answer = (name: string) => {
    const file = files.get(name);
    if (!file) return undefined;
    return new Response(new Uint8Array(file.body), { headers: { ...HEADERS, 'content-type': file.type } });
  };
  app.get('/', (c) => answer('index.html') ?? c.text('The web console is not built in this copy of Dione: run `npm run build` (the API works without it).', 503));
  app.get('/console/:file', (c) => answer(c.req.param('file')) ?? c.notFound());
  return app;
}
