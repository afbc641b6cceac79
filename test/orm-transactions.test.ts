// Interactive transactions through the ORMs (issue 17, items 4 and 5): Prisma Client 7 with
// dione/prisma's PrismaDione, and drizzle-orm/d1 on a `transactions: true` handle, each embedded
// (files opened with `transactions: true`) and over HTTP (a real server, connect({ transactions: true })).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, test } from 'node:test';
import { build } from 'esbuild';
import { root } from './helpers/paths.ts';
import { removeGeneratedPrismaClient } from './orm/prisma.ts';
import { embeddedTarget, httpTarget } from './orm/transactions-common.ts';
import { drizzleTransactionSuite } from './orm/transactions-drizzle.ts';
import { prismaTransactionSuite } from './orm/transactions-prisma.ts';

after(removeGeneratedPrismaClient);

for (const target of [embeddedTarget(), httpTarget()]) {
  after(() => target.cleanup());
  prismaTransactionSuite(target);
  drizzleTransactionSuite(target);
}

test('dione/prisma bundles for Workers: nothing Node-only, nothing of the engine', async () => {
  // As a Worker's bundler resolves it (workerd/browser conditions, no Node built-ins available).
  const bundle = await build({
    entryPoints: [path.join(root, 'src/prisma/index.ts')],
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions: ['workerd', 'worker', 'browser'],
    logLevel: 'silent',
  });
  const inputs = Object.keys(bundle.metafile.inputs);
  assert.deepEqual(
    inputs.filter((i) => i.startsWith('src/') && !/^src\/(prisma|binding|api|sql)\//.test(i)),
    [],
    'dione/prisma may reach only the binding, api and sql layers of src/',
  );
  assert.ok(inputs.includes('src/binding/transaction.ts'));
  assert.ok(inputs.some((i) => i.includes('@prisma/driver-adapter-utils')));
  const code = bundle.outputFiles[0]!.text;
  assert.doesNotMatch(code, /\bfrom\s*["'][^"']+["']|\brequire\(\s*["']/, 'the bundle imports nothing at run time');
});
