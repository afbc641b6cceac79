// npm run bench: Dione's embedded binding next to raw better-sqlite3 on the same data (100k rows),
// both on a WAL file, every acknowledged write durable. Prints ops/s (median of rounds) and the ratio
// to raw, for:
//   - dione: open(file), the embedded binding (a write is answered once the WAL is synced; raw runs
//     synchronous=FULL, which syncs it in each commit);
//   - dione history: open(file, { history: true }), the write log on (a write is answered once its
//     log record is synced; SQLite itself runs with synchronous=NORMAL under it);
//   - dione serve: the same calls through dione/client to `dione serve` (its own process, default
//     flags, so with its write log), one call at a time over one keep-alive HTTP connection (the
//     last workload's 16 calls at once, each its own HTTP request).
// The last workload is 16 single-row inserts issued together (an op is the 16): raw better-sqlite3
// runs them one after another, each with its own sync; Dione's answers share one sync.
// Every column runs the same operations in the same rounds, against the same raw baseline. A last
// line gives the ceiling of the durable writes: raw better-sqlite3 that also writes a number into the
// header in each transaction, as Dione's commit sequence does (one more WAL frame per commit).
//
// The baseline is measured the way Dione is: each operation is awaited in the same loop (`await` of
// raw better-sqlite3's plain return value costs one microtask, Dione's promise at least one), so the
// ratio is Dione's own work, not the loop's. Calling raw better-sqlite3 synchronously, without the
// await, would make its column faster still by that microtask (about 0.3 µs on a point select).
// Reproduce: npm run bench [-- --rounds 5 --seconds 0.5 --history 1 --serve 1]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { currentBuildTime } from '../bin/build-freshness.js';
import type { D1Database } from '../src/index.ts';
import { buildNote, type Dione, startDione, stopAll } from './harness.ts';

// The embedded columns run what a user's program runs, the compiled build, when it is current (as
// bin/dione.js does); else the sources through tsx, whose compiled closures cost more per call.
const compiled = currentBuildTime() !== undefined;
const { open } = (await import(compiled ? '../dist/index.js' : '../src/index.ts')) as typeof import('../src/index.ts');
const { connect } = (await import(compiled ? '../dist/client.js' : '../src/client.ts')) as typeof import('../src/client.ts');

const argument = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROUNDS = argument('rounds', 5);
const SECONDS = argument('seconds', 0.5);
const HISTORY = argument('history', 1) > 0;
const SERVE = argument('serve', 1) > 0;
const ROWS = 100_000;

const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-bench-'));
const SCHEMA = 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, qty INTEGER)';

function seed(file: string) {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(SCHEMA);
  const insert = db.prepare('INSERT INTO items (id, name, price, qty) VALUES (?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = 1; i <= ROWS; i++) insert.run(i, `item ${i}`, i * 0.25, i % 100);
  })();
  db.close();
}

/** The same rows through the server's REST API (one statement). */
async function seedServer(dione: Dione): Promise<void> {
  const api = `${dione.url}/client/v4/accounts/${dione.accountId}/d1/database`;
  const post = async (url: string, body: unknown) => {
    const response = await fetch(url, { method: 'POST', headers: dione.headers, body: JSON.stringify(body), signal: AbortSignal.timeout(120_000) });
    if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  };
  await post(api, { name: 'bench' });
  await post(`${api}/bench/query`, { sql: SCHEMA });
  const rows = `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS}) INSERT INTO items SELECT i, 'item ' || i, i * 0.25, i % 100 FROM n`;
  await post(`${api}/bench/query`, { sql: rows });
}

/** Runs `op` repeatedly for SECONDS (at least a few times), each call awaited, returns ops/s. */
async function measure(op: (i: number) => unknown): Promise<number> {
  let n = 0;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  while (performance.now() < deadline || n < 5) {
    for (let k = 0; k < 16; k++) await op(n++);
  }
  return (n / (performance.now() - start)) * 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const rawFile = path.join(dir, 'raw.sqlite');
const dioneFile = path.join(dir, 'dione.sqlite');
const historyFile = path.join(dir, 'history.sqlite');
seed(rawFile);
seed(dioneFile);
if (HISTORY) seed(historyFile);

const raw = new Database(rawFile);
raw.pragma('journal_mode = WAL');
raw.pragma('synchronous = FULL');

// The ceiling of Dione's durable writes: raw better-sqlite3 that also writes a number into the
// database header in each transaction, as Dione's commit sequence (user_version/application_id,
// page 1) does. That page is one more WAL frame per commit, which plain inserts into a large table
// rarely write otherwise.
const headerFile = path.join(dir, 'header.sqlite');
seed(headerFile);
const header = new Database(headerFile);
header.pragma('journal_mode = WAL');
header.pragma('synchronous = FULL');
let headerNumber = 0;
const setHeader = () => header.pragma(`user_version = ${++headerNumber}`);

let server: Dione | undefined;
try {
  if (SERVE) {
    server = await startDione([]);
    await seedServer(server);
  }
  // Each column inserts its own ids: every database sees the same sequence of operations.
  const columns: { name: string; db: D1Database; nextId: number }[] = [{ name: 'dione', db: open(dioneFile), nextId: ROWS + 1 }];
  if (HISTORY) columns.push({ name: 'dione history', db: open(historyFile, { history: true }), nextId: ROWS + 1 });
  if (server) {
    const db = connect({ url: server.url, token: server.token, database: 'bench', maxCallsPerRequest: 1 });
    columns.push({ name: 'dione serve', db, nextId: ROWS + 1 });
  }

  let rawNextId = ROWS + 1;
  let headerNextId = ROWS + 1;
  const headerInsert = header.prepare('INSERT INTO items (id, name, price, qty) VALUES (?, ?, ?, ?)');
  const headerBatch = header.transaction((base: number) => {
    for (let k = 0; k < 100; k++) headerInsert.run(base + k, 'batch', 1.5, k);
    setHeader();
  });
  const headerSingle = header.transaction(() => {
    headerInsert.run(headerNextId++, 'new', 2.5, 1);
    setHeader();
  });
  const rand = (i: number) => ((i * 7919) % ROWS) + 1;

  const rawPoint = raw.prepare('SELECT * FROM items WHERE id = ?');
  const rawRange = raw.prepare('SELECT * FROM items WHERE id BETWEEN ? AND ?');
  const rawInsert = raw.prepare('INSERT INTO items (id, name, price, qty) VALUES (?, ?, ?, ?)');
  const rawBatch = raw.transaction((base: number) => {
    for (let k = 0; k < 100; k++) rawInsert.run(base + k, 'batch', 1.5, k);
  });

  type Column = (typeof columns)[number];
  const workloads: { name: string; raw: (i: number) => unknown; ceiling?: () => unknown; dione: (c: Column) => (i: number) => unknown }[] = [
    {
      name: 'point select by primary key',
      raw: (i) => rawPoint.get(rand(i)),
      dione:
        ({ db }) =>
        (i) =>
          db.prepare('SELECT * FROM items WHERE id = ?').bind(rand(i)).first(),
    },
    {
      name: 'range scan, 1000 rows',
      raw: (i) => rawRange.all(rand(i) % 90_000, (rand(i) % 90_000) + 999),
      dione:
        ({ db }) =>
        (i) =>
          db
            .prepare('SELECT * FROM items WHERE id BETWEEN ? AND ?')
            .bind(rand(i) % 90_000, (rand(i) % 90_000) + 999)
            .all(),
    },
    {
      name: 'single-row insert (durable)',
      raw: () => rawInsert.run(rawNextId++, 'new', 2.5, 1),
      ceiling: () => headerSingle(),
      dione: (c) => () =>
        c.db
          .prepare('INSERT INTO items (id, name, price, qty) VALUES (?, ?, ?, ?)')
          .bind(c.nextId++, 'new', 2.5, 1)
          .run(),
    },
    {
      name: '100-row batch',
      raw: () => {
        rawBatch(rawNextId);
        rawNextId += 100;
      },
      ceiling: () => {
        headerBatch(headerNextId);
        headerNextId += 100;
      },
      dione: (c) => () => {
        const stmt = c.db.prepare('INSERT INTO items (id, name, price, qty) VALUES (?, ?, ?, ?)');
        const base = c.nextId;
        c.nextId += 100;
        return c.db.batch(Array.from({ length: 100 }, (_, k) => stmt.bind(base + k, 'batch', 1.5, k)));
      },
    },
    {
      // Callers that write at the same time: raw better-sqlite3 commits (and syncs) each in turn;
      // Dione's answers wait for one shared sync of the WAL (or of the log, with history).
      name: '16 single-row inserts at once',
      raw: () => {
        for (let k = 0; k < 16; k++) rawInsert.run(rawNextId++, 'new', 2.5, 1);
      },
      ceiling: () => {
        for (let k = 0; k < 16; k++) headerSingle();
      },
      dione: (c) => () =>
        Promise.all(
          Array.from({ length: 16 }, () =>
            c.db
              .prepare('INSERT INTO items (id, name, price, qty) VALUES (?, ?, ?, ?)')
              .bind(c.nextId++, 'new', 2.5, 1)
              .run(),
          ),
        ),
    },
  ];

  console.log(`dione bench: ${ROWS} rows, ${ROUNDS} rounds of ${SECONDS}s each, median ops/s; ratio: to better-sqlite3`);
  console.log(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}${server ? `; ${buildNote()}` : ''}`,
  );
  console.log(
    compiled
      ? 'the embedded columns run the compiled build (dist/)'
      : 'the embedded columns run the TypeScript sources through tsx (dist/ is missing or older than a source: `npm run build` to measure the compiled build)',
  );
  const cell = (name: string, width: number) => `${name.padStart(width)} ${'ratio'.padStart(6)}`;
  console.log(`${'workload'.padEnd(30)} ${'better-sqlite3'.padStart(14)} ${columns.map((c) => cell(c.name, Math.max(12, c.name.length))).join(' ')}`);
  const ceilings: string[] = [];
  for (const w of workloads) {
    const rawRuns: number[] = [];
    const ceilingRuns: number[] = [];
    const runs = columns.map(() => [] as number[]);
    const ops = columns.map((c) => w.dione(c));
    for (let r = 0; r < ROUNDS; r++) {
      rawRuns.push(await measure(w.raw));
      if (w.ceiling) ceilingRuns.push(await measure(w.ceiling));
      for (let k = 0; k < columns.length; k++) runs[k]!.push(await measure(ops[k]!));
    }
    const a = median(rawRuns);
    if (w.ceiling) ceilings.push(`${w.name} ${(median(ceilingRuns) / a).toFixed(2)}×`);
    const cells = columns.map((c, k) => {
      const b = median(runs[k]!);
      return `${b.toFixed(0).padStart(Math.max(12, c.name.length))} ${(b / a).toFixed(2).padStart(5)}×`;
    });
    console.log(`${w.name.padEnd(30)} ${a.toFixed(0).padStart(14)} ${cells.join(' ')}`);
  }
  console.log(
    `ceiling: raw better-sqlite3 writing a number into the header in each transaction, as Dione's commit sequence does: ${ceilings.join(', ')} of raw better-sqlite3`,
  );
  console.log(`reproduce: npm run bench -- --rounds ${ROUNDS} --seconds ${SECONDS}${HISTORY ? '' : ' --history 0'}${SERVE ? '' : ' --serve 0'}`);
  raw.close();
  header.close();
  for (const c of columns) await c.db.close();
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
