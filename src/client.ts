// dione/client: the D1 binding classes over any Executor, importing nothing Node-only, so they
// run in Workers, browsers, Deno and Bun.
export { D1Database } from './binding/database.ts';
export { beginTransaction, withTransaction } from './binding/transaction.ts';
export type { D1Transaction, TransactionMode, TransactionOptions } from './binding/transaction.ts';
export { D1DatabaseSession } from './binding/session.ts';
export { D1PreparedStatement } from './binding/statement.ts';
export type { BindingOptions } from './binding/options.ts';
export type * from './api/types.ts';
export type { Executor, ExecuteRequest, ExecuteResponse, Query, StatementResult, ParamValue, RowValue } from './api/executor.ts';
export { connect } from './client/connect.ts';
export type { ConnectOptions } from './client/connect.ts';
