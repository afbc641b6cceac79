// The server's query statistics on disk: one small SQLite file beside the catalogue, one row per
// (database, hour, normalized statement). Bounded: buckets older than the retention are dropped,
// and an hour of one database keeps at most `maxQueriesPerHour` statements, the most run ones; the
// rest are folded into one OTHER_QUERIES row, so nothing is lost from the totals.
import type Database from 'better-sqlite3';
import { openSqlite } from '../../engine/sqlite.ts';
import { HOUR_MS, hourOf, OTHER_QUERIES, type StatRow } from './stat-row.ts';

export const DEFAULT_MAX_QUERIES_PER_HOUR = 100;
export const DEFAULT_RETENTION_DAYS = 31;

export interface QueryStatsStoreOptions {
  maxQueriesPerHour?: number;
  retentionDays?: number;
  /** The clock retention is measured against (tests move it). */
  now?: () => number;
}

/** Which rows a reader wants: hours whose start lies in [fromHour, toHour], and some databases (all when absent). */
export interface StatBounds {
  fromHour?: number;
  toHour?: number;
  databases?: readonly string[];
}

const COLUMNS = 'read_queries, write_queries, duration_ms, rows_read, rows_written, rows_returned';

interface StoredRow {
  database: string;
  hour: number;
  query: string;
  read_queries: number;
  write_queries: number;
  duration_ms: number;
  rows_read: number;
  rows_written: number;
  rows_returned: number;
}

const fromStored = (r: StoredRow): StatRow => ({
  database: r.database,
  hour: r.hour,
  query: r.query,
  readQueries: r.read_queries,
  writeQueries: r.write_queries,
  durationMs: r.duration_ms,
  rowsRead: r.rows_read,
  rowsWritten: r.rows_written,
  rowsReturned: r.rows_returned,
});

export class QueryStatsStore {
  readonly maxQueriesPerHour: number;
  private readonly retentionMs: number;
  private readonly now: () => number;
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly distinct: Database.Statement;
  private readonly ranked: Database.Statement;
  private readonly remove: Database.Statement;
  private readonly expire: Database.Statement;

  constructor(file: string, options: QueryStatsStoreOptions = {}) {
    this.maxQueriesPerHour = options.maxQueriesPerHour ?? DEFAULT_MAX_QUERIES_PER_HOUR;
    this.retentionMs = (options.retentionDays ?? DEFAULT_RETENTION_DAYS) * 24 * HOUR_MS;
    this.now = options.now ?? Date.now;
    this.db = openSqlite(file);
    this.db.pragma('journal_mode = WAL');
    // Statistics, not data: a power cut may lose the last flush, never the file.
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`CREATE TABLE IF NOT EXISTS query_stats (
      database TEXT NOT NULL, hour INTEGER NOT NULL, query TEXT NOT NULL,
      read_queries INTEGER NOT NULL, write_queries INTEGER NOT NULL, duration_ms REAL NOT NULL,
      rows_read INTEGER NOT NULL, rows_written INTEGER NOT NULL, rows_returned INTEGER NOT NULL,
      PRIMARY KEY (database, hour, query)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS query_stats_hour ON query_stats (hour);`);
    this.upsert = this.db.prepare(`INSERT INTO query_stats (database, hour, query, ${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (database, hour, query) DO UPDATE SET read_queries = read_queries + excluded.read_queries,
        write_queries = write_queries + excluded.write_queries, duration_ms = duration_ms + excluded.duration_ms,
        rows_read = rows_read + excluded.rows_read, rows_written = rows_written + excluded.rows_written,
        rows_returned = rows_returned + excluded.rows_returned`);
    this.distinct = this.db.prepare('SELECT count(*) AS n FROM query_stats WHERE database = ? AND hour = ? AND query <> ?');
    this.ranked = this.db.prepare(
      `SELECT * FROM query_stats WHERE database = ? AND hour = ? AND query <> ? ORDER BY read_queries + write_queries DESC, query LIMIT -1 OFFSET ?`,
    );
    this.remove = this.db.prepare('DELETE FROM query_stats WHERE database = ? AND hour = ? AND query = ?');
    this.expire = this.db.prepare('DELETE FROM query_stats WHERE hour < ?');
    this.expire.run(this.oldestKept());
  }

  /** Adds rows to the totals in one transaction, then applies the per-hour cap and the retention. */
  add(rows: readonly StatRow[]): void {
    if (rows.length === 0) return;
    const oldest = this.oldestKept();
    this.db.transaction(() => {
      const touched = new Map<string, { database: string; hour: number }>();
      for (const r of rows) {
        if (r.hour < oldest) continue;
        this.put(r);
        touched.set(`${r.database}\n${r.hour}`, { database: r.database, hour: r.hour });
      }
      for (const { database, hour } of touched.values()) this.cap(database, hour);
      this.expire.run(oldest);
    })();
  }

  /** The stored rows within `bounds`, oldest hour first. */
  rows(bounds: StatBounds = {}): StatRow[] {
    const where = ['hour >= ?'];
    const params: (string | number)[] = [Math.max(bounds.fromHour ?? 0, this.oldestKept())];
    if (bounds.toHour !== undefined) {
      where.push('hour <= ?');
      params.push(bounds.toHour);
    }
    if (bounds.databases) {
      if (bounds.databases.length === 0) return [];
      where.push(`database IN (${bounds.databases.map(() => '?').join(', ')})`);
      params.push(...bounds.databases);
    }
    const rows = this.db.prepare(`SELECT * FROM query_stats WHERE ${where.join(' AND ')} ORDER BY hour, database, query`).all(...params) as StoredRow[];
    return rows.map(fromStored);
  }

  close(): void {
    this.db.close();
  }

  /** Start of the oldest hour kept. */
  private oldestKept(): number {
    return hourOf(this.now()) - this.retentionMs;
  }

  private put(r: StatRow): void {
    this.upsert.run(r.database, r.hour, r.query, r.readQueries, r.writeQueries, r.durationMs, r.rowsRead, r.rowsWritten, r.rowsReturned);
  }

  /** Folds the statements of one hour beyond the cap (the least run) into its OTHER_QUERIES row. */
  private cap(database: string, hour: number): void {
    const { n } = this.distinct.get(database, hour, OTHER_QUERIES) as { n: number };
    if (n <= this.maxQueriesPerHour) return;
    const beyond = (this.ranked.all(database, hour, OTHER_QUERIES, this.maxQueriesPerHour) as StoredRow[]).map(fromStored);
    for (const r of beyond) {
      this.remove.run(database, hour, r.query);
      this.put({ ...r, query: OTHER_QUERIES });
    }
  }
}
