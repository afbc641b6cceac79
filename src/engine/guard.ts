// Locates the compiled dione_guard extension (scripts/build-native.mjs) and loads it into a
// connection. Without it a connection would run SQL that D1 refuses, so its absence is fatal.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';

const file = process.platform === 'darwin' ? 'dione_guard.dylib' : 'dione_guard.so';
// src/engine/ and dist/engine/ are both two levels below the package root.
const extensionPath = fileURLToPath(new URL(`../../build/${file}`, import.meta.url));

export function loadGuard(db: Database.Database): void {
  if (!existsSync(extensionPath)) {
    throw new Error(
      `dione: the SQLite extension ${extensionPath} is missing; run "npm install" (or "node scripts/build-native.mjs") in the dione package`,
    );
  }
  db.loadExtension(extensionPath); // entry point derived from the file name: sqlite3_dioneguard_init
}
