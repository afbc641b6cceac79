// Snapshots of databases in a NATS object store (replicated like the logs), named
// `<database>/<sequence as 16 hex>`: where a node that is far behind, or new, starts from.
//
// Written through nats.js's object store; read without consumers. Its list() and get() each create
// an ephemeral single-replica consumer, which nats-server (2.9) may place on a server that has just
// died: each attempt then timed out after 5 s, again and again while NATS still counted the dead
// server, and a node that had to rebuild its copy after a failover waited up to 40 s. Here the
// object metadata comes from the stream's subject list and the stream leader's message reads (as
// nats.js's own info() does), and the chunks one message read each, in the object store's layout
// (ADR-20: meta `$O.<bucket>.M.<name, base64url>`, chunks `$O.<bucket>.C.<nuid>`, SHA-256 digest).
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { type JetStreamManager, jetstreamManager, type MsgRequest } from '@nats-io/jetstream';
import { Base64UrlPaddedCodec, type ObjectInfo, type ObjectStore, Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import type { SnapshotInfo } from '../log/store.ts';
import { whileForming } from './forming.ts';
import type { SnapshotBucket } from './shared.ts';

const BUCKET = 'dione-snapshots';
const STREAM = `OBJ_${BUCKET}`;
const META_PREFIX = `$O.${BUCKET}.M.`;
const seqName = (seq: number) => seq.toString(16).padStart(16, '0');

export class ObjectSnapshots implements SnapshotBucket {
  private constructor(
    private readonly store: ObjectStore,
    private readonly jsm: JetStreamManager,
  ) {}

  static async open(nc: NatsConnection, options: { replicas?: number } = {}): Promise<ObjectSnapshots> {
    const store = await whileForming(() => new Objm(nc).create(BUCKET, { replicas: options.replicas ?? 1 }));
    const jsm = await jetstreamManager(nc);
    // Until the bucket's stream answers (not a read of every object: that is one request each).
    await whileForming(() => jsm.streams.info(STREAM));
    return new ObjectSnapshots(store, jsm);
  }

  /** The objects whose names start with `prefix`, not deleted. */
  private async objects(prefix: string): Promise<ObjectInfo[]> {
    const { state } = await this.jsm.streams.info(STREAM, { subjects_filter: `${META_PREFIX}>` });
    const found: ObjectInfo[] = [];
    for (const subject of Object.keys(state.subjects ?? {})) {
      const name = Base64UrlPaddedCodec.decode(subject.slice(META_PREFIX.length)) as string;
      if (!name.startsWith(prefix)) continue;
      const info = await this.store.info(name);
      if (info && !info.deleted) found.push(info);
    }
    return found;
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
    return (await this.objects(prefix))
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
    return (await this.infos(database)).map((i) => i.seq);
  }

  /** Writes `database`'s snapshot at `seq` to `file`; false when there is none. Throws when it is incomplete or corrupt. */
  async copyTo(database: string, seq: number, file: string): Promise<boolean> {
    const name = `${database}/${seqName(seq)}`;
    const info = await this.store.info(name);
    if (!info || info.deleted) return false;
    const chunks = `$O.${BUCKET}.C.${info.nuid}`;
    const parts: Uint8Array[] = [];
    let after = 0;
    for (let i = 0; i < info.chunks; i++) {
      // The stream leader's read of the next message on the chunks' subject (the server takes
      // next_by_subj on this request too; nats.js types it for direct reads only).
      const chunk = await this.jsm.streams.getMessage(STREAM, { seq: after + 1, next_by_subj: chunks } as MsgRequest);
      if (!chunk) throw new Error(`snapshot ${name}: chunk ${i + 1} of ${info.chunks} is missing`);
      parts.push(chunk.data);
      after = chunk.seq;
    }
    const data = Buffer.concat(parts);
    const digest = `SHA-256=${Base64UrlPaddedCodec.encode(createHash('sha256').update(data).digest())}`;
    if (data.length !== info.size || digest !== info.digest) {
      throw new Error(`snapshot ${name} is corrupt: ${data.length} of ${info.size} bytes, digest ${digest}, stored ${info.digest}`);
    }
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
