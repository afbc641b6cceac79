// Executes D1 requests on one SQLite connection with D1's semantics: every request is atomic
// (a batch, an exec or a multi-statement query commits whole or not at all), meta is measured
// the way D1 measures it, and every failure comes back as D1's error text.
import type Database from 'better-sqlite3';
import { formatBookmark, isBookmark, SESSION_CONSTRAINTS } from '../api/bookmark.ts';
import { Messages, sqliteDetail } from '../api/errors.ts';
import type { ExecuteRequest, ExecuteResponse, Query, ResultsFormat, RowValue, StatementResult } from '../api/executor.ts';
import type { D1Meta } from '../api/types.ts';
import { type ParsedQuery, parseQuery } from '../sql/parse-cache.ts';
import type { Statement } from '../sql/statements.ts';
import { Connection, type ConnectionOptions, type CounterState, compactCopy } from './connection.ts';
import { type DumpSqlOptions, dumpSql } from './dump-sql.ts';
import { D1Failure, detailOf } from './sqlite-error.ts';
import { takeRowCounts } from './sqlite.ts';
import { toSqliteParam } from './values.ts';

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
  ran?: Database.RunResult;
}

const BACKUP_PAGES_PER_STEP = 2048;
const NO_ROWS: RowValue[][] = [];
const NO_COLUMNS: string[] = [];
const SCHEMA_VERBS = new Set(['CREATE', 'DROP', 'ALTER']);
const ROW_WRITE_VERBS = new Set(['INSERT', 'REPLACE', 'UPDATE', 'DELETE']);

/** exec() lines and batch elements that D1 silently drops: blank, or starting with an indented `--` comment. */
function dropped(sql: string): boolean {
  const c = sql.charCodeAt(0);
  if (c > 0x20) return false;
  return sql.trim() === '' || /^\s+--/.test(sql);
}

interface Work {
  queries: Query[];
  parsed: ParsedQuery[];
  format: ResultsFormat;
}

function workOf(request: ExecuteRequest): Work {
  const format = request.resultsFormat ?? 'ROWS_AND_COLUMNS';
  // One query (every prepared statement's call): no copies of the list.
  if (request.queries.length === 1 && !dropped(request.queries[0]!.sql)) {
    return { queries: request.queries, parsed: [parseQuery(request.queries[0]!.sql)], format };
  }
  const queries = request.queries.filter((q) => !dropped(q.sql));
  return { queries, parsed: queries.map((q) => parseQuery(q.sql)), format };
}

function writesAny(work: Work): boolean {
  return work.parsed.some((p) => p.statements.some((s) => s.kind === 'write'));
}

/** D1's refusals that need no SQLite: an empty statement, or one D1 refuses outright. */
function checkRunnable(statement: Statement): void {
  if (statement.empty) throw new D1Failure(Messages.emptyStatement);
  if (statement.rejection) throw new D1Failure(statement.rejection);
}

function failureOf(e: unknown): ExecuteResponse {
  if (e instanceof D1Failure && e.reset) return { success: false, error: Messages.constraintsViolatedAtCommit + e.detail, reset: true };
  return { success: false, error: detailOf(e) };
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
  /** This connection has made sure the database has workerd's _cf_METADATA (in a committed transaction). */
  private workerdMetadata = false;
  /** Other connections committed since this one last took their schema as the seal's reference. */
  private othersCommitted = false;
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
  }

  /** The bookmark of the newest commit this engine has seen. */
  get bookmark(): string {
    return this.bookmarkText;
  }

  /** The number of the newest commit this engine has seen. */
  get commitSequence(): number {
    return this.sequence;
  }

  /** The deadline of each request from now on, in ms; 0 or undefined: none. */
  setQueryTimeout(ms: number | undefined): void {
    this.queryTimeoutMs = ms !== undefined && ms > 0 ? ms : 0;
  }

  /** Runs `fn` (an import, a long maintenance request) with no query timeout. */
  withoutQueryTimeout<T>(fn: () => T): T {
    const was = this.queryTimeoutMs;
    this.queryTimeoutMs = 0;
    try {
      return fn();
    } finally {
      this.queryTimeoutMs = was;
    }
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

  /** See Connection.checkpoint. */
  checkpoint(): boolean {
    return this.connection.checkpoint();
  }

  execute(request: ExecuteRequest): ExecuteResponse {
    if (this.closed) return { success: false, error: Messages.closed };
    if (request.bookmark !== undefined && !SESSION_CONSTRAINTS.has(request.bookmark) && !isBookmark(request.bookmark)) {
      return { success: false, error: `Invalid bookmark or constraint: '${request.bookmark}'` };
    }
    const work = workOf(request);
    if (work.queries.length === 0) return { success: false, error: Messages.noStatements };
    if (request.readOnly || this.connection.readonly) return this.readOnly(work);
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
      checkRunnable(statement);
      const prepared = this.connection.prepareRead(statement.executable);
      if (prepared === 'writes' || !prepared.readonly) {
        if (mustNotWrite) throw new D1Failure(Messages.readOnly);
        return undefined;
      }
      const outcome =
        this.queryTimeoutMs === 0 ? this.run(statement, prepared, query.params, format) : this.withDeadline(() => this.run(statement, prepared, query.params, format));
      const meta = this.meta(started, this.counters, this.counters, outcome, statement, 0);
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
      const prepared = this.connection.prepareRead(statement.executable);
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
    if (this.closed || request.queries.length === 0 || request.readOnly || this.connection.readonly) return false;
    if (request.bookmark !== undefined && !SESSION_CONSTRAINTS.has(request.bookmark) && !isBookmark(request.bookmark)) return false;
    let writes = false;
    for (const q of request.queries) {
      if (dropped(q.sql)) continue;
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
    this.sizeStale = false;
    try {
      (writes ? this.connection.beginImmediate : this.connection.begin).run();
      // BEGIN IMMEDIATE has started a read transaction: catch up with other connections' commits.
      if (writes) this.sync(true);
      if (writes && !this.workerdMetadata) {
        // Its row is a change of the transaction's own: the requests' meta counts from after it.
        if (this.connection.ensureWorkerdMetadata()) this.counters = this.connection.counters();
        this.workerdMetadata = true;
      }
    } catch (e) {
      this.rollback();
      return everyone({ success: false, error: detailOf(e) });
    }
    const responses: ExecuteResponse[] = [];
    let succeeded = 0;
    for (const work of works) {
      if (work.queries.length === 0) {
        responses.push({ success: false, error: Messages.noStatements });
        continue;
      }
      try {
        if (shared) this.connection.savepoint.run();
        const results = this.withDeadline(() => this.body(work, prepare));
        // What COMMIT and the seal check for the whole group, each request answers for on its own.
        if (shared && this.connection.checkRequest().deferredViolations) throw new D1Failure(FOREIGN_KEY_AT_COMMIT, true);
        if (shared) this.connection.release.run();
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
          this.connection.rollbackToSavepoint.run();
          this.connection.release.run();
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
    let sequence: number | undefined;
    try {
      sequence = this.connection.seal();
      // The seal only sets the header's commit sequence: changes, last row id and size stay as the
      // last measure after a write left them, unless a query kept an older size (then measured here,
      // inside the transaction, which avoids a new read lock later).
      if (sequence !== undefined && this.sizeStale) this.counters = this.connection.counters();
      this.connection.commit.run();
    } catch (e) {
      this.rollback();
      const detail = detailOf(e);
      if (detail.includes('FOREIGN KEY constraint failed')) return everyone(failureOf(new D1Failure(detail, true)));
      return everyone({ success: false, error: detail });
    }
    if (sequence !== undefined) {
      this.sequence = sequence;
      this.dataVersion = this.connection.dataVersion();
      this.bookmarkText = formatBookmark(this.sequence, this.bookmarkTag);
      try {
        this.onCommit?.();
      } catch (e) {
        // Committed in SQLite but not taken by the log: not acknowledged (the log's owner repairs the file).
        return everyone({ success: false, error: detailOf(e) });
      }
    }
    for (const r of responses) if (r.success) r.bookmark = this.bookmarkText;
    return responses;
  }

  private readonly prepareWrite = (statement: Statement): Database.Statement => this.connection.prepare(statement.executable);

  /** The queries of one request, inside an open transaction; throws D1's error on the first failure. */
  private body({ queries, parsed, format }: Work, prepare: (statement: Statement) => Database.Statement): StatementResult[] {
    const results: StatementResult[] = [];
    for (let q = 0; q < queries.length; q++) {
      const started = performance.now();
      const before = this.counters;
      const { statements, tooLong } = parsed[q]!;
      if (tooLong) throw new D1Failure('statement too long: SQLITE_TOOBIG');
      if (statements.length === 0) throw new D1Failure(Messages.emptyStatement);
      let outcome: Outcome = { columns: NO_COLUMNS, rows: NO_ROWS, read: 0, written: 0 };
      let queryWrote = false;
      for (let i = 0; i < statements.length; i++) {
        const statement = statements[i]!;
        const last = i === statements.length - 1;
        checkRunnable(statement);
        const prepared = prepare(statement);
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
      const meta = this.meta(started, before, this.counters, outcome, lastStatement, this.counters.totalChanges - before.totalChanges);
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
      if (this.nestedWritesEpoch !== this.schemaEpoch) {
        this.nestedWrites = this.connection.nestedWritesPossible();
        this.nestedWritesEpoch = this.schemaEpoch;
      }
      if (!this.nestedWrites) {
        return { totalChanges: this.counters.totalChanges + ran.changes, lastRowId: Number(ran.lastInsertRowid), size: this.counters.size };
      }
    }
    return this.connection.counters(this.counters.size);
  }

  private rollback(): void {
    // What was rolled back may have dropped a trigger (see rowWriteCounters): ask again.
    this.nestedWritesEpoch = -1;
    if (this.connection.db.inTransaction) this.connection.rollback.run();
    // The table may have been created by the transaction just rolled back.
    this.workerdMetadata = false;
    // The rolled-back transaction may have moved the counters and the sequence.
    this.counters = this.connection.counters();
    this.sequence = this.connection.commitSequence();
  }

  /**
   * Picks up commits made by other connections (other handles, processes, the CLI). At the start
   * of a write transaction after such commits (seen now or by an earlier read), their schema also
   * becomes the seal's reference.
   */
  private sync(atTransactionStart = false): void {
    const version = this.connection.dataVersion();
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
    try {
      if (SCHEMA_VERBS.has(statement.verb)) this.schemaEpoch++;
      if (!prepared.reader) {
        const ran = prepared.run(...args);
        const [read, written] = takeRowCounts(prepared);
        return { columns: NO_COLUMNS, rows: NO_ROWS, read, written, ran };
      }
      if (format === 'FIRST_ROW' && statement.kind === 'read') {
        const row = prepared.get(...args) as RowValue[] | undefined;
        rows = row === undefined ? NO_ROWS : [row];
      } else rows = prepared.all(...args) as RowValue[][];
    } catch (e) {
      // A failed run's counts must not add to the next run of the cached statement.
      takeRowCounts(prepared);
      throw new D1Failure(detailOf(e));
    }
    const [read, written] = takeRowCounts(prepared);
    if (statement.kind === 'read') this.sync();
    return { columns: format === 'NONE' ? NO_COLUMNS : this.columnsOf(prepared, rows), rows, read, written };
  }

  private columnsOf(prepared: { columns(): { name: string }[] }, rows: RowValue[][]): string[] {
    const cached = this.columnCache.get(prepared);
    if (cached && cached.epoch === this.schemaEpoch && (rows.length === 0 || rows[0]!.length === cached.names.length)) {
      return cached.names;
    }
    const names = prepared.columns().map((c) => c.name);
    this.columnCache.set(prepared, { epoch: this.schemaEpoch, names });
    return names;
  }

  private meta(started: number, before: CounterState, after: CounterState, outcome: Outcome, statement: Statement, changes: number): D1Meta {
    const where = this.servedByRegion === undefined ? undefined : { served_by_region: this.servedByRegion, served_by_primary: this.servedByPrimary };
    return {
      served_by: this.servedBy,
      ...where,
      duration: performance.now() - started,
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
    this.connection.close(options);
  }
}
