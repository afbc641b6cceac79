// A better-sqlite3 connection set up as a D1 database: WAL, durable commits, foreign keys,
// D1's limits and authorizer (the guard extension), and a cache of prepared statements.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { IntMode } from '../api/types.ts';
import { loadGuard } from './guard.ts';
import { D1Failure, detailOf, isSqliteError } from './sqlite-error.ts';

export interface ConnectionOptions {
  intMode?: IntMode;
  /** 'full' (default) syncs the WAL on every commit, so an acknowledged write survives power loss. */
  durability?: 'full' | 'normal';
  readonly?: boolean;
}

export interface CounterState {
  totalChanges: number;
  lastRowId: number;
  size: number;
}

const STATEMENT_CACHE_SIZE = 256;

export class Connection {
  readonly db: Database.Database;
  readonly memory: boolean;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly stateQuery: Database.Statement;
  private readonly prepareErrorQuery: Database.Statement;
  readonly begin: Database.Statement;
  readonly beginImmediate: Database.Statement;
  readonly commit: Database.Statement;
  readonly rollback: Database.Statement;
  private readonly safeIntegers: boolean;

  constructor(file: string, options: ConnectionOptions = {}) {
    this.memory = file === ':memory:' || file === '';
    if (!this.memory && !options.readonly) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(this.memory ? ':memory:' : file, { readonly: options.readonly ?? false });
    try {
      if (!this.memory && !options.readonly) this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      loadGuard(this.db);
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.safeIntegers = options.intMode === 'bigint';
    this.stateQuery = this.db.prepare('SELECT dione_state()').pluck();
    this.prepareErrorQuery = this.db.prepare('SELECT dione_prepare_error(?)').pluck();
    this.begin = this.db.prepare('BEGIN');
    this.beginImmediate = this.db.prepare('BEGIN IMMEDIATE');
    this.commit = this.db.prepare('COMMIT');
    this.rollback = this.db.prepare('ROLLBACK');
  }

  /** A prepared statement for `sql` (one statement, parameters as plain `?`), or D1's error. */
  prepare(sql: string): Database.Statement {
    const cached = this.statements.get(sql);
    if (cached) return cached;
    let statement: Database.Statement;
    try {
      statement = this.db.prepare(sql);
    } catch (e) {
      if (!isSqliteError(e)) throw new D1Failure(detailOf(e));
      throw new D1Failure(detailOf(e, this.errorOffset(sql)));
    }
    if (statement.reader) statement.raw(true);
    if (this.safeIntegers) statement.safeIntegers(true);
    if (this.statements.size >= STATEMENT_CACHE_SIZE) this.statements.delete(this.statements.keys().next().value!);
    this.statements.set(sql, statement);
    return statement;
  }

  /** SQLite's error offset for SQL that failed to prepare (better-sqlite3 does not expose it). */
  private errorOffset(sql: string): number {
    const answer = this.prepareErrorQuery.get(sql) as string | null;
    return answer === null ? -1 : Number(answer.slice(0, answer.indexOf('|')));
  }

  /** total_changes(), last_insert_rowid() and the database's used bytes, in one call. */
  counters(): CounterState {
    const [changes, rowid, size] = (this.stateQuery.get() as string).split('|');
    return { totalChanges: Number(changes), lastRowId: Number(rowid), size: Number(size) };
  }

  close(): void {
    this.statements.clear();
    this.db.close();
  }
}
