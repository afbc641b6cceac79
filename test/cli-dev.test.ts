// `dione dev` (what `npm start` runs): a local database under ./.dione and a SQL prompt.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { open } from '../src/index.ts';
import { root } from './helpers/paths.ts';

function dione(cwd: string, args: string[], input: string) {
  return spawnSync(process.execPath, [path.join(root, 'bin/dione.js'), ...args], { cwd, input, encoding: 'utf8', timeout: 60_000 });
}

test('dione dev runs piped SQL against ./.dione/dev.sqlite and keeps the data', (t) => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'dione-cli-'));
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  const script = [
    'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);',
    "INSERT INTO notes (body) VALUES ('first'),",
    "  ('second; with a semicolon') RETURNING id;",
    'SELECT body FROM notes ORDER BY id;',
  ].join('\n');
  const run = dione(cwd, ['dev'], script);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /│ second; with a semicolon │/);
  assert.match(run.stdout, /ok: 2 row\(s\), changes 2, last_row_id 2/);
  const file = path.join(cwd, '.dione', 'dev.sqlite');
  assert.ok(existsSync(file));
  const db = open(file);
  t.after(() => db.close());
  return db
    .prepare('SELECT count(*) AS n FROM notes')
    .first('n')
    .then((n) => assert.equal(n, 2));
});

test('dione dev reports D1 errors and exits non-zero when piped SQL fails', (t) => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'dione-cli-'));
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  const run = dione(cwd, ['dev', '--db', 'other'], "ATTACH DATABASE 'x.db' AS x;\nSELECT 1 AS one;\n");
  assert.equal(run.status, 1);
  assert.match(run.stdout, /D1_ERROR: not authorized: SQLITE_AUTH/);
  assert.match(run.stdout, /│ one │/);
  assert.ok(existsSync(path.join(cwd, '.dione', 'other.sqlite')));
  assert.ok(!existsSync(path.join(cwd, 'x.db')));
});

test('dione dev refuses a database name that is not a plain name', (t) => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'dione-cli-'));
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  const run = dione(cwd, ['dev', '--db', '../escape'], '');
  assert.notEqual(run.status, 0);
  assert.match(run.stderr, /invalid database name/);
  assert.ok(!existsSync(path.join(cwd, 'escape.sqlite')));
});
