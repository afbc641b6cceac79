// The error of a call whose answer never came: D1's text first (callers match on it), then which
// request failed and why.
import { splitStatements } from '../sql/statements.ts';
import type { Query } from '../api/executor.ts';

/** D1's text for a request that never got an answer. */
export const NETWORK_LOST = 'Network connection lost.';

/**
 * e.g. `Network connection lost. (POST http://127.0.0.1:1/dione/v1/databases/shop/execute failed: connect ECONNREFUSED 127.0.0.1:1)`.
 * `why` is an error (fetch's own says only "fetch failed": what went wrong is its cause) or a text.
 */
export function networkLost(method: string, url: string, why: unknown): string {
  const cause = why instanceof Error ? (why.cause instanceof Error ? why.cause.message : why.message) : String(why);
  return `${NETWORK_LOST} (${method} ${url} failed: ${cause})`;
}

/** Whether one of the queries is a COMMIT (or END): lost on its way back, it may or may not have committed. */
export function commits(queries: readonly Query[]): boolean {
  return queries.some((q) => typeof q.sql === 'string' && /\b(commit|end)\b/i.test(q.sql) && splitStatements(q.sql).some((s) => s.control?.op === 'commit'));
}

/** A lost connection's error for a call that commits: nothing says whether the server committed. */
export function commitOutcomeUnknown(error: string): string {
  return `${error} The COMMIT's outcome is unknown: the server may have committed the transaction before the answer was lost.`;
}
