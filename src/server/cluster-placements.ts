// Cluster mode: where each database's copies are and how far behind each follower's copy is. No
// node keeps the others' positions, so the asking node publishes the databases it wants on NATS
// (request/reply, many replies) and every node, itself included, answers with the commit its open
// copy of each holds. Only databases a node has open are reported (asking never opens one
// elsewhere). The wait is bounded as analytics' is (cluster-query-stats.ts): STALL_MS after the last
// reply, MAX_WAIT_MS in all; a node that does not answer in time is left out.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';

const SUBJECT = 'dione.placements';
const MAX_WAIT_MS = 1500;
const STALL_MS = 200;
const MAX_ASKED = 200;

/** One node's open copy of a database: the commit it holds, and whether it writes it. */
export interface CopyPosition {
  uuid: string;
  role: 'primary' | 'follower';
  sequence: number;
}

export interface NodeCopies {
  node: string;
  region: string;
  copies: CopyPosition[];
}

export class ClusterPlacements {
  private readonly subscription: Subscription;

  constructor(
    private readonly nc: NatsConnection,
    private readonly self: { node: string; region: string },
    /** This node's open copies among `uuids`. */
    private readonly local: (uuids: string[]) => Promise<CopyPosition[]>,
    private readonly logger: Logger,
  ) {
    this.subscription = nc.subscribe(SUBJECT, {
      callback: (error, msg) => {
        if (error) return;
        this.answer(msg.string()).then(
          (reply) => msg.respond(reply),
          (e) => this.logger.warn({ err: e }, 'placements: could not answer'),
        );
      },
    });
  }

  /** Every node's open copies of `uuids` (this node's first); other nodes that do not answer in time are left out. */
  async copies(uuids: string[]): Promise<NodeCopies[]> {
    const own: NodeCopies = { ...this.self, copies: await this.local(uuids) };
    const all = [own];
    try {
      const replies = await this.nc.requestMany(SUBJECT, JSON.stringify(uuids), { strategy: 'stall', stall: STALL_MS, maxWait: MAX_WAIT_MS });
      for await (const msg of replies) {
        const reply = validReply(msg.string());
        if (!reply) this.logger.warn('placements: a node answered something that is not a list of copies; left out');
        else if (reply.node !== this.self.node) all.push(reply);
      }
    } catch (e) {
      this.logger.warn({ err: e }, "placements: the other nodes could not be asked; listing this node's copies only");
    }
    return all;
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) this.subscription.unsubscribe();
  }

  private async answer(text: string): Promise<string> {
    const asked: unknown = JSON.parse(text);
    // A page of the list asks for at most 200.
    const uuids = (Array.isArray(asked) ? asked : []).filter((u): u is string => typeof u === 'string').slice(0, MAX_ASKED);
    return JSON.stringify({ ...this.self, copies: await this.local(uuids) } satisfies NodeCopies);
  }
}

/** A node's answer when it has the expected shape, else undefined (one bad reply does not end the others). */
function validReply(text: string): NodeCopies | undefined {
  let reply: NodeCopies;
  try {
    reply = JSON.parse(text) as NodeCopies;
  } catch {
    return undefined;
  }
  if (typeof reply?.node !== 'string' || typeof reply.region !== 'string' || !Array.isArray(reply.copies)) return undefined;
  const copies = reply.copies.filter(
    (c) => typeof c?.uuid === 'string' && (c.role === 'primary' || c.role === 'follower') && Number.isSafeInteger(c.sequence),
  );
  return { node: reply.node, region: reply.region, copies };
}
