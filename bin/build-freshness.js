// Whether a checkout's compiled build (dist/) is current: newer than every file in src/. bin/dione.js
// runs the build only then (npm install builds it; any edit falls back to the sources through tsx),
// and the benches say which one the server they start runs.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

function newestIn(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(file) : statSync(file).mtimeMs);
  }
  return newest;
}

/** When dist/cli/main.js was built (ms since the epoch), if it is newer than every source file. */
export function currentBuildTime() {
  try {
    const built = statSync(path.join(root, 'dist', 'cli', 'main.js')).mtimeMs;
    return built > newestIn(path.join(root, 'src')) ? built : undefined;
  } catch {
    return undefined;
  }
}
