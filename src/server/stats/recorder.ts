// Query statistics, recorded off the hot path: each answered SQL request adds its statements'
// meta (duration, rows read and written) and the rows it returned to totals in memory, on the HTTP
// thread, with no I/O; a timer (and the server's shutdown) writes them to the store in one
// transaction. Readers flush first, so an answer includes everything answered before it.
import type { Query, StatementResult } from '../../api/executor.ts';
import { describeStatement } from './normalize.ts';
import type { QueryStatsStore, StatBounds } from './query-stats-store.ts';
import { addTotals, emptyTotals, hourOf, OTHER_QUERIES, type StatRow, type StatTotals } from './stat-row.ts';

export const DEFAULT_FLUSH_MS = 10_000;

export interface RecorderOptions {
  flushMs?: number;
  now?: () => number;
  /** A flush the store refused (a full disk): those totals are dropped, the server goes on. */
  onError?: (error: unknown) => void;
}

interface Bucket {
  database: string;
  hour: number;
  statements: Map<string, StatTotals>;
}

export class QueryStatsRecorder {
  private pending = new Map<string, Bucket>();
  private readonly timer: NodeJS.Timeout;
  private readonly now: () => number;
  private readonly onError: (error: unknown) => void;
  /** Distinct statements one bucket holds in memory before the rest go to OTHER_QUERIES (the store caps again). */
  private readonly pendingCap: number;
  private closed = false;

  constructor(
    private readonly store: QueryStatsStore,
    options: RecorderOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.onError = options.onError ?? (() => {});
    this.pendingCap = store.maxQueriesPerHour * 10;
    this.timer = setInterval(() => this.flush(), options.flushMs ?? DEFAULT_FLUSH_MS);
    this.timer.unref();
  }

  /** Adds a request's statements (queries[i] answered by results[i]) to the database's current hour. */
  record(database: string, queries: readonly Query[], results: readonly StatementResult[]): void {
    if (this.closed) return;
    const hour = hourOf(this.now());
    const key = `${database}\n${hour}`;
    let bucket = this.pending.get(key);
    if (!bucket) this.pending.set(key, (bucket = { database, hour, statements: new Map() }));
    const n = Math.min(queries.length, results.length);
    for (let i = 0; i < n; i++) {
      const { query, writes } = describeStatement(queries[i]!.sql);
      const result = results[i]!;
      let totals = bucket.statements.get(query);
      if (!totals) {
        const folded = bucket.statements.size >= this.pendingCap;
        const name = folded ? OTHER_QUERIES : query;
        totals = bucket.statements.get(name) ?? emptyTotals();
        bucket.statements.set(name, totals);
      }
      if (writes) totals.writeQueries++;
      else totals.readQueries++;
      totals.durationMs += result.meta.duration;
      totals.rowsRead += result.meta.rows_read;
      totals.rowsWritten += result.meta.rows_written;
      totals.rowsReturned += result.rows.length;
    }
  }

  /** Writes what is in memory to the store. */
  flush(): void {
    if (this.pending.size === 0) return;
    const rows: StatRow[] = [];
    for (const bucket of this.pending.values()) {
      for (const [query, totals] of bucket.statements) {
        const row: StatRow = { database: bucket.database, hour: bucket.hour, query, ...emptyTotals() };
        addTotals(row, totals);
        rows.push(row);
      }
    }
    this.pending = new Map();
    try {
      this.store.add(rows);
    } catch (e) {
      this.onError(e);
    }
  }

  /** Every recorded row within `bounds`, what is still in memory included. */
  rows(bounds: StatBounds): StatRow[] {
    if (this.closed) return [];
    this.flush();
    return this.store.rows(bounds);
  }

  /** Stops the timer, writes what is left and closes the store. */
  close(): void {
    if (this.closed) return;
    clearInterval(this.timer);
    this.flush();
    this.closed = true;
    this.store.close();
  }
}
