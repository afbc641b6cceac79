// The result shapes of Cloudflare D1's Workers binding, as the binding returns them.

/** Metadata D1 attaches to every statement result. */
export interface D1Meta {
  /** Milliseconds spent executing the SQL. */
  duration: number;
  /** Bytes the database occupies after the statement: (page_count - freelist_count) * page_size. */
  size_after: number;
  rows_read: number;
  rows_written: number;
  /** The connection's last_insert_rowid() after the statement (SELECTs repeat the previous insert's id). */
  last_row_id: number;
  changed_db: boolean;
  /** total_changes() delta: trigger rows, cascades and FTS5 shadow writes count. */
  changes: number;
  served_by?: string;
  served_by_region?: string;
  served_by_primary?: boolean;
  timings?: { sql_duration_ms: number };
  [key: string]: unknown;
}

export interface D1Response {
  success: true;
  meta: D1Meta & Record<string, unknown>;
  error?: never;
}

export type D1Result<T = unknown> = D1Response & { results: T[] };

export interface D1ExecResult {
  count: number;
  duration: number;
}

export type D1SessionConstraint = 'first-primary' | 'first-unconstrained';
export type D1SessionBookmark = string;

/** How INTEGER values come back: as JS numbers (D1's behaviour, lossy past 2^53) or as exact bigints. */
export type IntMode = 'number' | 'bigint';
