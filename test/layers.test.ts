// The layers depend in one direction (README, "How it is built"): api and sql are leaves, engine and
// binding sit on them and never on each other, log and cluster sit on the engine, server on those,
// and only the entry points and the CLI wire engine and binding together. The module graph is read
// with TypeScript's parser, so multi-line imports, `export … from`, import() and type-position
// import('…') all count.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';
import { root } from './helpers/paths.ts';

const src = path.join(root, 'src');

// A layer is a folder of src/, or a file at its top (an entry point).
const allowed: Record<string, string[]> = {
  api: ['api'],
  sql: ['api', 'sql'],
  engine: ['api', 'sql', 'engine'],
  log: ['api', 'sql', 'engine', 'log'],
  cluster: ['api', 'sql', 'engine', 'log', 'cluster'],
  binding: ['api', 'sql', 'binding'],
  client: ['api', 'sql', 'binding', 'client'],
  // `dione/prisma`: a Prisma driver adapter over any D1Database (embedded or dione/client).
  prisma: ['api', 'sql', 'binding', 'prisma'],
  // The server runs SQL through the engine directly; it never builds a binding.
  server: ['api', 'sql', 'engine', 'log', 'cluster', 'server'],
  // `dione`: the embedded binding, and dione/client's over node:http (node-client.ts). No cluster (NATS), no server.
  'index.ts': ['api', 'sql', 'engine', 'log', 'binding', 'client.ts', 'node-client.ts'],
  // dione/client's connect() sending over node:http(s): Node only, exported by `dione`.
  'node-client.ts': ['api', 'sql', 'binding', 'client', 'client.ts', 'node-client.ts'],
  // `dione/client`: runs outside Node.
  'client.ts': ['api', 'sql', 'binding', 'client'],
  // `dione/platform` (Node only): both entry points' bindings, wrangler's config read through the
  // CLI's helpers. No server, no cluster.
  platform: ['api', 'sql', 'engine', 'log', 'binding', 'client', 'index.ts', 'client.ts', 'node-client.ts', 'cli', 'platform'],
  // The dione command sits on everything, including `dione serve`, both entry points and the
  // platform's lookup of wrangler's local files (`dione dev --binding`).
  cli: ['api', 'sql', 'engine', 'log', 'cluster', 'binding', 'client', 'server', 'index.ts', 'client.ts', 'platform', 'cli'],
};
// Layers that import nothing from outside src/ (no node:, no packages): dione/client is built from them.
const nodeFree = new Set(['api', 'sql', 'binding', 'client', 'client.ts', 'prisma']);
/** Packages a Node-free layer may import (themselves Node-free). */
const packagesOf: Record<string, string[]> = { prisma: ['@prisma/driver-adapter-utils'] };
const nodeGlobals = new Set(['Buffer', 'process', 'require', '__dirname', '__filename', 'global', 'setImmediate']);

interface Import {
  spec: string;
  /** Resolved file under src/ (relative), or undefined for a package or node: import. */
  target?: string;
  /** Erased by the compiler: `import type`, `export type`, only `type` names, or `import('…')` in a type. */
  typeOnly: boolean;
}
interface Module {
  imports: Import[];
  /** Uses of Node-only globals, as `name (line N)`, for the Node-free check. */
  globals: string[];
  /** import() or require() whose specifier is not a string literal: it escapes these checks. */
  computed: number[];
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsFiles(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

function resolve(from: string, spec: string): string | undefined {
  const base = path.resolve(path.dirname(from), spec);
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, path.join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

function parse(file: string): Module {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const module: Module = { imports: [], globals: [], computed: [] };
  const line = (node: ts.Node) => source.getLineAndCharacterOfPosition(node.getStart()).line + 1;
  const add = (specifier: ts.Node | undefined, typeOnly: boolean, at: ts.Node) => {
    if (!specifier || !ts.isStringLiteralLike(specifier)) return void module.computed.push(line(at));
    const spec = specifier.text;
    if (!spec.startsWith('.')) return void module.imports.push({ spec, typeOnly });
    const target = resolve(file, spec);
    module.imports.push({ spec, typeOnly, target: target && path.relative(src, target) });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const onlyTypeNames = !!named && ts.isNamedImports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier, !!clause && (clause.isTypeOnly || (!clause.name && onlyTypeNames)), node);
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      const named = node.exportClause;
      const onlyTypeNames = !!named && ts.isNamedExports(named) && named.elements.length > 0 && named.elements.every((e) => e.isTypeOnly);
      add(node.moduleSpecifier, node.isTypeOnly || onlyTypeNames, node);
    } else if (ts.isImportTypeNode(node)) {
      add(ts.isLiteralTypeNode(node.argument) ? node.argument.literal : undefined, true, node);
    } else if (
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require'))
    ) {
      add(node.arguments[0], false, node);
    } else if (ts.isIdentifier(node) && nodeGlobals.has(node.text) && !isMemberName(node)) {
      module.globals.push(`${node.text} (line ${line(node)})`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return module;
}

/** `x.process`, `{ process: 1 }`, `class { process() {} }`: a name, not the global. */
function isMemberName(node: ts.Identifier): boolean {
  const parent = node.parent;
  return (
    ((ts.isPropertyAccessExpression(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent) || ts.isMethodDeclaration(parent) ||
      ts.isPropertySignature(parent) || ts.isMethodSignature(parent)) &&
      parent.name === node) ||
    (ts.isImportSpecifier(parent) && parent.propertyName === node)
  );
}

const graph = new Map(tsFiles(src).map((file) => [path.relative(src, file), parse(file)]));
const layerOf = (file: string) => file.split(path.sep)[0]!;

test('the module graph of src/ is read whole', () => {
  assert.ok(graph.size > 50, `only ${graph.size} modules found`);
  const problems: string[] = [];
  for (const [file, module] of graph) {
    for (const i of module.imports) if (i.spec.startsWith('.') && !i.target) problems.push(`${file}: ${i.spec} does not resolve`);
    for (const at of module.computed) problems.push(`${file}:${at}: import()/require() of a computed specifier`);
  }
  assert.deepEqual(problems, []);
});

test('each layer imports only the layers below it, and the Node-free ones nothing from outside src/', () => {
  const violations: string[] = [];
  for (const [file, module] of graph) {
    const layer = layerOf(file);
    const may = allowed[layer];
    if (!may) {
      violations.push(`${file}: no layer rule for ${layer} (add it to test/layers.test.ts)`);
      continue;
    }
    for (const { spec, target } of module.imports) {
      if (target) {
        if (!may.includes(layerOf(target))) violations.push(`${file} imports ${spec} (${layer} -> ${layerOf(target)})`);
      } else if (nodeFree.has(layer) && !packagesOf[layer]?.includes(spec)) violations.push(`${file} imports ${spec}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('dione/client (src/client.ts) reaches nothing Node-only, however indirectly', () => {
  // Type-only edges count too: they end up in dist/client.d.ts, which Workers projects type-check.
  const parent = new Map<string, string | null>([['client.ts', null]]);
  const queue = ['client.ts'];
  const chain = (file: string): string => {
    const up = parent.get(file);
    return up ? `${chain(up)} -> ${file}` : file;
  };
  const violations: string[] = [];
  while (queue.length > 0) {
    const file = queue.shift()!;
    const module = graph.get(file)!;
    if (!nodeFree.has(layerOf(file))) violations.push(`${chain(file)}: ${layerOf(file)} is not Node-free`);
    for (const g of module.globals) violations.push(`${chain(file)} uses ${g}`);
    for (const { spec, target } of module.imports) {
      if (!target) violations.push(`${chain(file)} imports ${spec}`);
      else if (!parent.has(target)) {
        parent.set(target, file);
        queue.push(target);
      }
    }
  }
  assert.ok(parent.has('binding/database.ts') && parent.has('client/fetch-executor.ts'));
  assert.deepEqual(violations, []);
});

test('src/ has no import cycles, type-only ones included', () => {
  // a -> b is type-only (true) unless some import from a to b survives compilation.
  const edges = new Map<string, Map<string, boolean>>();
  for (const [file, module] of graph) {
    const out = new Map<string, boolean>();
    for (const { target, typeOnly } of module.imports) if (target) out.set(target, (out.get(target) ?? true) && typeOnly);
    edges.set(file, out);
  }
  const shortestPath = (from: string, to: string): string[] | undefined => {
    const parent = new Map([[from, from]]);
    const queue = [from];
    while (queue.length > 0) {
      const at = queue.shift()!;
      if (at === to) {
        const trail = [at];
        while (trail[0] !== from) trail.unshift(parent.get(trail[0]!)!);
        return trail;
      }
      for (const next of [...edges.get(at)!.keys()].sort()) {
        if (!parent.has(next)) {
          parent.set(next, at);
          queue.push(next);
        }
      }
    }
  };
  // For each edge that closes a cycle, the shortest such cycle, written from its smallest module:
  // every edge worth cutting shows up, without listing every elementary cycle (their number
  // explodes once cycles share modules).
  const cycles = new Set<string>();
  for (const [from, out] of edges) {
    for (const to of out.keys()) {
      const back = shortestPath(to, from);
      if (!back) continue;
      const ring = [from, ...back.slice(0, -1)];
      const first = ring.indexOf([...ring].sort()[0]!);
      const loop = [...ring.slice(first), ...ring.slice(0, first), ring[first]!];
      const erased = loop.slice(1).flatMap((b, i) => (edges.get(loop[i]!)!.get(b) ? [`${loop[i]} -> ${b}`] : []));
      cycles.add(`${loop.join(' -> ')}  [${erased.length > 0 ? `type-only: ${erased.join(', ')}` : 'runtime'}]`);
    }
  }
  assert.deepEqual([...cycles].sort(), []);
});

test('only src/engine/sqlite.ts loads better-sqlite3: every database opens on the one SQLite with row counters', () => {
  // A second copy of SQLite in the process would not see the first one's file locks.
  const loaders = [...graph]
    .filter(([, module]) => module.imports.some((i) => i.spec === 'better-sqlite3' && !i.typeOnly))
    .map(([file]) => file);
  assert.deepEqual(loaders, [path.join('engine', 'sqlite.ts')]);
});
