// bench:commit-path's log-writer thread: told after each commit, it reads the new commits out of the
// WAL and appends them to its log, syncing the log at most every few milliseconds, off the writer's
// path; asked to, it syncs at once and says (in shared memory) how many commits the log holds durably.
import { parentPort, workerData } from 'node:worker_threads';
import { FileLogStore } from '../src/log/file-store.ts';
import { WalReader } from '../src/log/wal.ts';

const { file, historyDir, durable } = workerData as { file: string; historyDir: string; durable: SharedArrayBuffer };
const durableCount = new Int32Array(durable);
const wal = new WalReader(`${file}-wal`);
const log = new FileLogStore(historyDir, undefined, { sync: true, owner: true });
const SYNC_EVERY_MS = 5;
let logged = 0;
let syncTimer: NodeJS.Timeout | undefined;

function sync(): void {
  clearTimeout(syncTimer);
  syncTimer = undefined;
  log.flush();
  Atomics.store(durableCount, 0, logged);
  Atomics.notify(durableCount, 0);
}

parentPort!.on('message', (message: 'commit' | 'sync' | 'end') => {
  for (const c of wal.read()) {
    log.append({ kind: 'pages', seq: logged + 1, time: Date.now(), pageSize: c.pageSize, pages: c.pages, images: c.images, position: c.position }, logged);
    logged++;
  }
  if (message === 'commit') syncTimer ??= setTimeout(sync, SYNC_EVERY_MS);
  else sync();
  if (message === 'end') {
    log.close();
    wal.close();
    parentPort!.close();
  }
});
parentPort!.postMessage('ready');
