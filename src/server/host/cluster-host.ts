// A database host in cluster mode: its NATS connection, the database's lease and log, and the
// node's copy (ClusterDatabase). Starting waits for NATS as long as it takes, saying so; requests
// that arrive meanwhile wait a bounded time, then get D1-style "unavailable" errors.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ClusterDatabase, clusterTag, UNAVAILABLE } from '../../cluster/cluster-database.ts';
import { Leases } from '../../cluster/leases.ts';
import { type ClusterLogger, errorText, lineLogger } from '../../cluster/logger.ts';
import { ObjectSnapshots } from '../../cluster/object-snapshots.ts';
import { Engine, type EngineOptions } from '../../engine/engine.ts';
import type { HistorySettings, HostClusterSettings } from './protocol.ts';

const RETRY_MS = 1000;
const READY_WAIT_MS = 5000;

export class ClusterHost {
  private database: ClusterDatabase | undefined;
  private nc: NatsConnection | undefined;
  private readonly ready: Promise<ClusterDatabase>;
  private upkeep: NodeJS.Timeout | undefined;
  private stopped = false;
  private connected = true;
  private failing = false;

  private offline: Engine | undefined;
  private readonly dir: string;
  private readonly logger: ClusterLogger;

  constructor(
    private readonly settings: HostClusterSettings & { database: string },
    file: string,
    private readonly engine: EngineOptions,
    /** The server's write-log settings: Time Travel's window (--retention-days) and snapshot size. */
    private readonly history: HistorySettings = {},
    logger?: ClusterLogger,
  ) {
    this.dir = `${file}.cluster`;
    this.logger = logger ?? lineLogger({ node: settings.node, database: settings.database });
    this.ready = this.start(file, engine);
    this.ready.catch(() => {});
  }

  private async start(file: string, engine: EngineOptions): Promise<ClusterDatabase> {
    const s = this.settings;
    for (let attempt = 1; ; attempt++) {
      try {
        if (!this.nc) {
          // noAsyncTraces: otherwise every request (each append's publish) builds an Error with a stack
          // in case it fails, ~3% of a primary's CPU per write; failures keep their messages.
          this.nc = await connect({ servers: s.servers, name: `dione ${s.node} ${s.database}`, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 2000, noAsyncTraces: true });
          this.watch(this.nc);
        }
        const leases = await Leases.open(this.nc, { ttlMs: s.leaseTtlMs, replicas: s.replicas });
        const snapshots = await ObjectSnapshots.open(this.nc, { replicas: s.replicas });
        this.database = await ClusterDatabase.start({
          nc: this.nc,
          database: s.database,
          dir: this.dir,
          self: { node: s.node, url: s.url, region: s.region },
          leases,
          snapshots,
          replicas: s.replicas,
          engine,
          sessionWaitMs: s.sessionWaitMs,
          seed: file,
          reachable: () => this.connected,
          retentionDays: this.history.retentionDays,
          snapshotBytes: this.history.snapshotBytes,
          logger: this.logger,
        });
        if (this.failing) this.logger.info({ attempts: attempt }, 'started: NATS answers again');
        this.failing = false;
        let ticking = false;
        this.upkeep = setInterval(() => {
          if (ticking || !this.database) return;
          ticking = true;
          this.database
            .tick()
            .catch((e: unknown) => this.logger.warn({ error: errorText(e) }, 'lease upkeep failed; trying again on the next tick'))
            .finally(() => (ticking = false));
        }, Math.max(50, s.leaseTtlMs / 4));
        this.offlineCopy();
        return this.database;
      } catch (e) {
        if (this.stopped) throw e;
        this.failing = true;
        if (attempt === 1 || attempt % 30 === 0) this.logger.warn({ attempts: attempt, error: errorText(e) }, `cannot start; retrying every ${RETRY_MS} ms`);
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  /** Follows the connection's state: while it is down, nothing waits on NATS. */
  private watch(nc: NatsConnection): void {
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'disconnect') {
          this.connected = false;
          this.logger.warn({}, 'lost NATS: writes are refused, session reads are served from this copy');
        } else if (status.type === 'reconnect') {
          this.connected = true;
          this.logger.info({}, 'NATS is back');
        }
      }
    })();
  }

  /** The database, once started; rejects with D1's wording after a bounded wait. */
  async get(): Promise<ClusterDatabase> {
    if (this.database) return this.database;
    // Starting has failed already (NATS unreachable): no request waits for the next attempt.
    if (this.failing) throw new Error(UNAVAILABLE);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(UNAVAILABLE)), READY_WAIT_MS);
    });
    try {
      return await Promise.race([this.ready, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * While the database cannot start (NATS unreachable), the copy this node kept as a follower can
   * still serve session reads: everything in it came from the log. A copy left by a primary that
   * stopped without stepping down (it has a local history) may hold unacknowledged commits: not that one.
   */
  offlineCopy(): Engine | undefined {
    if (this.database) {
      this.offline?.close();
      this.offline = undefined;
      return undefined;
    }
    if (this.offline) return this.offline;
    const file = path.join(this.dir, 'db.sqlite');
    if (!existsSync(file) || existsSync(path.join(this.dir, 'history')) || existsSync(`${file}-wal`)) return undefined;
    this.offline = new Engine(file, { ...this.engine, readonly: true, bookmarkTag: clusterTag(this.settings.database), servedByPrimary: false });
    return this.offline;
  }

  async stop(): Promise<void> {
    this.offline?.close();
    this.stopped = true;
    clearInterval(this.upkeep);
    await this.database?.stop().catch((e: unknown) => this.logger.warn({ error: errorText(e) }, 'stopping the database failed'));
    await this.nc?.close().catch(() => {});
  }
}
