// Executes D1 requests on one SQLite connection with D1's semantics: every request is atomic
// (a batch, an exec or a multi-statement query commits whole or not at all), meta is measured
// the way D1 measures it, and every failure comes back as D1's error text.
import type Database from 'better-sqlite3';
import { formatBookmark, isBookmark, SESSION_CONSTRAINTS } from '../api/bookmark.ts';
import { Messages, sqliteDetail } from '../api/errors.ts';
import { type ExecuteRequest, type ExecuteResponse, malformedQuery, type Query, type ResultsFormat, type RowValue, type StatementResult } from '../api/executor.ts';
import type { D1Meta } from '../api/types.ts';
import { isDroppedQuery } from '../sql/comments.ts';
import { type ParsedQuery, parseQuery } from '../sql/parse-cache.ts';
import type { Statement } from '../sql/statements.ts';
import { Connection, type ConnectionOptions, type CounterState, compactCopy } from './connection.ts';
import { type DumpSqlOptions, dumpSql } from './dump-sql.ts';
import { D1Failure, detailOf, isSqliteError } from './sqlite-error.ts';
import { allCounted, type CountedRead, getCounted, runCounted, runOnly, takeRowCounts } from './sqlite.ts';
import { toSqliteParam } from './values.ts';
import { gateKey, heldByOther, releaseGate, takeGate } from './write-gate.ts';

/** What a script (an import) did: see Engine.executeScript. */
export type ScriptResponse = { success: true; statements: number; meta: D1Meta | undefined; bookmark: string } | Failure;

type Failure = Extract<ExecuteResponse, { success: false }>;

export interface EngineOptions extends ConnectionOptions {
  /** The `served_by` value in meta. */
  servedBy?: string;
  /** Cluster mode: meta also says the node's region and whether it is the database's primary. */
  servedByRegion?: string;
  servedByPrimary?: boolean;
  /** The last group of every bookmark (32 hex): names the database's history. Default zeros. */
  bookmarkTag?: string;
  /**
   * Called after every commit that wrote, before its response is returned, and when a commit by
   * another connection is noticed: the write log captures the transaction here.
   */
  onCommit?: () => void;
  /**
   * A request (or each request of a group commit) still running this many ms after it started is
   * interrupted and answered with D1's timeout error; nothing it wrote is kept. 0 or undefined: none.
   */
  queryTimeoutMs?: number;
  /**
   * Interactive transactions (Dione's opt-in; D1 refuses them): BEGIN, COMMIT/END, ROLLBACK,
   * SAVEPOINT, RELEASE and ROLLBACK TO are accepted, and the transaction they open is held across
   * requests until it ends.
   */
  transactions?: boolean;
  /** A held transaction idle this long is rolled back; the next request is told. Default 10 s. */
  transactionTimeoutMs?: number;
  /**
   * Called when the held transaction was rolled back behind the handle's back (its idle timeout, the
   * engine closing), with what the handle should be told.
   */
  onAbandoned?: (reason: string) => void;
}

/** What SQLite says when another connection holds the write lock. */
export const BUSY = sqliteDetail('database is locked', 'SQLITE_BUSY');

const DEFAULT_TRANSACTION_TIMEOUT_MS = 10_000;
/** What a handle is told whose transaction went with its database (closed, restarted, a new primary). */
export const CLOSED_WHILE_HELD = 'Transaction rolled back: the database was closed while it was open (its server restarted, or the database moved to another primary).';

/** A transaction the handle opened with BEGIN (or SAVEPOINT), held until COMMIT or ROLLBACK. */
interface HeldTransaction {
  /** Open savepoints, oldest first, lower-cased (SQLite compares their names that way). */
  savepoints: string[];
  /** Opened by SAVEPOINT outside a transaction: releasing that savepoint commits. */
  bySavepoint: boolean;
  /** Holds (or may take) the write lock: this thread's other handles wait for it to end. */
  writing: boolean;
  /** The commit sequence a failed COMMIT already sealed the transaction with (a retry must not seal again). */
  sealed?: number;
}

/** Whether a request holds a transaction statement (BEGIN, COMMIT, SAVEPOINT…). */
export function hasTransactionStatements(request: ExecuteRequest): boolean {
  return request.queries.some((q) => parseQuery(q.sql).statements.some((s) => s.control !== undefined));
}

/** Whether a response is the failure of a request that ran past the query timeout. */
export function timedOut(response: ExecuteResponse): boolean {
  return !response.success && response.error === Messages.queryTimeout;
}

interface Outcome {
  columns: string[];
  rows: RowValue[][];
  /** What SQLite counted for the statement: rows read and rows written (D1's meters). */
  read: number;
  written: number;
  /** What better-sqlite3's run() said (a statement that returns no rows): its changes and last row id. */
  ran?: { changes: number; lastInsertRowid: number | bigint };
}

const BACKUP_PAGES_PER_STEP = 2048;
const NOTHING_READ: Outcome = { columns: [], rows: [], read: 0, written: 0 };
const NO_ROWS: RowValue[][] = [];
const NO_COLUMNS: string[] = [];
const SCHEMA_VERBS = new Set(['CREATE', 'DROP', 'ALTER']);
const ROW_WRITE_VERBS = new Set(['INSERT', 'REPLACE', 'UPDATE', 'DELETE']);

interface Work {
  queries: Query[];
  parsed: ParsedQuery[];
  format: ResultsFormat;
}

// (ES2024, in every Node Dione supports; the project's lib is ES2023.)
declare global {
  interface String {
    isWellFormed(): boolean;
    toWellFormed(): string;
  }
}

/**
 * The query as workerd hands it to SQLite: each lone UTF-16 surrogate (a string cut through an
 * emoji) becomes U+FFFD in the SQL and in string parameters. V8 would write it as three bytes that
 * are not UTF-8 (ED A0 80 for U+D800), stored as such and read back as three U+FFFD.
 */
function wellFormed(query: Query): Query {
  let sql = query.sql;
  let params = query.params;
  if (typeof sql === 'string' && !sql.isWellFormed()) sql = sql.toWellFormed();
  for (let i = 0; i < params.length; i++) {
    const value = params[i];
    if (typeof value !== 'string' || value.isWellFormed()) continue;
    if (params === query.params) params = [...params];
    params[i] = value.toWellFormed();
  }
  return sql === query.sql && params === query.params ? query : { ...query, sql, params };
}

function workOf(request: ExecuteRequest): Work {
  const format = request.resultsFormat ?? 'ROWS_AND_COLUMNS';
  // One query (every prepared statement's call): no copies of the list.
  if (request.queries.length === 1 && !isDroppedQuery(request.queries[0]!.sql)) {
    const query = wellFormed(request.queries[0]!);
    return { queries: query === request.queries[0] ? request.queries : [query], parsed: [parseQuery(query.sql)], format };
  }
  const queries = request.queries.filter((q) => !isDroppedQuery(q.sql)).map(wellFormed);
  return { queries, parsed: queries.map((q) => parseQuery(q.sql)), format };
}

function writesAny(work: Work): boolean {
  return work.parsed.some((p) => p.statements.some((s) => s.kind === 'write'));
}

/** D1's refusals that need no SQLite: an empty statement, or one D1 refuses outright. */
function checkRunnable(statement: Statement, connection: Connection): void {
  if (statement.empty) throw new D1Failure(Messages.emptyStatement);
  if (statement.rejection) {
    // D1's SQLite keeps the last error its parser met: an expression too deep, met after the 101st
    // parameter (`? + ? + …`), is the one D1 reports.
    if (statement.overParameterLimit) {
      const later = connection.prepareFailure(statement.executable);
      if (later?.message.startsWith('Expression tree is too large')) throw new D1Failure(sqliteDetail(later.message, 'SQLITE_ERROR', later.offset));
    }
    // D1 refuses transaction statements in its authorizer, once SQLite has parsed them: one SQLite
    // cannot parse (`SAVEPOINT`, `END IF`) fails with SQLite's error.
    if (statement.rejection === Messages.transactionStatement) {
      const unparsed = connection.prepareFailure(statement.text);
      if (unparsed) throw new D1Failure(sqliteDetail(unparsed.message, 'SQLITE_ERROR', unparsed.offset));
    }
    throw new D1Failure(statement.rejection);
  }
}

function failureOf(e: unknown): Failure {
  if (e instanceof D1Failure && e.reset) return { success: false, error: Messages.constraintsViolatedAtCommit + e.detail, reset: true };
  return { success: false, error: detailOf(e) };
}

/** `total` (the meta of the queries so far) followed by `next`'s: counts summed, the database's state as after `next`. */
function addTo(total: D1Meta, next: D1Meta): D1Meta {
  total.duration += next.duration;
  total.rows_read += next.rows_read;
  total.rows_written += next.rows_written;
  total.changes += next.changes;
  total.changed_db ||= next.changed_db;
  total.size_after = next.size_after;
  total.last_row_id = next.last_row_id;
  return total;
}

/** What SQLite says when COMMIT finds a deferred foreign key still violated. */
const FOREIGN_KEY_AT_COMMIT = sqliteDetail('FOREIGN KEY constraint failed', 'SQLITE_CONSTRAINT_FOREIGNKEY');

/** Parameters in the order of the rewritten statement's `?`s, BLOBs as Buffers. */
function sqliteArguments(statement: Statement, params: Query['params']): unknown[] {
  if (statement.slotsInOrder) {
    for (const p of params) if (Array.isArray(p)) return params.map(toSqliteParam);
    return params;
  }
  return statement.bindSlots.map((slot) => toSqliteParam(params[slot - 1]!));
}

export class Engine {
  private readonly connection: Connection;
  private readonly servedBy: string;
  private readonly servedByRegion: string | undefined;
  private readonly servedByPrimary: boolean;
  /** What this engine last saw of the database; refreshed when another connection changes it. */
  private counters: CounterState;
  private sequence: number;
  private dataVersion: number;
  private bookmarkText: string;
  /** Bumped on every schema change seen, so cached column names are looked up again. */
  private schemaEpoch = 0;
  private readonly columnCache = new WeakMap<object, { epoch: number; names: string[] }>();
  private closed = false;
  private readonly bookmarkTag: string | undefined;
  private readonly onCommit: (() => void) | undefined;
  private queryTimeoutMs: number;
  /** Each query of a request under the query timeout on its own, not the whole request (a script: see executeScript). */
  private timeoutPerQuery = false;
  /** This connection has made sure the database has workerd's _cf_METADATA (in a committed transaction). */
  private workerdMetadata = false;
  /**
   * The unit running makes sure of _cf_METADATA once its requests have run, not before: workerd
   * writes it after a database's first successful query, so that query answers without its row
   * (last_row_id 0 after a first CREATE TABLE) and the ones after it with it (last_row_id 2).
   */
  private workerdMetadataAtCommit = false;
  /** This engine has answered a request successfully (see workerdMetadataAtCommit). */
  private answered = false;
  /** Other connections committed since this one last took their schema as the seal's reference. */
  private othersCommitted = false;
  private readonly transactions: boolean;
  private readonly transactionTimeoutMs: number;
  /**
   * Called when the held transaction was rolled back behind the handle's back (its idle timeout, the
   * engine closing), with what the handle should be told. Set per use when engines are reused.
   */
  onAbandoned: ((reason: string) => void) | undefined;
  private held: HeldTransaction | undefined;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  /** Why the held transaction was rolled back behind the handle's back: told to its next request. */
  private abandonedBecause: string | undefined;
  /** The database's key in this thread's write gates (write-gate.ts). */
  readonly gate: string | undefined;
  /** In a unit: a query kept the size measured before it (see body), so the seal's caller measures anew. */
  private sizeStale = false;
  /** Connection.nestedWritesPossible() as of schemaEpoch nestedWritesEpoch (-1: ask again). */
  private nestedWrites = true;
  private nestedWritesEpoch = -1;

  constructor(file: string, options: EngineOptions = {}) {
    this.connection = new Connection(file, { ...options, autoCheckpoint: options.onCommit ? false : options.autoCheckpoint });
    this.servedBy = options.servedBy ?? 'dione';
    this.servedByRegion = options.servedByRegion;
    this.servedByPrimary = options.servedByPrimary ?? true;
    this.bookmarkTag = options.bookmarkTag;
    this.onCommit = options.onCommit;
    this.queryTimeoutMs = 0;
    this.setQueryTimeout(options.queryTimeoutMs);
    this.counters = this.connection.counters();
    this.sequence = this.connection.commitSequence();
    this.dataVersion = this.connection.dataVersion();
    this.bookmarkText = formatBookmark(this.sequence, this.bookmarkTag);
    this.transactions = options.transactions ?? false;
    this.transactionTimeoutMs = options.transactionTimeoutMs ?? DEFAULT_TRANSACTION_TIMEOUT_MS;
    this.onAbandoned = options.onAbandoned;
    // By SQLite's own path: two handles reaching one file through different links share its gate.
    this.gate = gateKey(this.connection.mainFile ?? file);
  }

  /** The bookmark of the newest commit this engine has seen. */
  get bookmark(): string {
    return this.bookmarkText;
  }

  /** The -wal file SQLite writes this writable file's commits to (its own path: symbolic links resolved); undefined when not in WAL mode. */
  get walFile(): string | undefined {
    return this.connection.walFile;
  }

  /** The number of the newest commit this engine has seen. */
  get commitSequence(): number {
    return this.sequence;
  }

  /** The deadline of each request from now on, in ms; 0 or undefined: none. */
  setQueryTimeout(ms: number | undefined): void {
    this.queryTimeoutMs = ms !== undefined && ms > 0 ? ms : 0;
  }

  /** Runs one request's statements under the query timeout, if there is one. */
  private withDeadline<T>(fn: () => T): T {
    if (this.queryTimeoutMs === 0) return fn();
    this.connection.armDeadline(this.queryTimeoutMs);
    try {
      return fn();
    } finally {
      this.connection.disarmDeadline();
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Ready for another transaction's use (engines are reused: a connection costs milliseconds to
   * open): whatever is still held is rolled back, and nothing of the last use is told to the next.
   */
  resetTransaction(): void {
    this.onAbandoned = undefined;
    if (this.held) this.abandonTransaction('');
    this.abandonedBecause = undefined;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** An in-memory database (no other connection can share it). */
  get memory(): boolean {
    return this.connection.memory;
  }

  /** Takes in commits other connections made (another handle's transaction) since this one last looked. */
  catchUp(): void {
    // The data version moves only when this connection reads: reading the header makes it look.
    this.connection.commitSequence();
    this.sync();
  }

  /** See Connection.checkpoint. */
  checkpoint(): boolean {
    return this.connection.checkpoint();
  }

  execute(request: ExecuteRequest): ExecuteResponse {
    if (this.closed) return { success: false, error: Messages.closed };
    if (request.bookmark !== undefined && !SESSION_CONSTRAINTS.has(request.bookmark) && !isBookmark(request.bookmark)) {
      return { success: false, error: `Invalid bookmark or constraint: '${request.bookmark}'` };
    }
    const malformed = malformedQuery(request);
    if (malformed !== undefined) return { success: false, error: malformed };
    const work = workOf(request);
    if (work.queries.length === 0) return { success: false, error: Messages.noStatements };
    if (this.transactions && !request.readOnly) {
      const answer = this.interactive(work) ?? this.executeWork(work, false);
      this.armIdleTimer();
      answer.inTransaction = this.held !== undefined;
      if (answer.success) this.answered = true;
      return answer;
    }
    const answer = this.executeWork(work, request.readOnly === true);
    if (answer.success) this.answered = true;
    return answer;
  }

  /** A request outside any held transaction. */
  private executeWork(work: Work, readOnly: boolean): ExecuteResponse {
    if (readOnly || this.connection.readonly) return this.readOnly(work);
    if (work.queries.length === 1) {
      const parsed = work.parsed[0]!;
      const only = parsed.statements;
      if (only.length === 1 && only[0]!.kind === 'read' && !parsed.tooLong) {
        const answer = this.readAlone(work.queries[0]!, only[0]!, work.format);
        if (answer) return answer;
        // SQLite says the statement writes: it takes the write path, whatever it looked like.
        return this.unit([work], true)[0]!;
      }
    }
    return this.unit([work], writesAny(work))[0]!;
  }

  /**
   * A single read statement runs without an explicit transaction (SQLite's autocommit is atomic),
   * prepared in read mode. When SQLite says it would write: undefined (it takes the write path), or
   * for a request that must not write, SQLite's refusal.
   */
  private readAlone(query: Query, statement: Statement, format: ResultsFormat, mustNotWrite = false): ExecuteResponse | undefined {
    const started = performance.now();
    try {
      checkRunnable(statement, this.connection);
      const prepared = this.connection.prepareRead(statement.executable, statement.text);
      if (prepared === 'writes' || !prepared.readonly) {
        if (mustNotWrite) throw new D1Failure(Messages.readOnly);
        return undefined;
      }
      const outcome =
        this.queryTimeoutMs === 0 ? this.run(statement, prepared, query.params, format) : this.withDeadline(() => this.run(statement, prepared, query.params, format));
      const meta = this.meta(performance.now() - started, this.counters, this.counters, outcome, statement, 0);
      return { success: true, results: [{ columns: outcome.columns, rows: outcome.rows, meta }], bookmark: this.bookmarkText };
    } catch (e) {
      return { success: false, error: detailOf(e) };
    }
  }

  /**
   * A request that must not write (a read-only caller, a read-only connection): each statement is
   * prepared in read mode and runs only when SQLite's read-only flag says it does not write.
   */
  private readOnly(work: Work): ExecuteResponse {
    const only = work.parsed[0]!.statements;
    if (work.queries.length === 1 && only.length === 1 && !work.parsed[0]!.tooLong) {
      return this.readAlone(work.queries[0]!, only[0]!, work.format, true)!;
    }
    const prepareRead = (statement: Statement): Database.Statement => {
      const prepared = this.connection.prepareRead(statement.executable, statement.text);
      if (prepared === 'writes' || !prepared.readonly) throw new D1Failure(Messages.readOnly);
      return prepared;
    };
    return this.unit([work], false, prepareRead)[0]!;
  }

  /**
   * Executes several requests that arrived together. Consecutive requests that write share one
   * transaction and one commit (group commit); each runs inside its own savepoint, so a failing
   * request rolls back alone and every request stays atomic. Responses come back in order.
   */
  executeMany(
    requests: ExecuteRequest[],
    onResponse?: (index: number, response: ExecuteResponse) => void,
    /** Called before each unit (a group or a single request) runs: the moment to deliver answers so far. */
    beforeRun?: () => void,
  ): ExecuteResponse[] {
    const responses: ExecuteResponse[] = new Array(requests.length);
    // Each response is final (committed or rolled back) when it is reported, so a caller can answer
    // it before a later request runs, however long that one takes.
    const settle = (i: number, response: ExecuteResponse) => {
      if (response.success) this.answered = true;
      responses[i] = response;
      onResponse?.(i, response);
    };
    let group: number[] = [];
    const flush = () => {
      if (group.length > 0) beforeRun?.();
      if (group.length === 1) settle(group[0]!, this.execute(requests[group[0]]!));
      else if (group.length > 1) {
        const answers = this.unit(group.map((i) => workOf(requests[i]!)), true);
        for (let k = 0; k < answers.length; k++) settle(group[k]!, answers[k]!);
      }
      group = [];
    };
    for (let i = 0; i < requests.length; i++) {
      if (this.groupable(requests[i]!)) group.push(i);
      else {
        flush();
        beforeRun?.();
        settle(i, this.execute(requests[i]!));
      }
    }
    flush();
    return responses;
  }

  /** Writes that can share a transaction: no session bookmark check, no PRAGMA (its effects are per transaction), no VACUUM. */
  private groupable(request: ExecuteRequest): boolean {
    if (this.closed || this.transactions || request.queries.length === 0 || request.readOnly || this.connection.readonly) return false;
    if (request.bookmark !== undefined && !SESSION_CONSTRAINTS.has(request.bookmark) && !isBookmark(request.bookmark)) return false;
    let writes = false;
    for (const q of request.queries) {
      if (isDroppedQuery(q.sql)) continue;
      for (const s of parseQuery(q.sql).statements) {
        if (s.verb === 'PRAGMA' || s.verb === 'VACUUM') return false;
        if (s.kind === 'write') writes = true;
      }
    }
    return writes;
  }

  /**
   * The one commit path. Runs the requests in one transaction (each in its own savepoint when there
   * are several, so a failing request rolls back alone), then seals and commits what succeeded.
   * SQLite decides whether the transaction wrote (the seal), so a write the classifier missed is
   * still numbered and reaches the log; any failure after BEGIN rolls back.
   */
  private unit(works: Work[], writes: boolean, prepare: (statement: Statement) => Database.Statement = this.prepareWrite): ExecuteResponse[] {
    const shared = works.length > 1;
    const everyone = (failure: ExecuteResponse) => works.map(() => failure);
    const notBegun = this.begin(writes);
    if (notBegun) return everyone(notBegun);
    const responses: ExecuteResponse[] = [];
    let succeeded = 0;
    for (const work of works) {
      if (work.queries.length === 0) {
        responses.push({ success: false, error: Messages.noStatements });
        continue;
      }
      try {
        if (shared) {
          runOnly(this.connection.savepoint);
          // Opening it, a virtual table may write out what the requests before left pending (FTS5
          // flushes its terms at a savepoint): changes of no request, as D1 runs each on its own.
          if (responses.length > 0) this.forgetNestedChanges();
        }
        const results = this.withDeadline(() => this.body(work, prepare));
        // What COMMIT and the seal check for the whole group, each request answers for on its own.
        if (shared && this.connection.checkRequest().deferredViolations) throw new D1Failure(FOREIGN_KEY_AT_COMMIT, true);
        if (shared) runOnly(this.connection.release);
        responses.push({ success: true, results, bookmark: '' });
        succeeded++;
      } catch (e) {
        // Alone, or when SQLite has already rolled the whole transaction back (it may, on a full disk,
        // an I/O error or an interrupted write), the request's failure is everyone's, but for a timeout.
        if (!shared || !this.connection.db.inTransaction) {
          this.rollback();
          const failure = failureOf(e);
          if (!shared || !timedOut(failure)) return everyone(failure);
          // The others of the group did nothing wrong: they run again, in a new transaction.
          const index = responses.length;
          const others = this.unit(works.filter((_, k) => k !== index), writes, prepare);
          others.splice(index, 0, failure);
          return others;
        }
        try {
          runOnly(this.connection.rollbackToSavepoint);
          runOnly(this.connection.release);
          this.nestedWritesEpoch = -1;
          this.counters = this.connection.counters();
        } catch (inner) {
          this.rollback();
          return everyone(failureOf(inner));
        }
        responses.push(failureOf(e));
      }
    }
    if (succeeded === 0) {
      this.rollback();
      return responses;
    }
    const notCommitted = this.commitUnit();
    if (notCommitted) return everyone(notCommitted);
    for (const r of responses) if (r.success) r.bookmark = this.bookmarkText;
    return responses;
  }

  /** Starts a unit's transaction (see unit); a failure when it cannot (nothing is held then). */
  private begin(writes: boolean): Failure | undefined {
    // Another handle's interactive transaction holds the write lock: SQLite would sleep this thread.
    if (writes && heldByOther(this.gate, this)) return { success: false, error: BUSY, busy: true };
    this.sizeStale = false;
    try {
      runOnly(writes ? this.connection.beginImmediate : this.connection.begin);
      // BEGIN IMMEDIATE has started a read transaction: catch up with other connections' commits.
      if (writes) this.sync(true);
      if (writes && !this.workerdMetadata) {
        if (this.answered) {
          // Its row is a change of the transaction's own: the requests' meta counts from after it.
          if (this.connection.ensureWorkerdMetadata()) this.counters = this.connection.counters();
          this.workerdMetadata = true;
        } else this.workerdMetadataAtCommit = true;
      }
      return undefined;
    } catch (e) {
      this.rollback();
      return { success: false, error: detailOf(e) };
    }
  }

  /** Seals and commits a unit's transaction, and gives the commit to the log; a failure when it did not commit or the log did not take it. */
  private commitUnit(): Failure | undefined {
    let sequence: number | undefined;
    try {
      if (this.workerdMetadataAtCommit) {
        this.workerdMetadataAtCommit = false;
        if (this.connection.ensureWorkerdMetadata()) this.counters = this.connection.counters();
        this.workerdMetadata = true;
      }
      sequence = this.connection.seal();
      // The seal only sets the header's commit sequence: changes, last row id and size stay as the
      // last measure after a write left them, unless a query kept an older size (then measured here,
      // inside the transaction, which avoids a new read lock later).
      if (sequence !== undefined && this.sizeStale) this.counters = this.connection.counters();
      runOnly(this.connection.commit);
    } catch (e) {
      this.rollback();
      const detail = detailOf(e);
      if (detail.includes('FOREIGN KEY constraint failed')) return failureOf(new D1Failure(detail, true));
      return { success: false, error: detail };
    }
    return this.committed(sequence);
  }

  /**
   * Runs a script too large to hold at once (an import): its queries arrive a window at a time and
   * all run in one transaction, each under the query timeout on its own. Answers how many ran and
   * their meta summed (the database's size and last row id as after the last), or the first
   * failure, with nothing kept. Only the window running is held in memory.
   */
  executeScript(windows: Iterable<Query[]>): ScriptResponse {
    if (this.closed) return { success: false, error: Messages.closed };
    if (this.held !== undefined) return { success: false, error: BUSY, busy: true };
    let begun = false;
    let statements = 0;
    let meta: D1Meta | undefined;
    const timeoutPerQuery = this.timeoutPerQuery;
    this.timeoutPerQuery = true;
    try {
      for (const queries of windows) {
        if (queries.length === 0) continue;
        const request: ExecuteRequest = { queries, resultsFormat: 'NONE' };
        const malformed = malformedQuery(request);
        if (malformed !== undefined) throw new D1Failure(malformed);
        const work = workOf(request);
        if (!begun) {
          // A script that only reads is no commit (BEGIN IMMEDIATE would make it one); a write in a
          // later window takes the write lock then, unless another handle's transaction holds it.
          if (heldByOther(this.gate, this)) return { success: false, error: BUSY, busy: true };
          const notBegun = this.begin(writesAny(work));
          if (notBegun) return notBegun;
          begun = true;
        }
        for (const result of this.withDeadline(() => this.body(work, this.prepareWrite))) meta = meta === undefined ? result.meta : addTo(meta, result.meta);
        statements += queries.length;
      }
    } catch (e) {
      if (begun) this.rollback();
      return failureOf(e);
    } finally {
      this.timeoutPerQuery = timeoutPerQuery;
    }
    if (begun) {
      const notCommitted = this.commitUnit();
      if (notCommitted) return notCommitted;
    }
    return { success: true, statements, meta, bookmark: this.bookmarkText };
  }

  /** After COMMIT: the new position, and the log's turn. A failure when the log did not take the commit. */
  private committed(sequence: number | undefined): Failure | undefined {
    if (sequence === undefined) return undefined;
    this.sequence = sequence;
    this.dataVersion = this.connection.dataVersion();
    this.bookmarkText = formatBookmark(this.sequence, this.bookmarkTag);
    try {
      this.onCommit?.();
    } catch (e) {
      // Committed in SQLite but not taken by the log: not acknowledged (the log's owner repairs the file).
      return { success: false, error: detailOf(e) };
    }
    // A virtual table may write its shadow tables as the transaction commits (FTS5 flushes its
    // pending terms): changes no query made, which D1 counts in no query's meta. (After the log has
    // the commit: a failure here only leaves the next query's count as before this fix.)
    try {
      this.forgetNestedChanges();
    } catch {
      this.nestedWritesEpoch = -1;
    }
    return undefined;
  }

  /** Whether this handle holds a transaction it opened with BEGIN or SAVEPOINT. */
  get inTransaction(): boolean {
    return this.held !== undefined;
  }

  /**
   * Requests on a handle with interactive transactions: those that hold transaction statements run
   * statement by statement (each in the state the previous left), those sent while a transaction
   * is held run inside it (each still atomic, in a savepoint). Undefined: the ordinary path.
   */
  private interactive(work: Work): ExecuteResponse | undefined {
    if (this.abandonedBecause !== undefined) {
      const error = this.abandonedBecause;
      this.abandonedBecause = undefined;
      return { success: false, error };
    }
    if (work.parsed.some((p) => p.statements.some((s) => s.control !== undefined))) return this.script(work);
    return this.held ? this.inHeld(work, true) : undefined;
  }

  /** Nothing ran: busy, and `retry` says whether the request may simply be sent again. */
  private busy(retry: boolean): ExecuteResponse {
    return retry ? { success: false, error: BUSY, busy: true } : { success: false, error: BUSY };
  }

  /** The held transaction takes the write lock; false when another handle of this thread holds it. */
  private claimWrites(): boolean {
    if (!takeGate(this.gate, this)) return false;
    this.held!.writing = true;
    return true;
  }

  /** One request inside the held transaction, atomic on its own (a savepoint). */
  private inHeld(work: Work, first: boolean): ExecuteResponse {
    if (!this.held!.writing && writesAny(work) && !this.claimWrites()) return this.busy(first);
    const db = this.connection.db;
    try {
      runOnly(this.connection.savepoint);
      const results = this.withDeadline(() => this.body(work, this.prepareWrite));
      runOnly(this.connection.release);
      return { success: true, results, bookmark: this.bookmarkText };
    } catch (e) {
      const failure = failureOf(e);
      // SQLite ended the whole transaction (an interrupted write, a full disk, ON CONFLICT ROLLBACK).
      if (!db.inTransaction) {
        this.endHeld(true);
        return failure;
      }
      try {
        runOnly(this.connection.rollbackToSavepoint);
        runOnly(this.connection.release);
        this.nestedWritesEpoch = -1;
        this.counters = this.connection.counters();
      } catch {
        this.abandonTransaction('');
      }
      return failure;
    }
  }

  /** A request holding transaction statements: its statements one by one; it stops at the first failure. */
  private script(work: Work): ExecuteResponse {
    // It will write while another handle's transaction holds the write lock: wait before running any of it.
    const writes = work.parsed.some((p) => p.statements.some((s) => s.kind === 'write' && s.control === undefined));
    if (!this.held?.writing && writes && heldByOther(this.gate, this)) return this.busy(true);
    const results: StatementResult[] = [];
    let ran = false;
    for (let q = 0; q < work.queries.length; q++) {
      const { statements, tooLong } = work.parsed[q]!;
      const query = work.queries[q]!;
      if (tooLong) return { success: false, error: 'statement too long: SQLITE_TOOBIG' };
      if (statements.length === 0) return { success: false, error: Messages.emptyStatement };
      let result: StatementResult | undefined;
      for (let i = 0; i < statements.length; i++) {
        const statement = statements[i]!;
        const last = i === statements.length - 1;
        if (!last && statement.parameterCount > 0) return { success: false, error: Messages.parametersOnlyInLast };
        const params = last ? query.params : [];
        const format = last ? work.format : 'NONE';
        let response: ExecuteResponse;
        if (statement.control) response = this.control(statement, params, !ran);
        else {
          const one: Work = { queries: [{ sql: statement.text, params }], parsed: [parseQuery(statement.text)], format };
          response = this.held ? this.inHeld(one, !ran) : this.executeWork(one, false);
        }
        if (!response.success) return ran && response.busy ? { success: false, error: response.error } : response;
        ran = true;
        result = response.results[0];
      }
      results.push(result!);
    }
    return { success: true, results, bookmark: this.bookmarkText };
  }

  /** Runs a transaction statement as written; SQLite's refusal (no transaction, no such savepoint) is the answer. */
  private runAsWritten(statement: Statement): void {
    const prepared = this.connection.prepare(statement.executable, statement.text);
    try {
      prepared.run();
    } catch (e) {
      throw new D1Failure(detailOf(e));
    }
  }

  private control(statement: Statement, params: Query['params'], first: boolean): ExecuteResponse {
    const started = performance.now();
    const control = statement.control!;
    if (params.length !== statement.parameterCount) return { success: false, error: Messages.wrongParameterCount };
    try {
      switch (control.op) {
        case 'begin': {
          if (this.held) this.runAsWritten(statement); // SQLite: cannot start a transaction within a transaction
          const writing = control.mode !== 'DEFERRED';
          if (writing && !takeGate(this.gate, this)) return this.busy(first);
          try {
            this.runAsWritten(statement);
          } catch (e) {
            releaseGate(this.gate, this);
            throw e;
          }
          this.held = { savepoints: [], bySavepoint: false, writing };
          this.startSnapshot();
          break;
        }
        case 'savepoint':
          if (!this.held) {
            // SQLite opens a deferred transaction for it; BEGIN first keeps the commit in Dione's hands.
            runOnly(this.connection.begin);
            this.held = { savepoints: [], bySavepoint: true, writing: false };
            this.startSnapshot();
          }
          this.runAsWritten(statement);
          this.held.savepoints.push(control.name);
          break;
        case 'release': {
          const at = this.held ? this.held.savepoints.lastIndexOf(control.name) : -1;
          if (at < 0) this.runAsWritten(statement); // SQLite: no such savepoint
          else if (at === 0 && this.held!.bySavepoint) {
            const failure = this.commitHeld();
            if (failure) return failure;
          } else {
            this.runAsWritten(statement);
            this.held!.savepoints.length = at;
          }
          break;
        }
        case 'rollback-to': {
          const at = this.held ? this.held.savepoints.lastIndexOf(control.name) : -1;
          this.runAsWritten(statement);
          if (at >= 0) this.held!.savepoints.length = at + 1;
          // What was rolled back may have dropped a trigger (see rowWriteCounters).
          this.nestedWritesEpoch = -1;
          this.counters = this.connection.counters();
          break;
        }
        case 'commit': {
          if (!this.held) this.runAsWritten(statement); // SQLite: cannot commit - no transaction is active
          const failure = this.commitHeld();
          if (failure) return failure;
          break;
        }
        case 'rollback':
          this.runAsWritten(statement);
          if (this.held) this.endHeld(true);
          break;
      }
    } catch (e) {
      const held = this.held;
      // Over in SQLite, or opened here for a SAVEPOINT that then failed: nothing is held.
      if (held && (!this.connection.db.inTransaction || (held.bySavepoint && held.savepoints.length === 0))) this.endHeld(true);
      return failureOf(e);
    }
    const meta = this.meta(performance.now() - started, this.counters, this.counters, NOTHING_READ, statement, 0);
    return { success: true, results: [{ columns: NO_COLUMNS, rows: NO_ROWS, meta }], bookmark: this.bookmarkText };
  }

  /**
   * A held transaction reads one snapshot from its start (a deferred BEGIN takes it here, not at its
   * first read), and takes other connections' commits in as it does (the seal's schema reference).
   */
  private startSnapshot(): void {
    this.counters = this.connection.counters();
    this.sync(true);
  }

  /** Seals and commits the held transaction: one commit, one record in the write log. */
  private commitHeld(): ExecuteResponse | undefined {
    const held = this.held!;
    let sequence = held.sealed;
    try {
      if (sequence === undefined) {
        if (held.writing && !this.workerdMetadata) {
          this.connection.ensureWorkerdMetadata();
          this.workerdMetadata = true;
        }
        sequence = this.connection.seal();
        held.sealed = sequence;
        if (sequence !== undefined) this.counters = this.connection.counters();
      }
      runOnly(this.connection.commit);
    } catch (e) {
      // A COMMIT refused (a deferred foreign key still violated) leaves the transaction open, as in SQLite.
      if (!this.connection.db.inTransaction) this.endHeld(true);
      return { success: false, error: detailOf(e) };
    }
    this.endHeld(false);
    return this.committed(sequence);
  }

  /** The held transaction is over (committed, or rolled back: then what it moved is read again). */
  private endHeld(rolledBack: boolean): void {
    this.held = undefined;
    releaseGate(this.gate, this);
    if (rolledBack) this.rollback();
  }

  /**
   * Rolls back the held transaction (its idle timeout passed, its client went away, the handle
   * closes); the handle's next request is answered with `reason` (unless empty).
   */
  abandonTransaction(reason: string): void {
    if (!this.held) return;
    try {
      this.endHeld(true);
    } finally {
      if (reason) this.abandonedBecause = reason;
    }
  }

  private armIdleTimer(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (!this.held || this.closed) return;
    const ms = this.transactionTimeoutMs;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const reason = `Transaction rolled back: it was idle for more than ${ms} ms (the transaction timeout).`;
      this.abandonTransaction(reason);
      this.onAbandoned?.(reason);
    }, ms);
    this.idleTimer.unref?.();
  }

  private readonly prepareWrite = (statement: Statement): Database.Statement => this.connection.prepare(statement.executable, statement.text);

  /** The queries of one request, inside an open transaction; throws D1's error on the first failure. */
  private body({ queries, parsed, format }: Work, prepare: (statement: Statement) => Database.Statement): StatementResult[] {
    const results: StatementResult[] = [];
    // One clock reading per query: each query's time runs from the end of the one before.
    let started = performance.now();
    for (let q = 0; q < queries.length; q++) {
      if (q > 0 && this.timeoutPerQuery && this.queryTimeoutMs > 0) this.connection.armDeadline(this.queryTimeoutMs);
      const before = this.counters;
      const { statements, tooLong } = parsed[q]!;
      if (tooLong) throw new D1Failure('statement too long: SQLITE_TOOBIG');
      if (statements.length === 0) throw new D1Failure(Messages.emptyStatement);
      let outcome: Outcome = { columns: NO_COLUMNS, rows: NO_ROWS, read: 0, written: 0 };
      let queryWrote = false;
      for (let i = 0; i < statements.length; i++) {
        const statement = statements[i]!;
        const last = i === statements.length - 1;
        checkRunnable(statement, this.connection);
        const prepared = prepare(statement);
        // In a held transaction, a statement SQLite says writes takes the write lock first.
        if (this.held !== undefined && !this.held.writing && !prepared.readonly && !this.claimWrites()) throw new D1Failure(BUSY);
        if (!last && statement.parameterCount > 0) throw new D1Failure(Messages.parametersOnlyInLast);
        outcome = this.run(statement, prepared, last ? queries[q]!.params : [], last ? format : 'NONE');
        if (statement.kind === 'write' || !prepared.readonly) queryWrote = true;
      }
      const lastStatement = statements.at(-1)!;
      if (queryWrote) {
        // Measuring the size costs three PRAGMA steps; inside a request, plain row writes keep
        // the last measured size and the request's final query measures it anew.
        const remeasure = q === queries.length - 1 || !ROW_WRITE_VERBS.has(lastStatement.verb);
        this.counters = remeasure ? this.connection.counters() : this.rowWriteCounters(outcome, statements.length === 1);
        this.sizeStale = !remeasure;
      }
      const ended = performance.now();
      const meta = this.meta(ended - started, before, this.counters, outcome, lastStatement, this.counters.totalChanges - before.totalChanges);
      started = ended;
      const rows = format === 'NONE' ? NO_ROWS : format === 'FIRST_ROW' ? outcome.rows.slice(0, 1) : outcome.rows;
      results.push({ columns: outcome.columns, rows, meta });
    }
    return results;
  }

  /**
   * The counters after a row write that keeps the last measured size (see body). A single statement
   * that returned no rows, in a schema where nothing else can change rows along with it (no trigger,
   * foreign key action or virtual table), changed exactly what better-sqlite3's run() says, so the
   * counters follow from it without asking SQLite (a statement step per row of a batch). Otherwise,
   * or when unsure, SQLite's total_changes() and last_insert_rowid().
   */
  private rowWriteCounters(outcome: Outcome, alone: boolean): CounterState {
    const ran = outcome.ran;
    if (ran !== undefined && alone) {
      if (!this.mayWriteNested()) {
        return { totalChanges: this.counters.totalChanges + ran.changes, lastRowId: Number(ran.lastInsertRowid), size: this.counters.size };
      }
    }
    return this.connection.counters(this.counters.size);
  }

  /**
   * Changes SQLite made outside any statement since the last count (a virtual table writing its
   * shadow tables at a savepoint or a commit) are counted in no request's meta: take the total as it
   * is now. SQLite is asked only where the schema allows such writes.
   */
  private forgetNestedChanges(): void {
    if (this.mayWriteNested()) this.counters = { ...this.counters, totalChanges: this.connection.totalChanges() };
  }

  /** Whether the schema holds a trigger, a foreign key or a virtual table (see Connection.nestedWritesPossible), asked once per schema. */
  private mayWriteNested(): boolean {
    if (this.nestedWritesEpoch !== this.schemaEpoch) {
      this.nestedWrites = this.connection.nestedWritesPossible();
      this.nestedWritesEpoch = this.schemaEpoch;
    }
    return this.nestedWrites;
  }

  private rollback(): void {
    // What was rolled back may have dropped a trigger (see rowWriteCounters): ask again.
    this.nestedWritesEpoch = -1;
    if (this.connection.db.inTransaction) runOnly(this.connection.rollback);
    // The table may have been created by the transaction just rolled back.
    this.workerdMetadata = false;
    this.workerdMetadataAtCommit = false;
    // The rolled-back transaction may have moved the counters and the sequence.
    this.counters = this.connection.counters();
    this.sequence = this.connection.commitSequence();
  }

  /**
   * Picks up commits made by other connections (other handles, processes, the CLI). At the start
   * of a write transaction after such commits (seen now or by an earlier read), their schema also
   * becomes the seal's reference. `version`: the data version, when the caller has just read it.
   */
  private sync(atTransactionStart = false, version = this.connection.dataVersion()): void {
    if (version !== this.dataVersion) {
      // Read before anything is assigned: a deadline may interrupt any of these.
      const counters = this.connection.counters();
      const sequence = this.connection.commitSequence();
      this.dataVersion = version;
      this.counters = counters;
      this.sequence = sequence;
      this.bookmarkText = formatBookmark(this.sequence, this.bookmarkTag);
      this.schemaEpoch++;
      this.othersCommitted = true;
      this.onCommit?.();
    }
    if (atTransactionStart && this.othersCommitted) {
      this.connection.settleSchema();
      this.othersCommitted = false;
    }
  }

  private run(statement: Statement, prepared: Database.Statement, params: Query['params'], format: ResultsFormat): Outcome {
    if (params.length !== statement.parameterCount) throw new D1Failure(Messages.wrongParameterCount);
    const args = sqliteArguments(statement, params);
    let rows: RowValue[][];
    let counted: CountedRead<unknown>;
    try {
      if (SCHEMA_VERBS.has(statement.verb)) this.schemaEpoch++;
      if (!prepared.reader) {
        const [changes, lastInsertRowid, read, written] = runCounted(prepared, args);
        return { columns: NO_COLUMNS, rows: NO_ROWS, read, written, ran: { changes, lastInsertRowid } };
      }
      if (format === 'FIRST_ROW' && statement.kind === 'read') {
        counted = getCounted(prepared, args);
        rows = counted[0] === undefined ? NO_ROWS : [counted[0] as RowValue[]];
      } else {
        counted = allCounted(prepared, args);
        rows = counted[0] as RowValue[][];
      }
    } catch (e) {
      // A failed run's counts must not add to the next run of the cached statement.
      takeRowCounts(prepared);
      const offset = isSqliteError(e) && e.code === 'SQLITE_ERROR' ? this.connection.runErrorOffset(statement.executable, e.message) : -1;
      throw new D1Failure(detailOf(e, offset));
    }
    const [, read, written, dataVersion] = counted;
    if (statement.kind === 'read') this.sync(false, dataVersion);
    // NONE (exec()) runs the statement to its end and answers no rows: neither columns nor values.
    if (format === 'NONE') return { columns: NO_COLUMNS, rows: NO_ROWS, read, written };
    return { columns: this.columnsOf(statement, prepared, rows), rows, read, written };
  }

  private columnsOf(statement: Statement, prepared: { columns(): { name: string }[] }, rows: RowValue[][]): string[] {
    const rewritten = statement.executable !== statement.text;
    // Statements whose parameters were rewritten share the prepared one they run as: their names are their own.
    const key: object = rewritten ? statement : prepared;
    const cached = this.columnCache.get(key);
    if (cached && cached.epoch === this.schemaEpoch && (rows.length === 0 || rows[0]!.length === cached.names.length)) {
      return cached.names;
    }
    let names = prepared.columns().map((c) => c.name);
    if (rewritten) {
      // SQLite names a column without an alias by its text: `:a` or `?2 + 1` as written, not as the
      // plain `?` the statement runs with. The text is prepared now for its names (a statement kept
      // from before would keep the columns of the schema it was prepared with: it never runs).
      const own = this.connection.db.prepare(statement.text).columns().map((c) => c.name);
      if (own.length === names.length) names = own;
    }
    this.columnCache.set(key, { epoch: this.schemaEpoch, names });
    return names;
  }

  private meta(duration: number, before: CounterState, after: CounterState, outcome: Outcome, statement: Statement, changes: number): D1Meta {
    const meta: D1Meta = {
      served_by: this.servedBy,
      duration,
      changes,
      last_row_id: after.lastRowId,
      // Row writes change the size only by changing rows; other statements (DDL, ANALYZE…) by their size.
      changed_db:
        changes !== 0 ||
        after.lastRowId !== before.lastRowId ||
        (statement.kind === 'write' && !ROW_WRITE_VERBS.has(statement.verb) && after.size !== before.size),
      size_after: after.size,
      rows_read: outcome.read,
      rows_written: outcome.written,
    };
    if (this.servedByRegion === undefined) return meta;
    return { served_by: meta.served_by, served_by_region: this.servedByRegion, served_by_primary: this.servedByPrimary, ...meta };
  }

  /** The database as a SQL dump, line by line (wrangler's export format). */
  dumpSql(options: DumpSqlOptions = {}): Generator<string> {
    if (this.closed) throw new D1Failure(Messages.closed);
    return dumpSql(this.connection.db, options);
  }

  /** Size, table count and position, for the REST API's database object. */
  info(): { num_tables: number; file_size: number; bookmark: string } {
    this.sync();
    const tables = this.connection.db
      .prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_' AND substr(name, 1, 4) <> '_cf_'")
      .pluck()
      .get() as number;
    return { num_tables: Number(tables), file_size: this.counters.size, bookmark: this.bookmarkText };
  }

  /** A consistent copy of the database file at `file` (SQLite's backup API). */
  async backup(file: string): Promise<void> {
    if (this.closed) throw new D1Failure(Messages.closed);
    // Larger steps than the default 100 pages: a snapshot of a busy database still finishes.
    // When the database shrank during the copy (auto_vacuum), SQLite reports the copy done with a
    // negative count of pages left, which better-sqlite3 would keep stepping forever: stop there.
    const done = new Error('backup done');
    try {
      await this.connection.db.backup(file, {
        progress: ({ remainingPages }) => {
          if (remainingPages < 0) throw done;
          return BACKUP_PAGES_PER_STEP;
        },
      });
    } catch (e) {
      if (e !== done) throw e;
    }
  }

  /** A copy of the database file at `file` for handing out (dump): consistent, and without free pages. */
  async dumpTo(file: string): Promise<void> {
    await this.backup(file);
    compactCopy(file);
  }

  /** The database file as bytes. */
  async dump(): Promise<ArrayBuffer> {
    if (this.closed) throw new D1Failure(Messages.closed);
    const bytes = await this.connection.snapshot();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  /** Closes the connection; `keepWal` leaves the WAL as it is, for a repair (see Connection.close). */
  close(options: { keepWal?: boolean } = {}): void {
    if (this.closed) return;
    this.closed = true;
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    // A transaction still held is rolled back (closing would too), and its write lock let go.
    if (this.held) {
      this.abandonTransaction('');
      this.onAbandoned?.(CLOSED_WHILE_HELD);
    }
    this.connection.close(options);
  }
}
