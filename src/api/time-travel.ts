// Time Travel's shapes, shared by the engine side (the write log), the REST API, the CLI and the
// embedded API: which point of a database's history is meant, and what a restore answers.

/** A point of a database's history: a bookmark, or a time (the newest commit at or before it). */
export type HistoryPoint = { bookmark: string } | { timestamp: Date };

/** D1's answer to a restore: where the database is now, and the bookmark that undoes the restore. */
export interface RestoreResult {
  bookmark: string;
  previous_bookmark: string;
  message: string;
}

/** A request about a database's history that cannot be honoured; the message says why. */
export class HistoryError extends Error {
  override name = 'HistoryError';
}

/**
 * A timestamp as wrangler reads one: an ISO 8601 / RFC 3339 string, unix seconds (10 digits) or
 * unix milliseconds. Undefined when it is none of them.
 */
export function parseTimestamp(text: string): Date | undefined {
  const value = text.trim();
  if (/^\d+$/.test(value)) {
    const n = Number(value);
    return new Date(value.length === 10 ? n * 1000 : n);
  }
  if (!/^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/.test(value)) return undefined;
  // A day the month does not have (2026-02-30) is no date, not the 2nd of March.
  const [year, month, day] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
  const calendar = new Date(Date.UTC(year, month - 1, day));
  if (calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}
