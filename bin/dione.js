#!/usr/bin/env node
// The `dione` command. An installed package runs the compiled CLI. A checkout of the repository
// (which has src/) runs the compiled build too while it is newer than every source file (npm
// install builds it), and otherwise the TypeScript sources through tsx, so it never runs a stale
// build. The build matters beyond start-up: code run through tsx is also slower (its helpers wrap
// every function it creates), by ~10% of a server's time per request.
import { existsSync } from 'node:fs';
import { currentBuildTime } from './build-freshness.js';

if (existsSync(new URL('../src/', import.meta.url)) && currentBuildTime() === undefined) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/cli/main.ts', import.meta.url).href);
} else {
  await import(new URL('../dist/cli/main.js', import.meta.url).href);
}
