// One database on one node of a cluster. The node holding the database's lease is its primary:
// it runs the engine with a local write log and ships every record to the JetStream log before
// answering (a write is acknowledged once the NATS cluster holds it). Every other node follows
// the JetStream log into a local copy and serves session reads from it; writes, and reads that
// must see the newest data, are for the primary. When the lease lapses (its holder died), a
// follower takes it, catches up to the end of the log, and becomes the primary.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { formatBookmark, parseBookmark } from '../api/bookmark.ts';
import type { ExecuteRequest, ExecuteResponse } from '../api/executor.ts';
import { Connection } from '../engine/connection.ts';
import { Engine, type EngineOptions } from '../engine/engine.ts';
import { LoggedDatabase } from '../log/logged-database.ts';
import { sequenceOfFile } from '../log/pages.ts';
import { prepareReplicaFile } from '../log/replica.ts';
import { Follower } from './follower.ts';
import { NOT_DURABLE, UNAVAILABLE } from './messages.ts';
import type { Lease, LeaseHolder, Leases } from './leases.ts';
import type { ObjectSnapshots } from './object-snapshots.ts';
import { StreamLog } from './stream-log.ts';

export interface ClusterDatabaseOptions {
  nc: NatsConnection;
  database: string;
  /** This node's directory for the database: its copy and, while primary, its local log. */
  dir: string;
  self: LeaseHolder;
  leases: Leases;
  snapshots: ObjectSnapshots;
  replicas?: number;
  engine?: EngineOptions;
  /**
   * A database file to start from when the cluster has no history of this database yet: one made
   * before cluster mode, or a fork written by a Time Travel operation.
   */
  seed?: string;
  /** Whether NATS can be reached now (the connection's state); while not, nothing waits on it. */
  reachable?: () => boolean;
  /** How long a session read waits for this copy to reach its bookmark before going to the primary (default 250 ms). */
  sessionWaitMs?: number;
}

/** The answer for a request this node cannot serve: send it to the primary. */
export interface Forward {
  forward: LeaseHolder | undefined;
}

export interface ClusterRequest {
  request: ExecuteRequest;
  /** The request writes (or may write): only the primary runs it. */
  writes: boolean;
}

/** Every node names a database's history alike, so bookmarks mean the same on all of them. */
export function clusterTag(database: string): string {
  return createHash('sha256').update(`dione:${database}`).digest('hex').slice(0, 32);
}

export { NOT_DURABLE, UNAVAILABLE };

export class ClusterDatabase {
  private primary: { lease: Lease; logged: LoggedDatabase; shipped: number } | undefined;
  private follower: Follower | undefined;
  private reader: Engine | undefined;
  /** Serialises the primary's work (execute + ship) and role changes. */
  private queue: Promise<unknown> = Promise.resolve();
  /** The follower's catch-up in progress, and whether the log grew while it ran. */
  private catchingUp: Promise<void> | undefined;
  private kicked = false;
  private changingRole = false;
  private readonly waiters = new Set<() => void>();
  /** The lease holder last seen: where reads go while NATS cannot be asked. */
  private lastHolder: LeaseHolder | undefined;

  private constructor(
    private readonly options: ClusterDatabaseOptions,
    private readonly log: StreamLog,
  ) {}

  static async start(options: ClusterDatabaseOptions): Promise<ClusterDatabase> {
    mkdirSync(options.dir, { recursive: true });
    const log = await StreamLog.open(options.nc, options.database, { replicas: options.replicas });
    const node = new ClusterDatabase(options, log);
    await node.tick();
    return node;
  }

  private get file(): string {
    return path.join(this.options.dir, 'db.sqlite');
  }

  private get historyDir(): string {
    return path.join(this.options.dir, 'history');
  }

  get role(): 'primary' | 'follower' {
    return this.primary ? 'primary' : 'follower';
  }

  /** The commit this node's copy holds. */
  get sequence(): number {
    return this.primary ? this.primary.logged.engine.commitSequence : (this.follower?.sequence ?? 0);
  }

  /** Lease upkeep: renew it (primary), or follow the log and take the lease when it lapses. */
  tick(): Promise<void> {
    return this.serially(() => this.upkeep());
  }

  private get reachable(): boolean {
    return this.options.reachable?.() ?? true;
  }

  private async upkeep(): Promise<void> {
    // Without NATS a renewal or a takeover can only time out; the lease's own clock decides instead.
    if (!this.reachable) return;
    if (this.primary) {
      if (!(await this.primary.lease.renew().catch(() => false))) await this.demote();
      return;
    }
    if (this.follower) await this.catchUp();
    const lease = await this.options.leases.acquire(this.options.database, this.options.self);
    if (lease) await this.promote(lease);
    else if (!this.reader) await this.follow();
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => {});
    return next;
  }

  /** Catches the follower up; joins one in progress (and runs again after it when the log grew meanwhile). */
  private catchUp(): Promise<void> {
    if (this.catchingUp) {
      this.kicked = true;
      return this.catchingUp;
    }
    const run = async () => {
      try {
        do {
          this.kicked = false;
          if (!this.follower) return;
          await this.follower.catchUp();
        } while (this.kicked);
      } finally {
        this.catchingUp = undefined;
      }
    };
    this.catchingUp = run();
    return this.catchingUp;
  }

  private kick(): void {
    if (!this.follower || this.changingRole) return;
    this.catchUp().catch(() => {});
  }

  /** Waits (at most `ms`) until the copy holds `seq`. */
  private async reach(seq: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    // The live tail brings records as they come; one catch-up covers a tail that is restarting.
    if ((this.follower?.sequence ?? 0) < seq) this.kick();
    while ((this.follower?.sequence ?? 0) < seq) {
      const left = deadline - Date.now();
      if (left <= 0 || !this.follower) return false;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 50));
        this.waiters.add(wake);
      });
    }
    return true;
  }

  /** A read on this node's copy. Its bookmark is the copy's: a read that touched no table saw it all the same. */
  private readHere(request: ExecuteRequest): ExecuteResponse {
    const response = this.reader!.execute(request);
    if (response.success && this.follower) {
      const copy = formatBookmark(this.follower.sequence, clusterTag(this.options.database));
      if (response.bookmark === undefined || response.bookmark < copy) response.bookmark = copy;
    }
    return response;
  }

  private async follow(): Promise<void> {
    if (existsSync(this.historyDir) || existsSync(`${this.file}-wal`)) {
      // This node was the primary and stopped without stepping down: its copy may hold commits the
      // log never took. Start over from a snapshot.
      rmSync(this.historyDir, { recursive: true, force: true });
      for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(this.file + suffix, { force: true });
    }
    if (existsSync(this.file) && sequenceOfFile(this.file) > 0) prepareReplicaFile(this.file, sequenceOfFile(this.file));
    this.follower = await Follower.start(this.file, this.options.database, this.log, this.options.snapshots);
    this.follower.onAdvance = () => {
      for (const wake of this.waiters) wake();
    };
    this.follower.follow();
    // A copy it can vouch for serves reads even when the log cannot be reached right now.
    this.reader = new Engine(this.file, { ...this.options.engine, readonly: true, bookmarkTag: clusterTag(this.options.database), servedByPrimary: false });
    await this.catchUp().catch(() => {});
  }

  /** Takes over: catch up to the end of the log, then run the engine on the local copy. */
  private async promote(lease: Lease): Promise<void> {
    this.changingRole = true;
    try {
      await this.catchingUp?.catch(() => {});
      await this.log.refresh();
      // A database with no history yet. (One whose first snapshot is stored, but whose primary died
      // before any write, is not: this node starts from that snapshot.)
      const brandNew = this.log.lastSeq === undefined && (await this.options.snapshots.list(this.options.database)).length === 0;
      if (!brandNew) {
        if (!this.follower) await this.follow();
        await this.catchingUp?.catch(() => {});
        await this.follower!.catchUp();
        if (this.log.lastSeq !== undefined && this.follower!.sequence !== this.log.lastSeq) {
          throw new Error(`${this.options.database}: could not catch up to ${this.log.lastSeq}`);
        }
      }
      this.reader?.close();
      this.reader = undefined;
      await this.follower?.close();
      this.follower = undefined;
      rmSync(this.historyDir, { recursive: true, force: true });
      if (brandNew) this.seedFrom(this.options.seed);
      const logged = new LoggedDatabase(this.file, { ...this.options.engine, servedByPrimary: true }, { dir: this.historyDir, tag: clusterTag(this.options.database) });
      const seq = logged.engine.commitSequence;
      if (brandNew) {
        // A new database: its first snapshot is where every follower starts.
        const first = path.join(this.options.dir, 'first.sqlite');
        logged.snapshots.copyTo(logged.snapshots.list()[0]!.seq, first);
        await this.options.snapshots.put(this.options.database, seq, first);
        rmSync(first, { force: true });
      }
      this.primary = { lease, logged, shipped: seq };
    } catch (e) {
      await lease.release();
      throw e;
    } finally {
      this.changingRole = false;
    }
  }

  /** A new database's first content: a copy of `seed` when there is one, else empty. */
  private seedFrom(seed: string | undefined): void {
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(this.file + suffix, { force: true });
    if (!seed || !existsSync(seed)) return;
    const source = new Connection(seed);
    source.checkpoint();
    source.close();
    copyFileSync(seed, this.file);
  }

  /** Steps down after losing the lease or the log: local commits the log lacks are dropped. */
  private async demote(): Promise<void> {
    const primary = this.primary!;
    this.primary = undefined;
    primary.logged.closeNow();
    rmSync(this.historyDir, { recursive: true, force: true });
    void primary.lease.release();
    let logEnd: number | undefined;
    try {
      if (this.reachable) {
        await this.log.refresh();
        logEnd = this.log.lastSeq ?? 0;
      }
    } catch {
      // The log cannot be reached: what was shipped is all this copy can vouch for.
    }
    if (sequenceOfFile(this.file) !== primary.shipped || (logEnd !== undefined && logEnd < primary.shipped)) {
      // The copy holds commits the log never acknowledged: start over from a snapshot.
      for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(this.file + suffix, { force: true });
    } else for (const suffix of ['-wal', '-shm']) rmSync(this.file + suffix, { force: true });
    await this.follow().catch(() => {});
  }

  /** Ships every local record the JetStream log does not hold yet, snapshots of restores first. */
  private async ship(): Promise<void> {
    const primary = this.primary!;
    primary.logged.flush();
    for (const record of [...primary.logged.log.read(primary.shipped, Number.MAX_SAFE_INTEGER)]) {
      if (record.kind === 'image') {
        // A restore: followers apply it from its snapshot, stored before the record that names it.
        const file = path.join(this.options.dir, 'image.sqlite');
        primary.logged.snapshots.copyTo(record.seq, file);
        await this.options.snapshots.put(this.options.database, record.seq, file);
        rmSync(file, { force: true });
      }
      await this.log.append(record);
      primary.shipped = record.seq;
    }
  }

  /** Where a request is served: here, or (a follower's answer) at the primary. */
  private async route(item: ClusterRequest): Promise<'here' | 'primary'> {
    const { request, writes } = item;
    const bookmark = request.bookmark;
    if (writes || bookmark === undefined || bookmark === 'first-primary') return 'primary';
    if (!this.reader) return 'primary';
    if (bookmark === 'first-unconstrained') return 'here';
    const wanted = parseBookmark(bookmark);
    // A malformed bookmark gets the engine's error here.
    if (!wanted) return 'here';
    return (await this.reach(wanted.sequence, this.options.sessionWaitMs ?? 250)) ? 'here' : 'primary';
  }

  /**
   * Runs requests: on the primary, answered once the log holds their writes (one shipment for
   * all); on a follower, session reads are answered from the local copy and the rest are sent to
   * the primary.
   */
  async executeMany(items: ClusterRequest[]): Promise<(ExecuteResponse | Forward)[]> {
    if (!this.reachable) return this.offline(items);
    if (!this.primary && !this.changingRole) {
      const routes = await Promise.all(items.map((item) => this.route(item)));
      if (this.reader && !this.primary && routes.every((r) => r === 'here')) return items.map((item) => this.readHere(item.request));
      if (routes.some((r) => r === 'primary')) {
        const holder = await this.holder();
        if (holder && holder.node !== this.options.self.node) {
          return items.map((item, i) => (routes[i] === 'here' && this.reader ? this.readHere(item.request) : { forward: holder }));
        }
      }
    }
    return this.serially(async () => {
      // Nobody holds the lease (or this node just lost it): take it, if the log allows.
      if (!this.primary) await this.upkeep();
      if (!this.primary) {
        const holder = await this.holder();
        return items.map((item) =>
          holder && holder.node !== this.options.self.node ? { forward: holder } : this.reader && !item.writes ? this.readHere(item.request) : { success: false as const, error: holder ? NOT_DURABLE : UNAVAILABLE },
        );
      }
      if (!this.primary.lease.valid && !(await this.primary.lease.renew().catch(() => false))) {
        await this.demote();
        return items.map(() => ({ success: false as const, error: NOT_DURABLE }));
      }
      const engine = this.primary.logged.engine;
      // Writes that arrived together share one commit, one record and one append (group commit).
      const responses = engine.executeMany(items.map((item) => item.request));
      try {
        await this.ship();
      } catch {
        await this.demote();
        return items.map(() => ({ success: false as const, error: NOT_DURABLE }));
      }
      return responses;
    });
  }

  /**
   * NATS cannot be reached: nothing more can be made durable, so writes are refused at once; what
   * is durable can still be read — the primary's database (everything in it was shipped), a
   * follower's copy for session reads, and the primary last seen for other reads.
   */
  private async offline(items: ClusterRequest[]): Promise<(ExecuteResponse | Forward)[]> {
    if (this.primary) {
      return this.serially(async () =>
        // Nothing can be shipped: reads run where SQLite refuses writes.
        items.map((item) =>
          item.writes || !this.primary ? { success: false as const, error: NOT_DURABLE } : this.primary.logged.engine.execute({ ...item.request, readOnly: true }),
        ),
      );
    }
    const answers: (ExecuteResponse | Forward)[] = [];
    for (const item of items) {
      if (item.writes) answers.push({ success: false, error: NOT_DURABLE });
      else if (this.reader && (await this.route(item)) === 'here') answers.push(this.readHere(item.request));
      else if (this.lastHolder && this.lastHolder.node !== this.options.self.node) answers.push({ forward: this.lastHolder });
      else answers.push({ success: false, error: UNAVAILABLE });
    }
    return answers;
  }

  execute(request: ExecuteRequest, writes: boolean): Promise<ExecuteResponse | Forward> {
    return this.executeMany([{ request, writes }]).then((r) => r[0]!);
  }

  /** Where the database is written: this node ('self'), another, or (none can be found now) undefined. */
  async primaryNode(): Promise<LeaseHolder | 'self' | undefined> {
    if (this.primary) return 'self';
    const holder = await this.holder();
    if (holder && holder.node !== this.options.self.node) return holder;
    await this.serially(() => (this.primary ? Promise.resolve() : this.upkeep()));
    if (this.primary) return 'self';
    return this.holder();
  }

  /**
   * Who holds the lease: as NATS says, or, when NATS does not answer (unreachable, or electing a
   * leader for the bucket), the holder last seen: a request sent there is answered or handed on by
   * that node, which beats waiting out one timeout after another here.
   */
  private async holder(): Promise<LeaseHolder | undefined> {
    if (!this.reachable) return this.lastHolder;
    try {
      const holder = await this.options.leases.holder(this.options.database);
      if (holder) this.lastHolder = holder;
      return holder;
    } catch {
      return this.lastHolder;
    }
  }

  /** The engine serving this node's reads: the primary's, or the follower's copy (for info, exports, backups). */
  get engine(): Engine | undefined {
    return this.primary?.logged.engine ?? this.reader;
  }

  /** The primary's write log (Time Travel, forks); undefined on a follower. */
  get history(): LoggedDatabase | undefined {
    return this.primary?.logged;
  }

  /** Runs `work` as the primary, serialised with writes, then ships what it logged (a restore). */
  asPrimary<T>(work: (logged: LoggedDatabase) => T | Promise<T>): Promise<T | Forward> {
    return this.serially(async () => {
      if (!this.primary) await this.upkeep();
      if (!this.primary) return { forward: await this.holder() };
      const result = await work(this.primary.logged);
      await this.ship();
      return result;
    });
  }

  /** Stops; a primary gives its lease up unless `crash` (then it lapses, as when a node dies). */
  async stop(options: { crash?: boolean } = {}): Promise<void> {
    await this.queue;
    await this.catchingUp?.catch(() => {});
    if (this.primary) {
      if (!options.crash) await this.primary.lease.release();
      this.primary.logged.closeNow();
      this.primary = undefined;
    }
    this.reader?.close();
    await this.follower?.close();
    this.follower = undefined;
  }
}

