// An imported SQL file as windows of statements, read a piece at a time: an import holds only the
// window running (a dump of several GiB is not one string, and its statements' tokens and results
// would take many times its size).
import { closeSync, openSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { Query } from '../../api/executor.ts';
import { Limits } from '../../sql/limits.ts';
import { StatementSplitter } from '../../sql/text-splitter.ts';

const PIECE_BYTES = 1 << 20;

/** The statements of `file`, those each piece of it completes as one window. */
export function* sqlFileWindows(file: string, pieceBytes = PIECE_BYTES): Generator<Query[]> {
  const fd = openSync(file, 'r');
  try {
    // No statement may be longer than SQLite's limit (in bytes, never fewer than its UTF-16 units).
    const splitter = new StatementSplitter(Number.POSITIVE_INFINITY, Limits.sqlLength);
    const decoder = new StringDecoder('utf8');
    const buffer = Buffer.allocUnsafe(pieceBytes);
    for (;;) {
      const read = readSync(fd, buffer, 0, pieceBytes, null);
      const statements = read === 0 ? splitter.end(decoder.end()) : splitter.push(decoder.write(buffer.subarray(0, read)));
      if (statements.length > 0) yield statements.map((sql) => ({ sql, params: [] }));
      if (read === 0) return;
    }
  } finally {
    closeSync(fd);
  }
}
