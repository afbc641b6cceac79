// One database's write log in NATS JetStream: a stream of its own (replicated by the NATS
// cluster), each log record as one or more messages (a record can be larger than a message).
// Appends are fenced by the stream's expected last sequence: a writer whose view of the tail is
// stale (a primary that lost its lease) is refused, so the history never forks. A stream per
// database rather than a subject per database in one stream: the per-subject expectation is not
// serialised in a cluster on nats-server 2.9.10, the stream-wide one is (test/cluster-nats.test.ts).
import { type Consumer, type ConsumerMessages, type JetStreamClient, JetStreamApiCodes, JetStreamApiError, type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { decodeRecord, encodeRecord, type LogRecord, type RecordSummary, summarize } from '../log/record.ts';
import { whileForming } from './forming.ts';
import type { SharedLog } from './shared.ts';

/** Payload bytes per message: under NATS's default limit of 1 MiB with room for headers. */
const PART_BYTES = 768 * 1024;
const SEQ_HEADER = 'Dione-Seq';
const PART_HEADER = 'Dione-Part';

/**
 * Heartbeats asked of the consumers a tail and a catch-up read through, and how long either waits
 * hearing nothing (no message, no heartbeat) before it ends with an error. An ordered consumer is a
 * single-replica consumer: when the NATS server holding it dies, nats.js (3.3) recreates it only on
 * "consumer not found" and otherwise retries its info request for ever (and, when the connection
 * itself moved to another server, stops watching heartbeats until that request succeeds), so a
 * tail stalled silently and a catch-up could hang. Now the follower hears of it, says so and starts
 * again with a new consumer, on a server that is up.
 */
const TAIL_HEARTBEAT_MS = 2000;
const TAIL_EXPIRES_MS = 10_000;
const TAIL_SILENCE_MS = 3 * TAIL_HEARTBEAT_MS;
const FETCH_HEARTBEAT_MS = 1000;
const FETCH_SILENCE_MS = 10_000;

/**
 * Ends `messages` with an error when its consumer's heartbeats are missed or nothing comes for
 * `silenceMs`, and deletes the consumer once they end. Returns what to call on each message.
 */
function watchConsumer(messages: ConsumerMessages, consumer: Consumer, silenceMs: number, failure: (what: string) => Error): () => void {
  let lastSign = Date.now();
  void (async () => {
    for await (const status of messages.status()) {
      if (status.type === 'heartbeat') lastSign = Date.now();
      else if (status.type === 'heartbeats_missed') {
        messages.stop(failure("missed its consumer's heartbeats"));
        break;
      }
    }
  })().catch(() => {});
  const silence = setInterval(() => {
    if (Date.now() - lastSign > silenceMs) messages.stop(failure(`heard nothing from its consumer for ${silenceMs / 1000} s`));
  }, 1000);
  silence.unref();
  void messages.closed().then(() => {
    clearInterval(silence);
    // At once rather than at the server's inactivity threshold (a dead server's is gone anyway).
    consumer.delete().catch(() => {});
  });
  return () => {
    lastSign = Date.now();
  };
}

/** What reading needs of a stored message, however it was fetched. */
interface Message {
  seq: number;
  headers?: { get(name: string): string };
  data: Uint8Array;
}

/** The append was refused: another writer appended first. Read the tail again before writing. */
export class LogFenced extends Error {
  override name = 'LogFenced';
}

/**
 * Puts records back together from their messages, in stream order: returns a record when its last
 * part arrives. A record cut short (its writer died between parts, and the next writer wrote it
 * again) is dropped when another record's first part comes.
 */
function assembler(): (m: Message) => LogRecord | undefined {
  let parts: Buffer[] = [];
  let partsOf: string | undefined;
  return (m) => {
    const [part, of] = (m.headers?.get(PART_HEADER) || '1/1').split('/').map(Number) as [number, number];
    const recordSeq = m.headers?.get(SEQ_HEADER);
    if (part === 1 || recordSeq !== partsOf) {
      parts = [];
      partsOf = recordSeq;
    }
    if (part !== parts.length + 1) return undefined;
    parts.push(Buffer.from(m.data));
    if (part !== of) return undefined;
    const record = decodeRecord(Buffer.concat(parts));
    parts = [];
    return record;
  };
}

export function streamNameOf(database: string): string {
  return `DIONE_LOG_${database.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}

export interface StreamLogOptions {
  /** Copies the NATS cluster keeps of the stream (3 in a 3-node cluster). */
  replicas?: number;
}

export class StreamLog implements SharedLog {
  /** The stream sequence of the newest message this writer knows: what the next append expects. */
  private lastMessage = 0;
  /** The newest record's sequence in this writer's view. */
  lastSeq: number | undefined;
  /** Where the last record read ended: the stream sequence after it. */
  private cursor: { seq: number; next: number } | undefined;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    readonly stream: string,
  ) {}

  /** Opens the log of `database`, creating its stream when missing, and reads where it ends. */
  static async open(nc: NatsConnection, database: string, options: StreamLogOptions = {}): Promise<StreamLog> {
    const jsm = await jetstreamManager(nc);
    const stream = streamNameOf(database);
    try {
      await jsm.streams.info(stream);
    } catch (e) {
      if (!(e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamNotFound)) throw e;
      await whileForming(() => jsm.streams.add({ name: stream, subjects: [`dione.log.${stream}`], num_replicas: options.replicas ?? 1, allow_direct: true }));
    }
    const log = new StreamLog(jetstream(nc), jsm, stream);
    await whileForming(() => log.refresh());
    return log;
  }

  /** The subject the stream takes appends on. */
  get subject(): string {
    return `dione.log.${this.stream}`;
  }

  /** Reads the tail again (after being fenced, or before taking over as the writer). */
  async refresh(): Promise<void> {
    const info = await this.jsm.streams.info(this.stream);
    this.lastMessage = info.state.last_seq;
    this.lastSeq = undefined;
    if (info.state.messages === 0) return;
    const last = await this.jsm.streams.getMessage(this.stream, { seq: info.state.last_seq });
    if (last) this.lastSeq = Number(last.header.get(SEQ_HEADER));
  }

  /** Appends a record after the last one; durable on the NATS cluster once this resolves. */
  append(record: LogRecord): Promise<void> {
    return this.appendAll([record]);
  }

  /**
   * Appends records in order, durable on the NATS cluster once this resolves; `lastSeq` is the last
   * record taken whole, even when this rejects. One message at a time: a message sent before the
   * one ahead of it was acknowledged could be taken after another writer's (its expected sequence
   * would then be that writer's message), splicing two histories.
   */
  async appendAll(records: LogRecord[]): Promise<void> {
    await this.appendEncoded(records.map((record) => ({ seq: record.seq, body: encodeRecord(record) })));
  }

  /** appendAll() for records already encoded (a primary ships the bodies its local log wrote). */
  async appendEncoded(records: { seq: number; body: Buffer }[]): Promise<void> {
    for (const { seq, body } of records) {
      const parts = Math.max(1, Math.ceil(body.length / PART_BYTES));
      for (let i = 0; i < parts; i++) {
        const h = headers();
        h.set(SEQ_HEADER, String(seq));
        h.set(PART_HEADER, `${i + 1}/${parts}`);
        try {
          const ack = await this.js.publish(this.subject, body.subarray(i * PART_BYTES, (i + 1) * PART_BYTES), {
            headers: h,
            expect: { lastSequence: this.lastMessage },
          });
          this.lastMessage = ack.seq;
        } catch (e) {
          if (e instanceof JetStreamApiError && e.code === JetStreamApiCodes.StreamWrongLastSequence) {
            throw new LogFenced(`another writer appended to ${this.stream} first (${e.message})`);
          }
          throw e;
        }
      }
      this.lastSeq = seq;
    }
  }

  /** The stream sequence of the first message of the first record after `seq`. */
  private async startOf(seq: number): Promise<number | undefined> {
    const info = await this.jsm.streams.info(this.stream);
    if (info.state.messages === 0) return undefined;
    let low = Math.max(1, info.state.first_seq);
    let high = info.state.last_seq + 1;
    // Messages are in record order: the first one whose record comes after `seq`.
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      const m = await this.jsm.streams.getMessage(this.stream, { seq: mid });
      if (m && Number(m.header.get(SEQ_HEADER)) > seq) high = mid;
      else low = mid + 1;
    }
    return low > info.state.last_seq ? undefined : low;
  }

  /**
   * The summary of the record whose message is at stream sequence `at` (read from its first part),
   * and where that record starts; undefined when the message is gone (purged).
   */
  private async recordAtMessage(at: number): Promise<{ summary: RecordSummary; start: number } | undefined> {
    let m = await this.jsm.streams.getMessage(this.stream, { seq: at }).catch(() => null);
    if (!m) return undefined;
    const part = Number((m.header.get(PART_HEADER) || '1/1').split('/')[0]);
    const start = at - (part - 1);
    if (part !== 1) m = await this.jsm.streams.getMessage(this.stream, { seq: start }).catch(() => null);
    if (!m) return undefined;
    return { summary: summarize(Buffer.from(m.data)), start };
  }

  /** The newest record committed at or before `time` that the stream still holds. */
  async atTime(time: number): Promise<RecordSummary | undefined> {
    const { state } = await this.jsm.streams.info(this.stream);
    if (state.messages === 0) return undefined;
    // Commit times never go back along the stream: the last message whose record is not newer.
    let low = Math.max(1, state.first_seq);
    let high = state.last_seq + 1;
    let found: RecordSummary | undefined;
    while (low < high) {
      const mid = Math.floor((low + high) / 2);
      const at = await this.recordAtMessage(mid);
      if (at && at.summary.time <= time) {
        found = at.summary;
        low = mid + 1;
      } else high = at ? at.start : mid;
    }
    return found;
  }

  /**
   * For each of `times` (ascending): the sequence of the newest record committed at or before it,
   * or, before every record the stream holds, the first one's sequence − 1. Binary searches over
   * the messages, each time's within the range the times around it left (divide and conquer), so
   * at most about times × log2(messages) and never more than the messages themselves; only each
   * record's first part is read for its summary.
   */
  async positionsAt(times: number[]): Promise<number[]> {
    const { state } = await this.jsm.streams.info(this.stream);
    if (state.messages === 0) return times.map(() => 0);
    const looked = new Map<number, Promise<{ summary: RecordSummary; start: number } | undefined>>();
    const at = (m: number) => {
      let found = looked.get(m);
      if (!found) looked.set(m, (found = this.recordAtMessage(m)));
      return found;
    };
    const first = await at(Math.max(1, state.first_seq));
    const base = first ? first.summary.seq - 1 : 0;
    const positions: number[] = new Array(times.length).fill(base);
    // Times [i, j) all have their boundary (the first message of a record newer than them) in
    // [low, high]; `before` is the newest record before `low` (at or before each of them).
    const solve = async (i: number, j: number, low: number, high: number, before: RecordSummary | undefined): Promise<void> => {
      if (i >= j) return;
      if (low >= high) {
        for (let k = i; k < j; k++) positions[k] = before?.seq ?? base;
        return;
      }
      const k = (i + j) >>> 1;
      const time = times[k]!;
      let lo = low;
      let hi = high;
      let found = before;
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2);
        const r = await at(mid);
        if (r && r.summary.time <= time) {
          found = r.summary;
          lo = mid + 1;
        } else hi = r ? Math.max(r.start, lo) : mid;
      }
      positions[k] = found?.seq ?? base;
      await solve(i, k, low, lo, before);
      await solve(k + 1, j, lo, high, found);
    };
    await solve(0, times.length, Math.max(1, state.first_seq), state.last_seq + 1, undefined);
    return positions;
  }

  /** Up to `count` summaries of the records committed at or before `time`, newest first (each record's first part is read). */
  async newestAt(time: number, count: number): Promise<RecordSummary[]> {
    const newest = count > 0 ? await this.atTime(time) : undefined;
    if (!newest) return [];
    const { state } = await this.jsm.streams.info(this.stream);
    const start = await this.startOf(newest.seq - 1);
    const found: RecordSummary[] = [];
    let m = start;
    while (m !== undefined && m >= state.first_seq && found.length < count) {
      const r = await this.recordAtMessage(m);
      if (!r) break;
      found.push(r.summary);
      m = r.start - 1;
    }
    return found;
  }

  /** The newest record's summary as the stream holds it now (this writer's view of the tail is left alone). */
  async lastSummary(): Promise<RecordSummary | undefined> {
    const { state } = await this.jsm.streams.info(this.stream);
    if (state.messages === 0) return undefined;
    return (await this.recordAtMessage(state.last_seq))?.summary;
  }

  /** The summary of record `seq`, if the stream holds it. */
  async find(seq: number): Promise<RecordSummary | undefined> {
    const start = await this.startOf(seq - 1);
    if (start === undefined) return undefined;
    const at = await this.recordAtMessage(start);
    return at?.summary.seq === seq ? at.summary : undefined;
  }

  /**
   * Removes the messages of every record with sequence <= `seq` (JetStream purge up to a stream
   * sequence), always keeping the newest record: the tail's record number is read from it.
   * Answers the number of messages removed.
   */
  async purgeThrough(seq: number): Promise<number> {
    const { state } = await this.jsm.streams.info(this.stream);
    if (state.messages === 0) return 0;
    const last = await this.recordAtMessage(state.last_seq);
    const keepFrom = Math.min((await this.startOf(seq)) ?? state.last_seq + 1, last?.start ?? state.last_seq);
    if (keepFrom <= state.first_seq) return 0;
    const { purged } = await this.jsm.streams.purge(this.stream, { seq: keepFrom });
    this.cursor = undefined;
    return purged;
  }

  /** What the stream holds: bytes and messages (after purges, only what is kept). */
  async size(): Promise<{ bytes: number; messages: number; firstMessage: number }> {
    const { state } = await this.jsm.streams.info(this.stream);
    return { bytes: state.bytes, messages: state.messages, firstMessage: state.first_seq };
  }

  /**
   * The records after `seq`, oldest first, up to the end of the stream as it is now. A record cut
   * short (its writer died between parts, and the next writer wrote it again) is skipped.
   */
  async *read(seq: number): AsyncGenerator<LogRecord> {
    // A reader that goes on from where it stopped (a follower) starts right there, without a search.
    const { state } = await this.jsm.streams.info(this.stream);
    const resume = this.cursor?.seq === seq && this.cursor.next >= state.first_seq;
    const at = resume ? this.cursor!.next : await this.startOf(seq);
    const end = state.last_seq;
    if (at === undefined || at > end) return;
    const assemble = assembler();
    for await (const m of await this.messages(at, end)) {
      if (m.seq > end) break;
      const record = assemble(m);
      if (record && record.seq > seq) {
        this.cursor = { seq: record.seq, next: m.seq + 1 };
        yield record;
      }
      if (m.seq === end) break;
    }
  }

  /**
   * The records after `seq` as they are appended, without end, through an ordered consumer (which
   * resumes by itself after a NATS election); `stop()` ends it.
   */
  async tail(seq: number): Promise<{ records: AsyncGenerator<LogRecord>; stop: () => void }> {
    const { state } = await this.jsm.streams.info(this.stream);
    const at = (await this.startOf(seq)) ?? state.last_seq + 1;
    const consumer = await this.js.consumers.get(this.stream, { opt_start_seq: at });
    const messages = await consumer.consume({ max_messages: 512, expires: TAIL_EXPIRES_MS, idle_heartbeat: TAIL_HEARTBEAT_MS });
    const heard = watchConsumer(messages, consumer, TAIL_SILENCE_MS, (what) => new Error(`the tail of ${this.stream} ${what} (its NATS server is gone?)`));
    const log = this;
    async function* records(): AsyncGenerator<LogRecord> {
      const assemble = assembler();
      for await (const m of messages) {
        heard();
        const record = assemble(m);
        if (record && record.seq > seq) {
          // A catch-up after records the tail brought resumes right after them, without a search.
          log.cursor = { seq: record.seq, next: m.seq + 1 };
          yield record;
        }
      }
    }
    return { records: records(), stop: () => void messages.close() };
  }

  /**
   * The messages from `at` to `end`: through an ordered consumer (one round trip for many), or, when
   * the NATS cluster cannot place one right now (an election after a node died), one by one.
   */
  private async messages(at: number, end: number): Promise<AsyncIterable<Message>> {
    let consumer: Consumer;
    let fetched: ConsumerMessages;
    try {
      consumer = await this.js.consumers.get(this.stream, { opt_start_seq: at });
      fetched = await consumer.fetch({ max_messages: end - at + 1, expires: 5000, idle_heartbeat: FETCH_HEARTBEAT_MS });
    } catch {
      return this.oneByOne(at, end);
    }
    const stream = this.stream;
    const heard = watchConsumer(fetched, consumer, FETCH_SILENCE_MS, (what) => new Error(`reading ${stream} from message ${at}: the catch-up ${what}`));
    return (async function* () {
      try {
        for await (const m of fetched) {
          heard();
          yield m;
        }
      } finally {
        fetched.stop();
      }
    })();
  }

  private async *oneByOne(at: number, end: number): AsyncGenerator<Message> {
    for (let seq = at; seq <= end; seq++) {
      const m = await this.jsm.streams.getMessage(this.stream, { seq });
      if (m) yield { seq: m.seq, headers: m.header, data: m.data };
    }
  }
}
