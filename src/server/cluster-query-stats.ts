// Cluster mode: every node records the statements it runs in its own statistics, so an analytics
// answer gathers them all. The asking node publishes the question on NATS (request/reply, many
// replies) and every node, itself included, answers with its groups for that question; the asker
// merges the other nodes' replies with its own groups. The wait is bounded: replies stop being
// awaited STALL_MS after the last one came (the asker's own comes at once), and at MAX_WAIT_MS.
// A node that does not answer in time is left out (logged); with NATS unreachable, the answer is
// this node's alone.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { localGroups, type StatsQuestion, type StatsSource } from './stats/analytics.ts';
import { countOf, type Group, mergeGroups } from './stats/groups.ts';
import type { QueryStatsRecorder } from './stats/recorder.ts';

const SUBJECT = 'dione.query-stats.groups';
const MAX_WAIT_MS = 2000;
const STALL_MS = 250;
/** NATS's default max_payload, when the server does not say. */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

interface Reply {
  node: string;
  groups?: Group[];
  error?: string;
  /** Groups were left out (the least run) to fit one NATS message. */
  truncated?: boolean;
}

export class ClusterQueryStats implements StatsSource {
  private readonly subscription: Subscription;

  constructor(
    private readonly nc: NatsConnection,
    private readonly node: string,
    private readonly recorder: QueryStatsRecorder | undefined,
    private readonly logger: Logger,
  ) {
    this.subscription = nc.subscribe(SUBJECT, {
      callback: (error, msg) => {
        if (!error) msg.respond(this.answer(msg.string()));
      },
    });
  }

  async groups(question: StatsQuestion): Promise<Group[]> {
    const own = this.local(question); // throws for a filter that cannot apply, before asking anyone
    const others: Group[][] = [];
    try {
      const replies = await this.nc.requestMany(SUBJECT, JSON.stringify(question), { strategy: 'stall', stall: STALL_MS, maxWait: MAX_WAIT_MS });
      for await (const msg of replies) {
        const reply = JSON.parse(msg.string()) as Reply;
        if (reply.node === this.node) continue;
        if (reply.error) this.logger.warn({ node: reply.node, error: reply.error }, 'a node could not answer an analytics question');
        if (reply.truncated) this.logger.warn({ node: reply.node }, "a node's analytics answer was cut to fit one NATS message");
        if (reply.groups) others.push(reply.groups);
      }
    } catch (e) {
      this.logger.warn({ err: e }, 'analytics: the other nodes could not be asked; answering with this node\'s statistics only');
    }
    return mergeGroups([own, ...others], question.dimensions);
  }

  async close(): Promise<void> {
    if (!this.nc.isClosed()) this.subscription.unsubscribe();
  }

  private local(question: StatsQuestion): Group[] {
    return this.recorder ? localGroups(this.recorder, question) : [];
  }

  private answer(text: string): string {
    let reply: Reply;
    try {
      reply = { node: this.node, groups: this.local(JSON.parse(text) as StatsQuestion) };
    } catch (e) {
      return JSON.stringify({ node: this.node, error: (e as Error).message } satisfies Reply);
    }
    return this.fit(reply);
  }

  /** The reply as one NATS message: the most run groups when all of them do not fit. */
  private fit(reply: Reply): string {
    const limit = (this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD) - 1024;
    let text = JSON.stringify(reply);
    if (Buffer.byteLength(text) <= limit) return text;
    let groups = [...reply.groups!].sort((a, b) => countOf(b.totals) - countOf(a.totals));
    while (groups.length > 0 && Buffer.byteLength(text) > limit) {
      groups = groups.slice(0, Math.floor(groups.length / 2));
      text = JSON.stringify({ ...reply, groups, truncated: true });
    }
    return text;
  }
}
