// Conformance adapter: a fresh embedded database in a file with its write log per scenario
// (open(file, { history: true }): writes answered once their log record is synced).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open } from '../../src/index.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-conformance-history-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
let count = 0;

export async function makeDb() {
  return open(path.join(dir, `scenario-${++count}.sqlite`), { history: true });
}

export async function closeDb(db) {
  await db.close();
}
