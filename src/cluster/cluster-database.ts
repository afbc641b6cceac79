// One database on one node of a cluster. The node holding the database's lease is its primary:
// it runs the engine with a local write log (a capture buffer, not synced: see docs/cluster.md)
// and ships every record to the JetStream log before answering (a write is acknowledged once the
// NATS cluster holds it). Every other node follows the JetStream log into a local copy and serves
// session reads from it; writes, and reads that must see the newest data, are for the primary.
// When the lease lapses (its holder died), a follower takes it, catches up to the end of the log,
// and becomes the primary. The database's history (Time Travel, forks, retention) is the shared
// one, stream + object store, whichever node is the primary.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { formatBookmark, parseBookmark } from '../api/bookmark.ts';
import type { ExecuteRequest, ExecuteResponse } from '../api/executor.ts';
import { Connection } from '../engine/connection.ts';
import { Engine, type EngineOptions } from '../engine/engine.ts';
import type { CommitsOverview, CommitsQuery, History, TimeTravel } from '../log/history.ts';
import { LoggedDatabase } from '../log/logged-database.ts';
import { sequenceOfFile } from '../log/pages.ts';
import { encodeRecord, summarize } from '../log/record.ts';
import { prepareReplicaFile } from '../log/replica.ts';
import { commitsOverview, DAY_MS, type TimeWindow } from '../log/time-travel.ts';
import { ClusterTimeTravel } from './cluster-time-travel.ts';
import { Follower } from './follower.ts';
import { type ClusterLogger, errorText, lineLogger } from './logger.ts';
import { NOT_DURABLE, UNAVAILABLE } from './messages.ts';
import { SharedHistoryKeeper } from './retention.ts';
import type { LeaseBook, LeaseHolder, PrimaryLease, SharedLog, SnapshotBucket } from './shared.ts';
import { StreamHistory } from './stream-history.ts';
import { StreamLog } from './stream-log.ts';
import { copyInDoubt } from './unsynced-copy.ts';

export interface ClusterDatabaseOptions {
  /** The NATS connection the database's log stream is opened on (unless `log` is given). */
  nc?: NatsConnection;
  /** The database's log (default: its JetStream stream, opened on `nc`). */
  log?: SharedLog;
  database: string;
  /** This node's directory for the database: its copy and, while primary, its local log. */
  dir: string;
  self: LeaseHolder;
  leases: LeaseBook;
  snapshots: SnapshotBucket;
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
  /** How far back Time Travel reaches (default 30 days); older history is compacted away. */
  retentionDays?: number;
  /** The primary takes a snapshot at least this often while there are writes (default: a day, or a quarter of the window if shorter). */
  snapshotIntervalMs?: number;
  /** …and once the records since the last one hold this many page bytes and half the database (default 64 MiB). */
  snapshotBytes?: number;
  /** Compaction of the shared history runs at most this often (default a minute). */
  compactEveryMs?: number;
  /** The clock stamped on commits and measured against the window (tests simulate days). */
  clock?: () => number;
  logger?: ClusterLogger;
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

interface Primary {
  kind: 'primary';
  lease: PrimaryLease;
  logged: LoggedDatabase;
  /** The newest commit the JetStream log holds. */
  shipped: number;
  keeper: SharedHistoryKeeper;
  timeTravel: ClusterTimeTravel;
}

interface Following {
  kind: 'follower';
  follower: Follower;
  /** Reads this node's copy. */
  reader: Engine;
}

/** What this node is for the database. 'changing': taking over or stepping down (requests wait their turn). */
type Role = Primary | Following | { kind: 'changing' } | { kind: 'none' };

const COPY_FILES = ['', '-wal', '-shm', '-journal'];

/** Requests in one group at most (a stalled shipment would otherwise gather one huge transaction). */
const GROUP_MAX = 256;

interface Gathering {
  items: ClusterRequest[];
  answers: Promise<(ExecuteResponse | Forward)[]>;
}

export class ClusterDatabase {
  private state: Role = { kind: 'none' };
  /** Serialises the primary's work (execute + ship) and role changes. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Requests waiting for their turn as the primary, in one group: later ones join it. */
  private gathering: Gathering | undefined;
  /** The follower's catch-up in progress, and whether the log grew while it ran. */
  private catchingUp: Promise<void> | undefined;
  private kicked = false;
  private readonly waiters = new Set<() => void>();
  /** The lease holder last seen: where reads go while NATS cannot be asked. */
  private lastHolder: LeaseHolder | undefined;
  readonly history: History;
  private readonly logger: ClusterLogger;
  private readonly clock: () => number;
  /** The shared history's upkeep in progress (snapshots stored, compaction). */
  private keeping: Promise<void> | undefined;

  private constructor(
    private readonly options: ClusterDatabaseOptions,
    private readonly log: SharedLog,
  ) {
    this.history = new StreamHistory(clusterTag(options.database), options.database, log, options.snapshots);
    this.logger = options.logger ?? lineLogger({ node: options.self.node, database: options.database });
    this.clock = options.clock ?? Date.now;
  }

  static async start(options: ClusterDatabaseOptions): Promise<ClusterDatabase> {
    mkdirSync(options.dir, { recursive: true });
    if (!options.log && !options.nc) throw new Error('a cluster database needs its log, or the NATS connection to open it on');
    const log = options.log ?? (await StreamLog.open(options.nc!, options.database, { replicas: options.replicas }));
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

  private get retentionMs(): number {
    return (this.options.retentionDays ?? 30) * DAY_MS;
  }

  private window(): TimeWindow {
    return { now: this.clock(), retentionMs: this.retentionMs };
  }

  get role(): 'primary' | 'follower' {
    return this.state.kind === 'primary' ? 'primary' : 'follower';
  }

  /** The commit this node's copy holds. */
  get sequence(): number {
    const s = this.state;
    return s.kind === 'primary' ? s.logged.engine.commitSequence : s.kind === 'follower' ? s.follower.sequence : 0;
  }

  private get following(): Following | undefined {
    return this.state.kind === 'follower' ? this.state : undefined;
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
    const s = this.state;
    if (s.kind === 'primary') {
      let renewed = false;
      try {
        renewed = await s.lease.renew();
      } catch (e) {
        this.logger.warn({ error: errorText(e) }, 'could not renew the primary lease; stepping down');
      }
      if (!renewed) return this.demote(s, 'lost its lease');
      // Off the write path: storing a large snapshot must not hold writes up.
      this.keeping ??= this.keepHistory(s).finally(() => {
        this.keeping = undefined;
      });
      return;
    }
    if (s.kind === 'follower') await this.catchUp();
    const lease = await this.options.leases.acquire(this.options.database, this.options.self);
    if (lease) await this.promote(lease);
    else if (this.state.kind === 'none') await this.follow();
  }

  /** Stores new snapshots in the shared history and compacts it; a failure is said and tried again next time. */
  private async keepHistory(primary: Primary): Promise<void> {
    try {
      await primary.keeper.storeSnapshots(primary.shipped);
      await primary.keeper.compact();
    } catch (e) {
      this.logger.warn({ error: errorText(e) }, 'could not keep the shared history (snapshot or compaction); retrying on the next upkeep');
    }
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    // Work queued after a group closes it: requests that come later run after that work, in order.
    this.gathering = undefined;
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
          const following = this.following;
          if (!following) return;
          await following.follower.catchUp();
        } while (this.kicked);
      } finally {
        this.catchingUp = undefined;
      }
    };
    this.catchingUp = run();
    return this.catchingUp;
  }

  private kick(): void {
    if (!this.following) return;
    this.catchUp().catch((e) => this.logger.warn({ error: errorText(e) }, 'catching the copy up failed; the live tail and the next upkeep go on'));
  }

  /** Waits (at most `ms`) until the copy holds `seq`. */
  private async reach(seq: number, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    // The live tail brings records as they come; one catch-up covers a tail that is restarting.
    if ((this.following?.follower.sequence ?? 0) < seq) this.kick();
    while ((this.following?.follower.sequence ?? 0) < seq) {
      const left = deadline - Date.now();
      if (left <= 0 || !this.following) return false;
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
  private readHere(following: Following, request: ExecuteRequest): ExecuteResponse {
    const response = following.reader.execute(request);
    if (response.success) {
      const copy = formatBookmark(following.follower.sequence, clusterTag(this.options.database));
      if (response.bookmark === undefined || response.bookmark < copy) response.bookmark = copy;
    }
    return response;
  }

  private removeCopy(): void {
    for (const suffix of COPY_FILES) rmSync(this.file + suffix, { force: true });
  }

  /** Starts following the log into this node's copy (from a snapshot when it has none it can vouch for). */
  private async follow(): Promise<void> {
    if (existsSync(this.historyDir) || existsSync(`${this.file}-wal`)) {
      // This node was the primary and stopped without stepping down: its copy may hold commits the
      // log never took. Start over from a snapshot.
      this.logger.info({}, 'the copy left by a primary that did not step down is dropped; starting again from a snapshot');
      rmSync(this.historyDir, { recursive: true, force: true });
      this.removeCopy();
    }
    if (existsSync(this.file) && copyInDoubt(this.file)) {
      this.logger.warn({}, 'the machine went down while the copy took unsynced applies; starting again from a snapshot');
      this.removeCopy();
    }
    if (existsSync(this.file) && sequenceOfFile(this.file) > 0) prepareReplicaFile(this.file, sequenceOfFile(this.file));
    const follower = await Follower.start(this.file, this.options.database, this.log, this.options.snapshots, this.logger);
    follower.onAdvance = () => {
      for (const wake of this.waiters) wake();
    };
    follower.follow();
    // A copy it can vouch for serves reads even when the log cannot be reached right now.
    const reader = new Engine(this.file, { ...this.options.engine, readonly: true, bookmarkTag: clusterTag(this.options.database), servedByPrimary: false });
    this.state = { kind: 'follower', follower, reader };
    await this.catchUp().catch((e) => this.logger.warn({ error: errorText(e) }, 'the first catch-up of the copy failed; the live tail goes on'));
  }

  /** Takes over: catch up to the end of the log, then run the engine on the local copy. */
  private async promote(lease: PrimaryLease): Promise<void> {
    try {
      await this.catchingUp?.catch(() => {});
      await this.log.refresh();
      const stored = await this.history.snapshots();
      // A database with no history yet. (One whose first snapshot is stored, but whose primary died
      // before any write, is not: this node starts from that snapshot.)
      const brandNew = this.log.lastSeq === undefined && stored.length === 0;
      if (!brandNew) {
        if (this.state.kind !== 'follower') await this.follow();
        await this.catchingUp?.catch(() => {});
        const following = this.following!;
        await following.follower.catchUp();
        if (this.log.lastSeq !== undefined && following.follower.sequence !== this.log.lastSeq) {
          throw new Error(`${this.options.database}: could not catch up to ${this.log.lastSeq}`);
        }
      }
      const following = this.following;
      this.state = { kind: 'changing' };
      following?.reader.close();
      await following?.follower.close();
      // The local log is a capture buffer for this term: the history is the shared one.
      rmSync(this.historyDir, { recursive: true, force: true });
      if (brandNew) this.seedFrom(this.options.seed);
      const logged = new LoggedDatabase(
        this.file,
        { ...this.options.engine, servedByPrimary: true },
        {
          dir: this.historyDir,
          tag: clusterTag(this.options.database),
          syncLog: false,
          keepAppended: true,
          clock: this.clock,
          // Local snapshots go to the shared history; locally only the newest is kept.
          retentionDays: 0,
          snapshotIntervalMs: this.options.snapshotIntervalMs ?? Math.min(DAY_MS, this.retentionMs / 4),
          snapshotBytes: this.options.snapshotBytes,
        },
      );
      const seq = logged.engine.commitSequence;
      let newestStored = stored.at(-1)?.seq ?? -1;
      if (brandNew) {
        // A new database: its first snapshot is where every follower starts, and its history's first point.
        const first = logged.snapshots.list()[0]!;
        const file = path.join(this.options.dir, 'first.sqlite');
        logged.snapshots.copyTo(first.seq, file);
        await this.history.putSnapshot(file, seq, first.time);
        rmSync(file, { force: true });
        newestStored = seq;
      }
      const keeper = new SharedHistoryKeeper(this.history, logged, { retentionMs: this.retentionMs, compactEveryMs: this.options.compactEveryMs, clock: this.clock }, this.logger, newestStored);
      this.state = { kind: 'primary', lease, logged, shipped: seq, keeper, timeTravel: new ClusterTimeTravel(this.history, logged, () => this.window()) };
      this.logger.info({ sequence: seq }, 'this node is the primary');
    } catch (e) {
      // A copy already closed is followed again from the next upkeep.
      if (this.state.kind === 'changing') this.state = { kind: 'none' };
      this.logger.warn({ error: errorText(e) }, 'could not take over as the primary; the lease is given back');
      await lease.release();
      throw e;
    }
  }

  /** A new database's first content: a copy of `seed` when there is one, else empty. */
  private seedFrom(seed: string | undefined): void {
    this.removeCopy();
    if (!seed || !existsSync(seed)) return;
    const source = new Connection(seed);
    source.checkpoint();
    source.close();
    copyFileSync(seed, this.file);
  }

  /** Steps down after losing the lease or the log: local commits the log lacks are dropped. */
  private async demote(primary: Primary, why: string): Promise<void> {
    this.state = { kind: 'changing' };
    this.logger.warn({ shipped: primary.shipped }, `stepping down as the primary: ${why}`);
    primary.logged.closeNow();
    rmSync(this.historyDir, { recursive: true, force: true });
    void primary.lease.release();
    let logEnd: number | undefined;
    try {
      if (this.reachable) {
        await this.log.refresh();
        logEnd = this.log.lastSeq ?? 0;
      }
    } catch (e) {
      // The log cannot be reached: what was shipped is all this copy can vouch for.
      this.logger.warn({ error: errorText(e) }, 'cannot read the end of the log while stepping down');
    }
    if (sequenceOfFile(this.file) !== primary.shipped || (logEnd !== undefined && logEnd < primary.shipped)) {
      // The copy holds commits the log never acknowledged: start over from a snapshot.
      this.removeCopy();
    } else for (const suffix of ['-wal', '-shm']) rmSync(this.file + suffix, { force: true });
    this.state = { kind: 'none' };
    await this.follow().catch((e) => this.logger.warn({ error: errorText(e) }, 'cannot follow the log after stepping down; the next upkeep tries again'));
  }

  /**
   * Ships every local record the JetStream log does not hold yet, snapshots of restores first, as
   * the local log encoded them (no decoding and encoding again on the write path).
   */
  private async ship(primary: Primary): Promise<void> {
    const local = primary.logged.log;
    primary.logged.flush();
    const end = local.last()?.seq ?? primary.shipped;
    let pending = local.takeAppended().filter((r) => r.seq > primary.shipped);
    const whole = pending.length > 0 && pending.at(-1)!.seq === end && (pending[0]!.seq === primary.shipped + 1 || summarize(pending[0]!.body).kind === 'image');
    // (Only if the local log could not say what it appended: read the records back.)
    if (end > primary.shipped && !whole) pending = [...local.read(primary.shipped, end)].map((record) => ({ seq: record.seq, body: encodeRecord(record) }));
    for (const record of pending) {
      const summary = summarize(record.body);
      // A restore: followers apply it from its snapshot, stored before the record that names it.
      if (summary.kind === 'image') await primary.keeper.storeImage(record.seq, summary.time);
      await this.log.appendEncoded([record]);
      primary.shipped = record.seq;
    }
  }

  /** Where a request is served: here, or (a follower's answer) at the primary. */
  private async route(item: ClusterRequest): Promise<'here' | 'primary'> {
    const { request, writes } = item;
    const bookmark = request.bookmark;
    if (writes || bookmark === undefined || bookmark === 'first-primary') return 'primary';
    if (!this.following) return 'primary';
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
    if (this.state.kind === 'follower' || this.state.kind === 'none') {
      const routes = await Promise.all(items.map((item) => this.route(item)));
      const here = this.following;
      if (here && routes.every((r) => r === 'here')) return items.map((item) => this.readHere(here, item.request));
      if (routes.some((r) => r === 'primary')) {
        const holder = await this.holder();
        if (holder && holder.node !== this.options.self.node) {
          return items.map((item, i) => {
            const copy = this.following;
            return routes[i] === 'here' && copy ? this.readHere(copy, item.request) : { forward: holder };
          });
        }
      }
    }
    return this.gathered(items);
  }

  /**
   * Runs `items` as the primary, serialised with the primary's other work. Requests that arrive
   * while it is busy (a shipment out) join one group that runs when its turn comes: one commit, one
   * record and one round trip to NATS for all of them (group commit), instead of one each.
   */
  private gathered(items: ClusterRequest[]): Promise<(ExecuteResponse | Forward)[]> {
    const open = this.gathering;
    if (open && open.items.length < GROUP_MAX) {
      const from = open.items.length;
      open.items.push(...items);
      return open.answers.then((answers) => answers.slice(from, from + items.length));
    }
    const grouped = [...items];
    const answers = this.serially(() => {
      if (this.gathering?.items === grouped) this.gathering = undefined;
      return this.runAsPrimary(grouped);
    });
    this.gathering = { items: grouped, answers };
    return answers.then((all) => all.slice(0, items.length));
  }

  private async runAsPrimary(items: ClusterRequest[]): Promise<(ExecuteResponse | Forward)[]> {
    // Nobody holds the lease (or this node just lost it): take it, if the log allows.
    if (this.state.kind !== 'primary') await this.upkeep();
    const s = this.state;
    if (s.kind !== 'primary') {
      const holder = await this.holder();
      const copy = this.following;
      return items.map((item) =>
        holder && holder.node !== this.options.self.node
          ? { forward: holder }
          : copy && !item.writes
            ? this.readHere(copy, item.request)
            : { success: false as const, error: holder ? NOT_DURABLE : UNAVAILABLE },
      );
    }
    if (!s.lease.valid && !(await s.lease.renew().catch(() => false))) {
      await this.demote(s, 'its lease ran out before this write could be made durable');
      return items.map(() => ({ success: false as const, error: NOT_DURABLE }));
    }
    // Writes that arrived together share one commit, one record and one append (group commit).
    const responses = s.logged.engine.executeMany(items.map((item) => item.request));
    try {
      await this.ship(s);
    } catch (e) {
      await this.demote(s, `the log did not take a write (${errorText(e)})`);
      return items.map(() => ({ success: false as const, error: NOT_DURABLE }));
    }
    return responses;
  }

  /**
   * NATS cannot be reached: nothing more can be made durable, so writes are refused at once; what
   * is durable can still be read — the primary's database (everything in it was shipped), a
   * follower's copy for session reads, and the primary last seen for other reads.
   */
  private async offline(items: ClusterRequest[]): Promise<(ExecuteResponse | Forward)[]> {
    if (this.state.kind === 'primary') {
      return this.serially(async () => {
        const s = this.state;
        // Nothing can be shipped: reads run where SQLite refuses writes.
        return items.map((item) =>
          item.writes || s.kind !== 'primary' ? { success: false as const, error: NOT_DURABLE } : s.logged.engine.execute({ ...item.request, readOnly: true }),
        );
      });
    }
    const answers: (ExecuteResponse | Forward)[] = [];
    for (const item of items) {
      const route = item.writes ? 'primary' : await this.route(item);
      const copy = this.following;
      if (item.writes) answers.push({ success: false, error: NOT_DURABLE });
      else if (copy && route === 'here') answers.push(this.readHere(copy, item.request));
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
    if (this.state.kind === 'primary') return 'self';
    const holder = await this.holder();
    if (holder && holder.node !== this.options.self.node) return holder;
    await this.serially(() => (this.role === 'primary' ? Promise.resolve() : this.upkeep()));
    if (this.role === 'primary') return 'self';
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
    } catch (e) {
      this.logger.warn({ error: errorText(e), lastHolder: this.lastHolder?.node }, 'cannot ask NATS who holds the lease; using the holder last seen');
      return this.lastHolder;
    }
  }

  /**
   * Commits per time bucket over a range, from the shared history's record summaries: any node
   * answers alike (the history is the stream's), without waiting for the primary's writes.
   */
  commits(query: CommitsQuery): Promise<CommitsOverview> {
    return commitsOverview(this.history, query, this.window());
  }

  /**
   * Where the database stands, as this node sees it, without taking the lease: the primary (this
   * node, the lease holder, or undefined when none holds it now), the commit this node's copy
   * holds, and the newest commit of the log (undefined when NATS does not answer).
   */
  async placement(): Promise<{ primary: LeaseHolder | undefined; role: 'primary' | 'follower'; sequence: number; newest: number | undefined }> {
    const s = this.state;
    if (s.kind === 'primary') return { primary: this.options.self, role: 'primary', sequence: this.sequence, newest: this.sequence };
    const primary = await this.holder();
    const newest = this.reachable ? await this.log.lastSummary().then((r) => r?.seq, () => undefined) : undefined;
    return { primary, role: 'follower', sequence: this.sequence, newest };
  }

  /** The engine serving this node's reads: the primary's, or the follower's copy (for info, exports, backups). */
  get engine(): Engine | undefined {
    const s = this.state;
    return s.kind === 'primary' ? s.logged.engine : s.kind === 'follower' ? s.reader : undefined;
  }

  /**
   * Runs `work` as the primary, serialised with writes, then ships what it did (a restore's image).
   * Time Travel given to it resolves and rebuilds points from the shared history.
   */
  asPrimary<T>(work: (engine: Engine, timeTravel: TimeTravel) => T | Promise<T>): Promise<T | Forward> {
    return this.serially(async () => {
      if (this.state.kind !== 'primary') await this.upkeep();
      const s = this.state;
      if (s.kind !== 'primary') return { forward: await this.holder() };
      const result = await work(s.logged.engine, s.timeTravel);
      await this.ship(s);
      return result;
    });
  }

  /**
   * One request of an interactive transaction, on the primary, serialised with its writes: `run`
   * gets the primary's logged database (a transaction opens its own engine there) and runs the
   * request once; a commit (the whole transaction, one record) reaches the JetStream log before the
   * answer. On another node: where the primary is.
   */
  async inTransaction(run: (logged: LoggedDatabase) => ExecuteResponse): Promise<ExecuteResponse | Forward> {
    if (!this.reachable) return { success: false, error: NOT_DURABLE };
    if (this.state.kind === 'follower' || this.state.kind === 'none') {
      const holder = await this.holder();
      if (holder && holder.node !== this.options.self.node) return { forward: holder };
    }
    return this.serially(async () => {
      if (this.state.kind !== 'primary') await this.upkeep();
      const s = this.state;
      if (s.kind !== 'primary') return { forward: await this.holder() };
      if (!s.lease.valid && !(await s.lease.renew().catch(() => false))) {
        await this.demote(s, 'its lease ran out before this transaction could go on');
        return { success: false, error: NOT_DURABLE };
      }
      const response = run(s.logged);
      try {
        await this.ship(s);
      } catch (e) {
        await this.demote(s, `the log did not take a transaction (${errorText(e)})`);
        return { success: false, error: NOT_DURABLE };
      }
      return response;
    });
  }

  /** Runs the shared history's upkeep now (snapshots stored, compaction) on the primary; for tests and tools. */
  keepHistoryNow(): Promise<void> {
    return this.serially(async () => {
      const s = this.state;
      if (s.kind !== 'primary') return;
      await s.keeper.storeSnapshots(s.shipped);
      await s.keeper.compact(true);
    });
  }

  /** Takes a snapshot on the primary now (it reaches the shared history on the next upkeep). */
  async snapshotNow(): Promise<void> {
    const s = this.state;
    if (s.kind === 'primary') await s.logged.snapshot();
  }

  /** Stops; a primary gives its lease up unless `crash` (then it lapses, as when a node dies). */
  async stop(options: { crash?: boolean } = {}): Promise<void> {
    await this.queue;
    await this.keeping;
    await this.catchingUp?.catch(() => {});
    const s = this.state;
    this.state = { kind: 'none' };
    if (s.kind === 'primary') {
      if (!options.crash) await s.lease.release();
      s.logged.closeNow();
    } else if (s.kind === 'follower') {
      s.reader.close();
      await s.follower.close();
    }
  }
}
