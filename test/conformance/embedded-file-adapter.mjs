// Conformance adapter: a fresh embedded database in a file per scenario (writes answered after the
// WAL's sync, src/engine/wal-sync.ts), removed after it.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open } from '../../src/index.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-conformance-file-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let count = 0;

export async function makeDb() {
  return open(path.join(dir, `scenario-${++count}.sqlite`));
}

export async function closeDb(db) {
  await db.close();
}
