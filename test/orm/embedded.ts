// Factories for the embedded binding: a fresh ':memory:' database, or a fresh file in a temporary
// directory that the caller removes with cleanup() (registered in an `after` hook).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { open } from '../../src/index.ts';
import type { DatabaseFactory } from './common.ts';

export const memoryFactory: DatabaseFactory = () => open(':memory:');

export interface FileFactory {
  factory: DatabaseFactory;
  /** The directory holding the files, for checks that the databases really live there. */
  dir: string;
  cleanup(): void;
}

/** Each call of `factory` opens a new SQLite file in one fresh temporary directory. */
export function fileFactory(prefix: string): FileFactory {
  const dir = mkdtempSync(path.join(tmpdir(), `dione-${prefix}-`));
  let n = 0;
  return {
    factory: () => open(path.join(dir, `db-${++n}.sqlite`)),
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
