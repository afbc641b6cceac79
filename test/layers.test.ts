// The layers depend in one direction (README, "How it is built"): api and sql are leaves, engine and
// binding sit on them and never on each other, and only entry points and the CLI wire them together.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { root } from './helpers/paths.ts';

const src = path.join(root, 'src');
const allowed: Record<string, string[]> = {
  api: ['api'],
  sql: ['api', 'sql'],
  engine: ['api', 'sql', 'engine'],
  log: ['api', 'sql', 'engine', 'log'],
  cluster: ['api', 'sql', 'engine', 'log', 'cluster'],
  binding: ['api', 'sql', 'binding'],
  client: ['api', 'sql', 'binding', 'client'],
};
const nodeFree = new Set(['api', 'sql', 'binding', 'client']);

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

test('each layer imports only the layers below it, and the Node-free ones nothing from Node', () => {
  const violations: string[] = [];
  let checked = 0;
  for (const file of files(src)) {
    const layer = path.relative(src, file).split(path.sep)[0]!;
    if (!allowed[layer]) continue;
    checked++;
    for (const match of readFileSync(file, 'utf8').matchAll(/^(?:import|export)[^;]*?from\s+'([^']+)'/gm)) {
      const spec = match[1]!;
      const where = path.relative(src, file);
      if (spec.startsWith('.')) {
        const target = path.relative(src, path.resolve(path.dirname(file), spec)).split(path.sep)[0]!;
        if (!allowed[layer]!.includes(target)) violations.push(`${where} imports ${spec} (${layer} -> ${target})`);
      } else if (nodeFree.has(layer)) violations.push(`${where} imports ${spec}`);
    }
  }
  assert.ok(checked > 10);
  assert.deepEqual(violations, []);
});
