// File-system errors met outside SQLite (the write log's files, the WAL's reader) reach clients in
// SQLite's words, as D1 would word the same condition, and never with Node's message: it names the
// server's files.
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { detailOf } from '../src/engine/sqlite-error.ts';

/** The error Node throws for `syscall` failing with `code` (as fs does: errno, code, syscall, path). */
function fsError(code: string, syscall: string, file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: failed, ${syscall} '${file}'`), { code, syscall, path: file, errno: -1 });
}

test('file-system errors read as SQLite words them, without the path Node names', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dione-errno-'));
  try {
    const file = path.join(dir, 'gone', 'db.sqlite-wal');
    let real: unknown;
    try {
      openSync(file, 'r');
    } catch (e) {
      real = e;
    }
    assert.equal(detailOf(real), 'disk I/O error (ENOENT): SQLITE_IOERR');
    const cases: [string, string][] = [
      ['EMFILE', 'unable to open database file: SQLITE_CANTOPEN'],
      ['ENFILE', 'unable to open database file: SQLITE_CANTOPEN'],
      ['EACCES', 'unable to open database file: SQLITE_CANTOPEN'],
      ['EROFS', 'attempt to write a readonly database: SQLITE_READONLY'],
      ['ENOSPC', 'database or disk is full: SQLITE_FULL'],
      ['EIO', 'disk I/O error: SQLITE_IOERR'],
      ['ENOTDIR', 'disk I/O error (ENOTDIR): SQLITE_IOERR'],
    ];
    for (const [code, detail] of cases) {
      const said = detailOf(fsError(code, 'open', file));
      assert.equal(said, detail, code);
      assert.ok(!said.includes(dir), `${code}: the path is not told`);
    }
    // Errors that are not the file system's keep their own message.
    assert.equal(detailOf(Object.assign(new TypeError('bad argument'), { code: 'ERR_INVALID_ARG_TYPE' })), 'bad argument');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
