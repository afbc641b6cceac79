#!/usr/bin/env node
// The `dione` command. An installed package runs the compiled CLI; a checkout of the repository
// (which has src/) runs the TypeScript source through tsx, so it never runs a stale build.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = new URL('../src/cli/main.ts', import.meta.url);
if (existsSync(fileURLToPath(source))) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/cli/main.js', import.meta.url).href);
}
