// Cluster mode end to end, through the public interfaces only: three `dione serve` processes
// (regions WEUR, ENAM, APAC) are nodes of one cluster on a 3-node NATS JetStream cluster
// (test/helpers/dione-cluster.ts). Covered here:
// - a database created through one node's REST API is listed and usable through every node; writes
//   through any node land (followers forward them to the primary); reads without a session are the
//   primary's; meta.served_by / served_by_region / served_by_primary name the node that served;
//   REST /query and /raw on a follower are forwarded;
// - the Sessions API over dione/client: withSession() and 'first-unconstrained' read a follower's
//   own copy, 'first-primary' starts at the primary, a session opened with a bookmark (taken after
//   a write through another node) never reads older data, and a session's bookmark only moves on;
// - replica = primary: a seeded random workload (tables without a primary key, WITHOUT ROWID,
//   AUTOINCREMENT, DDL with ALTER/RENAME/DROP, triggers writing random() and datetime('now'),
//   DEFAULT CURRENT_TIMESTAMP / (random()), randomblob, large blobs, batches, failing batches, exec
//   scripts) sent through random nodes; at the end every node's copy, read on that node in a
//   session holding the final bookmark, equals the primary's content table by table.
//
// The workload's seed is printed; DIONE_CLUSTER_SEED=<seed> replays one.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { D1Meta, D1Result } from '../src/api/types.ts';
import type { D1Database } from '../src/binding/database.ts';
import type { D1DatabaseSession } from '../src/binding/session.ts';
import { PROBE, THREE_NODES, useDioneCluster, within } from './helpers/dione-cluster.ts';
import { mulberry32 } from './helpers/random.ts';

const names = THREE_NODES.map((n) => n.name);

const clusterOf = useDioneCluster();

function assertServedBy(meta: D1Meta, node: number, primary: boolean, what: string): void {
  assert.deepEqual(
    { served_by: meta.served_by, served_by_region: meta.served_by_region, served_by_primary: meta.served_by_primary },
    { served_by: names[node], served_by_region: THREE_NODES[node]!.region, served_by_primary: primary },
    `${what}: meta names the node that served`,
  );
}

/** The database's primary, found by a write's meta (the first write decides it). */
let shopPrimary = -1;

test('a database created through one node is usable through every node; writes are forwarded to the primary; meta tells who served', async (t) => {
  t.diagnostic(`the admin token made in a's data directory (as \`dione token create\` does) was accepted by ${names.map((n, i) => `${n} after ${clusterOf().tokenSpreadMs[i]} ms`).join(', ')}`);
  const uuid = await clusterOf().createDatabase(1, 'shop');
  // Listed by every node (the catalogue is shared).
  for (const i of [0, 1, 2]) {
    const listed = await within(10_000, async () => {
      const { body } = await clusterOf().request(i, `${clusterOf().api(i)}?name=shop`);
      return body.result?.some((d: { uuid: string }) => d.uuid === uuid) ? true : undefined;
    });
    assert.ok(listed, `node ${names[i]} lists the database created on b`);
  }
  const dbs = [0, 1, 2].map((i) => clusterOf().client(i, 'shop'));
  const created = await dbs[0]!.prepare('CREATE TABLE orders (id INTEGER PRIMARY KEY, via TEXT, at TEXT DEFAULT CURRENT_TIMESTAMP)').run();
  shopPrimary = names.indexOf(created.meta.served_by ?? '');
  assert.ok(shopPrimary >= 0, `served_by names a node: ${JSON.stringify(created.meta)}`);
  assertServedBy(created.meta, shopPrimary, true, 'the first write');
  t.diagnostic(`primary of shop: ${names[shopPrimary]} (the first write went through a)`);

  // A write through every node lands at the primary.
  for (const i of [0, 1, 2]) {
    const r = await dbs[i]!.prepare('INSERT INTO orders (id, via) VALUES (?, ?)').bind(i + 1, names[i]).run();
    assert.equal(r.meta.changes, 1);
    assertServedBy(r.meta, shopPrimary, true, `a write through ${names[i]}`);
  }
  // Reads without a session are the primary's, through every node, and see every write at once.
  for (const i of [0, 1, 2]) {
    const r = await dbs[i]!.prepare('SELECT id, via FROM orders ORDER BY id').all();
    assert.deepEqual(r.results, [
      { id: 1, via: 'a' },
      { id: 2, via: 'b' },
      { id: 3, via: 'c' },
    ]);
    assertServedBy(r.meta, shopPrimary, true, `a read without a session through ${names[i]}`);
  }
  // A batch through a follower: one unit, at the primary.
  const follower = [0, 1, 2].find((i) => i !== shopPrimary)!;
  const batch = await dbs[follower]!.batch([
    dbs[follower]!.prepare('INSERT INTO orders (id, via) VALUES (?, ?)').bind(10, 'batch'),
    dbs[follower]!.prepare('UPDATE orders SET via = via || ?1 WHERE id = ?2').bind('+', 10),
  ]);
  for (const r of batch) assertServedBy(r.meta, shopPrimary, true, 'a batch through a follower');

  // REST /query and /raw on each follower: forwarded to the primary, writes included.
  for (const i of [0, 1, 2].filter((n) => n !== shopPrimary)) {
    const query = await clusterOf().request(i, `${clusterOf().api(i)}/${uuid}/query`, {
      method: 'POST',
      body: JSON.stringify({ sql: 'INSERT INTO orders (id, via) VALUES (?, ?) RETURNING id', params: [100 + i, `rest ${names[i]}`] }),
    });
    assert.equal(query.status, 200, JSON.stringify(query.body));
    assert.equal(query.body.success, true);
    assert.deepEqual(query.body.result[0].results, [{ id: 100 + i }]);
    assertServedBy(query.body.result[0].meta, shopPrimary, true, `REST /query (a write) on ${names[i]}`);
    const raw = await clusterOf().request(i, `${clusterOf().api(i)}/${uuid}/raw`, {
      method: 'POST',
      body: JSON.stringify({ sql: 'SELECT via FROM orders WHERE id = ?', params: [100 + i] }),
    });
    assert.equal(raw.status, 200, JSON.stringify(raw.body));
    assert.deepEqual(raw.body.result[0].results.rows, [[`rest ${names[i]}`]]);
    assertServedBy(raw.body.result[0].meta, shopPrimary, true, `REST /raw on ${names[i]}`);
  }
  // Every node's own copy (a session read) gets there, and says it served the read itself.
  const total = Number(await dbs[shopPrimary]!.prepare('SELECT count(*) AS n FROM orders').first('n'));
  for (const i of [0, 1, 2]) {
    const session = dbs[i]!.withSession();
    const seen = await within(10_000, async () => {
      const r = await session.prepare('SELECT count(*) AS n FROM orders').run<{ n: number }>();
      return r.results[0]!.n === total ? r : undefined;
    });
    assert.ok(seen, `${names[i]}'s copy reaches ${total} rows within 10 s`);
    assertServedBy(seen.meta, i, i === shopPrimary, `a session read on ${names[i]}`);
  }
});

test('sessions over dione/client: unconstrained reads are local, first-primary starts at the primary, bookmarks give sequential consistency', async (t) => {
  assert.ok(shopPrimary >= 0, 'the previous test found the primary');
  const followers = [0, 1, 2].filter((i) => i !== shopPrimary);
  const dbs = [0, 1, 2].map((i) => clusterOf().client(i, 'shop'));
  await dbs[0]!.exec('CREATE TABLE seen (k TEXT PRIMARY KEY, via TEXT)');

  for (const i of followers) {
    for (const constraint of [undefined, 'first-unconstrained'] as const) {
      const session = dbs[i]!.withSession(constraint);
      const r = await session.prepare('SELECT count(*) AS n FROM orders').run();
      assertServedBy(r.meta, i, false, `withSession(${constraint ?? ''}) on follower ${names[i]}`);
      assert.ok(session.getBookmark(), 'a read gives the session a bookmark');
    }
    const first = dbs[i]!.withSession('first-primary');
    const r = await first.prepare('SELECT count(*) AS n FROM orders').run();
    assertServedBy(r.meta, shopPrimary, true, `the first read of a 'first-primary' session on ${names[i]}`);
  }

  // Sequential consistency: write through one node, hand the bookmark to a session on another,
  // read there. Another writer keeps the log moving meanwhile, so the copies are often behind.
  let stop = false;
  let backgroundWrites = 0;
  const background = (async () => {
    for (let n = 0; !stop; n++) {
      await dbs[n % 3]!.prepare('INSERT INTO seen (k, via) VALUES (?, ?)').bind(`bg${n}`, names[n % 3]).run();
      backgroundWrites++;
    }
  })();
  let local = 0;
  let forwarded = 0;
  const rounds = 40;
  const started = Date.now();
  try {
    for (let round = 0; round < rounds && Date.now() - started < 25_000; round++) {
      const from = round % 3;
      const to = (round + 1 + (round % 2)) % 3;
      const writer = dbs[from]!.withSession('first-primary');
      await writer.prepare('INSERT INTO seen (k, via) VALUES (?, ?)').bind(`r${round}`, names[from]).run();
      const bookmark = writer.getBookmark();
      assert.ok(bookmark, 'a write gives the session a bookmark');
      const reader = dbs[to]!.withSession(bookmark);
      const r = await reader.prepare('SELECT via FROM seen WHERE k = ?').bind(`r${round}`).run<{ via: string }>();
      assert.deepEqual(r.results, [{ via: names[from] }], `round ${round}: a session on ${names[to]} opened with the bookmark of a write through ${names[from]} reads it`);
      assert.ok(reader.getBookmark()! >= bookmark, `round ${round}: the reader's bookmark ${reader.getBookmark()} is not behind the one it was given ${bookmark}`);
      if (r.meta.served_by === names[to]) local++;
      else {
        assertServedBy(r.meta, shopPrimary, true, `round ${round}: a bookmark read not served by ${names[to]}`);
        forwarded++;
      }
    }
  } finally {
    stop = true;
    await background;
  }
  assert.equal(local + forwarded, rounds, `all ${rounds} rounds ran within 25 s`);
  t.diagnostic(`${rounds} bookmark hand-overs (${backgroundWrites} writes meanwhile): ${local} read on the node given the bookmark, ${forwarded} sent to the primary (copy behind for 250 ms)`);
  assert.ok(local > 0, 'some bookmark reads were served by the node itself');

  // One session on a follower, writing and reading: it reads its own writes, and its bookmark only moves on.
  const follower = followers[0]!;
  const session = dbs[follower]!.withSession();
  let last = '';
  for (let n = 0; n < 30; n++) {
    if (n % 3 === 0) {
      const w = await session.prepare('INSERT INTO seen (k, via) VALUES (?, ?)').bind(`s${n}`, 'session').run();
      assertServedBy(w.meta, shopPrimary, true, 'a write in a session on a follower');
    } else {
      const r = await session.prepare("SELECT count(*) AS n FROM seen WHERE via = 'session'").first<number>('n');
      assert.equal(r, Math.floor(n / 3) + 1, `read ${n}: the session reads its own writes`);
    }
    const bookmark = session.getBookmark()!;
    assert.ok(bookmark >= last, `step ${n}: the session's bookmark went back from ${last} to ${bookmark}`);
    last = bookmark;
  }
  // A session given an older bookmark than it has seen keeps the newer one.
  const older = dbs[follower]!.withSession(last);
  await older.prepare(PROBE).run();
  assert.ok(older.getBookmark()! >= last);
});

// ------------------------------------------------------------------------------------------------
// Replica = primary

interface Scratch {
  name: string;
  /** Columns added with ALTER TABLE (may be renamed or dropped). */
  extras: string[];
  index: string | null;
  trigger: string | null;
}

interface Model {
  scratch: Scratch[];
  next: number;
}

interface Statement {
  sql: string;
  params: unknown[];
}

interface Step {
  kind: string;
  statements?: Statement[];
  exec?: string;
  fails?: boolean;
  apply?: () => void;
}

const BASE_SCHEMA = [
  'CREATE TABLE nopk (a, b, c)',
  'CREATE TABLE wr (k1 TEXT NOT NULL, k2 INTEGER NOT NULL, v BLOB, PRIMARY KEY (k1, k2)) WITHOUT ROWID',
  'CREATE TABLE auto (id INTEGER PRIMARY KEY AUTOINCREMENT, created TEXT DEFAULT CURRENT_TIMESTAMP, r INTEGER DEFAULT (random()), payload BLOB)',
  'CREATE TABLE comp (a INTEGER, b TEXT, c REAL, PRIMARY KEY (a, b))',
  'CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT, noise, what TEXT)',
  "CREATE TRIGGER auto_ai AFTER INSERT ON auto BEGIN INSERT INTO audit (at, noise, what) VALUES (datetime('now'), random(), 'insert ' || new.id); END",
  "CREATE TRIGGER auto_ad AFTER DELETE ON auto BEGIN INSERT INTO audit (at, noise, what) VALUES (strftime('%Y-%m-%d %H:%M:%f', 'now'), random(), 'delete ' || old.id); END",
  "CREATE TRIGGER comp_au AFTER UPDATE ON comp BEGIN INSERT INTO audit (at, noise, what) VALUES (unixepoch(), randomblob(8), 'update ' || new.a); END",
];

function nextStep(rng: () => number, model: Model): Step {
  const int = (min: number, max: number) => min + Math.floor(rng() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rng() * items.length)]!;
  const s = (sql: string, ...params: unknown[]): Statement => ({ sql, params });
  const value = () => pick<unknown>([int(-1000, 1000), `t${int(0, 50)}`, rng() * 100, null, 2 ** 40 + int(0, 9)]);
  const simple = (): Statement =>
    pick([
      () => s('INSERT INTO nopk (a, b, c) VALUES (?, random(), randomblob(?))', value(), int(0, 64)),
      () => s('INSERT INTO nopk (a, b, c) SELECT a, b + 1, c FROM nopk ORDER BY random() LIMIT 3'),
      () => s('DELETE FROM nopk WHERE rowid IN (SELECT rowid FROM nopk ORDER BY random() LIMIT 2)'),
      () => s('INSERT OR REPLACE INTO wr (k1, k2, v) VALUES (?, ?, randomblob(16))', `k${int(0, 9)}`, int(0, 20)),
      () => s('DELETE FROM wr WHERE k2 % 5 = ?', int(0, 4)),
      () => s('INSERT INTO auto (payload) VALUES (randomblob(?))', int(0, 300)),
      () => s('DELETE FROM auto WHERE id = (SELECT id FROM auto ORDER BY random() LIMIT 1)'),
      () => s('INSERT INTO comp (a, b, c) VALUES (?, ?, ?) ON CONFLICT (a, b) DO UPDATE SET c = c + excluded.c', int(0, 20), pick(['x', 'y', 'z']), rng()),
      () => s('UPDATE comp SET c = c * 2 + (random() % 7) WHERE a = ?', int(0, 20)),
    ])();
  const roll = rng();
  if (roll < 0.45) return { kind: 'write', statements: [simple()] };
  if (roll < 0.57) return { kind: 'batch', statements: Array.from({ length: int(2, 5) }, simple) };
  if (roll < 0.62) {
    const key = -1 - model.next++;
    return { kind: 'failing batch', fails: true, statements: [simple(), s('INSERT INTO comp (a, b, c) VALUES (?, ?, 0)', key, 'dup'), s('INSERT INTO comp (a, b, c) VALUES (?, ?, 1)', key, 'dup')] };
  }
  if (roll < 0.67) {
    return { kind: 'exec', exec: ['INSERT INTO auto (payload) VALUES (randomblob(8))', `INSERT INTO nopk (a, b, c) VALUES ('exec', random(), datetime('now'))`, 'UPDATE wr SET v = randomblob(4) WHERE k2 = 1'].join('\n') };
  }
  if (roll < 0.69) return { kind: 'large blob', statements: [s("INSERT INTO nopk (a, b, c) VALUES ('big', ?, randomblob(?))", int(0, 9), int(50_000, 300_000))] };
  // DDL on scratch tables.
  const table = model.scratch.length > 0 ? pick(model.scratch) : undefined;
  const ddl = rng();
  if (!table || (ddl < 0.15 && model.scratch.length < 5)) {
    const name = `s${model.next++}`;
    const created: Scratch = { name, extras: [], index: null, trigger: null };
    const apply = () => void model.scratch.push(created);
    if (rng() < 0.3) return { kind: 'create table as', statements: [s(`CREATE TABLE ${name} AS SELECT a AS x, b AS y, c AS t FROM nopk`)], apply };
    return { kind: 'create table', statements: [s(`CREATE TABLE ${name} (x INTEGER, y TEXT DEFAULT (hex(randomblob(4))), t TEXT DEFAULT CURRENT_TIMESTAMP)`)], apply };
  }
  if (ddl < 0.4) return { kind: 'scratch insert', statements: [s(`INSERT INTO ${table.name} (x) VALUES (random())`), s(`INSERT INTO ${table.name} (x, y) VALUES (?, ?)`, int(0, 99), `y${int(0, 9)}`)] };
  if (ddl < 0.5) {
    const column = `z${model.next++}`;
    return { kind: 'add column', statements: [s(`ALTER TABLE ${table.name} ADD COLUMN ${column} REAL DEFAULT 0.5`)], apply: () => void table.extras.push(column) };
  }
  if (ddl < 0.58 && table.extras.length > 0) {
    const from = pick(table.extras);
    const to = `${from}r`;
    return { kind: 'rename column', statements: [s(`ALTER TABLE ${table.name} RENAME COLUMN ${from} TO ${to}`)], apply: () => void (table.extras[table.extras.indexOf(from)] = to) };
  }
  if (ddl < 0.66 && table.extras.length > 0) {
    const column = pick(table.extras);
    return { kind: 'drop column', statements: [s(`ALTER TABLE ${table.name} DROP COLUMN ${column}`)], apply: () => void table.extras.splice(table.extras.indexOf(column), 1) };
  }
  if (ddl < 0.72) {
    const to = `${table.name.split('_')[0]}_r${model.next++}`;
    return { kind: 'rename table', statements: [s(`ALTER TABLE ${table.name} RENAME TO ${to}`)], apply: () => void (table.name = to) };
  }
  if (ddl < 0.8) {
    if (table.index) {
      const index = table.index;
      return { kind: 'drop index', statements: [s(`DROP INDEX ${index}`)], apply: () => void (table.index = null) };
    }
    const index = `i${model.next++}`;
    return { kind: 'create index', statements: [s(`CREATE INDEX ${index} ON ${table.name} (x, y)`)], apply: () => void (table.index = index) };
  }
  if (ddl < 0.9) {
    if (table.trigger) {
      const trigger = table.trigger;
      return { kind: 'drop trigger', statements: [s(`DROP TRIGGER ${trigger}`)], apply: () => void (table.trigger = null) };
    }
    const trigger = `tr${model.next++}`;
    return {
      kind: 'create trigger',
      statements: [s(`CREATE TRIGGER ${trigger} AFTER INSERT ON ${table.name} BEGIN INSERT INTO audit (at, noise, what) VALUES (datetime('now'), random(), 'scratch ' || new.x); END`)],
      apply: () => void (table.trigger = trigger),
    };
  }
  return { kind: 'drop table', statements: [s(`DROP TABLE ${table.name}`)], apply: () => void model.scratch.splice(model.scratch.indexOf(table), 1) };
}

/** A value as canonical text (bigint mode: integers are exact). */
function canonical(value: unknown): string {
  if (typeof value === 'bigint') return `i${value}`;
  if (Array.isArray(value)) return `x'${Buffer.from(value as number[]).toString('hex')}'`;
  return JSON.stringify(value);
}

function rowText(row: unknown[]): string {
  const text = row.map(canonical).join(' | ');
  return text.length <= 200 ? text : `${text.slice(0, 120)}… [${text.length} chars, sha256 ${createHash('sha256').update(text).digest('hex').slice(0, 24)}]`;
}

/** Every schema object and every table's rows (sorted), read through `session`; checks who served each read. */
async function contentOf(session: D1DatabaseSession, node: number): Promise<Map<string, string[]>> {
  const content = new Map<string, string[]>();
  const servedBy = new Set<string>();
  const read = async (sql: string): Promise<unknown[][]> => {
    const r: D1Result<Record<string, unknown>> = await session.prepare(sql).run();
    servedBy.add(String(r.meta.served_by));
    return r.results.map((row) => Object.values(row));
  };
  const schema = await read("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY type, name");
  content.set('sqlite_master', schema.map(rowText));
  for (const [type, name, , sql] of schema as [string, string, string, string | null][]) {
    if (type !== 'table') continue;
    const withoutRowid = /WITHOUT\s+ROWID/i.test(sql ?? '');
    const rows = await read(withoutRowid ? `SELECT * FROM "${name}"` : `SELECT rowid AS _rowid_, * FROM "${name}"`);
    content.set(`table ${name}`, rows.map(rowText).sort());
  }
  assert.deepEqual([...servedBy], [names[node]], `every read of ${names[node]}'s copy was served by ${names[node]} itself`);
  return content;
}

const SEED = process.env.DIONE_CLUSTER_SEED ? Number(process.env.DIONE_CLUSTER_SEED) : randomBytes(4).readUInt32LE(0);

test(`replica = primary: a random workload through random nodes leaves every copy equal to the primary (seed ${SEED})`, async (t) => {
  t.diagnostic(`seed ${SEED} (replay with DIONE_CLUSTER_SEED=${SEED})`);
  const rng = mulberry32(SEED);
  await clusterOf().createDatabase(2, 'mix');
  const dbs: D1Database[] = [0, 1, 2].map((i) => clusterOf().client(i, 'mix', { intMode: 'bigint' }));
  const sessions = dbs.map((db) => db.withSession());
  await dbs[Math.floor(rng() * 3)]!.exec(BASE_SCHEMA.join('\n'));
  const model: Model = { scratch: [], next: 0 };
  const counts = new Map<string, { ok: number; failed: number }>();
  const started = Date.now();
  let ops = 0;
  const OPS = 160;
  for (; ops < OPS && Date.now() - started < 30_000; ops++) {
    const node = Math.floor(rng() * 3);
    // Writes go through the node's plain binding or through one of its sessions (still the primary's).
    const target: D1Database | D1DatabaseSession = rng() < 0.6 ? dbs[node]! : sessions[node]!;
    if (rng() < 0.1) {
      // A read on the node's own copy, now and then.
      const r = await sessions[node]!.prepare('SELECT count(*) AS n FROM nopk').run();
      assert.equal(r.results.length, 1);
      continue;
    }
    const step = nextStep(rng, model);
    let error: unknown;
    try {
      if (step.exec !== undefined) await dbs[node]!.exec(step.exec);
      else if (step.statements!.length === 1) {
        const [only] = step.statements!;
        await target
          .prepare(only!.sql)
          .bind(...only!.params)
          .run();
      } else await target.batch(step.statements!.map((q) => target.prepare(q.sql).bind(...q.params)));
    } catch (e) {
      error = e;
    }
    const where = `seed ${SEED}, op ${ops} (${step.kind} through ${names[node]}): ${JSON.stringify(step.statements ?? step.exec).slice(0, 300)}`;
    if (step.fails) assert.ok(error, `${where}: meant to fail`);
    else if (error) assert.fail(`${where}: ${(error as Error).message}`);
    else step.apply?.();
    const c = counts.get(step.kind) ?? { ok: 0, failed: 0 };
    c[error ? 'failed' : 'ok']++;
    counts.set(step.kind, c);
  }
  t.diagnostic(
    `${ops} operations in ${Date.now() - started} ms: ${[...counts]
      .sort()
      .map(([k, c]) => `${k} ${c.ok}${c.failed ? `/${c.failed} failed` : ''}`)
      .join(', ')}`,
  );

  // The primary's bookmark and content.
  const atPrimary = dbs[0]!.withSession('first-primary');
  const head = await atPrimary.prepare(PROBE).run();
  const primary = names.indexOf(String(head.meta.served_by));
  assert.ok(primary >= 0 && head.meta.served_by_primary === true, JSON.stringify(head.meta));
  const final = atPrimary.getBookmark()!;
  const expected = await contentOf(dbs[primary]!.withSession(final), primary);
  assert.ok(expected.size > 5, 'the primary has the tables');

  for (const i of [0, 1, 2]) {
    // Bounded wait until this node's copy has the final commit (a bookmark read would otherwise go to the primary).
    const waited = Date.now();
    const reached = await within(15_000, async () => {
      const probe = dbs[i]!.withSession('first-unconstrained');
      await probe.prepare(PROBE).run();
      return probe.getBookmark()! >= final ? true : undefined;
    });
    if (!reached) {
      const probe = dbs[i]!.withSession('first-unconstrained');
      const r = await probe.prepare(PROBE).run();
      assert.fail(`${names[i]}'s copy does not reach the final bookmark ${final} (primary ${names[primary]}) within 15 s: it is at ${probe.getBookmark()} (served by ${r.meta.served_by})\n${clusterOf().nodes[i]!.stderr().slice(-3000)}`);
    }
    const session = dbs[i]!.withSession(final);
    const content = await contentOf(session, i);
    assert.equal(session.getBookmark(), final, `${names[i]}: the session's bookmark after reading is the final one`);
    for (const key of new Set([...expected.keys(), ...content.keys()])) {
      assert.deepEqual(content.get(key), expected.get(key), `seed ${SEED}: ${names[i]}'s ${key} differs from the primary's (${names[primary]})`);
    }
    t.diagnostic(`${names[i]}${i === primary ? ' (primary)' : ''}: ${content.size - 1} tables equal to the primary's, copy caught up ${Date.now() - waited} ms after the workload`);
  }
  // The comparison does see a difference: one more commit, and the old content no longer matches.
  await dbs[primary]!.prepare("INSERT INTO nopk (a, b, c) VALUES ('control', 1, 2)").run();
  const after = await contentOf(dbs[primary]!.withSession('first-primary'), primary);
  assert.notDeepEqual(after.get('table nopk'), expected.get('table nopk'), 'negative control: a new row changes the content');
});

// A follower's answer to a read that touches no table (SELECT 1) carries its copy's bookmark: the
// engine itself notices commits applied to the copy only when a statement reads the file, so a
// client polling a follower's progress with such reads would otherwise never see it move.
test('a follower answers a read that touches no table with its copy\'s bookmark', async () => {
  assert.ok(shopPrimary >= 0, 'the first test found the primary');
  const follower = [0, 1, 2].find((i) => i !== shopPrimary)!;
  const db = clusterOf().client(follower, 'shop');
  const writer = clusterOf().client(shopPrimary, 'shop').withSession('first-primary');
  await writer.prepare('INSERT INTO seen (k, via) VALUES (?, ?)').bind('no-table', 'select-1').run();
  const target = writer.getBookmark()!;
  let last: string | null = null;
  const reached = await within(
    5000,
    async () => {
      const session = db.withSession('first-unconstrained');
      await session.prepare('SELECT 1').run();
      last = session.getBookmark();
      return last! >= target ? true : undefined;
    },
    100,
  );
  const probe = db.withSession('first-unconstrained');
  await probe.prepare(PROBE).run();
  assert.ok(reached, `SELECT 1 on follower ${names[follower]} answered with bookmark ${last} for 5 s after the write ${target}; a read of sqlite_master answers ${probe.getBookmark()}`);
});
