// Cluster mode: the catalogue every node shares, a NATS KV bucket (`dione-catalog`) mirrored into
// each node's local Catalog, so that lookups by name or id and token checks stay local and
// synchronous. The bucket holds `database.<uuid>` (a DatabaseRecord), `token.<id>` (a TokenRecord,
// its secret hashed as locally), `account` (the account id) and `format` (written once, so the
// bucket's stream is never empty: an expected last sequence of 0 would mean "no expectation").
//
// A new database's name is unique in the cluster because its record is written with the bucket
// stream's expected last sequence: the write is accepted only if nothing was written since the
// state the name was checked against. A key per name taken with kv.create() would not do on
// nats-server 2.9.10: taking a name again after its database was deleted is an update of the
// deleted key, fenced by the key's expected sequence, which that version checks without
// serialising (nats-server#4320; test/cluster-nats.test.ts).
import { JetStreamApiCodes, JetStreamApiError, type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { type KV, type KvWatchEntry, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import pino, { type Logger } from 'pino';
import { whileForming } from '../cluster/forming.ts';
import { ObjectSnapshots } from '../cluster/object-snapshots.ts';
import { streamNameOf } from '../cluster/stream-log.ts';
import { type Catalog, CLUSTER_CATALOG_SETTING, type DatabaseRecord, type TokenRecord } from './catalog.ts';
import { ErrorCodes } from './protocols/envelope.ts';
import { ApiError } from './protocols/api-errors.ts';

const BUCKET = 'dione-catalog';
const STREAM = `KV_${BUCKET}`;
const LEASES = 'dione-leases';
/** Bound for a catalogue write, other nodes' writes that came first and were read included. */
const WRITE_BOUND_MS = 10_000;
/**
 * Local setting: the creation time of the bucket's stream this catalogue was last reconciled
 * with. A database found only locally was then deleted by another node while this one was away;
 * against a bucket never seen (first start in cluster mode, or a new NATS cluster) it is imported.
 */
const RECONCILED_WITH = CLUSTER_CATALOG_SETTING;

export interface ClusterCatalogOptions {
  /** Copies the NATS cluster keeps of the bucket. */
  replicas?: number;
  /** A database deleted elsewhere (or while this node was away): stop its host, remove its files. */
  onRemoved?: (uuid: string) => void | Promise<void>;
  logger?: Logger;
  /** How often the local tokens table is checked for what `dione token` wrote. Default 500 ms. */
  pollMs?: number;
}

/** Another write came first: JetStream's "wrong last sequence" (the client may word it "key exists"). */
function isConflict(e: unknown): boolean {
  if (e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamWrongLastSequence) return true;
  return e instanceof Error && /wrong last sequence|key exists/i.test(e.message);
}

/** The sequence a conflict names: the stream's (or the key's) last one. */
function conflictSeq(e: unknown): number | undefined {
  const seq = Number(/wrong last sequence: (\d+)/i.exec(e instanceof Error ? e.message : '')?.[1]);
  return Number.isFinite(seq) && seq > 0 ? seq : undefined;
}

function isStreamNotFound(e: unknown): boolean {
  return e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Waiter {
  seq: number;
  done(): void;
  fail(error: Error): void;
}

export class ClusterCatalog {
  /** The bucket as read by the watcher, up to the entry at stream sequence `applied`. */
  private readonly databases = new Map<string, DatabaseRecord>();
  private readonly tokens = new Map<string, TokenRecord>();
  private account: string | undefined;
  private applied = 0;
  private readonly waiting = new Set<Waiter>();
  /** Entries reach the local catalogue once it has been reconciled with the bucket. */
  private mirroring = false;
  /** Databases created here whose name is not settled in the cluster yet. */
  private readonly pending = new Set<string>();
  /** Other nodes' databases whose name a pending one holds here for the moment. */
  private readonly deferred = new Map<string, DatabaseRecord>();
  private watcher: Awaited<ReturnType<KV['watch']>> | undefined;
  private watching: Promise<void> | undefined;
  private poller: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  /** The local catalogue's change mark when its tokens were last all in the bucket. */
  private tokensMark: string | undefined;
  private removals: Promise<void> = Promise.resolve();
  private snapshots: Promise<ObjectSnapshots> | undefined;
  private closed = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly catalog: Catalog,
    private readonly options: ClusterCatalogOptions,
    private readonly logger: Logger,
  ) {}

  /**
   * Opens the bucket, adds what only the local catalogue has, and mirrors the bucket into it:
   * when this resolves the local catalogue holds the bucket's content, and follows it.
   */
  static async start(nc: NatsConnection, catalog: Catalog, options: ClusterCatalogOptions = {}): Promise<ClusterCatalog> {
    const kv = await whileForming(() => new Kvm(nc).create(BUCKET, { history: 1, replicas: options.replicas ?? 1 }));
    const jsm = await jetstreamManager(nc);
    // A bucket just created on a NATS cluster may not answer for a moment.
    const info = await whileForming(() => jsm.streams.info(STREAM));
    const logger = options.logger ?? pino({ level: 'silent' });
    const self = new ClusterCatalog(nc, kv, jetstream(nc), jsm, catalog, options, logger);
    try {
      let last = info.state.last_seq;
      if (last === 0) last = await whileForming(() => kv.put('format', '1'));
      self.watching = self.watch();
      await self.caughtUp(last, WRITE_BOUND_MS);
      if (catalog.setting(RECONCILED_WITH) !== info.created) await self.importDatabases();
      await self.pushTokens();
      self.reconcile();
      catalog.setSetting(RECONCILED_WITH, info.created);
      self.poller = setInterval(() => self.poll(), options.pollMs ?? 500);
      self.poller.unref();
      return self;
    } catch (e) {
      await self.close();
      throw e;
    }
  }

  /** The cluster's account id: the stored one, or `local` when there is none yet. */
  async accountId(local: string): Promise<string> {
    if (this.account) return this.account;
    try {
      await this.kv.create('account', local);
      return local;
    } catch (e) {
      if (!isConflict(e)) throw e;
      await this.caughtUp(conflictSeq(e) ?? this.applied + 1, WRITE_BOUND_MS);
      if (!this.account) throw new Error('the cluster has an account id, but it could not be read');
      return this.account;
    }
  }

  /**
   * A database just created here (its name free locally): takes the name in the cluster, or
   * undoes the local insert and refuses as D1 does when another node has taken it first.
   */
  async created(record: DatabaseRecord): Promise<void> {
    this.pending.add(record.uuid);
    try {
      await this.publishIf(`database.${record.uuid}`, record, () => {
        if (this.holderOf(record)) throw new ApiError(400, ErrorCodes.nameTaken, 'A database with that name already exists');
        // A chosen id another node took meanwhile (its record has not reached this node's catalogue yet).
        const other = this.databases.get(record.uuid);
        if (other && other.name !== record.name) throw new ApiError(400, ErrorCodes.badRequest, `The id ${record.uuid} is already used by database "${other.name}"`);
      });
    } catch (e) {
      this.catalog.remove(record.uuid);
      throw e;
    } finally {
      this.pending.delete(record.uuid);
      this.mirrorDeferred();
    }
  }

  /** A database's settings changed here (read replication). */
  async changed(record: DatabaseRecord): Promise<void> {
    // Conditional, so that a change racing a deletion cannot bring the database back.
    await this.publishIf(`database.${record.uuid}`, record, () => {
      if (!this.databases.has(record.uuid)) throw new ApiError(404, ErrorCodes.notFound, 'database not found');
    });
  }

  /** A database deleted here (its host stopped, its files removed): gone everywhere, with its log and snapshots. */
  async removed(uuid: string, name: string): Promise<void> {
    await this.kv.delete(`database.${uuid}`);
    this.logger.info({ uuid, name }, 'database removed from the cluster catalogue');
    await this.jsm.streams.delete(streamNameOf(uuid)).catch((e: unknown) => {
      if (!isStreamNotFound(e)) throw e;
    });
    this.snapshots ??= ObjectSnapshots.open(this.nc, { replicas: this.options.replicas });
    await (await this.snapshots).removeAll(uuid);
    const leases = await this.jsm.streams.info(`KV_${LEASES}`).catch((e: unknown) => {
      if (!isStreamNotFound(e)) throw e;
    });
    if (leases) {
      const kv = await new Kvm(this.nc).open(LEASES);
      if ((await kv.get(uuid))?.operation === 'PUT') await kv.delete(uuid);
    }
  }

  /** Stops following the bucket and the local tokens. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poller);
    this.watcher?.stop();
    for (const waiter of this.waiting) waiter.fail(new Error('the cluster catalogue was closed'));
    await Promise.allSettled([this.watching, this.polling, this.removals]);
  }

  /** Another database of the cluster with `record`'s name. */
  private holderOf(record: DatabaseRecord): DatabaseRecord | undefined {
    for (const other of this.databases.values()) if (other.name === record.name && other.uuid !== record.uuid) return other;
    return undefined;
  }

  /**
   * Writes `key` when `check` passes against the bucket as read so far and nothing was written
   * since, which the stream's expected last sequence makes one step cluster-wide. When another
   * write came first, reads on to it and checks again. Returns the write's sequence.
   */
  private async publishIf(key: string, value: unknown, check: () => void): Promise<number> {
    const started = Date.now();
    for (;;) {
      check();
      const seen = this.applied;
      try {
        const ack = await this.js.publish(`$KV.${BUCKET}.${key}`, JSON.stringify(value), { expect: { lastSequence: seen } });
        return ack.seq;
      } catch (e) {
        const left = WRITE_BOUND_MS - (Date.now() - started);
        if (!isConflict(e) || left <= 0) throw e;
        await this.caughtUp(conflictSeq(e) ?? seen + 1, left);
      }
    }
  }

  /**
   * Reads the bucket up to its newest write (within `boundMs`): a database another node created a
   * moment ago is then in the local catalogue. Rejects when NATS does not answer in time.
   */
  async readToLatest(boundMs = 2000): Promise<void> {
    const info = await this.jsm.streams.info(STREAM);
    await this.caughtUp(info.state.last_seq, boundMs);
  }

  /** Resolves once the watcher has read the bucket up to stream sequence `seq`. */
  private caughtUp(seq: number, boundMs: number): Promise<void> {
    if (this.applied >= seq) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('the cluster catalogue was closed'));
    return new Promise((resolve, reject) => {
      const end = () => {
        clearTimeout(timer);
        this.waiting.delete(waiter);
      };
      const waiter: Waiter = {
        seq,
        done: () => {
          end();
          resolve();
        },
        fail: (error) => {
          end();
          reject(error);
        },
      };
      const timer = setTimeout(() => waiter.fail(new Error(`the cluster catalogue was not read up to ${seq} within ${boundMs} ms (at ${this.applied})`)), boundMs);
      this.waiting.add(waiter);
    });
  }

  /** Follows the bucket from where it was read to, again after the watch ends (a NATS node failed). */
  private async watch(): Promise<void> {
    while (!this.closed && !this.nc.isClosed()) {
      try {
        const watcher = await this.kv.watch(this.applied > 0 ? { resumeFromRevision: this.applied + 1 } : {});
        this.watcher = watcher;
        if (this.closed) watcher.stop();
        for await (const entry of watcher) this.apply(entry);
      } catch (e) {
        if (!this.closed) this.logger.warn({ err: e }, 'watching the cluster catalogue failed');
      }
      if (!this.closed) await pause(250);
    }
  }

  private apply(entry: KvWatchEntry): void {
    if (this.closed) return;
    try {
      const present = entry.operation === 'PUT';
      if (entry.key.startsWith('database.')) {
        const uuid = entry.key.slice('database.'.length);
        if (present) {
          const record = entry.json<DatabaseRecord>();
          this.databases.set(uuid, record);
          if (this.mirroring) this.mirror(record);
        } else {
          this.databases.delete(uuid);
          this.deferred.delete(uuid);
          if (this.mirroring) this.unmirror(uuid);
        }
      } else if (entry.key.startsWith('token.') && present) {
        const record = entry.json<TokenRecord>();
        this.tokens.set(record.id, record);
        if (this.mirroring) this.catalog.upsertToken(record);
      } else if (entry.key === 'account' && present) {
        this.account = entry.string();
      }
    } catch (e) {
      this.logger.error({ err: e, key: entry.key, revision: entry.revision }, 'a cluster catalogue entry could not be applied');
    }
    this.applied = Math.max(this.applied, entry.revision);
    for (const waiter of this.waiting) if (waiter.seq <= this.applied) waiter.done();
  }

  private mirror(record: DatabaseRecord): void {
    const holder = this.catalog.upsertDatabase(record);
    if (!holder) return;
    if (this.pending.has(holder.uuid)) {
      this.deferred.set(record.uuid, record);
      return;
    }
    // The name is held here by a database the cluster does not have: the cluster's wins.
    this.logger.warn({ name: record.name, local: holder.uuid, cluster: record.uuid }, 'a local database not in the cluster catalogue gives way');
    this.unmirror(holder.uuid);
    this.catalog.upsertDatabase(record);
  }

  /** Records that waited for a pending create of their name to settle. */
  private mirrorDeferred(): void {
    if (this.closed) return;
    const waited = [...this.deferred.values()];
    this.deferred.clear();
    for (const record of waited) if (this.databases.get(record.uuid) === record) this.mirror(record);
  }

  private unmirror(uuid: string): void {
    if (this.catalog.find(uuid)?.uuid !== uuid) return;
    this.catalog.remove(uuid);
    const onRemoved = this.options.onRemoved;
    if (!onRemoved) return;
    this.removals = this.removals.then(async () => {
      try {
        await onRemoved(uuid);
      } catch (e) {
        this.logger.error({ err: e, uuid }, 'cleaning up after a database deleted elsewhere failed');
      }
    });
  }

  /** What the local catalogue has and the bucket lacks: databases from before cluster mode. */
  private async importDatabases(): Promise<void> {
    let last = 0;
    for (const record of this.catalog.list()) {
      if (this.databases.has(record.uuid)) continue;
      last = await this.publishIf(`database.${record.uuid}`, record, () => {
        const other = this.holderOf(record);
        if (other) {
          throw new Error(`Database "${record.name}" is ${record.uuid} on this node but ${other.uuid} in the cluster: rename or delete one of them before this node joins`);
        }
      });
      this.logger.info({ uuid: record.uuid, name: record.name }, 'database added to the cluster catalogue');
    }
    await this.caughtUp(last, WRITE_BOUND_MS);
  }

  /** The bucket's content into the local catalogue, which follows it from now on. */
  private reconcile(): void {
    for (const local of this.catalog.list()) if (!this.databases.has(local.uuid)) this.unmirror(local.uuid);
    for (const record of this.databases.values()) this.mirror(record);
    for (const token of this.tokens.values()) this.catalog.upsertToken(token);
    this.mirroring = true;
  }

  private poll(): void {
    if (this.polling || this.closed) return;
    this.polling = this.pushTokens()
      .catch((e: unknown) => this.logger.warn({ err: e }, 'sharing local tokens with the cluster failed; trying again'))
      .finally(() => {
        this.polling = undefined;
      });
  }

  /** Tokens created or revoked in the local catalogue (`dione token`) into the bucket. */
  private async pushTokens(): Promise<void> {
    // Cheap when nothing changed; a scan of the tokens when anything did.
    const mark = this.catalog.changeMark();
    if (mark === this.tokensMark) return;
    for (const local of this.catalog.tokens()) {
      if (this.closed) return;
      const shared = this.tokens.get(local.id);
      if (!shared) {
        await this.kv.create(`token.${local.id}`, JSON.stringify(local)).catch((e: unknown) => {
          if (!isConflict(e)) throw e;
        });
        this.tokens.set(local.id, local);
      } else if (local.revoked_at !== null && shared.revoked_at === null) {
        const revoked = { ...shared, revoked_at: local.revoked_at };
        await this.kv.put(`token.${local.id}`, JSON.stringify(revoked));
        this.tokens.set(local.id, revoked);
      }
    }
    this.tokensMark = mark;
  }
}
