// Primary leases in a NATS key-value bucket: one key per database, naming the node that may
// write it. The bucket's TTL makes a lease lapse when its holder stops renewing (it died, or
// lost NATS); any node may then take it. A lease only says who should write: the log's fenced
// appends are what keep two writers from forking the history.
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { whileForming } from './forming.ts';
import type { LeaseBook, LeaseHolder, PrimaryLease } from './shared.ts';

const BUCKET = 'dione-leases';

export type { LeaseHolder };

export class Lease implements PrimaryLease {
  private lost = false;
  /** When this holder's lease lapses unless renewed before (by the local clock, with a margin). */
  private validUntil: number;

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    readonly holder: LeaseHolder,
    private revision: number,
    private readonly ttlMs: number,
  ) {
    this.validUntil = Date.now() + ttlMs / 2;
  }

  /** Still ours, as far as this node can tell without asking NATS. */
  get valid(): boolean {
    return !this.lost && Date.now() < this.validUntil;
  }

  /** Extends the lease; false (and never again true) when another node holds it now. */
  async renew(): Promise<boolean> {
    if (this.lost) return false;
    const asked = Date.now();
    try {
      this.revision = await this.kv.update(this.key, JSON.stringify(this.holder), this.revision);
      this.validUntil = asked + this.ttlMs / 2;
      return true;
    } catch (e) {
      if (isConflict(e)) {
        this.lost = true;
        return false;
      }
      throw e;
    }
  }

  /** Gives the lease up at once, so another node need not wait for it to lapse. */
  async release(): Promise<void> {
    if (this.lost) return;
    this.lost = true;
    await this.kv.delete(this.key, { previousSeq: this.revision }).catch(() => {});
  }
}

/** Another node's write came first: JetStream's "wrong last sequence" (the client may word it "key exists"). */
function isConflict(e: unknown): boolean {
  if (e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamWrongLastSequence) return true;
  return e instanceof Error && /wrong last sequence|key exists/i.test(e.message);
}

export class Leases implements LeaseBook {
  private constructor(
    private readonly kv: KV,
    readonly ttlMs: number,
  ) {}

  /** The lease bucket; `ttlMs` must outlast a NATS leader election (several seconds). */
  static async open(nc: NatsConnection, options: { ttlMs: number; replicas?: number }): Promise<Leases> {
    const kv = await whileForming(() => new Kvm(nc).create(BUCKET, { history: 1, ttl: options.ttlMs, replicas: options.replicas ?? 1 }));
    // A bucket just created on a NATS cluster may not answer for a moment.
    await whileForming(() => kv.get('-'));
    return new Leases(kv, options.ttlMs);
  }

  /**
   * Takes the lease of `database` when nobody holds it, or when it names this very node (an earlier
   * run of it that died: node names are unique); undefined when another node holds it.
   */
  async acquire(database: string, holder: LeaseHolder): Promise<Lease | undefined> {
    try {
      const revision = await this.kv.create(database, JSON.stringify(holder));
      return new Lease(this.kv, database, holder, revision, this.ttlMs);
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    const entry = await this.kv.get(database);
    if (!entry || entry.operation !== 'PUT' || entry.length === 0 || entry.json<LeaseHolder>().node !== holder.node) return undefined;
    try {
      const revision = await this.kv.update(database, JSON.stringify(holder), entry.revision);
      return new Lease(this.kv, database, holder, revision, this.ttlMs);
    } catch (e) {
      if (isConflict(e)) return undefined;
      throw e;
    }
  }

  /** Who holds the lease of `database` now, if anyone. */
  async holder(database: string): Promise<LeaseHolder | undefined> {
    const entry = await this.kv.get(database);
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return undefined;
    return entry.json<LeaseHolder>();
  }
}
