// dione/prisma: a Prisma 7 driver adapter over a Dione D1Database, embedded (`open`) or remote
// (`connect` from dione/client). Used like @prisma/adapter-d1's PrismaD1:
//
//   const prisma = new PrismaClient({ adapter: new PrismaDione(db) });
//
// Queries run through the D1 binding, exactly as PrismaD1 runs them; the difference is
// transactions. PrismaD1 runs `prisma.$transaction(...)`, and the transactions Prisma opens itself
// for nested writes, as loose statements (D1 has no interactive transactions). PrismaDione starts a
// real one with beginTransaction(): every statement of it runs on its own connection (embedded) or
// server-side transaction (over HTTP), invisible to others until it commits, and all of it or none
// of it is kept. Nested `tx.$transaction(...)` calls are savepoints.
//
// Imports nothing Node-only and nothing of the engine: it runs wherever dione/client runs (Workers too).
import type {
  ConnectionInfo,
  IsolationLevel,
  SqlDriverAdapter,
  SqlDriverAdapterFactory,
  SqlQuery,
  SqlResultSet,
  Transaction,
  TransactionOptions,
} from '@prisma/driver-adapter-utils';
import { DriverAdapterError } from '@prisma/driver-adapter-utils';
import type { D1Database } from '../binding/database.ts';
import { beginTransaction, type D1Transaction, type TransactionMode } from '../binding/transaction.ts';
import { withoutLeadingTrivia } from '../sql/comments.ts';
import { Limits } from '../sql/limits.ts';
import { splitStatements } from '../sql/statements.ts';
import { columnTypes, toArg, toResultRow } from './conversion.ts';
import { mapped } from './errors.ts';

export type { TransactionMode };

export interface PrismaDioneOptions {
  /**
   * How Prisma's transactions begin (`BEGIN <mode>`). Default 'immediate': the transaction takes
   * the database's write lock at once, so concurrent read-then-write transactions queue instead of
   * failing. 'deferred' lets read-only interactive transactions run beside a writer, at the price
   * that one which reads and then writes fails with P2034 (retry) if another transaction committed
   * a write in between.
   */
  transactionMode?: TransactionMode;
}

const ADAPTER_NAME = 'dione/prisma';

/** A Prisma name for a savepoint (`prisma_sp_1`): an identifier, checked so it can be spliced into SQL. */
function savepoint(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new TypeError(`dione/prisma: unexpected savepoint name ${JSON.stringify(name)}`);
  return name;
}

/** Queries on one D1Database: the shared handle, or a transaction's. */
class DioneQueryable {
  readonly provider = 'sqlite' as const;
  readonly adapterName = ADAPTER_NAME;

  constructor(protected readonly db: D1Database) {}

  #statement(query: SqlQuery) {
    const args = query.args.map((arg, i) => toArg(arg, query.argTypes[i]));
    return this.db.prepare(query.sql).bind(...args);
  }

  async queryRaw(query: SqlQuery): Promise<SqlResultSet> {
    // raw() keeps every column, also when two share a name (row objects would keep only the last).
    const [columnNames, ...rows] = await mapped(() => this.#statement(query).raw<unknown[]>({ columnNames: true }));
    const types = columnTypes(columnNames.length, rows);
    return { columnNames, columnTypes: types, rows: rows.map((row) => toResultRow(row, types)) };
  }

  async executeRaw(query: SqlQuery): Promise<number> {
    const { meta } = await mapped(() => this.#statement(query).run());
    return meta.changes;
  }

  protected async command(sql: string): Promise<void> {
    await mapped(() => this.db.prepare(sql).run());
  }
}

/** One transaction of Prisma's, on its own D1Database (tx.db). */
class DioneTransaction extends DioneQueryable implements Transaction {
  // Prisma must not send COMMIT/ROLLBACK itself as queries: commit() and rollback() end the
  // transaction through beginTransaction's handle (which also releases its connection).
  readonly options: TransactionOptions = { usePhantomQuery: true };
  readonly #transaction: D1Transaction;

  constructor(transaction: D1Transaction) {
    super(transaction.db);
    this.#transaction = transaction;
  }

  commit(): Promise<void> {
    return mapped(() => this.#transaction.commit());
  }

  rollback(): Promise<void> {
    return mapped(() => this.#transaction.rollback());
  }

  createSavepoint(name: string): Promise<void> {
    return this.command(`SAVEPOINT ${savepoint(name)}`);
  }

  rollbackToSavepoint(name: string): Promise<void> {
    return this.command(`ROLLBACK TO ${savepoint(name)}`);
  }

  releaseSavepoint(name: string): Promise<void> {
    return this.command(`RELEASE ${savepoint(name)}`);
  }
}

class DioneAdapter extends DioneQueryable implements SqlDriverAdapter {
  readonly #mode: TransactionMode;

  constructor(db: D1Database, mode: TransactionMode) {
    super(db);
    this.#mode = mode;
  }

  /** Runs a script (migrations) statement by statement, all of it or none of it, as one batch. */
  async executeScript(script: string): Promise<void> {
    // Each statement without the whitespace and comments before it: D1 finds no statement in text
    // that starts with a line break and then a comment.
    const statements = splitStatements(script)
      .filter((s) => !s.empty)
      .map((s) => withoutLeadingTrivia(s.text));
    if (statements.length === 0) return;
    await mapped(() => this.db.batch(statements.map((sql) => this.db.prepare(sql))));
  }

  async startTransaction(isolationLevel?: IsolationLevel): Promise<Transaction> {
    // SQLite's transactions are serializable: there is one writer at a time, and a reader sees
    // one consistent snapshot. Weaker levels are not offered, as in Prisma's other SQLite adapters.
    if (isolationLevel && isolationLevel !== 'SERIALIZABLE') {
      throw new DriverAdapterError({ kind: 'InvalidIsolationLevel', level: isolationLevel });
    }
    // BEGIN IMMEDIATE by default (see PrismaDioneOptions): an interactive transaction usually reads
    // and then writes (read a balance, update it). Begun DEFERRED, it would hold a read snapshot
    // and try to upgrade to the write lock at its first write; if another transaction committed
    // meanwhile, SQLite cannot upgrade it at all (SQLITE_BUSY at once, waiting does not help), and
    // the caller gets an error instead of the serialized result. IMMEDIATE takes the write lock at
    // BEGIN, so such transactions wait their turn (up to the server's busy wait) and each sees the
    // previous one's committed writes: no lost updates, no spurious conflicts.
    const transaction = await mapped(() => beginTransaction(this.db, { mode: this.#mode }));
    return new DioneTransaction(transaction);
  }

  getConnectionInfo(): ConnectionInfo {
    // D1's limit on bound parameters, which Dione enforces too: Prisma splits larger IN lists.
    return { maxBindValues: Limits.boundParameters, supportsRelationJoins: false };
  }

  async dispose(): Promise<void> {
    // The D1Database belongs to the caller, who closes it (as with PrismaD1).
  }
}

/**
 * Prisma's driver adapter factory for a Dione D1Database:
 * `new PrismaClient({ adapter: new PrismaDione(db) })`.
 */
export class PrismaDione implements SqlDriverAdapterFactory {
  readonly provider = 'sqlite' as const;
  readonly adapterName = ADAPTER_NAME;
  readonly #db: D1Database;
  readonly #mode: TransactionMode;

  constructor(db: D1Database, options: PrismaDioneOptions = {}) {
    const mode = options.transactionMode ?? 'immediate';
    if (mode !== 'deferred' && mode !== 'immediate' && mode !== 'exclusive') {
      throw new TypeError(`dione/prisma: transactionMode must be 'deferred', 'immediate' or 'exclusive', not ${JSON.stringify(mode)}`);
    }
    this.#db = db;
    this.#mode = mode;
  }

  async connect(): Promise<SqlDriverAdapter> {
    return new DioneAdapter(this.#db, this.#mode);
  }
}
