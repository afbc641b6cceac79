// What a cluster node's parts (Follower, ClusterDatabase, the host) have to tell an operator: a
// structured logger with pino's call shape, so a pino Logger fits as is. In a worker thread, where
// the server's pino instance is not at hand, lineLogger() writes the same JSON lines on stderr.
import { hostname } from 'node:os';

export interface ClusterLogger {
  info(details: Record<string, unknown>, message: string): void;
  warn(details: Record<string, unknown>, message: string): void;
  error(details: Record<string, unknown>, message: string): void;
}

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;

/** JSON lines on stderr at pino's level numbers, from `DIONE_LOG_LEVEL` (default info) up; `base` is in every line. */
export function lineLogger(base: Record<string, unknown>, level = process.env.DIONE_LOG_LEVEL ?? 'info'): ClusterLogger {
  const threshold = LEVELS[level as keyof typeof LEVELS] ?? LEVELS.info;
  const write = (n: number) => (details: Record<string, unknown>, msg: string) => {
    if (n < threshold) return;
    process.stderr.write(`${JSON.stringify({ level: n, time: Date.now(), pid: process.pid, hostname: hostname(), ...base, ...details, msg })}\n`);
  };
  return { info: write(LEVELS.info), warn: write(LEVELS.warn), error: write(LEVELS.error) };
}

/** Logs nothing: for tests and tools that watch the outcome instead. */
export const quietLogger: ClusterLogger = { info: () => {}, warn: () => {}, error: () => {} };

export const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));
