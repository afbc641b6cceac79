// The whole NATS cluster unreachable, end to end with real processes: three `dione serve` nodes on a
// 3-node NATS cluster (test/helpers/dione-cluster.ts), lease TTL 3 s. Every NATS server is
// SIGKILLed:
// - a write (through the primary's node, or through a follower) gets a clear error, within 15 s;
// - every server process stays up and answers; followers keep serving session reads
//   ('first-unconstrained') from their copies;
// - a node started meanwhile says on stderr that it cannot reach NATS, and waits.
// The NATS servers are started again (same ports, same stores):
// - writes succeed again by themselves, within a bound (the time is reported);
// - the node started during the outage comes up and builds its copy;
// - no acknowledged write is lost or doubled, and every copy equals the primary's.
// The outage test collects every problem it sees and then fails once, listing them all, so one
// run shows the whole picture.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { D1Meta } from '../src/api/types.ts';
import { PROBE, THREE_NODES, useDioneCluster, within } from './helpers/dione-cluster.ts';

const names = THREE_NODES.map((n) => n.name);
/** A write must be answered (with an error) within this while NATS is down. */
const ANSWER_LIMIT_MS = 15_000;
/** Writes must work again within this after the NATS servers are back. */
const RECOVERY_LIMIT_MS = 30_000;

const clusterOf = useDioneCluster();

let primary = -1;
/** The node started while NATS was down. */
let late = -1;
const outcomes = new Map<string, 'acked' | 'unknown'>();
let acknowledgedBefore = 0;

async function write(node: number, key: string): Promise<D1Meta> {
  outcomes.set(key, 'unknown');
  const r = await clusterOf().client(node, 'outage').prepare('INSERT INTO t (k, via) VALUES (?, ?)').bind(key, names[node]).run();
  outcomes.set(key, 'acked');
  return r.meta;
}

test('every NATS server down: writes get a clear error in bounded time, servers stay up, followers serve session reads from their copies', async (t) => {
  await clusterOf().createDatabase(0, 'outage');
  const created = await clusterOf().client(0, 'outage').prepare('CREATE TABLE t (k TEXT NOT NULL, via TEXT)').run();
  primary = names.indexOf(String(created.meta.served_by));
  assert.ok(primary >= 0, JSON.stringify(created.meta));
  const followers = [0, 1, 2].filter((i) => i !== primary);
  for (let n = 0; n < 6; n++) await write(n % 3, `before-${n}`);
  acknowledgedBefore = 6;
  // Each follower's copy has every row (and its host is running: a node follows a database once it served it).
  for (const i of followers) {
    const seen = await within(10_000, async () => {
      const r = await clusterOf().client(i, 'outage').withSession().prepare('SELECT count(*) AS n FROM t').run<{ n: number }>();
      return r.results[0]!.n === 6 ? r.meta : undefined;
    });
    assert.ok(seen, `${names[i]}'s copy has the 6 rows`);
    assert.equal(seen.served_by, names[i]);
  }

  const downAt = Date.now();
  await Promise.all(clusterOf().nats.nodes.map((_, n) => clusterOf().nats.kill(n)));
  t.diagnostic(`killed every NATS server (${clusterOf().nats.nodes.map((n) => n.name).join(', ')})`);

  // A node started now waits for NATS, and says so.
  await clusterOf().add({ name: 'd', region: 'SAM' }, { wait: false });
  late = clusterOf().nodes.length - 1;
  names.push('d');

  const problems: string[] = [];
  // Followers serve session reads from their copies.
  const followersRead = async (when: string) => {
    for (const i of followers) {
      const started = Date.now();
      try {
        const r = await clusterOf().client(i, 'outage').withSession('first-unconstrained').prepare('SELECT count(*) AS n FROM t').run<{ n: number }>();
        const ms = Date.now() - started;
        if (r.results[0]!.n !== 6 || r.meta.served_by !== names[i] || r.meta.served_by_primary !== false || ms > 2000) {
          problems.push(`${when}: a session read on follower ${names[i]} answered ${JSON.stringify(r.results)} after ${ms} ms, meta ${JSON.stringify(r.meta)}`);
        }
      } catch (e) {
        problems.push(`${when}: a session read on follower ${names[i]} failed after ${Date.now() - started} ms: ${(e as Error).message}`);
      }
    }
  };
  await followersRead('right after NATS went down');

  // Writes through the primary's node and through a follower, at once: each answered with a clear error, in bounded time.
  const writers = [primary, followers[0]!];
  const answers = await Promise.all(
    writers.map(async (i, n) => {
      const started = Date.now();
      try {
        await write(i, `during-${n}`);
        return { i, ms: Date.now() - started, error: undefined };
      } catch (e) {
        return { i, ms: Date.now() - started, error: (e as Error).message };
      }
    }),
  );
  for (const { i, ms, error } of answers) {
    const who = `a write through ${names[i]}${i === primary ? ' (the primary)' : ' (a follower)'}`;
    t.diagnostic(`${who} was answered after ${ms} ms: ${error ?? 'success'}`);
    if (error === undefined) problems.push(`${who} succeeded with every NATS server down`);
    else {
      if (ms > ANSWER_LIMIT_MS) problems.push(`${who} was answered after ${ms} ms (limit ${ANSWER_LIMIT_MS} ms): ${error}`);
      if (!/NATS|write log|unreachable|unavailable|primary/i.test(error)) problems.push(`${who} failed with an error that does not say NATS is unreachable: ${error}`);
    }
  }

  // Every server process is up and answers.
  for (const i of [0, 1, 2]) {
    if (!clusterOf().running(i)) problems.push(`${names[i]}'s server process exited`);
    else {
      const { status } = await clusterOf().request(i, `${clusterOf().api(i)}?name=outage`, { timeoutMs: 5000 });
      if (status !== 200) problems.push(`${names[i]} answers the REST API with ${status}`);
    }
  }
  // Followers still serve session reads, after the failed writes too.
  await followersRead(`after the failed writes (${Date.now() - downAt} ms into the outage)`);

  // The node started during the outage says it cannot reach NATS.
  // (It tries at once, but on a loaded machine the process itself can take seconds to load.)
  const said = await within(20_000, async () => (/NATS/i.test(clusterOf().nodes[late]!.stderr().replace(/^(--- start|dione: cluster node).*$/gm, '')) ? true : undefined), 100);
  const output = `stderr:\n${clusterOf().nodes[late]!.stderr().slice(-1000)}\nstdout:\n${clusterOf().nodes[late]!.stdout().slice(-1000)}`;
  if (!clusterOf().running(late)) problems.push(`the node started during the outage exited\n${output}`);
  if (!said) problems.push(`the node started while NATS is down does not say so on stderr\n${output}`);
  t.diagnostic(`${Date.now() - downAt} ms into the outage; ${problems.length} problems`);
  assert.deepEqual(problems, [], `with every NATS server down:\n${problems.join('\n')}`);
});

test('NATS back: writes succeed again by themselves within a bound; the node started meanwhile comes up; nothing acknowledged is lost', async (t) => {
  assert.ok(primary >= 0, 'the outage test ran');
  const restartedAt = Date.now();
  await Promise.all(clusterOf().nats.nodes.map((_, n) => clusterOf().nats.restart(n)));
  const natsUp = Date.now() - restartedAt;

  // Writes through every original node, retried until they succeed.
  const recovered = new Map<number, number>();
  let key = 0;
  for (const i of [0, 1, 2]) {
    let lastError = '';
    const meta = await within(
      RECOVERY_LIMIT_MS - (Date.now() - restartedAt),
      async () => {
        try {
          return await write(i, `after-${key++}`);
        } catch (e) {
          lastError = (e as Error).message;
          return undefined;
        }
      },
      250,
    );
    assert.ok(meta, `a write through ${names[i]} succeeds within ${RECOVERY_LIMIT_MS} ms of starting NATS again; last error: ${lastError}`);
    recovered.set(i, Date.now() - restartedAt);
    primary = names.indexOf(String(meta.served_by));
  }
  t.diagnostic(
    `NATS servers ready ${natsUp} ms after being started; first successful write through ${[0, 1, 2].map((i) => `${names[i]} after ${recovered.get(i)} ms`).join(', ')}; primary now ${names[primary]}`,
  );

  // The node started during the outage comes up once NATS is there.
  const listening = await within(30_000, async () => (/listening on http/.test(clusterOf().nodes[late]!.stderr()) ? true : undefined), 100);
  assert.ok(listening, `node d listens once NATS is back\n${clusterOf().nodes[late]!.stderr().slice(-2000)}`);
  t.diagnostic(`node d listened ${Date.now() - restartedAt} ms after NATS was started again`);
  const known = await within(10_000, async () => ((await clusterOf().request(late, `${clusterOf().api(late)}?name=outage`)).body.result?.length === 1 ? true : undefined));
  assert.ok(known, 'node d knows the database and accepts the token');

  // Nothing acknowledged is lost or doubled; every copy (d's included) equals the primary's.
  const atPrimary = clusterOf().client(primary, 'outage').withSession('first-primary');
  const rows = await atPrimary.prepare('SELECT k, via FROM t ORDER BY rowid').all<{ k: string; via: string }>();
  await atPrimary.prepare(PROBE).run();
  const bookmark = atPrimary.getBookmark()!;
  const counts = new Map<string, number>();
  for (const r of rows.results) counts.set(r.k, (counts.get(r.k) ?? 0) + 1);
  let acked = 0;
  for (const [k, outcome] of outcomes) {
    const n = counts.get(k) ?? 0;
    if (outcome === 'acked') {
      assert.equal(n, 1, `acknowledged write ${k} is there ${n} times`);
      acked++;
    } else assert.ok(n <= 1, `failed write ${k} is there ${n} times`);
  }
  for (const k of counts.keys()) assert.ok(outcomes.has(k), `row ${k} was never written`);
  assert.ok(acked >= acknowledgedBefore + 3);
  const landed = [...outcomes].filter(([k, o]) => o === 'unknown' && counts.has(k)).map(([k]) => k);
  t.diagnostic(`${acked} acknowledged writes there once each; writes that failed during the outage and landed anyway: ${landed.join(', ') || 'none'}`);

  for (const i of [0, 1, 2, late].filter((x) => x !== primary)) {
    let last = '';
    const meta = await within(
      20_000,
      async () => {
        const session = clusterOf().client(i, 'outage').withSession('first-unconstrained');
        const got = await session.prepare('SELECT k, via FROM t ORDER BY rowid').all();
        last = `${session.getBookmark()} (${got.results.length} rows, served by ${got.meta.served_by})`;
        if (session.getBookmark() !== bookmark) return undefined;
        assert.deepEqual(got.results, rows.results, `${names[i]}'s copy has the primary's rows`);
        return got.meta;
      },
      100,
    );
    assert.ok(meta, `${names[i]}'s copy reaches the primary's bookmark ${bookmark} within 20 s; last: ${last}`);
    assert.equal(meta.served_by, names[i]);
  }
});
