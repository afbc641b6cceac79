// A better-sqlite3 connection set up as a D1 database: WAL, durable commits, foreign keys,
// D1's limits and authorizer (the guard extension), and a cache of prepared statements.
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Database from 'better-sqlite3';
import type { IntMode } from '../api/types.ts';
import { loadDialect, loadGuard } from './guard.ts';
import { D1Failure, detailOf, isInterrupt, isSqliteError, sqliteFailureDetail } from './sqlite-error.ts';
import { dataVersionOf, openSqlite } from './sqlite.ts';

export interface ConnectionOptions {
  intMode?: IntMode;
  /** 'full' (default) syncs the WAL on every commit, so an acknowledged write survives power loss. */
  durability?: 'full' | 'normal';
  readonly?: boolean;
  /** false: SQLite never checkpoints on its own; the owner of the WAL (the write log) does. */
  autoCheckpoint?: boolean;
  /**
   * Closing keeps the -wal (emptied) and -shm files, so the next open creates no file: for a server
   * that opens and closes many databases (otherwise each open creates both and each close removes them).
   */
  keepWalFiles?: boolean;
}

/** With keepWalFiles: a WAL that grows past this is cut back to it once checkpointed (and to nothing on close). */
const KEPT_WAL_LIMIT_BYTES = 64 * 1024 * 1024;

export interface CounterState {
  totalChanges: number;
  lastRowId: number;
  /** D1's size_after: (page_count - freelist_count) * page_size. */
  size: number;
}

const STATEMENT_CACHE_SIZE = 256;

/**
 * Whether anything in the schema may change rows besides a statement's own: any trigger (temp ones
 * too: they fire until the seal refuses them), any virtual table (rootpage 0), any table whose
 * definition names REFERENCES (a foreign key, which may have an action).
 */
const NESTED_WRITES_SQL =
  "SELECT EXISTS (SELECT 1 FROM main.sqlite_schema WHERE type = 'trigger' OR (type = 'table' AND (rootpage = 0 OR instr(lower(sql), 'references') > 0))) OR EXISTS (SELECT 1 FROM temp.sqlite_schema WHERE type = 'trigger')";

function openDatabase(file: string, readonly: boolean): Database.Database {
  if (readonly && file !== ':memory:' && onReadOnlyMedia(file)) return openImage(file);
  try {
    return openSqlite(file, { readonly });
  } catch (e) {
    // A new database in a folder not made yet: made now (not before every open: most find it there).
    if (readonly || file === ':memory:' || existsSync(path.dirname(path.resolve(file)))) throw e;
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    return openSqlite(file, { readonly });
  }
}

/**
 * SQLite reads a WAL database through its -shm file, which it cannot create on read-only media
 * (and better-sqlite3 opens no URI filenames, so `immutable=1` is out of reach).
 */
function onReadOnlyMedia(file: string): boolean {
  if (existsSync(`${file}-shm`)) return false;
  try {
    accessSync(path.dirname(path.resolve(file)), constants.W_OK);
    return false;
  } catch {
    return true;
  }
}

/**
 * Rebuilds a copy of a database (one that no connection uses) with VACUUM, so that no free page is
 * left in it: free pages may still hold rows that were deleted, which a dump must not hand out.
 */
export function compactCopy(file: string): void {
  const copy = openSqlite(file);
  try {
    loadDialect(copy);
    copy.exec('VACUUM');
  } finally {
    copy.close();
  }
}

/** The file read into memory as a rollback-journal database, which needs no -shm. */
function openImage(file: string): Database.Database {
  const wal = `${file}-wal`;
  if (existsSync(wal) && statSync(wal).size > 0) {
    throw new Error(
      `dione: ${file} is on read-only media with a -wal file but no -shm, and SQLite cannot read it there; copy the database with its -wal to writable storage, or close it cleanly (which empties the WAL) before making the media read-only`,
    );
  }
  const bytes = readFileSync(file);
  // Bytes 18 and 19 of the header say WAL (2): make the in-memory copy a rollback-journal database.
  if (bytes.length >= 100 && bytes[18] === 2) bytes[18] = bytes[19] = 1;
  return openSqlite(bytes, { readonly: true });
}

/** A statement as the read path prepared it: `writes` when SQLite refused it in read mode for writing. */
export type ReadPrepared = Database.Statement | 'writes';

export class Connection {
  readonly db: Database.Database;
  /** The database file by SQLite's own path for it (symbolic links resolved); undefined in memory. */
  readonly mainFile: string | undefined;
  /** A writable file in WAL mode: the -wal file SQLite appends its commits to (beside mainFile). */
  readonly walFile: string | undefined;
  readonly memory: boolean;
  readonly readonly: boolean;
  private readonly statements = new Map<string, Database.Statement>();
  /** Statements prepared in read mode: the read path never runs one prepared without it. */
  private readonly readStatements = new Map<string, Database.Statement>();
  /**
   * Statements prepared on first use: a server opens and closes databases all the time, most of them
   * for a read or two, and preparing every helper on each open cost ~10% of it. Those a failure's
   * path needs (ROLLBACK…) and the read-mode switch are prepared on opening, outside any deadline: a
   * statement cannot be prepared while an expired deadline keeps interrupting the connection.
   */
  private readonly lazy = new Map<string, Database.Statement>();
  private readonly readModeQuery: Database.Statement;
  /** The token that lets this connection (and no user SQL) use the guard's helpers. */
  private readonly token: bigint;
  readonly rollback: Database.Statement;
  readonly release: Database.Statement;
  readonly rollbackToSavepoint: Database.Statement;
  private readonly safeIntegers: boolean;

  constructor(file: string, options: ConnectionOptions = {}) {
    this.memory = file === ':memory:' || file === '';
    this.readonly = options.readonly ?? false;
    this.db = openDatabase(this.memory ? ':memory:' : file, this.readonly);
    try {
      const writableFile = !this.memory && !this.readonly;
      // SQLite answers the mode it is in: a filesystem without shared memory keeps a rollback journal.
      const walMode = writableFile && this.db.pragma('journal_mode = WAL', { simple: true }) === 'wal';
      this.mainFile = this.memory ? undefined : (this.db.pragma('database_list') as { name: string; file: string }[]).find((d) => d.name === 'main')?.file || undefined;
      this.walFile = walMode && this.mainFile ? `${this.mainFile}-wal` : undefined;
      // One call (a server opens databases all the time): each pragma() would prepare a statement.
      const pragmas = [
        `synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`,
        'foreign_keys = ON',
        'busy_timeout = 5000',
        options.autoCheckpoint === false ? 'wal_autocheckpoint = 0' : undefined,
        options.keepWalFiles && writableFile ? `journal_size_limit = ${KEPT_WAL_LIMIT_BYTES}` : undefined,
      ];
      this.db.exec(pragmas.flatMap((p) => (p ? [`PRAGMA ${p};`] : [])).join(' '));
      loadGuard(this.db);
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.safeIntegers = options.intMode === 'bigint';
    // Claimed before anything else runs on the connection: only Dione ever holds the token.
    this.token = this.db.prepare('SELECT dione_claim()').pluck().safeIntegers(true).get() as bigint;
    if (options.keepWalFiles && !this.memory && !this.readonly) this.db.prepare('SELECT dione_persist_wal(?)').get(this.token);
    this.readModeQuery = this.db.prepare('SELECT dione_read_mode(?, ?)').pluck();
    this.rollback = this.db.prepare('ROLLBACK');
    this.release = this.db.prepare('RELEASE dione_request');
    this.rollbackToSavepoint = this.db.prepare('ROLLBACK TO dione_request');
  }

  /** The statement for `sql`, prepared on its first use (`shape`: pluck or raw). */
  private once(sql: string, shape: 'pluck' | 'raw' | 'none' = 'pluck'): Database.Statement {
    let statement = this.lazy.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      if (shape === 'pluck') statement.pluck();
      else if (shape === 'raw') statement.raw(true);
      this.lazy.set(sql, statement);
    }
    return statement;
  }

  get begin(): Database.Statement {
    return this.once('BEGIN', 'none');
  }

  get beginImmediate(): Database.Statement {
    return this.once('BEGIN IMMEDIATE', 'none');
  }

  get commit(): Database.Statement {
    return this.once('COMMIT', 'none');
  }

  get savepoint(): Database.Statement {
    return this.once('SAVEPOINT dione_request', 'none');
  }

  /** A prepared statement for `sql` (one statement, parameters as plain `?`), or D1's error. */
  prepare(sql: string, written = sql): Database.Statement {
    const cached = this.statements.get(sql);
    if (cached) return cached;
    return this.remember(this.statements, sql, this.compile(sql, written));
  }

  /**
   * A statement for the read path, prepared in read mode: SQLite refuses, while preparing it, every
   * action that would write or change the connection's state. 'writes' when that is why it refused.
   */
  prepareRead(sql: string, written = sql): ReadPrepared {
    const cached = this.readStatements.get(sql);
    if (cached) return cached;
    let statement: Database.Statement;
    this.runHelper(this.readModeQuery, 1);
    try {
      statement = this.compile(sql, written);
    } catch (e) {
      if (this.runHelper(this.readModeQuery, 0) === 'write') return 'writes';
      throw e;
    }
    if (this.runHelper(this.readModeQuery, 0) === 'write') return 'writes';
    return this.remember(this.readStatements, sql, statement);
  }

  /**
   * Prepares `sql`; `written` is the statement as its author wrote it, when `sql` is that text with
   * its named parameters rewritten as `?` (see statements.ts). A failure is then told as SQLite tells
   * it for the written text, as D1 prepares that: `near ":b"`, not `near "?"`.
   */
  private compile(sql: string, written = sql): Database.Statement {
    let statement: Database.Statement;
    try {
      statement = this.db.prepare(sql);
    } catch (e) {
      if (!isSqliteError(e)) throw new D1Failure(detailOf(e));
      const failure = written !== sql ? this.prepareFailure(written) : undefined;
      if (failure) throw new D1Failure(sqliteFailureDetail(failure.message, e.code, failure.offset));
      throw new D1Failure(detailOf(e, this.errorOffset(sql)));
    }
    if (statement.reader) statement.raw(true);
    if (this.safeIntegers) statement.safeIntegers(true);
    return statement;
  }

  private remember(cache: Map<string, Database.Statement>, sql: string, statement: Database.Statement): Database.Statement {
    if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(sql, statement);
    return statement;
  }

  /**
   * Runs a helper that changes the connection's state. A deadline's interrupt can only stop such a
   * statement before its function runs (it changed nothing then), so it is run again.
   */
  private runHelper(statement: Database.Statement, value: number): unknown {
    for (let attempt = 1; ; attempt++) {
      try {
        return statement.get(this.token, value);
      } catch (e) {
        if (attempt >= 100 || !isInterrupt(e)) throw e;
      }
    }
  }

  /**
   * From `ms` from now on, SQLite interrupts whatever this connection runs (the guard's watchdog
   * thread), until disarmDeadline(). A statement interrupted fails with SQLITE_INTERRUPT.
   */
  armDeadline(ms: number): void {
    this.runHelper(this.once('SELECT dione_deadline(?, ?)'), Math.max(1, Math.ceil(ms)));
  }

  /** Ends the deadline; true when it had passed (the watchdog interrupted the connection). */
  disarmDeadline(): boolean {
    return this.runHelper(this.once('SELECT dione_deadline(?, ?)'), 0) === 1;
  }

  /** SQLite's error offset for SQL that failed to prepare (better-sqlite3 does not expose it). */
  private errorOffset(sql: string): number {
    return this.prepareFailure(sql)?.offset ?? -1;
  }

  /** How SQL fails to prepare (undefined when it prepares), without keeping it. */
  prepareFailure(sql: string): { offset: number; message: string } | undefined {
    const answer = this.once('SELECT dione_prepare_error(?, ?)').get(this.token, sql) as string | null;
    if (answer === null) return undefined;
    const [offset, , ...rest] = answer.split('|');
    return { offset: Number(offset), message: rest.join('|') };
  }

  /**
   * The offset of an error a statement met when it ran, when preparing it anew fails with the same
   * message: a cached statement that SQLite re-prepared after a schema change (the second of two
   * identical CREATE TABLEs) fails as it steps, where D1, which prepares every statement anew,
   * fails it at prepare with the offset. -1 otherwise.
   */
  runErrorOffset(sql: string, message: string): number {
    const failure = this.prepareFailure(sql);
    return failure?.message === message ? failure.offset : -1;
  }

  /** total_changes(), last_insert_rowid() and, when `size` is given, the used bytes measured anew. */
  counters(size?: number): CounterState {
    if (size !== undefined) {
      const [totalChanges, lastRowId] = this.once('SELECT total_changes(), last_insert_rowid()', 'raw').get() as [number, number];
      return { totalChanges, lastRowId, size };
    }
    const [totalChanges, lastRowId, used] = this.once('SELECT total_changes(), last_insert_rowid(), dione_used_bytes(?)', 'raw').get(this.token) as [number, number, number];
    return { totalChanges, lastRowId, size: used };
  }

  /** SQLite's total_changes() alone. */
  totalChanges(): number {
    return this.once('SELECT total_changes()').get() as number;
  }

  /**
   * Whether a row write may change rows besides its own: a trigger, a foreign key (its action) or a
   * virtual table (its shadow tables) in the schema. Then total_changes() moves by more than the
   * statement's own changes. Conservative: any REFERENCES counts.
   */
  nestedWritesPossible(): boolean {
    return this.once(NESTED_WRITES_SQL).get() !== 0;
  }

  /** Changes whenever the database changes, through this connection or another (read after a statement ran). */
  dataVersion(): number {
    // Any statement of the connection carries it; no statement runs.
    return dataVersionOf(this.rollback);
  }

  /**
   * At the start of a transaction, after other connections committed: their schema becomes the
   * reference the seal compares reserved (_cf_) objects with.
   */
  settleSchema(): void {
    this.once('SELECT dione_settle_schema(?)').get(this.token);
  }

  /**
   * Inside a write transaction: creates workerd's _cf_METADATA table if the database has none, as
   * every D1 database has one (D1's row counts of schema scans and ALTER TABLE include its row).
   * True when it created it.
   */
  ensureWorkerdMetadata(): boolean {
    try {
      return this.once('SELECT dione_workerd_metadata(?)').get(this.token) === 1;
    } catch (e) {
      throw new D1Failure(detailOf(e));
    }
  }

  /** The number of write transactions committed to this database (kept in its header, shared by all connections). */
  commitSequence(): number {
    return this.once('SELECT dione_commit_sequence(?)').get(this.token) as number;
  }

  /**
   * The last step before COMMIT. When SQLite says the transaction wrote, numbers it (the commit
   * sequence plus one, returned) and lets the commit through; the guard's commit hook refuses any
   * write commit not sealed. Undefined when the transaction did not write. Throws D1's error when
   * the transaction made temp schema objects or reserved names.
   */
  seal(): number | undefined {
    try {
      return (this.once('SELECT dione_seal(?)').get(this.token) as number | null) ?? undefined;
    } catch (e) {
      throw new D1Failure(detailOf(e));
    }
  }

  /**
   * Asked after each request of a group, so that each answers for itself: throws D1's error when the
   * request broke a rule the seal enforces, and says whether it left deferred foreign keys violated.
   */
  checkRequest(): { deferredViolations: boolean } {
    try {
      return { deferredViolations: (this.once('SELECT dione_check(?)').get(this.token) as number) !== 0 };
    } catch (e) {
      throw new D1Failure(detailOf(e));
    }
  }

  /**
   * Moves the WAL's content into the database file; the next writer starts the WAL over. False
   * when a reader in another process kept it from completing (it is tried again later).
   */
  checkpoint(): boolean {
    return this.db.prepare('SELECT dione_checkpoint(?)').pluck().get(this.token) === 0;
  }

  /**
   * A consistent copy of the database file, through SQLite's backup API (no SQL runs on this
   * connection), without free pages (see compactCopy).
   */
  async snapshot(): Promise<Buffer> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-dump-'));
    try {
      const file = path.join(dir, 'dump.sqlite');
      await this.db.backup(file);
      compactCopy(file);
      return readFileSync(file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** Closes; with `keepWal` the WAL stays as it is (no checkpoint into the database file), for a repair. */
  close(options: { keepWal?: boolean } = {}): void {
    this.disarmDeadline();
    this.statements.clear();
    this.readStatements.clear();
    if (options.keepWal) this.db.prepare('SELECT dione_keep_wal(?)').get(this.token);
    this.db.prepare('SELECT dione_release(?)').get(this.token);
    this.db.close();
  }
}
