// Running statements through the binding: a list as one atomic batch (as wrangler's local execute
// and each migration), a file in atomic chunks (import). When a batch fails, the failing statement
// is found by replaying prefixes of it, each ending in a statement that always fails, so nothing
// is ever committed while looking.
import type { D1Database, D1Result } from '../../index.ts';
import type { SqlStatement } from '../sql-stream.ts';
import { streamStatements } from '../sql-stream.ts';
import { CliError, errorText } from './output.ts';

const SENTINEL_TABLE = '__dione_locate_failure__';
const SENTINEL = `SELECT * FROM "${SENTINEL_TABLE}"`;

function excerpt(sql: string): string {
  const first = sql.split('\n')[0]!;
  return first.length > 120 || sql.includes('\n') ? `${first.slice(0, 120)} …` : first;
}

/** The index of the statement that makes the batch fail (its error reproduced), or the last one. */
export async function locateFailure(db: D1Database, statements: SqlStatement[]): Promise<{ index: number; error: string }> {
  let lo = 0;
  let hi = statements.length - 1;
  let error = '';
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    try {
      await db.batch([...statements.slice(0, mid + 1).map((s) => db.prepare(s.sql)), db.prepare(SENTINEL)]);
      lo = mid + 1; // cannot happen: the sentinel always fails
    } catch (e) {
      const text = errorText(e);
      if (text.includes(SENTINEL_TABLE)) lo = mid + 1;
      else {
        hi = mid;
        error = text;
      }
    }
  }
  return { index: lo, error };
}

export class StatementFailure extends CliError {
  constructor(
    message: string,
    readonly statement: SqlStatement,
    readonly detail: string,
  ) {
    super(message);
  }
}

/** Runs `statements` as one batch: all or nothing. A failure names `source`, the line and the statement. */
export async function runBatch(db: D1Database, statements: SqlStatement[], source: string): Promise<D1Result[]> {
  if (statements.length === 0) return [];
  try {
    return await db.batch(statements.map((s) => db.prepare(s.sql)));
  } catch (e) {
    const first = errorText(e);
    const { index, error } = statements.length > 1 ? await locateFailure(db, statements) : { index: 0, error: first };
    const s = statements[index]!;
    const detail = error || first;
    throw new StatementFailure(`${source}:${s.line}: ${detail}\n  in: ${excerpt(s.sql)}`, s, detail);
  }
}

export interface ImportOptions {
  /** Statements per atomic chunk. */
  chunkStatements?: number;
  /** Characters of SQL per atomic chunk (at most). */
  chunkChars?: number;
  /** Skip statements that start before this line (resuming an interrupted import). */
  fromLine?: number;
  onBytes?: (bytes: number) => void;
  onResults?: (statements: SqlStatement[], results: D1Result[]) => void;
}

/** What a file did, summed over every statement of every chunk. */
export interface ImportTotals {
  statements: number;
  chunks: number;
  rowsRead: number;
  rowsWritten: number;
  /** The database's size after the last chunk, in bytes. */
  sizeAfter: number;
  /** Time spent in SQL, in ms. */
  duration: number;
}

/**
 * Streams `file` into `db` in chunks, each one batch (atomic). A failing chunk is rolled back
 * whole, the ones before it stay, and the error says where to resume.
 */
export async function importFile(db: D1Database, file: string, options: ImportOptions = {}): Promise<ImportTotals> {
  const maxStatements = options.chunkStatements ?? 1000;
  const maxChars = options.chunkChars ?? 4 << 20;
  let chunk: SqlStatement[] = [];
  let chars = 0;
  let done = 0;
  const totals: ImportTotals = { statements: 0, chunks: 0, rowsRead: 0, rowsWritten: 0, sizeAfter: 0, duration: 0 };
  const flush = async () => {
    if (chunk.length === 0) return;
    try {
      const results = await runBatch(db, chunk, file);
      for (const { meta } of results) {
        totals.rowsRead += meta.rows_read;
        totals.rowsWritten += meta.rows_written;
        totals.duration += meta.duration;
        if (meta.size_after > 0) totals.sizeAfter = meta.size_after;
      }
      options.onResults?.(chunk, results);
    } catch (e) {
      const where = chunk[0]!.line;
      const resume =
        done === 0
          ? 'Nothing was imported. Fix the statement and run the command again.'
          : `The ${done} statement(s) before line ${where} are imported; the chunk from line ${where} on was rolled back, so the database is as it was before that chunk. ` +
            `Fix the statement and resume with --from-line ${where} (or run the whole file again on a fresh database).`;
      throw new CliError(`${errorText(e)}\n${resume}`);
    }
    done += chunk.length;
    totals.chunks++;
    chunk = [];
    chars = 0;
  };
  for await (const statement of streamStatements(file, { onBytes: options.onBytes })) {
    if (options.fromLine && statement.line < options.fromLine) continue;
    if (chunk.length > 0 && (chunk.length >= maxStatements || chars + statement.sql.length > maxChars)) await flush();
    chunk.push(statement);
    chars += statement.sql.length;
  }
  await flush();
  return { ...totals, statements: done };
}
