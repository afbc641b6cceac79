// Prometheus metrics for /metrics.
import { type Dirent, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { historyDirOf } from '../log/logged-database.ts';

export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'dione_requests_total',
    help: 'HTTP requests, by route kind and status class',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });
  readonly queries = new Counter({
    name: 'dione_queries_total',
    help: 'SQL requests executed, by database, protocol and outcome',
    labelNames: ['database', 'protocol', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly statements = new Counter({
    name: 'dione_statements_total',
    help: 'Queries run, as D1 counts them (each query of a request, answered successfully), by database',
    labelNames: ['database'] as const,
    registers: [this.registry],
  });
  readonly rowsRead = new Counter({ name: 'dione_rows_read_total', help: 'Rows read (meta.rows_read)', labelNames: ['database'] as const, registers: [this.registry] });
  readonly rowsWritten = new Counter({ name: 'dione_rows_written_total', help: 'Rows written (meta.rows_written)', labelNames: ['database'] as const, registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'dione_query_duration_seconds',
    help: 'Time from receiving a SQL request to answering it, by database',
    labelNames: ['database'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly timeouts = new Counter({ name: 'dione_query_timeouts_total', help: 'Requests interrupted at the query timeout', labelNames: ['database'] as const, registers: [this.registry] });

  /** Reports the worker pool's state: open databases and running workers. */
  watchPool(pool: {
    openDatabases: number;
    workerCount: number;
    localReadStats: { served: number; copies: number };
    openCounts: { kept: number; forRequests: number };
  }): void {
    new Counter({
      name: 'dione_local_reads_total',
      help: 'Read requests answered on the HTTP thread instead of a worker (docs/server.md)',
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc(pool.localReadStats.served);
      },
    });
    new Counter({
      name: 'dione_database_opens_total',
      help: 'Databases opened by the worker pool: kept open, or for their requests only when the open-database budget is full (docs/server.md, Admission)',
      labelNames: ['kind'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ kind: 'kept' }, pool.openCounts.kept);
        this.inc({ kind: 'for_requests' }, pool.openCounts.forRequests);
      },
    });
    new Gauge({
      name: 'dione_open_databases',
      help: 'Databases open in the worker pool',
      registers: [this.registry],
      collect() {
        this.set(pool.openDatabases);
      },
    });
    new Gauge({
      name: 'dione_workers',
      help: 'Worker threads hosting databases (extra ones included)',
      registers: [this.registry],
      collect() {
        this.set(pool.workerCount);
      },
    });
  }

  /** Reports each database's size on disk: its file with its WAL, and its write log (records and snapshots). */
  watchStorage(databases: () => Iterable<{ name: string; file: string }>): void {
    new Gauge({
      name: 'dione_database_bytes',
      help: 'Size of a database on disk: its SQLite file and WAL',
      labelNames: ['database'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const db of databases()) this.set({ database: db.name }, fileSize(db.file) + fileSize(`${db.file}-wal`));
      },
    });
    new Gauge({
      name: 'dione_write_log_bytes',
      help: "Size of a database's write log on disk (log segments and snapshots)",
      labelNames: ['database'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const db of databases()) this.set({ database: db.name }, treeSize(historyDirOf(db.file)));
      },
    });
  }

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0; // not created yet, or deleted meanwhile
  }
}

function treeSize(dir: string): number {
  let total = 0;
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? treeSize(full) : entry.isFile() ? fileSize(full) : 0;
  }
  return total;
}
