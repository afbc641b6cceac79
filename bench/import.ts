// npm run bench:import: a SQL dump through `dione serve`'s import API (init, upload, ingest, polls),
// as `wrangler d1 execute --remote --file` sends it, next to raw better-sqlite3 running the same
// file in one transaction in this process (the baseline). Prints the import's time (median of the
// rounds), its ratio to the baseline's, and the server's peak resident memory (VmHWM), which must
// not grow with the file: the import streams through one transaction a window of statements at a time.
// Reproduce: npm run bench:import [-- --rows 600000 --rounds 3 --server-flags "--no-history"]
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { buildNote, fmt, machine, median, numberFlag, serverFlags, serverFlagsArgument, startDione, stopAll } from './harness.ts';

const ROWS = numberFlag('rows', 600_000);
const ROUNDS = numberFlag('rounds', 3);
const FLAGS = serverFlags();

const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-bench-import-'));
const file = path.join(dir, 'dump.sql');
const lines = ['CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n REAL);'];
for (let i = 0; i < ROWS; i++) lines.push(`INSERT INTO t VALUES (${i}, 'name number ${i} with some text', ${i * 1.5});`);
writeFileSync(file, `${lines.join('\n')}\n`);
lines.length = 0;
const size = statSync(file).size;
const sql = readFileSync(file);
const etag = createHash('md5').update(sql).digest('hex');

function rawImport(round: number): number {
  const db = new Database(path.join(dir, `raw-${round}.sqlite`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  const started = performance.now();
  db.exec('BEGIN');
  db.exec(sql.toString('utf8'));
  db.exec('COMMIT');
  const ms = performance.now() - started;
  db.close();
  return ms;
}

const peakRss = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN) / 1024;

try {
  const server = await startDione(FLAGS);
  const api = `${server.url}/client/v4/accounts/${server.accountId}/d1/database`;
  const post = async (url: string, body: unknown) => {
    const response = await fetch(url, { method: 'POST', headers: server.headers, body: JSON.stringify(body), signal: AbortSignal.timeout(600_000) });
    const json = (await response.json()) as { success: boolean; result: any; errors?: unknown };
    if (!json.success) throw new Error(`${url}: ${JSON.stringify(json.errors)}`);
    return json.result;
  };
  const idle = peakRss(server.pid);
  const raw: number[] = [];
  const dione: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    raw.push(rawImport(round));
    const name = `import-${round}`;
    await post(api, { name });
    const started = performance.now();
    const init = await post(`${api}/${name}/import`, { action: 'init', etag });
    const upload = await fetch(init.upload_url, { method: 'PUT', body: sql });
    if (upload.status !== 200) throw new Error(`upload: ${upload.status} ${await upload.text()}`);
    let state = await post(`${api}/${name}/import`, { action: 'ingest', etag, filename: init.filename });
    while (state.status === 'active') state = await post(`${api}/${name}/import`, { action: 'poll', current_bookmark: state.at_bookmark });
    if (state.status !== 'complete' || state.result.num_queries !== ROWS + 1) throw new Error(`import: ${JSON.stringify(state).slice(0, 500)}`);
    dione.push(performance.now() - started);
  }
  const peak = peakRss(server.pid);
  await server.stop();
  const a = median(raw);
  const b = median(dione);
  console.log(`dione bench:import: a dump of ${fmt(ROWS)} inserts (${fmt(size / 2 ** 20, 1)} MiB), ${ROUNDS} rounds, medians`);
  console.log(`machine: ${machine()}; ${buildNote()}`);
  console.log(`better-sqlite3, one transaction in process: ${fmt(a / 1000, 1)} s (${fmt(ROWS / (a / 1000))} statements/s)`);
  console.log(`dione serve import API (upload, ingest, polls): ${fmt(b / 1000, 1)} s (${fmt(ROWS / (b / 1000))} statements/s), ratio ${(a / b).toFixed(2)}×`);
  console.log(`server peak RSS: ${fmt(peak)} MiB (${fmt(idle)} MiB before the first import)`);
  console.log(`reproduce: npm run bench:import -- --rows ${ROWS} --rounds ${ROUNDS}${serverFlagsArgument(FLAGS)}`);
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
