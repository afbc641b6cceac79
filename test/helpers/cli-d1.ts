// Running `dione d1 …` as a child process (async, so an in-process test server keeps answering),
// and reading a whole database table by table for comparisons.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { D1Database } from '../../src/index.ts';
import { root } from './paths.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Asserts the command succeeded (its output in the message otherwise); returns the run. */
export function ok(r: CliRun, what: string): CliRun {
  assert.equal(r.code, 0, `${what}:\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Asserts the command failed with exit code 1 and a stderr matching `expected`. */
export function failed(r: CliRun, expected: RegExp, what: string): void {
  assert.equal(r.code, 1, `${what}:\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, expected, `${what}:\n${r.stderr}`);
}

export function dione(cwd: string, args: string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(root, 'bin/dione.js'), ...args],
      { cwd, env: { ...process.env, DIONE_URL: undefined, DIONE_TOKEN: undefined, NO_COLOR: '1', ...env }, timeout: 120_000, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A temp project directory with a wrangler config; removed by the returned cleanup. */
export function project(files: Record<string, string>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'dione-d1-'));
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, name);
    rmSync(file, { force: true });
    writeFileSync(file, text);
  }
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Every table's rows (ordered by all columns), keyed by table name; _cf_ tables left out. */
export async function contents(db: D1Database, { skip = [] as string[] } = {}): Promise<Record<string, unknown[][]>> {
  const tables = await db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name").raw<[string]>();
  const out: Record<string, unknown[][]> = {};
  for (const [name] of tables) {
    if (skip.includes(name)) continue;
    const cols = await db.prepare(`SELECT count(*) FROM pragma_table_info('${name.replaceAll("'", "''")}')`).raw<[number]>();
    const order = Array.from({ length: cols[0]![0] }, (_, i) => i + 1).join(', ');
    out[name] = await db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}" ORDER BY ${order}`).raw();
  }
  return out;
}
