// dione/client's execute endpoint: one call (the version 1 body), or several calls pipelined in one
// HTTP request (`{version: 2, calls: [...]}`, docs/wire-format.md). Each call runs as if it had come
// alone, through executeSql, all at once (so concurrent writes still share a group commit), and is
// answered with its own status and body.
import type { DatabaseRecord } from '../catalog.ts';
import type { ServerContext } from '../context.ts';
import { LEXED_HERE_CHARS, type SqlExtras, sqlFailure } from '../protocols/sql.ts';
import { errorAnswer } from '../request-log.ts';
import type { Grant } from '../tokens.ts';
import { executeSql, type Forwarding, type SqlAnswer } from './sql.ts';

/** The most calls one pipelined request may carry (dione/client sends at most 64). */
export const MAX_CALLS = 256;

const PIPELINED_VERSION = 2;

/** Answers a dione/client request body, a single call or a pipelined one. */
export async function executeDione(
  server: ServerContext,
  grant: Grant,
  database: DatabaseRecord,
  body: string,
  pathname: string,
  forwarding?: Forwarding,
): Promise<SqlAnswer> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return executeSql(server, grant, database, 'dione', body, {}, forwarding); // answers the parse error as it always has
  }
  const envelope = json as { version?: unknown; calls?: unknown } | null;
  if (typeof envelope !== 'object' || envelope === null || envelope.version === undefined || envelope.version === 1) {
    return executeSql(server, grant, database, 'dione', { json }, {}, forwarding);
  }
  const calls = pipelinedCalls(envelope);
  if (typeof calls === 'string') return { ...sqlFailure('dione', 'bad-request', calls), headers: { 'content-type': 'application/json' }, reason: calls };
  // The HTTP thread lexes at most LEXED_HERE_CHARS of one HTTP request, whatever its calls hold each.
  const extra = { unlexed: sqlCharacters(calls) > LEXED_HERE_CHARS };
  const answers = await Promise.all(calls.map((call) => executeCall(server, grant, database, call, pathname, extra, forwarding)));
  return combine(answers);
}

/** The characters of SQL the calls hold (what is not a call's query is left to its own answer). */
function sqlCharacters(calls: unknown[]): number {
  let chars = 0;
  for (const call of calls) {
    const queries = (call as { queries?: unknown } | null)?.queries;
    if (!Array.isArray(queries)) continue;
    for (const q of queries) {
      const sql = (q as { sql?: unknown } | null)?.sql;
      if (typeof sql === 'string') chars += sql.length;
    }
  }
  return chars;
}

/** The calls of a pipelined request, or why it is malformed. */
function pipelinedCalls(envelope: { version?: unknown; calls?: unknown }): unknown[] | string {
  if (envelope.version !== PIPELINED_VERSION) return `Unsupported request version ${JSON.stringify(envelope.version)}: this server speaks versions 1 (no version field) and 2`;
  const calls = envelope.calls;
  if (!Array.isArray(calls) || calls.length === 0) return 'Invalid request: a version 2 request needs a non-empty array of calls';
  if (calls.length > MAX_CALLS) return `Invalid request: ${calls.length} calls, at most ${MAX_CALLS} in one request`;
  return calls;
}

/** One call, answered alone: whatever goes wrong with it (even unexpectedly) is its answer, not its neighbours'. */
async function executeCall(
  server: ServerContext,
  grant: Grant,
  database: DatabaseRecord,
  call: unknown,
  pathname: string,
  extra: SqlExtras,
  forwarding?: Forwarding,
): Promise<SqlAnswer> {
  try {
    return await executeSql(server, grant, database, 'dione', { json: call }, extra, forwarding);
  } catch (error) {
    const answer = errorAnswer(server, error, pathname);
    return { status: answer.status, body: JSON.stringify(answer.body), headers: {}, reason: answer.reason };
  }
}

/** The pipelined answer: each call's status and body, in the calls' order. Bodies are JSON already and go in as they are. */
function combine(answers: SqlAnswer[]): SqlAnswer {
  const rows = { read: 0, written: 0 };
  const failures: string[] = [];
  const parts: string[] = [];
  for (const answer of answers) {
    rows.read += answer.rows?.read ?? 0;
    rows.written += answer.rows?.written ?? 0;
    if (answer.reason !== undefined) failures.push(answer.reason);
    parts.push(`{"status":${answer.status},"body":${answer.body}}`);
  }
  const reason = failures.length ? `${failures.length} of ${answers.length} calls failed, first: ${failures[0]}` : undefined;
  const body = `{"version":${PIPELINED_VERSION},"answers":[${parts.join(',')}]}`;
  return { status: 200, body, headers: { 'content-type': 'application/json' }, rows, reason };
}
