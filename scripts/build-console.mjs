// Bundles the web console (console/) into dist/console: one script, one stylesheet and the page,
// with everything they use inside them (the server reaches no network, so no CDN). Run by
// `npm run build` and `prepare`; `--watch` rebuilds on change.
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const out = path.join(root, 'dist', 'console');
mkdirSync(out, { recursive: true });
copyFileSync(path.join(root, 'console', 'index.html'), path.join(out, 'index.html'));

const options = {
  entryPoints: { app: path.join(root, 'console', 'src', 'main.tsx') },
  outdir: out,
  bundle: true,
  format: 'esm',
  target: ['es2022'],
  minify: !process.argv.includes('--dev'),
  sourcemap: 'linked',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'linked',
  logLevel: 'warning',
};

if (process.argv.includes('--watch')) {
  const context = await esbuild.context(options);
  await context.watch();
} else {
  await esbuild.build(options);
}
