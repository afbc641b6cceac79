// A better-sqlite3 connection set up as a D1 database: WAL, durable commits, foreign keys,
// D1's limits and authorizer (the guard extension), and a cache of prepared statements.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
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
  /** false: SQLite never checkpoints on its own; the owner of the WAL (the write log) does. */
  autoCheckpoint?: boolean;
}

export interface CounterState {
  totalChanges: number;
  lastRowId: number;
  /** D1's size_after: (page_count - freelist_count) * page_size. */
  size: number;
}

const STATEMENT_CACHE_SIZE = 256;

export class Connection {
  readonly db: Database.Database;
  readonly memory: boolean;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly changesQuery: Database.Statement;
  private readonly sizeQuery: Database.Statement;
  private readonly dataVersionQuery: Database.Statement;
  private readonly sequenceQuery: Database.Statement;
  /** The token that lets this connection (and no user SQL) bump the commit sequence. */
  private readonly sequenceToken: bigint;
  private readonly prepareErrorQuery: Database.Statement;
  readonly begin: Database.Statement;
  readonly beginImmediate: Database.Statement;
  readonly commit: Database.Statement;
  readonly rollback: Database.Statement;
  readonly savepoint: Database.Statement;
  readonly release: Database.Statement;
  readonly rollbackToSavepoint: Database.Statement;
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
      if (options.autoCheckpoint === false) this.db.pragma('wal_autocheckpoint = 0');
      loadGuard(this.db);
    } catch (e) {
      this.db.close();
      throw e;
    }
    this.safeIntegers = options.intMode === 'bigint';
    this.changesQuery = this.db.prepare('SELECT total_changes(), last_insert_rowid()').raw(true);
    this.sizeQuery = this.db.prepare('SELECT dione_used_bytes()').pluck();
    this.dataVersionQuery = this.db.prepare('SELECT dione_data_version()').pluck();
    this.sequenceQuery = this.db.prepare('SELECT dione_commit_sequence(?)').pluck();
    this.sequenceToken = this.db.prepare('SELECT dione_claim()').pluck().safeIntegers(true).get() as bigint;
    this.prepareErrorQuery = this.db.prepare('SELECT dione_prepare_error(?)').pluck();
    this.begin = this.db.prepare('BEGIN');
    this.beginImmediate = this.db.prepare('BEGIN IMMEDIATE');
    this.commit = this.db.prepare('COMMIT');
    this.rollback = this.db.prepare('ROLLBACK');
    this.savepoint = this.db.prepare('SAVEPOINT dione_request');
    this.release = this.db.prepare('RELEASE dione_request');
    this.rollbackToSavepoint = this.db.prepare('ROLLBACK TO dione_request');
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

  /** total_changes(), last_insert_rowid() and, when `size` is given, the used bytes measured anew. */
  counters(size?: number): CounterState {
    const [totalChanges, lastRowId] = this.changesQuery.get() as [number, number];
    return { totalChanges, lastRowId, size: size ?? (this.sizeQuery.get() as number) };
  }

  /** Changes whenever the database changes, through this connection or another (read after a statement ran). */
  dataVersion(): number {
    return this.dataVersionQuery.get() as number;
  }

  /** The number of write transactions committed to this database (kept in its header, shared by all connections). */
  commitSequence(): number {
    return this.sequenceQuery.get(0) as number;
  }

  /** Inside a write transaction: counts it, and returns its sequence number. */
  bumpCommitSequence(): number {
    return this.sequenceQuery.get(this.sequenceToken) as number;
  }

  /**
   * Moves the WAL's content into the database file; the next writer starts the WAL over. False
   * when a reader in another process kept it from completing (it is tried again later).
   */
  checkpoint(): boolean {
    return this.db.prepare('SELECT dione_checkpoint(?)').pluck().get(this.sequenceToken) === 0;
  }

  /** A consistent copy of the database file, through SQLite's backup API (no SQL runs on this connection). */
  async snapshot(): Promise<Buffer> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'dione-dump-'));
    try {
      const file = path.join(dir, 'dump.sqlite');
      await this.db.backup(file);
      return readFileSync(file);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  close(): void {
    this.statements.clear();
    this.db.prepare('SELECT dione_release()').get();
    this.db.close();
  }
}
