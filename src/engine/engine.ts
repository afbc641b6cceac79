// Executes D1 requests on one SQLite connection with D1's semantics: every request is atomic
// (a batch, an exec or a multi-statement query commits whole or not at all), meta is measured
// the way D1 measures it, and every failure comes back as D1's error text.
import { formatBookmark, isBookmark, SESSION_CONSTRAINTS } from '../api/bookmark.ts';
import { Messages } from '../api/errors.ts';
import type { ExecuteRequest, ExecuteResponse, Query, RowValue, StatementResult } from '../api/executor.ts';
import type { D1Meta } from '../api/types.ts';
import { type ParsedQuery, parseQuery } from '../sql/parse-cache.ts';
import type { Statement } from '../sql/statements.ts';
import { Connection, type ConnectionOptions, type CounterState } from './connection.ts';
import { D1Failure, detailOf } from './sqlite-error.ts';
import { estimateRows } from './rows-estimate.ts';
import { toSqliteParam } from './values.ts';

export interface EngineOptions extends ConnectionOptions {
  /** The `served_by` value in meta. */
  servedBy?: string;
}

interface Outcome {
  columns: string[];
  rows: RowValue[][];
}

const NO_ROWS: RowValue[][] = [];
const NO_COLUMNS: string[] = [];
const SCHEMA_VERBS = new Set(['CREATE', 'DROP', 'ALTER']);

/** exec() lines and batch elements that D1 silently drops: blank, or starting with an indented `--` comment. */
function dropped(sql: string): boolean {
  const c = sql.charCodeAt(0);
  if (c > 0x20) return false;
  return sql.trim() === '' || /^\s+--/.test(sql);
}

export class Engine {
  private readonly connection: Connection;
  private readonly servedBy: string;
  private counters: CounterState;
  private readonly epoch = Math.floor(Date.now() / 1000);
  private commits = 0;
  private schemaEpoch = 0;
  private readonly columnCache = new WeakMap<object, { epoch: number; names: string[] }>();
  private closed = false;

  constructor(file: string, options: EngineOptions = {}) {
    this.connection = new Connection(file, options);
    this.servedBy = options.servedBy ?? 'dione';
    this.counters = this.connection.counters();
  }

  get bookmark(): string {
    return formatBookmark(this.epoch, this.commits);
  }

  execute(request: ExecuteRequest): ExecuteResponse {
    if (this.closed) return { success: false, error: Messages.closed };
    if (request.bookmark !== undefined && !SESSION_CONSTRAINTS.has(request.bookmark) && !isBookmark(request.bookmark)) {
      return { success: false, error: `Invalid bookmark or constraint: '${request.bookmark}'` };
    }
    const queries = request.queries.filter((q) => !dropped(q.sql));
    if (queries.length === 0) return { success: false, error: Messages.noStatements };
    const withRows = request.resultsFormat !== 'NONE';
    const parsed = queries.map((q) => parseQuery(q.sql));
    const only = parsed.length === 1 ? parsed[0]!.statements : undefined;
    if (only && only.length === 1 && only[0]!.kind === 'read' && !parsed[0]!.tooLong) {
      return this.readAlone(queries[0]!, only[0]!, withRows);
    }
    return this.transaction(queries, parsed, withRows);
  }

  /** A single read statement runs without an explicit transaction: SQLite's autocommit is atomic. */
  private readAlone(query: Query, statement: Statement, withRows: boolean): ExecuteResponse {
    const started = performance.now();
    try {
      const outcome = this.run(statement, query.params, withRows);
      const meta = this.meta(started, this.counters, this.counters, outcome, statement, 0);
      return { success: true, results: [{ columns: outcome.columns, rows: outcome.rows, meta }], bookmark: this.bookmark };
    } catch (e) {
      return { success: false, error: detailOf(e) };
    }
  }

  private transaction(queries: Query[], parsed: ParsedQuery[], withRows: boolean): ExecuteResponse {
    const writes = parsed.some((p) => p.statements.some((s) => s.kind === 'write'));
    const results: StatementResult[] = [];
    let wrote = false;
    try {
      (writes ? this.connection.beginImmediate : this.connection.begin).run();
    } catch (e) {
      return { success: false, error: detailOf(e) };
    }
    try {
      for (let q = 0; q < queries.length; q++) {
        const started = performance.now();
        const before = this.counters;
        const { statements, tooLong } = parsed[q]!;
        if (tooLong) throw new D1Failure('statement too long: SQLITE_TOOBIG');
        if (statements.length === 0) throw new D1Failure(Messages.emptyStatement);
        let outcome: Outcome = { columns: NO_COLUMNS, rows: NO_ROWS };
        let queryWrote = false;
        for (let i = 0; i < statements.length; i++) {
          const statement = statements[i]!;
          const last = i === statements.length - 1;
          if (!last && statement.parameterCount > 0) throw new D1Failure(Messages.parametersOnlyInLast);
          outcome = this.run(statement, last ? queries[q]!.params : [], withRows && last);
          if (statement.kind === 'write') queryWrote = true;
        }
        if (queryWrote) {
          this.counters = this.connection.counters();
          wrote = true;
        }
        const changes = this.counters.totalChanges - before.totalChanges;
        const meta = this.meta(started, before, this.counters, outcome, statements.at(-1)!, changes);
        results.push({ columns: outcome.columns, rows: withRows ? outcome.rows : NO_ROWS, meta });
      }
    } catch (e) {
      this.rollback();
      return { success: false, error: detailOf(e) };
    }
    try {
      this.connection.commit.run();
    } catch (e) {
      this.rollback();
      const detail = detailOf(e);
      if (detail.includes('FOREIGN KEY constraint failed')) {
        return { success: false, error: Messages.constraintsViolatedAtCommit + detail, reset: true };
      }
      return { success: false, error: detail };
    }
    if (wrote) this.commits++;
    return { success: true, results, bookmark: this.bookmark };
  }

  private rollback(): void {
    if (this.connection.db.inTransaction) this.connection.rollback.run();
    // Counters may have moved inside the rolled-back transaction.
    this.counters = this.connection.counters();
  }

  private run(statement: Statement, params: Query['params'], withRows: boolean): Outcome {
    if (statement.empty) throw new D1Failure(Messages.emptyStatement);
    if (statement.rejection) throw new D1Failure(statement.rejection);
    const prepared = this.connection.prepare(statement.executable);
    if (params.length !== statement.parameterCount) throw new D1Failure(Messages.wrongParameterCount);
    const slots = statement.bindSlots;
    const args = slots.length === 0 ? slots : slots.map((slot) => toSqliteParam(params[slot - 1]!));
    try {
      if (SCHEMA_VERBS.has(statement.verb)) this.schemaEpoch++;
      if (!prepared.reader) {
        prepared.run(...args);
        return { columns: NO_COLUMNS, rows: NO_ROWS };
      }
      const rows = prepared.all(...args) as RowValue[][];
      return { columns: withRows ? this.columnsOf(prepared, rows) : NO_COLUMNS, rows };
    } catch (e) {
      throw new D1Failure(detailOf(e));
    }
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
    const rows = estimateRows(statement, outcome.rows.length, changes);
    return {
      served_by: this.servedBy,
      duration: performance.now() - started,
      changes,
      last_row_id: after.lastRowId,
      changed_db: changes !== 0 || after.lastRowId !== before.lastRowId || after.size !== before.size,
      size_after: after.size,
      rows_read: rows.read,
      rows_written: rows.written,
    };
  }

  dump(): ArrayBuffer {
    if (this.closed) throw new D1Failure(Messages.closed);
    const bytes = this.connection.db.serialize();
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.close();
  }
}
