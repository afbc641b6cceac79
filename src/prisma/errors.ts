// The binding's errors as Prisma's driver adapter errors. D1 words a SQLite failure as
// `D1_ERROR: <message>: SQLITE_X[ (extended: SQLITE_X_Y)]`; Prisma wants it classified (a unique
// violation becomes P2002, a foreign key P2003, a write conflict P2034 …) and wrapped in
// DriverAdapterError. Anything that is not a database error (a bug, a network failure) is thrown
// as it is: Prisma reports those as errors of the adapter itself.
import { DriverAdapterError, type Error as AdapterError, type MappedError } from '@prisma/driver-adapter-utils';

/** sqlite3 result codes by name (https://www.sqlite.org/rescode.html): the primary ones and the extended ones D1 names. */
const codes: Record<string, number> = {
  SQLITE_ERROR: 1,
  SQLITE_INTERNAL: 2,
  SQLITE_PERM: 3,
  SQLITE_ABORT: 4,
  SQLITE_BUSY: 5,
  SQLITE_LOCKED: 6,
  SQLITE_NOMEM: 7,
  SQLITE_READONLY: 8,
  SQLITE_INTERRUPT: 9,
  SQLITE_IOERR: 10,
  SQLITE_CORRUPT: 11,
  SQLITE_NOTFOUND: 12,
  SQLITE_FULL: 13,
  SQLITE_CANTOPEN: 14,
  SQLITE_PROTOCOL: 15,
  SQLITE_SCHEMA: 17,
  SQLITE_TOOBIG: 18,
  SQLITE_CONSTRAINT: 19,
  SQLITE_MISMATCH: 20,
  SQLITE_MISUSE: 21,
  SQLITE_AUTH: 23,
  SQLITE_RANGE: 25,
  SQLITE_NOTADB: 26,
  SQLITE_BUSY_RECOVERY: 261,
  SQLITE_BUSY_SNAPSHOT: 517,
  SQLITE_BUSY_TIMEOUT: 773,
  SQLITE_CONSTRAINT_CHECK: 275,
  SQLITE_CONSTRAINT_FOREIGNKEY: 787,
  SQLITE_CONSTRAINT_NOTNULL: 1299,
  SQLITE_CONSTRAINT_PRIMARYKEY: 1555,
  SQLITE_CONSTRAINT_TRIGGER: 1811,
  SQLITE_CONSTRAINT_UNIQUE: 2067,
};

/** `D1_ERROR: UNIQUE constraint failed: User.email: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)` */
const d1Prefix = /^D1_[A-Z_]+: /;
const codeSuffix = /: (SQLITE_[A-Z_]+)(?: \(extended: (SQLITE_[A-Z_]+)\))?$/;

/** `User.email, User.name` -> ['email', 'name'] */
function fields(list: string): string[] {
  return list.split(', ').map((f) => f.slice(f.lastIndexOf('.') + 1));
}

function classify(message: string, code: string | undefined): MappedError | undefined {
  const text = message.replace(d1Prefix, '');
  const suffix = codeSuffix.exec(text);
  const detail = suffix ? text.slice(0, suffix.index) : text;
  const name = suffix?.[2] ?? suffix?.[1] ?? code;
  let m: RegExpExecArray | null;
  if ((m = /^(?:UNIQUE|PRIMARY KEY) constraint failed: (.+)$/.exec(detail))) return { kind: 'UniqueConstraintViolation', constraint: { fields: fields(m[1]!) } };
  if ((m = /^NOT NULL constraint failed: (.+)$/.exec(detail))) return { kind: 'NullConstraintViolation', constraint: { fields: fields(m[1]!) } };
  if (detail.startsWith('FOREIGN KEY constraint failed')) return { kind: 'ForeignKeyConstraintViolation', constraint: { foreignKey: {} } };
  if ((m = /^no such table: (.+)$/.exec(detail))) return { kind: 'TableDoesNotExist', table: m[1]! };
  if ((m = /^no such column: (.+)$/.exec(detail))) return { kind: 'ColumnNotFound', column: m[1]! };
  if ((m = /has no column named (.+)$/.exec(detail))) return { kind: 'ColumnNotFound', column: m[1]! };
  // Another transaction holds the write lock past the wait: Prisma's "write conflict, please retry" (P2034).
  if (name?.startsWith('SQLITE_BUSY') || /database is locked/.test(detail)) return { kind: 'TransactionWriteConflict' };
  // The transaction is gone (rolled back after its idle timeout, or never begun): Prisma's P1018.
  if (/transaction/i.test(detail) && /timed? ?out|rolled back|expired|not active|no transaction|no such transaction/i.test(detail)) {
    return { kind: 'TransactionAlreadyClosed', cause: detail };
  }
  if (name !== undefined || d1Prefix.test(message)) {
    const extendedCode = name === undefined ? undefined : (codes[name] ?? codes[name.replace(/^(SQLITE_[A-Z]+)_.*$/, '$1')]);
    return { kind: 'sqlite', extendedCode: extendedCode ?? 1, message: detail };
  }
  return undefined;
}

/**
 * The binding's error as Prisma's DriverAdapterError, or the error itself when it is not a database
 * error. Always throws.
 */
export function rethrow(error: unknown): never {
  if (!(error instanceof Error) || error.name === 'DriverAdapterError') throw error;
  const raw = (error as { code?: unknown }).code;
  const code = typeof raw === 'string' ? raw : undefined;
  const mapped = classify(error.message, code);
  if (!mapped) throw error;
  const payload: AdapterError = { ...mapped, originalMessage: error.message };
  if (code) payload.originalCode = code;
  throw new DriverAdapterError(payload);
}

/** Runs `fn`, turning its database errors into Prisma's. */
export async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    rethrow(error);
  }
}
