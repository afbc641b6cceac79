// Running statements through the binding: a list as one atomic batch (as wrangler's local execute
// and each migration), a file as one transaction (as wrangler's execute --file) or, when asked, in
// chunks that each commit (resumable). When a batch fails, the failing statement is found by
// replaying prefixes of it, each ending in a statement that always fails, so nothing is ever
// committed while looking.
import { Messages } from '../../api/errors.ts';
import type { D1Database, D1Result } from '../../index.ts';
import type { SqlStatement } from '../sql-stream.ts';
import { streamStatements } from '../sql-stream.ts';
import { CliError, errorJson, errorText } from './output.ts';

const SENTINEL_TABLE = '__dione_locate_failure__';
const SENTINEL = `SELECT * FROM "${SENTINEL_TABLE}"`;

/**
 * Text from a SQL file as a terminal may show it: control characters (an escape sequence could
 * recolour the terminal or set its title) written as \xNN, tabs and line ends kept.
 */
function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function excerpt(sql: string): string {
  const first = sql.split('\n')[0]!;
  return first.length > 120 || sql.includes('\n') ? `${first.slice(0, 120)} …` : first;
}

/** The index of the statement that makes the batch fail (its error reproduced), or the last one. */
export async function locateFailure(db: D1Database, statements: SqlStatement[]): Promise<{ index: number; error: unknown }> {
  let lo = 0;
  let hi = statements.length - 1;
  let error: unknown;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    try {
      await db.batch([...statements.slice(0, mid + 1).map((s) => db.prepare(s.sql)), db.prepare(SENTINEL)]);
      lo = mid + 1; // cannot happen: the sentinel always fails
    } catch (e) {
      if (errorText(e).includes(SENTINEL_TABLE)) lo = mid + 1;
      else {
        hi = mid;
        error = e;
      }
    }
  }
  return { index: lo, error };
}

/**
 * A statement that failed. Its message is D1's (what wrangler prints); a person also reads the
 * source and line, the statement, and what became of the rest (`outcome`).
 */
export class StatementFailure extends CliError {
  constructor(
    message: string,
    readonly source: string,
    readonly statement: SqlStatement,
    readonly outcome?: string,
  ) {
    super(message);
  }

  override get text(): string {
    // Line 0: a statement of Dione's own (a migration's record), where a request's deferred checks fail.
    const message = printable(this.message);
    const where = this.statement.line > 0 ? `${this.source}:${this.statement.line}: ${message}\n  in: ${printable(excerpt(this.statement.sql))}` : `${this.source}: ${message}`;
    return this.outcome ? `${where}\n${this.outcome}` : where;
  }

  /** The same failure, with what became of the rest said. */
  withOutcome(outcome: string): StatementFailure {
    return new StatementFailure(this.message, this.source, this.statement, outcome);
  }
}

/** D1's message of a binding's error, without the D1_ERROR prefix (as wrangler prints it). */
const d1Message = (e: unknown) => String(errorJson(e).text);

/** Runs `statements` as one batch: all or nothing. A failure names `source`, the line and the statement. */
export async function runBatch(db: D1Database, statements: SqlStatement[], source: string): Promise<D1Result[]> {
  if (statements.length === 0) return [];
  try {
    return await db.batch(statements.map((s) => db.prepare(s.sql)));
  } catch (e) {
    const { index, error } = statements.length > 1 ? await locateFailure(db, statements) : { index: 0, error: e };
    throw new StatementFailure(d1Message(error ?? e), source, statements[index]!);
  }
}

export interface ImportOptions {
  /**
   * Commit every this many statements: a failure keeps the chunks before it, and a later run
   * resumes with `fromLine`. Without it the whole file is one transaction, and `db` must have
   * been opened with interactive transactions.
   */
  commitEvery?: number;
  /** Statements per request in one transaction, and characters of SQL per request either way, at most. */
  batchStatements?: number;
  batchChars?: number;
  /** Skip statements that start before this line (resuming an interrupted import). */
  fromLine?: number;
  onBytes?: (bytes: number) => void;
  onResults?: (statements: SqlStatement[], results: D1Result[]) => void | Promise<void>;
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

const ONE_TRANSACTION_ROLLED_BACK = 'Nothing was imported: the file runs as one transaction, which was rolled back.';
const ONE_TRANSACTION_ADVICE = 'Fix it and run the command again (or pass --chunk-size N to commit every N statements, so that --from-line can resume after a failure).';

/** Refuses what would end the file's own transaction early: D1 refuses transaction statements, and so does the file here. */
function checkNoTransactionControl(statements: SqlStatement[], source: string): void {
  const control = statements.find((s) => s.controlsTransaction);
  if (control) throw new StatementFailure(Messages.transactionStatement, source, control);
}

/**
 * Streams `file` into `db`: as one transaction (all or nothing, as wrangler's execute --file), or
 * with `commitEvery`, in chunks that each commit, the ones before a failure kept and the error
 * saying where to resume. Either way the file is read and sent a batch at a time.
 */
export async function importFile(db: D1Database, file: string, options: ImportOptions = {}): Promise<ImportTotals> {
  const oneTransaction = options.commitEvery === undefined;
  const maxStatements = options.commitEvery ?? options.batchStatements ?? 1000;
  const maxChars = options.batchChars ?? 4 << 20;
  let batch: SqlStatement[] = [];
  let chars = 0;
  let committed = 0;
  let sent = 0;
  const totals: ImportTotals = { statements: 0, chunks: 0, rowsRead: 0, rowsWritten: 0, sizeAfter: 0, duration: 0 };
  const failed = (e: unknown) => {
    if (!(e instanceof StatementFailure)) return e;
    if (oneTransaction) return e.withOutcome(`${ONE_TRANSACTION_ROLLED_BACK} ${ONE_TRANSACTION_ADVICE}`);
    const where = batch[0]!.line;
    return e.withOutcome(
      committed === 0
        ? 'Nothing was imported. Fix the statement and run the command again.'
        : `The ${committed} statement(s) before line ${where} are imported; the chunk from line ${where} on was rolled back, so the database is as it was before that chunk. ` +
            `Fix the statement and resume with --from-line ${where} (or run the whole file again on a fresh database).`,
    );
  };
  const send = async () => {
    if (batch.length === 0) return;
    if (oneTransaction) checkNoTransactionControl(batch, file);
    const results = await runBatch(db, batch, file);
    for (const { meta } of results) {
      totals.rowsRead += meta.rows_read;
      totals.rowsWritten += meta.rows_written;
      totals.duration += meta.duration;
      if (meta.size_after > 0) totals.sizeAfter = meta.size_after;
    }
    await options.onResults?.(batch, results);
    sent += batch.length;
    if (!oneTransaction) {
      committed = sent;
      totals.chunks++;
    }
    batch = [];
    chars = 0;
  };
  if (oneTransaction) await db.prepare('BEGIN IMMEDIATE').run();
  try {
    for await (const statement of streamStatements(file, { onBytes: options.onBytes })) {
      if (options.fromLine && statement.line < options.fromLine) continue;
      if (batch.length > 0 && (batch.length >= maxStatements || chars + statement.sql.length > maxChars)) await send();
      batch.push(statement);
      chars += statement.sql.length;
    }
    await send();
    if (oneTransaction) {
      await commit(db, file);
      totals.chunks = 1;
    }
  } catch (e) {
    if (oneTransaction) await rollback(db);
    throw failed(e);
  }
  return { ...totals, statements: sent };
}

async function commit(db: D1Database, file: string): Promise<void> {
  try {
    await db.prepare('COMMIT').run();
  } catch (e) {
    // Deferred foreign keys are checked here: the statements all ran, the transaction cannot commit.
    // D1 checks them at the end of the file's one request, and says so with its reset error.
    const message = d1Message(e);
    const asD1 = message.includes('SQLITE_CONSTRAINT') && !message.startsWith(Messages.constraintsViolatedAtCommit) ? Messages.constraintsViolatedAtCommit + message : message;
    throw new CliError(asD1, { hint: `${file}: the transaction could not commit. ${ONE_TRANSACTION_ROLLED_BACK} ${ONE_TRANSACTION_ADVICE}` });
  }
}

/** Rolls the file's transaction back; SQLite may have ended it already (ON CONFLICT ROLLBACK, a full disk). */
async function rollback(db: D1Database): Promise<void> {
  try {
    await db.prepare('ROLLBACK').run();
  } catch {
    // Nothing is held: nothing to undo.
  }
}
