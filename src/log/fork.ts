// A fork's files: a new database equal to another at one of its points, with a history of its own
// (new tag) that starts with that file as its first snapshot. The point is rebuilt by the caller
// (from a single node's log, or a cluster's) into the temporary file prepareFork() names.
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { HistoryError } from '../api/time-travel.ts';
import { DirectorySnapshots, FileLogStore } from './file-store.ts';
import { syncDirectory } from './files.ts';

export function historyDirOf(file: string): string {
  return `${path.resolve(file)}-history`;
}

/** Checks that nothing is in the fork's way; answers where to rebuild its point. */
export function prepareFork(file: string, dir = historyDirOf(file)): string {
  if (existsSync(file)) throw new HistoryError(`cannot fork into ${file}: it exists`);
  if (existsSync(dir)) throw new HistoryError(`cannot fork into ${file}: a history is already at ${dir}`);
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  return `${file}.fork-tmp`;
}

/** Starts the fork's history from the rebuilt file (commit `seq`) and moves the file in; answers the fork's tag. */
export function finishFork(built: string, file: string, seq: number, time: number, dir = historyDirOf(file)): string {
  const history = new FileLogStore(dir);
  new DirectorySnapshots(dir).put(built, seq, time);
  history.close();
  renameSync(built, file);
  syncDirectory(path.dirname(path.resolve(file)));
  return history.tag;
}
