// npm run bench: Dione's embedded binding next to raw better-sqlite3 on the same data (100k rows),
// both on a WAL file with synchronous=FULL. Prints ops/s (median of rounds) and the ratio.
// Reproduce: npm run bench [-- --rounds 5 --seconds 0.5]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { open } from '../src/index.ts';

const argument = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const ROUNDS = argument('rounds', 5);
const SECONDS = argument('seconds', 0.5);
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

/** Runs `op` repeatedly for SECONDS (at least a few times), returns ops/s. */
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
seed(rawFile);
seed(dioneFile);

const raw = new Database(rawFile);
raw.pragma('journal_mode = WAL');
raw.pragma('synchronous = FULL');
const db = open(dioneFile);

let nextId = ROWS + 1;
const rand = (i: number) => ((i * 7919) % ROWS) + 1;

const rawPoint = raw.prepare('SELECT * FROM items WHERE id = ?');
const rawRange = raw.prepare('SELECT * FROM items WHERE id BETWEEN ? AND ?');
const rawInsert = raw.prepare('INSERT INTO items (id, name, price, qty) VALUES (?, ?, ?, ?)');
const rawBatch = raw.transaction((base: number) => {
  for (let k = 0; k < 100; k++) rawInsert.run(base + k, 'batch', 1.5, k);
});

const workloads: { name: string; raw: (i: number) => unknown; dione: (i: number) => unknown }[] = [
  {
    name: 'point select by primary key',
    raw: (i) => rawPoint.get(rand(i)),
    dione: (i) => db.prepare('SELECT * FROM items WHERE id = ?').bind(rand(i)).first(),
  },
  {
    name: 'range scan, 1000 rows',
    raw: (i) => rawRange.all(rand(i) % 90_000, (rand(i) % 90_000) + 999),
    dione: (i) => db.prepare('SELECT * FROM items WHERE id BETWEEN ? AND ?').bind(rand(i) % 90_000, (rand(i) % 90_000) + 999).all(),
  },
  {
    name: 'single-row insert (durable)',
    raw: () => rawInsert.run(nextId++, 'new', 2.5, 1),
    dione: () => db.prepare('INSERT INTO items (id, name, price, qty) VALUES (?, ?, ?, ?)').bind(nextId++, 'new', 2.5, 1).run(),
  },
  {
    name: '100-row batch',
    raw: () => {
      rawBatch(nextId);
      nextId += 100;
    },
    dione: () => {
      const stmt = db.prepare('INSERT INTO items (id, name, price, qty) VALUES (?, ?, ?, ?)');
      const base = nextId;
      nextId += 100;
      return db.batch(Array.from({ length: 100 }, (_, k) => stmt.bind(base + k, 'batch', 1.5, k)));
    },
  },
];

console.log(`dione bench: ${ROWS} rows, ${ROUNDS} rounds of ${SECONDS}s each, median ops/s`);
console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`);
console.log(`${'workload'.padEnd(30)} ${'better-sqlite3'.padStart(14)} ${'dione'.padStart(12)} ${'ratio'.padStart(7)}`);
for (const w of workloads) {
  const rawRuns: number[] = [];
  const dioneRuns: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    rawRuns.push(await measure(w.raw));
    dioneRuns.push(await measure(w.dione));
  }
  const a = median(rawRuns);
  const b = median(dioneRuns);
  console.log(`${w.name.padEnd(30)} ${a.toFixed(0).padStart(14)} ${b.toFixed(0).padStart(12)} ${(b / a).toFixed(2).padStart(6)}×`);
}
console.log('reproduce: npm run bench -- --rounds 5 --seconds 0.5');
raw.close();
db.close();
rmSync(dir, { recursive: true, force: true });
