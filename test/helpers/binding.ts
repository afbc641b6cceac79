// Helpers for the binding-*.test.ts files: fresh temp directories (removed after the file's
// tests), assertions that a call rejects asynchronously instead of throwing, and a snapshot of a
// database's whole content through the public binding.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import type { D1Database } from '../../src/index.ts';

const created: string[] = [];
const removeCreated = () => {
  for (const dir of created.splice(0)) rmSync(dir, { recursive: true, force: true });
};
// Registered when the test file imports this module, so it runs once after all of its tests;
// the exit handler also covers a run that ends early.
after(removeCreated);
process.on('exit', removeCreated);

/** A new empty directory under the OS temp dir, deleted when the test file finishes. */
export function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'dione-binding-'));
  created.push(dir);
  return dir;
}

/**
 * Calls `call`, requires that it does not throw synchronously and that it returns a promise
 * rejecting with an Error whose message matches `message`. Returns the error.
 */
export async function rejectsWith(call: () => unknown, message: RegExp): Promise<Error> {
  let returned: unknown;
  try {
    returned = call();
  } catch (e) {
    assert.fail(`threw synchronously instead of rejecting: ${e instanceof Error ? e.message : String(e)}`);
  }
  assert.ok(returned instanceof Promise, 'expected a Promise');
  let error: unknown;
  await returned.then(
    (value) => assert.fail(`expected a rejection matching ${message}, resolved with ${describe(value)}`),
    (e: unknown) => {
      error = e;
    },
  );
  assert.ok(error instanceof Error, `rejected with a non-Error: ${String(error)}`);
  assert.match(error.message, message);
  return error;
}

function describe(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))?.slice(0, 300) ?? String(value);
}

export interface Snapshot {
  schema: unknown[];
  tables: Record<string, unknown[]>;
}

/**
 * Every schema object and every row of every table, read through the binding. Reserved `_cf_`
 * tables (D1 keeps its own bookkeeping there) are not user content.
 */
export async function snapshot(db: D1Database): Promise<Snapshot> {
  const schema = await db
    .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY type, name")
    .raw();
  const tables: Record<string, unknown[]> = {};
  for (const [type, name] of schema as [string, string][]) {
    if (type !== 'table' || name.startsWith('sqlite_')) continue;
    tables[name] = await db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}" ORDER BY rowid`).raw();
  }
  return { schema, tables };
}

/** The database still reads and writes: a scratch table round-trips a row, then is dropped. */
export async function assertWorks(db: D1Database): Promise<void> {
  const name = `works_${Math.random().toString(36).slice(2, 10)}`;
  await db.prepare(`CREATE TABLE ${name} (v TEXT)`).run();
  await db.prepare(`INSERT INTO ${name} (v) VALUES (?)`).bind('alive').run();
  assert.equal(await db.prepare(`SELECT v FROM ${name}`).first('v'), 'alive');
  await db.prepare(`DROP TABLE ${name}`).run();
}
