// connect()'s options, and their checks (made when the handle is built, so a mistake throws there).
import type { IntMode } from '../api/types.ts';

export interface ConnectOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8787 */
  url: string;
  /** An API token (`dione token create`); omit only for a server in unauthenticated dev mode. */
  token?: string;
  /** The database's name or id. */
  database: string;
  /** 'bigint' returns INTEGER values as exact bigints. Default 'number', as D1. */
  intMode?: IntMode;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof fetch;
  /**
   * Calls made in the same event-loop turn share one HTTP request, up to this many (default 64);
   * 1 sends every call in its own request.
   */
  maxCallsPerRequest?: number;
  /**
   * Interactive transactions (Dione's opt-in; D1 refuses them): BEGIN…COMMIT, ROLLBACK and
   * savepoints on this handle, held by the server for it, and beginTransaction()/withTransaction().
   * A transaction idle longer than the server's --transaction-timeout is rolled back.
   */
  transactions?: boolean;
  /**
   * The longest a call (a query, a batch, an exec; calls that share a request share its deadline)
   * may wait for its whole answer, in milliseconds, from sending the request to reading the last
   * byte. Past it the call fails as a lost connection does: `D1_ERROR: Network connection lost.`,
   * naming the timeout. The server is not told, so a write may still complete there. Default
   * 120000: D1 stops a query at 30 s, and one call may carry a batch of them. 0 or Infinity: none.
   */
  timeoutMs?: number;
  /**
   * Aborting it fails every call of this handle (its sessions and transactions too) that is in
   * flight or made later, as a lost connection, naming the abort.
   */
  signal?: AbortSignal;
}

export const DEFAULT_TIMEOUT_MS = 120_000;

/** setTimeout's largest delay: a longer one fires at once in every runtime. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

/** How many calls go in one HTTP request by default. */
export const DEFAULT_MAX_CALLS = 64;

export interface CheckedOptions {
  maxCalls: number;
  /** Infinity: no deadline. */
  timeoutMs: number;
}

/** Throws connect()'s TypeError for an option it cannot use. */
export function checkOptions(options: ConnectOptions): CheckedOptions {
  if (typeof options.url !== 'string' || !/^https?:\/\//.test(options.url)) throw new TypeError('connect(): url must be an http(s) URL');
  if (typeof options.database !== 'string' || options.database === '') throw new TypeError('connect(): database must be a name or id');
  const maxCalls = options.maxCallsPerRequest ?? DEFAULT_MAX_CALLS;
  if (!Number.isInteger(maxCalls) || maxCalls < 1) throw new TypeError('connect(): maxCallsPerRequest must be a positive integer');
  const timeout = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0 || (Number.isFinite(timeout) && timeout > LONGEST_TIMER_MS)) {
    throw new TypeError(`connect(): timeoutMs must be a number of milliseconds up to ${LONGEST_TIMER_MS}, or 0 or Infinity for none`);
  }
  const signal = options.signal;
  if (signal !== undefined && (typeof signal !== 'object' || signal === null || typeof signal.addEventListener !== 'function')) {
    throw new TypeError('connect(): signal must be an AbortSignal');
  }
  return { maxCalls, timeoutMs: timeout === 0 ? Number.POSITIVE_INFINITY : timeout };
}
