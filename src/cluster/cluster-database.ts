// One database on one node of a cluster. The node holding the database's lease is its primary:
// it runs the engine with a local write log and ships every record to the JetStream log before
// answering (a write is acknowledged once the NATS cluster holds it). Every other node follows
// the JetStream log into a local copy and serves reads from it; writes are for the primary. When
// the lease lapses (its holder died), a follower takes it, catches up to the end of the log, and
// becomes the primary.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ExecuteRequest, ExecuteResponse } from '../api/executor.ts';
import { Engine, type EngineOptions } from '../engine/engine.ts';
import { LoggedDatabase } from '../log/logged-database.ts';
import { sequenceOfFile } from '../log/pages.ts';
import { prepareReplicaFile } from '../log/replica.ts';
import { Follower } from './follower.ts';
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
}

/** The answer for a write that reached a node that is not the primary: send it there. */
export interface Forward {
  forward: LeaseHolder | undefined;
}

/** Every node names a database's history alike, so bookmarks mean the same on all of them. */
export function clusterTag(database: string): string {
  return createHash('sha256').update(`dione:${database}`).digest('hex').slice(0, 32);
}

export const NOT_DURABLE = 'D1 DB could not make this write durable: the write log is unreachable or another node is now the primary. Nothing was acknowledged; retry.';

export class ClusterDatabase {
  private primary: { lease: Lease; logged: LoggedDatabase; shipped: number } | undefined;
  private follower: Follower | undefined;
  private reader: Engine | undefined;
  /** Serialises shipping and role changes. */
  private queue: Promise<unknown> = Promise.resolve();

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
    return this.serially(async () => {
      if (this.primary) {
        if (!(await this.primary.lease.renew().catch(() => false))) await this.demote();
        return;
      }
      if (this.follower) await this.follower.catchUp();
      const lease = await this.options.leases.acquire(this.options.database, this.options.self);
      if (lease) await this.promote(lease);
      else if (!this.follower) await this.follow();
    });
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => {});
    return next;
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
    await this.follower.catchUp();
    this.reader = new Engine(this.file, { ...this.options.engine, readonly: true, bookmarkTag: clusterTag(this.options.database) });
  }

  /** Takes over: catch up to the end of the log, then run the engine on the local copy. */
  private async promote(lease: Lease): Promise<void> {
    await this.log.refresh();
    if (this.log.lastSeq !== undefined) {
      if (!this.follower) await this.follow();
      await this.follower!.catchUp();
      if (this.follower!.sequence !== this.log.lastSeq) throw new Error(`${this.options.database}: could not catch up to ${this.log.lastSeq}`);
    }
    this.reader?.close();
    this.reader = undefined;
    this.follower?.close();
    this.follower = undefined;
    rmSync(this.historyDir, { recursive: true, force: true });
    const logged = new LoggedDatabase(this.file, this.options.engine, { dir: this.historyDir, tag: clusterTag(this.options.database) });
    const seq = logged.engine.commitSequence;
    if ((await this.options.snapshots.list(this.options.database)).length === 0) {
      // A new database: its first snapshot is where every follower starts.
      const first = path.join(this.options.dir, 'first.sqlite');
      logged.snapshots.copyTo(logged.snapshots.list()[0]!.seq, first);
      await this.options.snapshots.put(this.options.database, seq, first);
      rmSync(first, { force: true });
    }
    this.primary = { lease, logged, shipped: seq };
  }

  /** Steps down after losing the lease or the log: local commits the log lacks are dropped. */
  private async demote(): Promise<void> {
    const primary = this.primary!;
    this.primary = undefined;
    primary.logged.closeNow();
    rmSync(this.historyDir, { recursive: true, force: true });
    await this.log.refresh();
    if (sequenceOfFile(this.file) !== primary.shipped || (this.log.lastSeq ?? primary.shipped) !== primary.shipped) {
      // The copy holds commits the log never took, or the log moved on without it: start over.
      for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(this.file + suffix, { force: true });
    }
    await this.follow();
  }

  /** Ships every local record the JetStream log does not hold yet, snapshots of restores first. */
  private async ship(): Promise<void> {
    const primary = this.primary!;
    primary.logged.flush();
    for (const record of [...primary.logged.log.read(primary.shipped, Number.MAX_SAFE_INTEGER)]) {
      if (record.kind === 'image') {
        const file = path.join(this.options.dir, 'image.sqlite');
        primary.logged.snapshots.copyTo(record.seq, file);
        await this.options.snapshots.put(this.options.database, record.seq, file);
        rmSync(file, { force: true });
      }
      await this.log.append(record);
      primary.shipped = record.seq;
    }
  }

  /**
   * Runs a request: on the primary, answered once the log holds its writes; on a follower,
   * reads are answered from the local copy and writes are sent to the primary.
   */
  execute(request: ExecuteRequest, writes: boolean): Promise<ExecuteResponse | Forward> {
    return this.serially(async () => {
      if (!this.primary) {
        if (writes) return { forward: await this.options.leases.holder(this.options.database) };
        return this.reader!.execute(request);
      }
      if (!this.primary.lease.valid) {
        await this.demote();
        return { success: false, error: NOT_DURABLE };
      }
      const response = this.primary.logged.engine.execute(request);
      try {
        await this.ship();
      } catch {
        await this.demote();
        return { success: false, error: NOT_DURABLE };
      }
      return response;
    });
  }

  /** Stops; a primary gives its lease up unless `crash` (then it lapses, as when a node dies). */
  async stop(options: { crash?: boolean } = {}): Promise<void> {
    await this.queue;
    if (this.primary) {
      if (!options.crash) await this.primary.lease.release();
      this.primary.logged.closeNow();
      this.primary = undefined;
    }
    this.reader?.close();
    this.follower?.close();
  }
}
