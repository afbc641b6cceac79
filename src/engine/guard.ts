// Locates the compiled dione_guard extension (scripts/build-native.mjs) and loads it into a
// connection. Without it a connection would run SQL that D1 refuses, so its absence is fatal.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type Database from 'better-sqlite3';

const file = process.platform === 'darwin' ? 'dione_guard.dylib' : 'dione_guard.so';
// src/engine/ and dist/engine/ are both two levels below the package root.
const extensionPath = fileURLToPath(new URL(`../../build/${file}`, import.meta.url));

let built = false;

function checkBuilt(): void {
  if (built) return;
  built = existsSync(extensionPath);
  if (!built) {
    throw new Error(
      `dione: the SQLite extension ${extensionPath} is missing; run "npm install" (or "node scripts/build-native.mjs") in the dione package`,
    );
  }
}

/** D1's rules and dialect, for a connection that runs user SQL. */
export function loadGuard(db: Database.Database): void {
  checkBuilt();
  db.loadExtension(extensionPath); // entry point derived from the file name: sqlite3_dioneguard_init
}

/**
 * Only D1's SQL dialect (double-quoted string literals), for Dione's own connections that rebuild a
 * database (a VACUUM recompiles every view and trigger, which fail to compile without it).
 */
export function loadDialect(db: Database.Database): void {
  checkBuilt();
  // better-sqlite3 takes an entry point as a second argument; its type declarations omit it.
  const load = db.loadExtension as (this: Database.Database, file: string, entryPoint: string) => Database.Database;
  load.call(db, extensionPath, 'sqlite3_dionedialect_init');
}
