// Snapshots of databases in a NATS object store (replicated like the logs), named
// `<database>/<sequence as 16 hex>`: where a node that is far behind, or new, starts from.
import { readFileSync, writeFileSync } from 'node:fs';
import { type ObjectStore, Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import type { SnapshotInfo } from '../log/store.ts';
import { whileForming } from './forming.ts';
import type { SnapshotBucket } from './shared.ts';

const BUCKET = 'dione-snapshots';
const seqName = (seq: number) => seq.toString(16).padStart(16, '0');

export class ObjectSnapshots implements SnapshotBucket {
  private constructor(private readonly store: ObjectStore) {}

  static async open(nc: NatsConnection, options: { replicas?: number } = {}): Promise<ObjectSnapshots> {
    const store = await whileForming(() => new Objm(nc).create(BUCKET, { replicas: options.replicas ?? 1 }));
    await whileForming(() => store.list());
    return new ObjectSnapshots(store);
  }

  /**
   * Stores a closed, checkpointed database file as `database`'s snapshot at `seq`, committed at
   * `time` (ms since the epoch; default now): Time Travel maps times to it.
   */
  async put(database: string, seq: number, file: string, time = Date.now()): Promise<void> {
    await this.store.putBlob({ name: `${database}/${seqName(seq)}`, metadata: { time: String(Math.round(time)) } }, readFileSync(file));
  }

  /** `database`'s snapshots with their commit times and sizes, oldest first. */
  async infos(database: string): Promise<SnapshotInfo[]> {
    const prefix = `${database}/`;
    return (await this.store.list())
      .filter((o) => o.name.startsWith(prefix) && !o.deleted)
      .map((o) => ({
        seq: Number.parseInt(o.name.slice(prefix.length), 16),
        // A snapshot stored without its commit time: when it was stored, which is no earlier.
        time: Number(o.metadata?.time ?? Date.parse(o.mtime)),
        bytes: o.size,
      }))
      .sort((a, b) => a.seq - b.seq);
  }

  /** The sequences of `database`'s snapshots, oldest first. */
  async list(database: string): Promise<number[]> {
    const prefix = `${database}/`;
    return (await this.store.list())
      .filter((o) => o.name.startsWith(prefix) && !o.deleted)
      .map((o) => Number.parseInt(o.name.slice(prefix.length), 16))
      .sort((a, b) => a - b);
  }

  /** Writes `database`'s snapshot at `seq` to `file`; false when there is none. */
  async copyTo(database: string, seq: number, file: string): Promise<boolean> {
    const data = await this.store.getBlob(`${database}/${seqName(seq)}`);
    if (!data) return false;
    writeFileSync(file, data);
    return true;
  }

  async remove(database: string, seq: number): Promise<void> {
    await this.store.delete(`${database}/${seqName(seq)}`);
  }

  /** Removes every snapshot of `database` (it was deleted). */
  async removeAll(database: string): Promise<void> {
    for (const seq of await this.list(database)) await this.remove(database, seq);
  }
}
