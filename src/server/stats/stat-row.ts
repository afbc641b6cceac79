// One statement's totals in one database for one hour: what the recorder adds up in memory, the
// store keeps, and insights and analytics answers are summed from.

export interface StatTotals {
  /** Runs of statements that only read (the lexer's word) and of those that may write. */
  readQueries: number;
  writeQueries: number;
  durationMs: number;
  rowsRead: number;
  rowsWritten: number;
  rowsReturned: number;
}

export interface StatRow extends StatTotals {
  /** The database's uuid. */
  database: string;
  /** Start of the hour (UTC), in ms since the epoch. */
  hour: number;
  /** The normalized statement (normalize.ts), or OTHER_QUERIES. */
  query: string;
}

/** The row that takes the statements beyond an hour's cap (not valid SQL, so no statement has this text). */
export const OTHER_QUERIES = '(other queries)';

export const HOUR_MS = 3_600_000;

export const hourOf = (ms: number): number => Math.floor(ms / HOUR_MS) * HOUR_MS;

export function emptyTotals(): StatTotals {
  return { readQueries: 0, writeQueries: 0, durationMs: 0, rowsRead: 0, rowsWritten: 0, rowsReturned: 0 };
}

export function addTotals(into: StatTotals, from: StatTotals): void {
  into.readQueries += from.readQueries;
  into.writeQueries += from.writeQueries;
  into.durationMs += from.durationMs;
  into.rowsRead += from.rowsRead;
  into.rowsWritten += from.rowsWritten;
  into.rowsReturned += from.rowsReturned;
}
