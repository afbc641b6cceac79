// A cluster node applies the log to its copy without syncing each batch (the log in JetStream is
// what is durable; the copy can always be rebuilt from it). Writes a process has made survive its
// death as long as the operating system keeps running, so a copy is only in doubt after the
// machine itself went down mid-use. A marker file beside the copy, made durable before the first
// unsynced apply and removed after the copy is synced at a clean stop, names the boot it was made
// in: found at start with another boot's name, the copy is discarded and fetched again.
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** This boot of the machine: Linux's boot id, elsewhere the boot time to the minute. */
function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return `booted ${Math.round((Date.now() / 1000 - os.uptime()) / 60)}`;
  }
}

const markerOf = (file: string) => `${file}.unsynced`;

/** Whether `file` may hold applies that the machine lost (it went down while they were unsynced). */
export function copyInDoubt(file: string): boolean {
  const marker = markerOf(file);
  if (!existsSync(marker)) return false;
  return readFileSync(marker, 'utf8') !== bootId();
}

/** From now on applies to `file` may be unsynced: the marker (with this boot's name) is durable first. */
export function markUnsynced(file: string): void {
  const fd = openSync(markerOf(file), 'w');
  try {
    writeSync(fd, bootId());
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  syncDirectory(path.dirname(path.resolve(file)));
}

/** The copy has been synced: nothing in it is in doubt any more. */
export function markSynced(file: string): void {
  rmSync(markerOf(file), { force: true });
}

function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Not every platform syncs a directory through a descriptor; the marker's own sync stands.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
