#!/usr/bin/env node
// The `dione` command. An installed package runs the compiled CLI. A checkout of the repository
// (which has src/) runs the compiled build too while it is newer than every source file (npm
// install builds it), and otherwise the TypeScript sources through tsx, so it never runs a stale
// build. The build matters beyond start-up: code run through tsx is also slower (its helpers wrap
// every function it creates), by ~10% of a server's time per request.
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const sources = fileURLToPath(new URL('../src/', import.meta.url));
const compiled = new URL('../dist/cli/main.js', import.meta.url);

function newestIn(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(file) : statSync(file).mtimeMs);
  }
  return newest;
}

function buildIsCurrent() {
  try {
    return statSync(fileURLToPath(compiled)).mtimeMs > newestIn(sources);
  } catch {
    return false;
  }
}

if (existsSync(sources) && !buildIsCurrent()) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
} else {
  await import(compiled.href);
}
