// Within one thread, which interactive transaction holds a database file's write lock while it
// waits for its client. SQLite's own busy handler would sleep the thread (and so the transaction
// it waits for, which needs the same thread to finish): engines of this thread ask here first and
// wait without blocking, then retry.
import path from 'node:path';

const holders = new Map<string, object>();
const waiting = new Map<string, (() => void)[]>();

/** How long a write waits for another handle's transaction by default (SQLite's busy timeout here). */
export const DEFAULT_BUSY_WAIT_MS = 5000;

/** The gate's key for a database file (undefined for in-memory databases, which no other handle shares). */
export function gateKey(file: string): string | undefined {
  return file === ':memory:' || file === '' ? undefined : path.resolve(file);
}

/** Whether another owner's transaction holds the write lock of `key`. */
export function heldByOther(key: string | undefined, owner: object): boolean {
  if (key === undefined || holders.size === 0) return false;
  const holder = holders.get(key);
  return holder !== undefined && holder !== owner;
}

/** Takes the gate for `owner`; false when another owner holds it. */
export function takeGate(key: string | undefined, owner: object): boolean {
  if (key === undefined) return true;
  const holder = holders.get(key);
  if (holder !== undefined && holder !== owner) return false;
  holders.set(key, owner);
  return true;
}

export function releaseGate(key: string | undefined, owner: object): void {
  if (key === undefined || holders.get(key) !== owner) return;
  holders.delete(key);
  const woken = waiting.get(key);
  waiting.delete(key);
  for (const wake of woken ?? []) wake();
}

/** Resolves when the gate of `key` is let go, or after `ms`, whichever comes first. */
export function gateReleased(key: string | undefined, ms: number): Promise<void> {
  if (key === undefined || !holders.has(key)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(1, ms));
    const list = waiting.get(key) ?? [];
    list.push(() => {
      clearTimeout(timer);
      resolve();
    });
    waiting.set(key, list);
  });
}
