// Compile-only check (npx tsc -p test/types/tsconfig.json): Dione's Node-free client classes
// type-check as Cloudflare's D1 binding types from @cloudflare/workers-types, so Worker code
// written against `env.DB: D1Database` accepts a Dione database unchanged, and the results of
// Dione's methods have the same types a Worker sees. Nothing here runs.
//
// D1Database, D1PreparedStatement, D1DatabaseSession, D1Result, D1ExecResult, ExportedHandler,
// Request and Response below are the globals of @cloudflare/workers-types; Dione's classes are
// imported under other names.
import {
  D1Database as DioneDatabase,
  type D1DatabaseSession as DioneSession,
  type D1PreparedStatement as DioneStatement,
  type Executor,
} from '../../src/client.ts';

/** true when A and B are the same type (not merely assignable). */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectTrue<T extends true>(_proof?: T): void {}

interface User {
  id: number;
  name: string;
}

// A Worker's environment, exactly as a Worker declares it.
interface Env {
  DB: D1Database;
}

/** Any Executor (in-process engine, HTTP client) gives a binding that a Worker's Env accepts. */
export function envFor(executor: Executor): Env {
  const db = new DioneDatabase(executor, { intMode: 'number' });
  const asD1: D1Database = db;
  return { DB: asD1 };
}

/** Dione's classes are assignable to D1's: database, statements, sessions. */
export function assignability(db: DioneDatabase): [D1Database, D1PreparedStatement, D1PreparedStatement, D1DatabaseSession, D1DatabaseSession] {
  const database: D1Database = db;
  const statement: D1PreparedStatement = db.prepare('SELECT 1');
  const bound: D1PreparedStatement = db.prepare('SELECT ?, ?, ?, ?').bind(1, 'a', null, new Uint8Array([1]));
  const session: D1DatabaseSession = db.withSession('first-primary');
  const dioneSession: DioneSession = db.withSession();
  const fromBookmark: D1DatabaseSession = db.withSession(dioneSession.getBookmark() ?? 'first-unconstrained');
  const sessionStatement: DioneStatement = dioneSession.prepare('SELECT 1');
  const asD1Statement: D1PreparedStatement = sessionStatement;
  // D1's batch() accepts Dione's statements, and Dione's accepts statements typed as D1's.
  void database.batch([statement, bound, asD1Statement]);
  void db.batch([statement as DioneStatement]);
  return [database, statement, bound, session, fromBookmark];
}

/** Each method returns exactly the type D1's declaration gives for the same call. */
export async function sameResultTypes(dione: DioneStatement, d1: D1PreparedStatement, db: DioneDatabase, cf: D1Database): Promise<void> {
  const firstRow = await dione.first<User>();
  expectTrue<Equals<typeof firstRow, Awaited<ReturnType<typeof d1.first<User>>>>>();
  expectTrue<Equals<typeof firstRow, User | null>>();
  const firstDefault = await dione.first();
  expectTrue<Equals<typeof firstDefault, Record<string, unknown> | null>>();
  const firstColumn = await dione.first<number>('n');
  expectTrue<Equals<typeof firstColumn, number | null>>();
  const firstColumnDefault = await dione.first('n');
  expectTrue<Equals<typeof firstColumnDefault, unknown>>();

  const all = await dione.all<User>();
  const asD1Result: D1Result<User> = all;
  expectTrue<Equals<typeof all.results, User[]>>();
  expectTrue<Equals<typeof all.success, true>>();
  const duration: number = all.meta.duration;
  const lastRowId: number = (await dione.run()).meta.last_row_id;
  const run: D1Result<Record<string, unknown>> = await dione.run();

  const raw = await dione.raw<[number, string]>();
  expectTrue<Equals<typeof raw, [number, string][]>>();
  const rawWithNames = await dione.raw<[number, string]>({ columnNames: true });
  expectTrue<Equals<typeof rawWithNames, [string[], ...[number, string][]]>>();
  const rawDefault = await dione.raw();
  expectTrue<Equals<typeof rawDefault, Awaited<ReturnType<typeof d1.raw<unknown[]>>>>>();
  expectTrue<Equals<typeof rawDefault, unknown[][]>>();

  const batch = await db.batch<User>([dione]);
  const d1Batch: D1Result<User>[] = batch;
  expectTrue<Equals<(typeof batch)[number]['results'], User[]>>();
  const exec: D1ExecResult = await db.exec('SELECT 1');
  const dump: ArrayBuffer = await db.dump();
  const bookmark: string | null = db.withSession().getBookmark();
  expectTrue<Equals<ReturnType<DioneSession['getBookmark']>, ReturnType<D1DatabaseSession['getBookmark']>>>();
  expectTrue<Equals<Awaited<ReturnType<typeof db.exec>>['count'], Awaited<ReturnType<typeof cf.exec>>['count']>>();
  void [asD1Result, duration, lastRowId, run, d1Batch, exec, dump, bookmark];

  // The types still catch mistakes (each line below must be an error).
  // @ts-expect-error first<number>(col) is number | null, not string
  const wrong: string = await dione.first<number>('n');
  // @ts-expect-error results are User[], not string[]
  const wrongRows: string[] = all.results;
  // @ts-expect-error prepare() takes SQL text
  db.prepare(42);
  // @ts-expect-error sessions have no exec(), as in D1
  db.withSession().exec('SELECT 1');
  // @ts-expect-error raw({ columnNames: true }) puts the column names first
  const noNames: [number, string][] = rawWithNames;
  void [wrong, wrongRows, noNames];
}

// A Worker module, as written for Cloudflare, type-checked with Dione's database as env.DB.
const worker = {
  async fetch(request: Request, env: Env): Promise<Response> {
    const session = env.DB.withSession(request.headers.get('x-d1-bookmark') ?? 'first-unconstrained');
    const user = await session.prepare('SELECT id, name FROM users WHERE id = ?').bind(1).first<User>();
    const count = await env.DB.prepare('SELECT count(*) AS n FROM users').first<number>('n');
    const { results, meta } = await env.DB.prepare('SELECT id, name FROM users').all<User>();
    const names: string[] = results.map((u) => u.name);
    const [columns, ...rows] = await env.DB.prepare('SELECT id, name FROM users').raw<[number, string]>({ columnNames: true });
    const ids: number[] = rows.map(([id]) => id);
    const inserted = await env.DB.batch([
      env.DB.prepare('INSERT INTO users (name) VALUES (?)').bind('ada'),
      env.DB.prepare('SELECT last_insert_rowid() AS id'),
    ]);
    const { count: lines } = await env.DB.exec('DELETE FROM users WHERE id < 0');
    const response = Response.json({
      user: user?.name ?? null,
      count: count ?? 0,
      names,
      columns,
      ids,
      changes: meta.changes,
      inserted: inserted.length,
      lines,
    });
    response.headers.set('x-d1-bookmark', session.getBookmark() ?? '');
    return response;
  },
} satisfies ExportedHandler<Env>;

/** The Worker runs with a Dione database in place of Cloudflare's binding. */
export function runWorker(executor: Executor, request: Request): Promise<Response> {
  const env: Env = { DB: new DioneDatabase(executor) };
  return worker.fetch(request, env);
}

export default worker;
