import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** ../shared beside the repository (CI places it there), or DIONE_SHARED. */
export function sharedDir(): string {
  const dir = process.env.DIONE_SHARED ?? path.resolve(root, '../shared');
  if (!existsSync(path.join(dir, 'conformance', 'compare.mjs'))) {
    throw new Error(`shared material not found at ${dir}: set DIONE_SHARED to the folder holding conformance/`);
  }
  return dir;
}
