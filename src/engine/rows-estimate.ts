// meta.rows_read and meta.rows_written. D1 counts them inside SQLite's bytecode engine (a patched
// SQLite that counts every row a cursor visits or writes); stock SQLite, which Dione runs, has no
// such counters. These estimates agree with D1 for the common shapes — full scans and primary-key
// lookups, single-table writes, CREATE — and undercount where SQLite visits rows it does not
// return (aggregates, index-then-table lookups, UPDATE/DELETE filters, RETURNING).
import type { Statement } from '../sql/statements.ts';

export interface RowEstimate {
  read: number;
  written: number;
}

/** `returned`: rows the last statement produced; `changes`: total_changes() delta of the query. */
export function estimateRows(statement: Statement, returned: number, changes: number): RowEstimate {
  switch (statement.verb) {
    case 'SELECT':
    case 'VALUES':
      // A scan positions its cursor once even on an empty table; SELECT without FROM reads nothing.
      return { read: statement.readsTables ? Math.max(1, returned) : 0, written: 0 };
    case 'PRAGMA':
    case 'EXPLAIN':
      return { read: 0, written: 0 };
    case 'INSERT':
    case 'REPLACE':
      return { read: statement.readsTables ? Math.max(returned, changes) : returned, written: changes };
    case 'UPDATE':
    case 'DELETE':
      return { read: Math.max(returned, changes), written: changes };
    case 'CREATE':
      // The new schema row is inserted, then updated in place with its final SQL.
      return { read: 1, written: 2 };
    default:
      return { read: returned, written: changes };
  }
}
