// SQL files as statements with the line each starts on, read in pieces so a dump larger than memory
// streams through. Statement boundaries are SQLite's (src/sql/statements.ts: quotes, comments,
// trigger bodies). As wrangler does, one `BEGIN TRANSACTION;` … `COMMIT;` around a script is dropped
// (D1 runs every request in a transaction of its own); a second one is refused.
import { createReadStream, openSync, readSync, closeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { Messages } from '../api/errors.ts';
import { withoutLeadingTrivia } from '../sql/comments.ts';
import { splitStatements } from '../sql/statements.ts';
import { CliError } from './d1/output.ts';

export interface SqlStatement {
  sql: string;
  /** 1-based line of the statement's first keyword. */
  line: number;
  /** BEGIN, COMMIT, SAVEPOINT…, which D1 refuses (and a handle with interactive transactions would obey). */
  controlsTransaction?: boolean;
}

/** wrangler's words for a second `BEGIN TRANSACTION;`. */
const SEVERAL_TRANSACTIONS =
  'Wrangler could not process the provided SQL file, as it contains several transactions.\nD1 runs your SQL in a transaction for you.\nPlease export an SQL file from your SQLite database and try again.';

/**
 * Drops one `BEGIN TRANSACTION;` and the `COMMIT;` after it, as wrangler's trimSqlQuery does: only
 * those exact texts (a dump's wrapper), never other transaction statements (`begin;`, `BEGIN
 * IMMEDIATE;`, `END;`), which reach D1 and fail with its error, as they do under wrangler. A second
 * `BEGIN TRANSACTION;` is refused. Unlike wrangler's text replacement, text inside a string or
 * comment is left alone.
 */
class TransactionTrimmer {
  private begins = 0;
  private commits = 0;
  constructor(private readonly source: string) {}
  keep(text: string, line: number): boolean {
    if (text === 'BEGIN TRANSACTION;') {
      this.begins++;
      if (this.begins > 1) {
        throw new CliError(SEVERAL_TRANSACTIONS, { hint: `${this.source}:${line}: a second BEGIN TRANSACTION; (remove the BEGIN TRANSACTION; and COMMIT; statements: each file runs as one transaction)` });
      }
      return false;
    }
    if (text === 'COMMIT;' && this.begins > 0 && this.commits === 0) {
      this.commits++;
      return false;
    }
    return true;
  }
}

function countLines(text: string, end = text.length): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < end; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

/** Statements of `text`, complete ones only unless `final`; returns how many characters they used. */
function take(text: string, firstLine: number, final: boolean, trim: TransactionTrimmer, out: SqlStatement[]): number {
  let used = 0;
  let line = firstLine;
  let scanned = 0;
  for (const s of splitStatements(text)) {
    if (!s.terminated && !final) break;
    const start = used;
    const body = withoutLeadingTrivia(s.text);
    const bodyStart = start + (s.text.length - body.length);
    line += countLines(text.slice(scanned, bodyStart));
    scanned = bodyStart;
    used = start + s.text.length;
    if (s.empty || body.trim() === '' || body.trim() === ';') continue;
    if (!trim.keep(body.trimEnd(), line)) continue;
    out.push(s.control ? { sql: body.trimEnd(), line, controlsTransaction: true } : { sql: body.trimEnd(), line });
  }
  return used;
}

/**
 * A statement of several as wrangler sends it: without its final `;` (so a statement cut short
 * fails with SQLite's "incomplete input", as under wrangler, not with a syntax error near ";").
 * A text of one statement is sent as it is.
 */
function oneOfSeveral(statement: SqlStatement): SqlStatement {
  if (!statement.sql.endsWith(';')) return statement;
  return { ...statement, sql: statement.sql.slice(0, -1).trimEnd() };
}

/** The statements of a string (a --command, a migration file). */
export function statementsOf(text: string, source = 'the SQL'): SqlStatement[] {
  const out: SqlStatement[] = [];
  take(text, 1, true, new TransactionTrimmer(source), out);
  return out.length > 1 ? out.map(oneOfSeveral) : out;
}

/**
 * The error wrangler ends with for SQL that holds no statement (empty, blank, only comments or
 * semicolons): D1's "No SQL statements detected." when nothing is left once blank text and the
 * comment lines it skips (those after whitespace) are dropped, else SQLite's, which gets the rest.
 */
export function noStatementMessage(text: string): string {
  return text.replace(/^\s+--.*/gm, '').trim() === '' ? Messages.noStatements : Messages.emptyStatement;
}

/** Refuses a file that cannot be read, or a SQLite database file given where SQL was expected, with wrangler's errors. */
export function assertNotDatabaseFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new CliError(`Unable to read SQL text file "${file}". Please check the file path and try again.`, { hint: (e as Error).message });
  }
  try {
    const head = Buffer.alloc(16);
    readSync(fd, head, 0, 16, 0);
    if (head.toString('latin1').startsWith('SQLite format 3')) {
      throw new CliError(
        'Provided file is a binary SQLite database file instead of an SQL text file. The execute command can only process SQL text files. Please export an SQL file from your SQLite database and try again.',
        { hint: `${file} is a SQLite database: export it as SQL first (sqlite3 ${file} .dump > dump.sql) and run that.` },
      );
    }
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(`Unable to read SQL text file "${file}". Please check the file path and try again.`, { hint: (e as Error).message });
  } finally {
    closeSync(fd);
  }
}

/**
 * The statements of a file, read `pieceSize` bytes at a time. `onBytes` reports the bytes read so
 * far (for a progress bar).
 */
export async function* streamStatements(file: string, options: { pieceSize?: number; onBytes?: (bytes: number) => void } = {}): AsyncGenerator<SqlStatement> {
  assertNotDatabaseFile(file);
  const trim = new TransactionTrimmer(file);
  const decoder = new StringDecoder('utf8');
  let pending = '';
  let pendingLine = 1;
  let bytes = 0;
  // The first statement waits until a second one shows the file holds several (see oneOfSeveral).
  let first: SqlStatement | undefined;
  let several = false;
  const flush = (final: boolean) => {
    const out: SqlStatement[] = [];
    const used = take(pending, pendingLine, final, trim, out);
    pendingLine += countLines(pending, used);
    pending = pending.slice(used);
    if (!several && first === undefined) first = out.shift();
    if (!several && first !== undefined && out.length > 0) {
      several = true;
      out.unshift(first);
    }
    return several ? out.map(oneOfSeveral) : [];
  };
  for await (const chunk of createReadStream(file, { highWaterMark: options.pieceSize ?? 1 << 20 })) {
    bytes += (chunk as Buffer).length;
    pending += decoder.write(chunk as Buffer);
    yield* flush(false);
    options.onBytes?.(bytes);
  }
  pending += decoder.end();
  yield* flush(true);
  if (!several && first !== undefined) yield first;
}
