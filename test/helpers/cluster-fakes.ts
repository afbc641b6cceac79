// In-memory stand-ins for the cluster's shared services (src/cluster/shared.ts): a database's log,
// the snapshot bucket and the lease book, with the behaviours the role logic depends on (fenced
// appends, a live tail, leases that lapse), and switches to make them fail. No nats-server.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ClusterDatabase } from '../../src/cluster/cluster-database.ts';
import { decodeRecord, type LogRecord, type RecordSummary } from '../../src/log/record.ts';
import type { SnapshotInfo } from '../../src/log/store.ts';
import type { LeaseBook, LeaseHolder, PrimaryLease, SharedLog, SnapshotBucket } from '../../src/cluster/shared.ts';
import { LogFenced } from '../../src/cluster/stream-log.ts';

const summaryOf = (r: LogRecord): RecordSummary => ({ kind: r.kind, seq: r.seq, time: r.time, pageBytes: r.kind === 'pages' ? r.images.size * r.pageSize : 0 });

/** One database's log, shared by every node's MemoryLog. */
export class MemoryStream {
  records: LogRecord[] = [];
  /** Appends fail with this while set (NATS lost, say). */
  failAppends: Error | undefined;
  /** Appends wait for this while set (a slow round trip to NATS). */
  holdAppends: Promise<void> | undefined;
  /** Appends taken, one per message the log would send. */
  appends = 0;
  private readonly listeners = new Set<() => void>();

  push(record: LogRecord): void {
    this.records.push(record);
    for (const wake of this.listeners) wake();
  }

  /** Ends every live tail (a NATS outage): followers must notice and start again. */
  breakTails(): void {
    for (const wake of this.listeners) wake();
    this.broken++;
  }

  broken = 0;

  listen(wake: () => void): () => void {
    this.listeners.add(wake);
    return () => this.listeners.delete(wake);
  }
}

export class MemoryLog implements SharedLog {
  readonly stream = 'memory';
  lastSeq: number | undefined;

  constructor(private readonly shared: MemoryStream) {}

  async refresh(): Promise<void> {
    this.lastSeq = this.shared.records.at(-1)?.seq;
  }

  async append(record: LogRecord): Promise<void> {
    await this.appendAll([record]);
  }

  async appendEncoded(records: { seq: number; body: Buffer }[]): Promise<void> {
    await this.appendAll(records.map((r) => decodeRecord(r.body)));
  }

  async appendAll(records: LogRecord[]): Promise<void> {
    for (const record of records) {
      this.shared.appends++;
      await this.shared.holdAppends;
      if (this.shared.failAppends) throw this.shared.failAppends;
      if (this.shared.records.at(-1)?.seq !== this.lastSeq) throw new LogFenced('another writer appended first');
      this.shared.push(record);
      this.lastSeq = record.seq;
    }
  }

  async *read(seq: number): AsyncGenerator<LogRecord> {
    for (const r of [...this.shared.records]) if (r.seq > seq) yield r;
  }

  async tail(seq: number): Promise<{ records: AsyncGenerator<LogRecord>; stop: () => void }> {
    const shared = this.shared;
    let stopped = false;
    let wake: (() => void) | undefined;
    const unlisten = shared.listen(() => wake?.());
    const brokenAt = shared.broken;
    async function* records(): AsyncGenerator<LogRecord> {
      let after = seq;
      try {
        while (!stopped) {
          if (shared.broken !== brokenAt) throw new Error('the tail broke');
          const fresh = shared.records.filter((r) => r.seq > after);
          for (const r of fresh) {
            after = r.seq;
            yield r;
          }
          if (fresh.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        unlisten();
      }
    }
    return {
      records: records(),
      stop: () => {
        stopped = true;
        wake?.();
      },
    };
  }

  async lastSummary(): Promise<RecordSummary | undefined> {
    const last = this.shared.records.at(-1);
    return last && summaryOf(last);
  }

  async atTime(time: number): Promise<RecordSummary | undefined> {
    const r = this.shared.records.filter((x) => x.time <= time).at(-1);
    return r && summaryOf(r);
  }

  async find(seq: number): Promise<RecordSummary | undefined> {
    const r = this.shared.records.find((x) => x.seq === seq);
    return r && summaryOf(r);
  }

  async positionsAt(times: number[]): Promise<number[]> {
    const base = (this.shared.records[0]?.seq ?? 1) - 1;
    return times.map((time) => this.shared.records.filter((r) => r.time <= time).at(-1)?.seq ?? base);
  }

  async newestAt(time: number, count: number): Promise<RecordSummary[]> {
    const through = this.shared.records.filter((r) => r.time <= time);
    return through.slice(Math.max(0, through.length - count)).reverse().map(summaryOf);
  }

  async purgeThrough(seq: number): Promise<number> {
    const keep = this.shared.records.filter((r, i) => r.seq > seq || i === this.shared.records.length - 1);
    const purged = this.shared.records.length - keep.length;
    this.shared.records = keep;
    return purged;
  }

  async size(): Promise<{ bytes: number; messages: number }> {
    return { bytes: this.shared.records.length, messages: this.shared.records.length };
  }
}

export class MemorySnapshots implements SnapshotBucket {
  private readonly objects = new Map<string, { data: Buffer; time: number }>();

  async put(database: string, seq: number, file: string, time = Date.now()): Promise<void> {
    this.objects.set(`${database}/${seq}`, { data: readFileSync(file), time });
  }

  async infos(database: string): Promise<SnapshotInfo[]> {
    return [...this.objects]
      .filter(([name]) => name.startsWith(`${database}/`))
      .map(([name, o]) => ({ seq: Number(name.slice(database.length + 1)), time: o.time, bytes: o.data.length }))
      .sort((a, b) => a.seq - b.seq);
  }

  async list(database: string): Promise<number[]> {
    return (await this.infos(database)).map((s) => s.seq);
  }

  async copyTo(database: string, seq: number, file: string): Promise<boolean> {
    const o = this.objects.get(`${database}/${seq}`);
    if (!o) return false;
    writeFileSync(file, o.data);
    return true;
  }

  async remove(database: string, seq: number): Promise<void> {
    this.objects.delete(`${database}/${seq}`);
  }
}

interface Entry {
  holder: LeaseHolder;
  revision: number;
  expires: number;
}

/** Leases that lapse `ttlMs` after their last write, as the key-value bucket's TTL makes them. */
export class MemoryLeases implements LeaseBook {
  private readonly entries = new Map<string, Entry>();
  private revisions = 0;
  /** Every call fails with this while set (NATS not answering). */
  unreachable: Error | undefined;

  constructor(readonly ttlMs: number) {}

  private live(database: string): Entry | undefined {
    const e = this.entries.get(database);
    if (e && Date.now() >= e.expires) this.entries.delete(database);
    return this.entries.get(database);
  }

  /** The lease lapses now (its holder stopped renewing long ago). */
  lapse(database: string): void {
    this.entries.delete(database);
  }

  async acquire(database: string, holder: LeaseHolder): Promise<PrimaryLease | undefined> {
    if (this.unreachable) throw this.unreachable;
    const e = this.live(database);
    if (e && e.holder.node !== holder.node) return undefined;
    const entry = { holder, revision: ++this.revisions, expires: Date.now() + this.ttlMs };
    this.entries.set(database, entry);
    return this.lease(database, entry);
  }

  private lease(database: string, first: Entry): PrimaryLease {
    let revision = first.revision;
    let lost = false;
    let validUntil = Date.now() + this.ttlMs / 2;
    const book = this;
    return {
      holder: first.holder,
      get valid() {
        return !lost && Date.now() < validUntil;
      },
      async renew() {
        if (book.unreachable) throw book.unreachable;
        const e = book.live(database);
        if (lost || !e || e.revision !== revision) {
          lost = true;
          return false;
        }
        e.revision = revision = ++book.revisions;
        e.expires = Date.now() + book.ttlMs;
        validUntil = Date.now() + book.ttlMs / 2;
        return true;
      },
      async release() {
        if (lost) return;
        lost = true;
        if (book.entries.get(database)?.revision === revision) book.entries.delete(database);
      },
    };
  }

  async holder(database: string): Promise<LeaseHolder | undefined> {
    if (this.unreachable) throw this.unreachable;
    return this.live(database)?.holder;
  }
}

/** A logger that keeps what it is told. */
export function recordingLogger(): { lines: { level: string; message: string; details: Record<string, unknown> }[]; info: Log; warn: Log; error: Log } {
  const lines: { level: string; message: string; details: Record<string, unknown> }[] = [];
  const at = (level: string) => (details: Record<string, unknown>, message: string) => void lines.push({ level, message, details });
  return { lines, info: at('info'), warn: at('warn'), error: at('error') };
}

type Log = (details: Record<string, unknown>, message: string) => void;

/** The shared services of one database's cluster, all in memory. */
export function fakes(ttlMs = 60_000, database = 'roles') {
  return { database, stream: new MemoryStream(), snapshots: new MemorySnapshots(), leases: new MemoryLeases(ttlMs) };
}

/** A node of that cluster: its part of the database, in `dir/<name>`, with a logger that keeps every line. */
export async function node(name: string, dir: string, shared: ReturnType<typeof fakes>, reachable = () => true) {
  const logger = recordingLogger();
  const db = await ClusterDatabase.start({
    log: new MemoryLog(shared.stream),
    database: shared.database,
    dir: path.join(dir, name),
    self: { node: name, url: `http://${name}.invalid`, region: 'MEM' },
    leases: shared.leases,
    snapshots: shared.snapshots,
    sessionWaitMs: 100,
    reachable,
    logger,
  });
  return { db, logger };
}
