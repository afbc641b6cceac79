// The NATS JetStream primitives cluster mode is built on, proven against real nats-server processes
// (a 3-node JetStream cluster from helpers/nats-cluster.ts, never the shared server on 4222):
// (a) a replicas=3 stream over `dione.log.>` with appends fenced by the expected last sequence;
// (b) reading one database's subject back in order from a sequence; (c) a KV bucket with a TTL as a
// lease (create-if-absent, renew by revision, lapse); (d) an object store round trip of ~5 MB;
// (e) a SIGKILLed node: the other two keep working after an election, the node catches up on restart;
// (f) two of three down: a publish fails within a bound (no quorum) and succeeds once one returns;
// (g) a replica restarted after an append was refused keeps the leader's sequence numbers.
//
// What the server version allows is measured here, not assumed. nats-server 2.9.10 (Debian 12):
// - checks Nats-Expected-Last-Subject-Sequence (N > 0) on a clustered stream only as a pre-check on
//   the leader, so racing writers can both be accepted (nats-server#4320, fixed in 2.9.21); kv.update()
//   rides on the same header;
// - checks Nats-Expected-Last-Sequence, an expected subject sequence of 0 (kv.create) and the duplicate
//   window when the entry is applied: serialised, but each refusal there is an entry in the raft log,
//   and a node that had one in its log and is killed and restarted comes back with the sequences
//   after it shifted by one (g). The racing tests therefore use streams and buckets of their own, so
//   that the failure tests run on streams whose logs hold no refused entry.
// Where a server does better, the same tests assert it instead of reporting.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type PubAck,
  PubHeaders,
  type StoredMsg,
} from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { connect, type NatsConnection, RequestError, TimeoutError } from '@nats-io/transport-node';
import { type NatsCluster, startNatsCluster, startNatsServer } from './helpers/nats-cluster.ts';

const LOG = 'DIONE_LOG';
const LEASES = 'dione-leases';
const LEASE_TTL_MS = 2000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function versionAtLeast(version: string | undefined, want: [number, number, number]): boolean {
  const have = (version ?? '0.0.0').split('.').map((part) => Number.parseInt(part, 10) || 0);
  for (let i = 0; i < 3; i++) {
    if ((have[i] ?? 0) !== want[i]) return (have[i] ?? 0) > want[i]!;
  }
  return true;
}

/** The fencing failure: JetStream API error 10071, "wrong last sequence: N". */
function isWrongLastSequence(error: unknown): boolean {
  return (
    error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence && /^wrong last sequence: \d+$/.test(error.message)
  );
}

/**
 * No quorum, as the client sees it: the stream leader that cannot commit never acks (TimeoutError), or
 * no server answers for the subject because there is no leader (the client's JetStreamNotEnabled,
 * "jetstream is not enabled", whose cause is a RequestError for no responders).
 */
function noQuorumKind(error: unknown): 'timeout' | 'no responders' | null {
  if (error instanceof TimeoutError) return 'timeout';
  if (error instanceof Error && error.name === 'JetStreamNotEnabled' && error.cause instanceof RequestError && error.cause.isNoResponders()) {
    return 'no responders';
  }
  return null;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = error instanceof JetStreamApiError ? ` code ${error.code}` : '';
  const cause = error.cause instanceof Error ? ` (cause: ${error.cause.message})` : '';
  return `${error.name}: ${error.message}${code}${cause}`;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Calls fn until it resolves or the bound passes; returns its value, the elapsed time and the errors seen. */
async function retryUntil<T>(boundMs: number, fn: () => Promise<T>): Promise<{ value: T; ms: number; errors: string[] }> {
  const started = Date.now();
  const errors: string[] = [];
  for (;;) {
    try {
      return { value: await fn(), ms: Date.now() - started, errors };
    } catch (error) {
      const text = describeError(error);
      if (errors.at(-1) !== text) errors.push(text);
      if (Date.now() - started > boundMs) throw new Error(`still failing after ${boundMs} ms: ${errors.join(' | ')}`);
      await sleep(100);
    }
  }
}

/** One subject's messages from a stream sequence on, in order, by direct get (seq + next_by_subj). */
async function readSubject(jsm: JetStreamManager, stream: string, subject: string, fromSeq: number): Promise<StoredMsg[]> {
  const out: StoredMsg[] = [];
  for (let seq = fromSeq; ; ) {
    const m = await jsm.direct.getMessage(stream, { seq, next_by_subj: subject });
    if (!m) return out;
    out.push(m);
    seq = m.seq + 1;
  }
}

/**
 * readSubject until it reaches `lastSeq`: a direct get is answered by any replica, which may not have
 * applied the newest messages yet, so a reader that needs a sequence waits for it (bounded).
 */
async function readSubjectUpTo(jsm: JetStreamManager, stream: string, subject: string, fromSeq: number, lastSeq: number): Promise<StoredMsg[]> {
  const { value } = await retryUntil(5000, async () => {
    const got = await readSubject(jsm, stream, subject, fromSeq);
    if (got.at(-1)?.seq !== lastSeq) throw new Error(`${subject}: read up to ${got.at(-1)?.seq}, want ${lastSeq}`);
    return got;
  });
  return value;
}

function connectTo(servers: string[]): Promise<NatsConnection> {
  // Always explicit servers: a client with none would go to 127.0.0.1:4222, the shared server.
  return connect({ servers, timeout: 2000, reconnectTimeWait: 250, maxReconnectAttempts: -1, name: 'dione-cluster-test' });
}

test('single node: JetStream with a fenced append (startNatsServer)', async (t) => {
  const server = await startNatsServer();
  const nc = await connectTo(server.urls);
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: LOG, subjects: ['dione.log.>'] });
    const js = jetstream(nc);
    const first = await js.publish('dione.log.one', 'a', { expect: { lastSubjectSequence: 0 } });
    await assert.rejects(js.publish('dione.log.one', 'b', { expect: { lastSubjectSequence: 0 } }), isWrongLastSequence);
    // Two writers racing with the same expectation: on one server exactly one is accepted.
    let last = first.seq;
    for (let round = 0; round < 20; round++) {
      const results = await Promise.allSettled([
        js.publish('dione.log.one', 'x', { expect: { lastSubjectSequence: last } }),
        js.publish('dione.log.one', 'y', { expect: { lastSubjectSequence: last } }),
      ]);
      const won = results.filter((r): r is PromiseFulfilledResult<PubAck> => r.status === 'fulfilled');
      assert.equal(won.length, 1, `round ${round}: exactly one writer wins`);
      last = won[0]!.value.seq;
    }
    t.diagnostic(`single nats-server ${nc.info?.version} at ${server.urls[0]}`);
  } finally {
    await nc.close();
    await server.close();
  }
});

describe('NATS JetStream cluster (3 nodes)', () => {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  let other: NatsConnection;
  let js: JetStreamClient;
  let jsOther: JetStreamClient;
  let jsm: JetStreamManager;
  let version = '';
  /** The server fixed nats-server#4320 (per-subject expectation serialised in a cluster). */
  let subjectFenceSerialised = false;
  /** The last acked sequence per subject of DIONE_LOG, as the writer knows it. */
  const lastOf = new Map<string, number>();
  /** What the leader acknowledged on DIONE_LOG: sequence → payload. */
  const acked = new Map<number, string>();
  /** The last acked sequence of the per-database stream DIONE_DB_db9. */
  let dbLast = 0;
  let leases: KV;
  let leasesOther: KV;
  /** Node restarted in (e), caught up; the survivor in (f). */
  let restarted = -1;

  before(async () => {
    cluster = await startNatsCluster({ nodes: 3 });
    nc = await connectTo(cluster.urls);
    // A second writer through other nodes, as a second Dione node would be.
    other = await connectTo([cluster.urls[1]!, cluster.urls[2]!]);
    js = jetstream(nc, { timeout: 5000 });
    jsOther = jetstream(other, { timeout: 5000 });
    jsm = await jetstreamManager(nc, { timeout: 5000 });
    version = nc.info?.version ?? '';
    subjectFenceSerialised = versionAtLeast(version, [2, 9, 21]);
  });

  after(async () => {
    await nc?.close().catch(() => {});
    await other?.close().catch(() => {});
    await cluster?.close();
  });

  const errorsText = (errors: string[]) => (errors.length ? errors.join(' | ') : 'none');

  /**
   * Adds a replicated stream and waits (bounded) until both writers can publish to it: right after
   * the add, the new stream's leader may not be elected yet (the publish then has no responders).
   */
  const addStream = async (name: string, subjects: string[], probe: string) => {
    await jsm.streams.add({ name, subjects, num_replicas: 3, allow_direct: true });
    await retryUntil(10_000, () => js.publish(probe, 'probe', { timeout: 1000 }));
    const { value } = await retryUntil(10_000, () => jsOther.publish(probe, 'probe', { timeout: 1000 }));
    return value.seq;
  };

  const publish = async (subject: string, data: string, opts: { msgID?: string } = {}) => {
    const ack = await js.publish(subject, data, { ...opts, expect: { lastSubjectSequence: lastOf.get(subject) ?? 0 } });
    lastOf.set(subject, ack.seq);
    acked.set(ack.seq, data);
    return ack;
  };

  /**
   * A subject-fenced append that is safe to retry after an ambiguous failure (a timeout): same
   * Nats-Msg-Id, same expectation. On a clustered stream the leader checks the subject sequence before
   * the duplicate window, so a retry of an append that was stored gets 10071 with that append's own
   * sequence; the last message of the subject then carries our Nats-Msg-Id.
   */
  const appendBySubject = async (subject: string, data: string, msgID: string, expected: number, timeout: number) => {
    try {
      const ack = await js.publish(subject, data, { msgID, timeout, expect: { lastSubjectSequence: expected } });
      return { seq: ack.seq, how: ack.duplicate ? 'duplicate ack' : 'stored' };
    } catch (error) {
      if (!isWrongLastSequence(error)) throw error;
      const last = await jsm.direct.getMessage(LOG, { last_by_subj: subject });
      if (last && last.header.get(PubHeaders.MsgIdHdr) === msgID) return { seq: last.seq, how: `found by its Nats-Msg-Id after "${(error as Error).message}"` };
      throw error;
    }
  };

  /** An append to a per-database stream, fenced by Nats-Expected-Last-Sequence: a retry answers duplicate. */
  const appendToDb = async (subject: string, data: string, msgID: string, expected: number, timeout: number) => {
    const ack = await js.publish(subject, data, { msgID, timeout, expect: { lastSequence: expected } });
    return { seq: ack.seq, how: ack.duplicate ? 'duplicate ack' : 'stored' };
  };

  test('(a) a replicas=3 stream on dione.log.>: appends fenced by the expected last subject sequence', async (t) => {
    await addStream(LOG, ['dione.log.>'], 'dione.log.probe');
    const info = await jsm.streams.info(LOG);
    assert.equal(info.config.num_replicas, 3);
    assert.equal(info.cluster?.replicas?.length, 2, 'a leader and two replicas');
    t.diagnostic(`nats-server ${version}; ${LOG} leader ${info.cluster?.leader}`);

    const first = await publish('dione.log.db1', 'w1');
    // Subjects are fenced independently: another database's first append expects 0.
    await publish('dione.log.db2', 'other');
    const second = await publish('dione.log.db1', 'w2');
    // Stale: refused with 10071 "wrong last sequence: <the subject's last sequence>".
    await assert.rejects(js.publish('dione.log.db1', 'stale', { expect: { lastSubjectSequence: first.seq } }), (error: unknown) => {
      assert.ok(isWrongLastSequence(error), describeError(error));
      assert.equal((error as Error).message, `wrong last sequence: ${second.seq}`);
      return true;
    });

    // A retry of an append that was stored (as after a timeout) is recognised, not appended twice.
    const once = await publish('dione.log.db1', 'w3', { msgID: 'db1-w3' });
    const retried = await appendBySubject('dione.log.db1', 'w3', 'db1-w3', second.seq, 5000);
    assert.equal(retried.seq, once.seq);
    t.diagnostic(`retry of a stored subject-fenced append: ${retried.how}`);

    const latencies: number[] = [];
    for (let i = 0; i < 500; i++) {
      const started = performance.now();
      await publish('dione.log.bench', `v${i}`);
      latencies.push(performance.now() - started);
    }
    latencies.sort((x, y) => x - y);
    t.diagnostic(
      `fenced publish ack latency, 500 sequential, R3: p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms, max ${latencies.at(-1)!.toFixed(2)} ms`,
    );
  });

  test('(a) racing writers: Nats-Expected-Last-Subject-Sequence, and a stream per database fenced by Nats-Expected-Last-Sequence', async (t) => {
    // Streams of their own (see the top of the file).
    await addStream('DIONE_RACE', ['dione.race.>'], 'dione.race.probe');
    // A first append expecting 0 that finds the subject taken is refused too.
    await js.publish('dione.race.db1', 'first', { expect: { lastSubjectSequence: 0 } });
    await assert.rejects(js.publish('dione.race.db1', 'stale', { expect: { lastSubjectSequence: 0 } }), isWrongLastSequence);
    let multiple = 0;
    let last = (await jsm.streams.getMessage('DIONE_RACE', { last_by_subj: 'dione.race.db1' }))!.seq;
    for (let round = 0; round < 40; round++) {
      const results = await Promise.allSettled([
        js.publish('dione.race.db1', `a${round}`, { expect: { lastSubjectSequence: last } }),
        jsOther.publish('dione.race.db1', `b${round}`, { expect: { lastSubjectSequence: last } }),
      ]);
      const won = results.filter((r): r is PromiseFulfilledResult<PubAck> => r.status === 'fulfilled');
      for (const r of results) if (r.status === 'rejected') assert.ok(isWrongLastSequence(r.reason), describeError(r.reason));
      assert.ok(won.length >= 1, `round ${round}: someone wins`);
      if (won.length > 1) multiple++;
      last = Math.max(...won.map((w) => w.value.seq));
    }
    if (subjectFenceSerialised) {
      assert.equal(multiple, 0, 'exactly one writer wins every round');
    } else {
      t.diagnostic(
        `nats-server ${version} < 2.9.21: BOTH racing writers were accepted in ${multiple}/40 rounds (nats-server#4320) — ` +
          'per-subject fencing on a clustered stream is not safe on this version',
      );
    }

    // One stream per database, fenced by the stream's last sequence: exactly one writer wins.
    let dbRaceLast = await addStream('DIONE_DB_race', ['dione.db.race'], 'dione.db.race');
    for (let round = 0; round < 40; round++) {
      const results = await Promise.allSettled([
        js.publish('dione.db.race', `a${round}`, { expect: { lastSequence: dbRaceLast } }),
        jsOther.publish('dione.db.race', `b${round}`, { expect: { lastSequence: dbRaceLast } }),
      ]);
      const won = results.filter((r): r is PromiseFulfilledResult<PubAck> => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(won.length, 1, `round ${round}: exactly one writer wins`);
      assert.ok(isWrongLastSequence(lost[0]!.reason), describeError(lost[0]!.reason));
      dbRaceLast = won[0]!.value.seq;
    }
    assert.equal((await jsm.streams.info('DIONE_DB_race')).state.last_seq, dbRaceLast);
    // The duplicate window is checked before this expectation: a retry of a stored append answers duplicate.
    const once = await appendToDb('dione.db.race', 'w', 'race-w', dbRaceLast, 5000);
    const retried = await appendToDb('dione.db.race', 'w', 'race-w', dbRaceLast, 5000);
    assert.deepEqual(retried, { seq: once.seq, how: 'duplicate ack' });
    t.diagnostic('stream per database + Nats-Expected-Last-Sequence: exactly one of two racing writers won in 40/40 rounds');
  });

  test('(a) a stream per database: fenced appends by Nats-Expected-Last-Sequence', async (t) => {
    dbLast = await addStream('DIONE_DB_db9', ['dione.db.db9'], 'dione.db.db9');
    const latencies: number[] = [];
    for (let i = 0; i < 200; i++) {
      const started = performance.now();
      dbLast = (await js.publish('dione.db.db9', `v${i}`, { expect: { lastSequence: dbLast } })).seq;
      latencies.push(performance.now() - started);
    }
    latencies.sort((x, y) => x - y);
    t.diagnostic(`Nats-Expected-Last-Sequence publish, 200 sequential, R3: p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms`);
  });

  test('(b) one database read back in order from a sequence', async (t) => {
    const mine: PubAck[] = [];
    for (let i = 0; i < 20; i++) {
      mine.push(await publish('dione.log.db3', `db3-${i}`));
      await publish('dione.log.db4', `db4-${i}`);
    }
    const from = mine[5]!.seq;
    const want: [number, string][] = mine.slice(5).map((ack, i) => [ack.seq, `db3-${i + 5}`]);

    // Direct get (allow_direct: any replica answers, so wait for the sequence): seq + next_by_subj, until null.
    const direct = await readSubjectUpTo(jsm, LOG, 'dione.log.db3', from, mine.at(-1)!.seq);
    assert.deepEqual(
      direct.map((m) => [m.seq, m.string()]),
      want,
    );
    assert.ok(direct.every((m) => m.subject === 'dione.log.db3'));

    // Through the stream leader ($JS.API.STREAM.MSG.GET): by sequence, and the last of a subject.
    // (Its typed MsgRequest has no next_by_subj, though a 2.9 server answers it.)
    const viaLeader: [number, string][] = [];
    for (const [seq] of want) {
      const m = await jsm.streams.getMessage(LOG, { seq });
      assert.equal(m?.subject, 'dione.log.db3');
      viaLeader.push([m!.seq, m!.string()]);
    }
    assert.deepEqual(viaLeader, want);
    assert.equal((await jsm.streams.getMessage(LOG, { last_by_subj: 'dione.log.db3' }))?.seq, mine.at(-1)!.seq);

    // An ordered consumer (ephemeral, R1, in memory) filtered on the subject, from the sequence.
    // On 2.9 the filter must be one subject (a string): filter_subjects as an array needs 2.10.
    const consumer = await js.consumers.get(LOG, { filter_subjects: 'dione.log.db3', opt_start_seq: from });
    const got: [number, string][] = [];
    const iter = await consumer.fetch({ max_messages: 100, expires: 2000 });
    for await (const m of iter) {
      got.push([m.seq, m.string()]);
      if (m.info.pending === 0) break;
    }
    assert.deepEqual(got, want);

    // Batched direct get needs nats-server 2.11; the client refuses it up front on older servers.
    if (!versionAtLeast(version, [2, 11, 0])) {
      await assert.rejects(jsm.direct.getBatch(LOG, { seq: from, batch: 10 }), /batch direct require server 2\.11/);
    }
    t.diagnostic('by subject from a sequence: jsm.direct.getMessage({ seq, next_by_subj }) and an ordered consumer; by seq: jsm.streams.getMessage');
  });

  test('(c) a lease in a KV bucket with a TTL: create-if-absent, renew by revision, lapse', async (t) => {
    const kvm = new Kvm(nc);
    leases = await kvm.create(LEASES, { history: 1, ttl: LEASE_TTL_MS, replicas: 3 });
    leasesOther = await new Kvm(other).open(LEASES);
    await retryUntil(10_000, () => leases.put('probe', 'x'));
    await retryUntil(10_000, () => leasesOther.put('probe', 'y'));
    const status = await leases.status();
    assert.equal(status.ttl, LEASE_TTL_MS);
    assert.equal(status.replicas, 3);

    // Create only if absent, renew with the revision; a stale revision is refused.
    const created = Date.now();
    const rev1 = await leases.create('db1', 'node-a');
    await assert.rejects(leasesOther.create('db1', 'node-b'), isWrongLastSequence);
    await sleep(1200);
    const rev2 = await leases.update('db1', 'node-a', rev1);
    const renewedAt = Date.now();
    assert.ok(rev2 > rev1);
    await assert.rejects(leasesOther.update('db1', 'node-b', rev1), isWrongLastSequence);
    await sleep(LEASE_TTL_MS + 300 - (Date.now() - created));
    // Older than the TTL since its creation, but renewed: still there.
    const renewed = await leases.get('db1');
    assert.equal(renewed?.string(), 'node-a');
    assert.equal(renewed?.revision, rev2);

    // Not renewed: gone after the TTL (max_age of the bucket's stream), then another node can take it.
    const { ms } = await retryUntil(LEASE_TTL_MS + 5000, async () => {
      if ((await leases.get('db1')) !== null) throw new Error('lease still present');
    });
    const lapsed = Date.now() - renewedAt;
    assert.ok(lapsed >= LEASE_TTL_MS - 250, `lapsed ${lapsed} ms after the renewal, before the TTL`);
    const taken = await leasesOther.create('db1', 'node-b');
    assert.ok(taken > rev2);
    // kv.get() is a direct get, answered by any replica: right after a write it may not see it yet.
    const seen = await retryUntil(3000, async () => {
      const entry = await leases.get('db1');
      if (entry?.string() !== 'node-b') throw new Error(`read ${entry?.string()} after the write`);
    });
    if (seen.errors.length) t.diagnostic(`kv.get() right after another node's create: stale for ${seen.ms} ms (${errorsText(seen.errors)})`);
    t.diagnostic(`lease with TTL ${LEASE_TTL_MS} ms disappeared ${lapsed} ms after its last renewal (polled ${ms} ms)`);

    // Two contenders racing, in a bucket of their own (see the top of the file): create-if-absent
    // (expected subject sequence 0, checked when applied) lets exactly one win; update with one
    // revision goes through the pre-checked Nats-Expected-Last-Subject-Sequence.
    const raceA = await kvm.create('dione-race', { history: 1, replicas: 3 });
    const raceB = await new Kvm(other).open('dione-race');
    await retryUntil(10_000, () => raceA.put('probe', 'x'));
    await retryUntil(10_000, () => raceB.put('probe', 'y'));
    let multiple = 0;
    for (let round = 0; round < 20; round++) {
      const creates = await Promise.allSettled([raceA.create(`lease${round}`, 'node-a'), raceB.create(`lease${round}`, 'node-b')]);
      const lost = creates.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(lost.length, 1, `round ${round}: exactly one contender creates the lease`);
      assert.ok(isWrongLastSequence(lost[0]!.reason), describeError(lost[0]!.reason));
      // A direct get, answered by any replica: right after the create it may not see it yet.
      let entry = await raceA.get(`lease${round}`);
      for (const deadline = Date.now() + 3000; entry === null && Date.now() < deadline; ) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        entry = await raceA.get(`lease${round}`);
      }
      assert.ok(entry, `round ${round}: the created lease is read back within 3 s`);
      const updates = await Promise.allSettled([raceA.update(`lease${round}`, 'a', entry.revision), raceB.update(`lease${round}`, 'b', entry.revision)]);
      const won = updates.filter((r) => r.status === 'fulfilled').length;
      assert.ok(won >= 1);
      if (won > 1) multiple++;
    }
    if (subjectFenceSerialised) assert.equal(multiple, 0, 'exactly one racing update wins');
    else t.diagnostic(`nats-server ${version}: BOTH racing kv.update() calls with one revision won in ${multiple}/20 rounds (nats-server#4320)`);

    // Per-key TTLs (markerTTL, Nats-TTL) need 2.11: an older server drops the stream setting silently.
    if (!versionAtLeast(version, [2, 11, 0])) {
      const marked = await kvm.create('dione-marker', { history: 1, markerTTL: 1000, replicas: 1 });
      assert.equal((await marked.status()).markerTTL, 0, 'subject_delete_marker_ttl is dropped by the server');
      await marked.destroy();
    }
  });

  test('(d) an object store put/get of ~5 MB', async (t) => {
    const store = await new Objm(nc).create('dione-snapshots', { replicas: 3 });
    await retryUntil(10_000, () => store.putBlob({ name: 'probe' }, new Uint8Array(10)));
    const data = randomBytes(5 * 1024 * 1024 + 12345);
    let started = performance.now();
    const info = await store.putBlob({ name: 'db1/snapshot-1' }, data);
    const putMs = performance.now() - started;
    assert.equal(info.size, data.length);
    started = performance.now();
    const back = await store.getBlob('db1/snapshot-1');
    const getMs = performance.now() - started;
    assert.ok(back && Buffer.from(back).equals(data), 'the same bytes come back');
    t.diagnostic(`object store R3: put ${data.length} bytes in ${info.chunks} chunks ${putMs.toFixed(0)} ms, get ${getMs.toFixed(0)} ms`);
  });

  /** Waits until node i is a current member of the stream's raft group (leader, or replica without lag). */
  const waitCaughtUp = (i: number, stream: string, boundMs: number) =>
    retryUntil(boundMs, async () => {
      const info = await jsm.streams.info(stream);
      const name = cluster.nodes[i]!.name;
      if (info.cluster?.leader === name) return info.state.last_seq;
      const replica = info.cluster?.replicas?.find((r) => r.name === name);
      if (!replica || !replica.current || replica.offline || (replica.lag ?? 0) > 0) {
        throw new Error(`${name} not caught up on ${stream}: ${JSON.stringify(replica)}`);
      }
      return info.state.last_seq;
    });

  const leaderOf = async (stream: string) => (await jsm.streams.info(stream)).cluster?.leader;

  test('(e) SIGKILL one node: the other two elect leaders and keep working; the node restarts and catches up', async (t) => {
    const logLeader = await leaderOf(LOG);
    const victim = cluster.nodes.findIndex((node) => node.name === logLeader);
    assert.ok(victim >= 0, `stream leader ${logLeader} is one of ours`);
    t.diagnostic(`leaders before: ${LOG} ${logLeader}, DIONE_DB_db9 ${await leaderOf('DIONE_DB_db9')}, KV_${LEASES} ${await leaderOf(`KV_${LEASES}`)}`);
    const pid = cluster.nodes[victim]!.pid;
    const killedAt = Date.now();
    await cluster.kill(victim);
    t.diagnostic(`SIGKILLed ${logLeader} (pid ${pid})`);

    // Every operation is retried as it is safe to: the same Nats-Msg-Id and expectation, a lease
    // create whose stored-but-unacknowledged attempt is recognised by its value.
    const quickLeases = await new Kvm(jetstream(nc, { timeout: 1000 })).open(LEASES);
    const takeAndRenewLease = async () => {
      let rev: number;
      try {
        rev = await quickLeases.create('db-after-kill', 'node-a');
      } catch (error) {
        const entry = isWrongLastSequence(error) ? await quickLeases.get('db-after-kill') : null;
        if (entry?.string() !== 'node-a') throw error;
        rev = entry.revision;
      }
      return { rev, renewed: await quickLeases.update('db-after-kill', 'node-a', rev) };
    };
    const expected = lastOf.get('dione.log.db1')!;
    const [log, db, lease] = await Promise.all([
      retryUntil(20_000, () => appendBySubject('dione.log.db1', 'after-kill', 'db1-after-kill', expected, 1000)),
      retryUntil(20_000, () => appendToDb('dione.db.db9', 'after-kill', 'db9-after-kill', dbLast, 1000)),
      retryUntil(20_000, takeAndRenewLease),
    ]);
    lastOf.set('dione.log.db1', log.value.seq);
    acked.set(log.value.seq, 'after-kill');
    dbLast = db.value.seq;
    assert.ok(lease.value.renewed > lease.value.rev);
    t.diagnostic(`${LOG} append ok ${log.ms} ms after the kill (${log.value.how}; errors meanwhile: ${errorsText(log.errors)})`);
    t.diagnostic(`DIONE_DB_db9 append ok ${db.ms} ms after the kill (${db.value.how}; errors meanwhile: ${errorsText(db.errors)})`);
    t.diagnostic(`KV lease create+renew ok ${lease.ms} ms after the kill (errors meanwhile: ${errorsText(lease.errors)})`);
    const newLeader = await leaderOf(LOG);
    assert.notEqual(newLeader, logLeader);
    t.diagnostic(`leader election after SIGKILL of the ${LOG} leader: ${log.ms} ms (new leader ${newLeader}) — a lease TTL must outlast this`);

    // With 2 of 3: fenced appends go on, stale ones are still refused.
    const latencies: number[] = [];
    for (let i = 0; i < 50; i++) {
      const started = performance.now();
      await publish('dione.log.db1', `two-of-three-${i}`);
      latencies.push(performance.now() - started);
    }
    latencies.sort((x, y) => x - y);
    await assert.rejects(js.publish('dione.log.db1', 'stale', { expect: { lastSubjectSequence: expected } }), isWrongLastSequence);
    t.diagnostic(`with 2 of 3: p50 ${percentile(latencies, 50).toFixed(2)} ms, p99 ${percentile(latencies, 99).toFixed(2)} ms over 50 fenced publishes`);

    const restartedAt = Date.now();
    await cluster.restart(victim);
    const caught = await waitCaughtUp(victim, LOG, 20_000);
    await waitCaughtUp(victim, 'DIONE_DB_db9', 20_000);
    await waitCaughtUp(victim, `KV_${LEASES}`, 20_000);
    assert.equal(caught.value, lastOf.get('dione.log.db1'));
    restarted = victim;
    t.diagnostic(`restarted ${cluster.nodes[victim]!.name} (down ${restartedAt - killedAt} ms): current on all streams ${Date.now() - restartedAt} ms later`);
  });

  test('(f) two of three down: a publish fails within a bound (no quorum), and succeeds once one node returns', async (t) => {
    assert.ok(restarted >= 0, '(e) ran');
    const others = [0, 1, 2].filter((i) => i !== restarted);
    t.diagnostic(`leaders before: ${LOG} ${await leaderOf(LOG)}, DIONE_DB_db9 ${await leaderOf('DIONE_DB_db9')}`);
    await Promise.all(others.map((i) => cluster.kill(i)));
    t.diagnostic(`SIGKILLed ${others.map((i) => cluster.nodes[i]!.name).join(', ')}; ${cluster.nodes[restarted]!.name} alone`);

    const expected = lastOf.get('dione.log.db1')!;
    const expectedDb = dbLast;
    const logAttempt = () => appendBySubject('dione.log.db1', 'no-quorum', 'db1-no-quorum', expected, 2000);
    const dbAttempt = () => appendToDb('dione.db.db9', 'no-quorum', 'db9-no-quorum', expectedDb, 2000);
    for (const [name, attempt] of [
      [LOG, logAttempt],
      ['DIONE_DB_db9', dbAttempt],
    ] as const) {
      const started = Date.now();
      const failure = await attempt().then(
        (ack) => assert.fail(`${name}: appended without quorum: ${JSON.stringify(ack)}`),
        (error: unknown) => error,
      );
      const failedIn = Date.now() - started;
      assert.ok(noQuorumKind(failure), `${name}: a no-quorum error, not ${describeError(failure)}`);
      assert.ok(failedIn < 3500, `${name}: failed within the bound (${failedIn} ms)`);
      t.diagnostic(`${name} append with 1 of 3 failed after ${failedIn} ms: ${noQuorumKind(failure)} — ${describeError(failure)}`);
    }

    // The lone survivor (the node that was down in (e)) still answers direct gets, from what it has
    // applied, consistent with what the leader acknowledged. A follower learns that the newest entries
    // are committed only from the leader's next message, so it may serve less than the last ack.
    const quickJsm = await jetstreamManager(nc, { timeout: 1000, checkAPI: false });
    const lone = await retryUntil(5000, () => quickJsm.direct.getMessage(LOG, { last_by_subj: 'dione.log.db1' }));
    const served = lone.value;
    assert.ok(served && served.seq <= expected, `survivor serves ${served?.seq}, acked up to ${expected}`);
    assert.equal(served.string(), acked.get(served.seq), `survivor's message at ${served.seq} is the acknowledged one`);
    t.diagnostic(`lone survivor's direct get of the last dione.log.db1: seq ${served.seq} (last acked ${expected}) after ${lone.ms} ms (errors: ${errorsText(lone.errors)})`);

    const restartedAt = Date.now();
    await cluster.restart(others[0]!);
    const [log, db] = await Promise.all([retryUntil(25_000, logAttempt), retryUntil(25_000, dbAttempt)]);
    lastOf.set('dione.log.db1', log.value.seq);
    dbLast = db.value.seq;
    t.diagnostic(
      `after restarting ${cluster.nodes[others[0]!]!.name}: ${LOG} append ok in ${log.ms} ms (${log.value.how}; errors meanwhile: ${errorsText(log.errors)})`,
    );
    t.diagnostic(`DIONE_DB_db9 append ok in ${db.ms} ms (${db.value.how}; errors meanwhile: ${errorsText(db.errors)})`);
    assert.ok(Date.now() - restartedAt < 30_000);
    assert.equal((await publish('dione.log.db1', 'after-quorum')).duplicate, false);
    dbLast = (await appendToDb('dione.db.db9', 'after-quorum', 'db9-after-quorum', dbLast, 5000)).seq;

    // The appends made during the outage are there exactly once, in order (read through an ordered
    // consumer, which the stream leader serves).
    const metaMs = await cluster.waitForMetaLeader(20_000);
    const quickJs = jetstream(nc, { timeout: 2000 });
    for (const [stream, subject] of [
      [LOG, 'dione.log.db1'],
      ['DIONE_DB_db9', 'dione.db.db9'],
    ] as const) {
      const { value: all, ms, errors } = await retryUntil(20_000, async () => {
        const consumer = await quickJs.consumers.get(stream, { filter_subjects: subject });
        const values: string[] = [];
        for await (const m of await consumer.fetch({ max_messages: 10_000, expires: 3000 })) {
          values.push(m.string());
          if (m.info.pending === 0) break;
        }
        return values;
      });
      if (errors.length) t.diagnostic(`${stream}: read back through an ordered consumer after ${metaMs + ms} ms (errors meanwhile: ${errorsText(errors)})`);
      assert.equal(all.filter((v) => v === 'no-quorum').length, 1, `${stream}: once`);
      assert.deepEqual(all.slice(-2), ['no-quorum', 'after-quorum'], stream);
    }
  });

  test('(g) a replica restarted after an append was refused keeps the leader sequence numbers', async (t) => {
    // Back to three nodes, settled.
    for (let i = 0; i < 3; i++) {
      if (cluster.nodes[i]!.pid !== null) continue;
      await cluster.restart(i);
      await waitCaughtUp(i, LOG, 20_000);
    }
    await cluster.waitForMetaLeader(20_000);
    await retryUntil(15_000, () => addStream('DIONE_RESTART', ['dione.restart.>'], 'dione.restart.probe'));
    const wrote = new Map<number, string>();
    let last = 0;
    const append = async (data: string) => {
      // A long timeout, not a retry: a retried fenced append that was stored after all would be refused.
      last = (await js.publish('dione.restart.db1', data, { timeout: 15_000, expect: { lastSubjectSequence: last } })).seq;
      wrote.set(last, data);
    };
    await append('a0');
    // A fenced-off writer: Nats-Expected-Last-Sequence is checked when the entry is applied, on every
    // replica, so the refusal is an entry in the raft log.
    await assert.rejects(js.publish('dione.restart.db1', 'stale', { expect: { lastSequence: 1 } }), isWrongLastSequence);
    for (let i = 1; i < 5; i++) await append(`a${i}`);
    const leader = await leaderOf('DIONE_RESTART');
    // A follower, and not the server this client is connected to (an append in flight to a killed
    // server is an ambiguous timeout, which this test does not need).
    const follower = cluster.nodes.findIndex((node) => node.name !== leader && node.name !== nc.info?.server_name);
    await cluster.kill(follower);
    for (let i = 0; i < 5; i++) await append(`b${i}`);
    await cluster.restart(follower);
    await waitCaughtUp(follower, 'DIONE_RESTART', 20_000);
    await sleep(2000);
    await append('barrier');
    // Let the follower learn that the barrier is committed (it learns it from the leader's next message).
    await sleep(2000);

    // Only the restarted follower left: what it serves is what it holds.
    await Promise.all([0, 1, 2].filter((i) => i !== follower).map((i) => cluster.kill(i)));
    const quickJsm = await jetstreamManager(nc, { timeout: 1000, checkAPI: false });
    const { value: held } = await retryUntil(8000, async () => {
      const out: [number, string][] = [];
      for (let seq = 1; ; ) {
        const m = await quickJsm.direct.getMessage('DIONE_RESTART', { seq, next_by_subj: 'dione.restart.db1' });
        if (!m) return out;
        out.push([m.seq, m.string()]);
        seq = m.seq + 1;
      }
    });
    const want = [...wrote];
    // Each message it holds is the one the leader acknowledged at that sequence (it may miss the very
    // last one if it had not learnt it was committed).
    const consistent = held.every(([seq, v]) => wrote.get(seq) === v) && held.length >= want.length - 1;
    const text = (list: [number, string][]) => list.map(([seq, v]) => `${seq}:${v}`).join(' ');
    if (consistent || versionAtLeast(version, [2, 9, 11])) {
      assert.ok(consistent, `restarted follower holds ${text(held)}; the leader acknowledged ${text(want)}`);
      t.diagnostic(`restarted follower consistent with the leader (${held.length}/${want.length} messages)`);
    } else {
      t.diagnostic(
        `nats-server ${version}: DIVERGED — the follower restarted after a refused append holds ${text(held)}; the leader acknowledged ${text(want)}`,
      );
    }
  });
});
