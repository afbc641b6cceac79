// Splits SQL into the statements SQLite would prepare one after another, and learns what each
// one is before it runs: read or write, its parameters (numbered as SQLite numbers them), and
// whether D1 refuses it outright (transactions, ATTACH, VACUUM INTO, load_extension, writes to the
// schema table, PRAGMAs outside D1's allowlist).
import { Messages } from '../api/errors.ts';
import { Limits, utf8Length } from './limits.ts';
import { asciiLower, identifier, isTrivia, keyword, type Token, tokenize } from './lexer.ts';
import { type PragmaCall, pragmaAllowed, pragmaReads, pragmaSetsConnection } from './pragma.ts';

export type StatementKind = 'read' | 'write';

export interface Statement {
  /** The text SQLite receives: from just after the previous statement's `;` through this one's. */
  text: string;
  /** `text` with every parameter rewritten to a plain `?`, padded so offsets do not move. */
  executable: string;
  /** Only whitespace, comments and a `;`. */
  empty: boolean;
  /** Ends with the `;` that closes it (false for a last statement written without one, or an unfinished trigger). */
  terminated: boolean;
  kind: StatementKind;
  /** The statement's verb, upper case: its first keyword, or after WITH the DML verb it leads into. */
  verb: string;
  /** Has a FROM clause somewhere: it reads tables (used to estimate rows_read). */
  readsTables: boolean;
  /** sqlite3_bind_parameter_count(): the highest parameter number used. */
  parameterCount: number;
  /** For each `?` of `executable`, in order, the 1-based parameter it stands for. */
  bindSlots: number[];
  /** bindSlots is exactly 1, 2, …, parameterCount: parameters bind as given. */
  slotsInOrder: boolean;
  /** D1's error detail when D1 refuses the statement before running it. */
  rejection?: string;
  /**
   * A transaction statement (D1 refuses them: `rejection` is set too): what it does, for handles
   * that accept interactive transactions (Dione's opt-in).
   */
  control?: TransactionControl;
  /** A PRAGMA that sets a setting its connection keeps (case_sensitive_like…: pragma.ts). */
  setsConnection?: boolean;
  /**
   * Calls last_insert_rowid(), changes() or total_changes(): its answer is the state of the
   * connection that runs it (D1's one connection: the worker's, never a read-only copy's).
   */
  readsConnectionState?: boolean;
  /**
   * `rejection` is the parameter limit's (the lexer counts them: the executable's `?`s are not
   * D1's). SQLite may report another error of the statement after it, which is then D1's answer.
   */
  overParameterLimit?: boolean;
}

/** BEGIN, COMMIT/END, ROLLBACK, SAVEPOINT, RELEASE and ROLLBACK TO, as SQLite reads them. */
export type TransactionControl =
  | { op: 'begin'; mode: 'DEFERRED' | 'IMMEDIATE' | 'EXCLUSIVE' }
  | { op: 'commit' }
  | { op: 'rollback' }
  | { op: 'savepoint'; name: string }
  | { op: 'release'; name: string }
  | { op: 'rollback-to'; name: string };

const TRANSACTION_VERBS = new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE']);
const SCHEMA_TABLES = new Set(['sqlite_master', 'sqlite_schema', 'sqlite_temp_master', 'sqlite_temp_schema']);
const DML_VERBS = new Set(['SELECT', 'VALUES', 'INSERT', 'REPLACE', 'UPDATE', 'DELETE']);
const NOT_AUTHORIZED = 'not authorized: SQLITE_AUTH';

/** Splits `sql` into statements (the first `limit` of them: the rest is not analysed). Trailing whitespace or comments after the last `;` are not a statement. */
export function splitStatements(sql: string, limit = Number.POSITIVE_INFINITY): Statement[] {
  const tokens = tokenize(sql);
  return statementRanges(sql, tokens, limit).map((r) => analyze(sql, tokens.slice(r.first, r.end), r.significant, r.terminated));
}

/**
 * The statements of `sql` as splitStatements cuts them, without analysing them: for a script that
 * is only cut here (an import), and parsed statement by statement where it runs.
 */
export function statementTexts(sql: string, limit = Number.POSITIVE_INFINITY): { text: string; empty: boolean; terminated: boolean }[] {
  const tokens = tokenize(sql);
  return statementRanges(sql, tokens, limit).map((r) => ({ text: sql.slice(tokens[r.first]!.start, tokens[r.end - 1]!.end), empty: r.significant.length === 0, terminated: r.terminated }));
}

/** Whitespace as D1's runtime skips it after a statement: space, \t, \n, \r, \v, \f (SQLite takes \v for no whitespace). */
const RUNTIME_SPACE = new Set([0x20, 0x09, 0x0a, 0x0d, 0x0b, 0x0c]);

/**
 * The statements D1's runtime prepares one after another for one query (workerd's prepareSql, MULTI):
 * each prepare starts where the last statement ended, after whitespace only; SQLite's prepare then
 * skips comments and empty `;` statements before a statement. So a `;` with nothing before it starts
 * the next statement's text, and anything but whitespace left after the last statement (a comment, a
 * lone `;`) is prepared alone and holds no statement: it is an empty statement here, and fails as
 * D1's does ("SQL code did not contain a statement.").
 */
export function preparedStatements(sql: string): Statement[] {
  // SQLite reads SQL up to a NUL character. What follows it is one more prepare for workerd's loop,
  // which finds no statement there: D1 fails the query with "SQL code did not contain a statement."
  // (A NUL inside a token ends that token for SQLite: an unterminated string, as SQLite says too.)
  const nul = sql.indexOf('\0');
  if (nul >= 0) return [...preparedStatements(sql.slice(0, nul)), analyze(sql, [{ type: 'space', start: nul, end: sql.length }], [], false)];
  const tokens = tokenize(sql);
  const statements: Statement[] = [];
  // The token the next prepare starts at.
  let start = 0;
  for (const r of statementRanges(sql, tokens)) {
    const from = tokens[start]?.start ?? sql.length;
    const significant = r.significant.filter((t) => t.start >= from);
    if (significant.length === 0) continue;
    statements.push(analyze(sql, tokens.slice(start, r.end), significant, r.terminated));
    start = afterRuntimeSpace(sql, tokens, r.end);
  }
  if (afterRuntimeSpace(sql, tokens, start) < tokens.length) statements.push(analyze(sql, tokens.slice(start), [], false));
  return statements;
}

/** The first token at or after `from` that starts past the whitespace D1's runtime skips (tokens.length: none). */
function afterRuntimeSpace(sql: string, tokens: Token[], from: number): number {
  if (from >= tokens.length) return tokens.length;
  let end = tokens[from]!.start;
  while (end < sql.length && RUNTIME_SPACE.has(sql.charCodeAt(end))) end++;
  let i = from;
  // A token the skip ends inside of (whitespace then a byte-order mark) is where SQLite reads on.
  while (i < tokens.length && tokens[i]!.end <= end) i++;
  return i;
}

interface StatementRange {
  /** Its tokens: [first, end). */
  first: number;
  end: number;
  /** Its tokens that are not whitespace or comments (its closing `;` aside). */
  significant: Token[];
  terminated: boolean;
}

/** Where each statement's tokens are, as SQLite ends statements (a trigger's body holds `;`s); trailing whitespace and comments belong to none. */
function statementRanges(sql: string, tokens: Token[], limit = Number.POSITIVE_INFINITY): StatementRange[] {
  const ranges: StatementRange[] = [];
  let first = 0; // index of the first token of the current statement
  let significant: Token[] = [];
  let trigger: { body: boolean; done: boolean; atStatementStart: boolean } | undefined;
  // Only a statement that starts with CREATE or EXPLAIN can be a trigger (asked once, at its first word).
  let mayBeTrigger = false;
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (isTrivia(t)) continue;
    if (t.type === 'semicolon' && (!trigger || trigger.done || !trigger.body)) {
      ranges.push({ first, end: i + 1, significant, terminated: true });
      if (ranges.length >= limit) return ranges;
      first = i + 1;
      significant = [];
      trigger = undefined;
      depth = 0;
      continue;
    }
    significant.push(t);
    if (t.type === 'lparen') depth++;
    else if (t.type === 'rparen') depth = Math.max(0, depth - 1);
    if (significant.length === 1) {
      const k = keyword(sql, t);
      mayBeTrigger = k === 'CREATE' || k === 'EXPLAIN';
    }
    if (mayBeTrigger && significant.length <= 6 && !trigger && startsTrigger(sql, significant)) {
      trigger = { body: false, done: false, atStatementStart: false };
    } else if (trigger && !trigger.done) {
      // The body is a list of statements each ending in `;`; the trigger's END is the END that
      // stands where a statement would start (an END elsewhere closes a CASE or is a column name).
      const k = keyword(sql, t);
      if (!trigger.body) {
        if (k === 'BEGIN' && depth === 0) trigger.body = trigger.atStatementStart = true;
        continue;
      }
      if (k === 'END' && trigger.atStatementStart) trigger.done = true;
      trigger.atStatementStart = t.type === 'semicolon';
    }
  }
  if (significant.length > 0) ranges.push({ first, end: tokens.length, significant, terminated: false });
  return ranges;
}

function startsTrigger(sql: string, sig: Token[]): boolean {
  if (sig.length < 2) return false;
  let i = 0;
  if (keyword(sql, sig[i]) === 'EXPLAIN') i++;
  if (keyword(sql, sig[i]) === 'QUERY' && keyword(sql, sig[i + 1]) === 'PLAN') i += 2;
  if (keyword(sql, sig[i]) !== 'CREATE') return false;
  const next = keyword(sql, sig[i + 1]);
  if (next === 'TRIGGER') return true;
  return (next === 'TEMP' || next === 'TEMPORARY') && keyword(sql, sig[i + 2]) === 'TRIGGER';
}

function analyze(sql: string, tokens: Token[], sig: Token[], terminated: boolean): Statement {
  const start = tokens[0]!.start;
  const end = tokens.at(-1)!.end;
  const text = sql.slice(start, end);
  const onlySemicolon = sig.length === 0;
  if (onlySemicolon) {
    return { text, executable: text, empty: true, terminated, kind: 'read', verb: '', readsTables: false, parameterCount: 0, bindSlots: [], slotsInOrder: true };
  }
  let i = 0;
  let explained = false;
  if (keyword(sql, sig[0]) === 'EXPLAIN') {
    explained = true;
    i = keyword(sql, sig[1]) === 'QUERY' && keyword(sql, sig[2]) === 'PLAN' ? 3 : 1;
  }
  const verb = keyword(sql, sig[i]);
  const body = sig.slice(i);
  const { parameterCount, bindSlots, executable, error: parameterError } = parameters(sql, tokens, start);
  let kind: StatementKind = 'write';
  let rejection: string | undefined;
  const mainVerb = verb === 'WITH' ? withMainVerb(sql, body) : verb;
  let control: TransactionControl | undefined;
  let setsConnection = false;
  if (TRANSACTION_VERBS.has(verb)) {
    rejection = Messages.transactionStatement;
    if (!explained) control = transactionControl(sql, body);
  }
  else if (verb === 'ATTACH' || verb === 'DETACH') rejection = NOT_AUTHORIZED;
  else if (verb === 'VACUUM' && body.some((t) => keyword(sql, t) === 'INTO')) rejection = NOT_AUTHORIZED;
  else if (callsLoadExtension(sql, body)) rejection = 'not authorized: SQLITE_ERROR';
  else if (verb === 'PRAGMA') {
    const call = pragmaCall(sql, body);
    // A PRAGMA D1 does not run, or a form the lexer cannot read (`PRAGMA table_info()`), is
    // SQLite's to refuse: it stays a write, the write path prepares it, and SQLite answers as in D1
    // (a syntax error or an unknown schema before the guard's authorizer says "not authorized").
    if (!call || !pragmaAllowed(call)) {
      // (SQLite answers)
    } else if (pragmaReads(call)) kind = 'read';
    else if (pragmaSetsConnection(call)) setsConnection = true;
  } else if (mainVerb === 'SELECT' || mainVerb === 'VALUES') kind = 'read';
  else if (writesSchemaTable(sql, body, mainVerb)) rejection = 'table sqlite_master may not be modified: SQLITE_ERROR';
  if (explained) kind = 'read';
  const overParameterLimit = !rejection && parameterError !== undefined;
  if (overParameterLimit) rejection = parameterError;
  const readsTables = body.some((t) => t.type === 'word' && keyword(sql, t) === 'FROM');
  const readsConnectionState = callsConnectionState(sql, body);
  const slotsInOrder = bindSlots.length === parameterCount && bindSlots.every((slot, i) => slot === i + 1);
  return {
    text,
    executable,
    empty: false,
    terminated,
    kind,
    verb: explained ? 'EXPLAIN' : mainVerb,
    readsTables,
    parameterCount,
    bindSlots,
    slotsInOrder,
    rejection,
    control,
    ...(setsConnection ? { setsConnection } : {}),
    ...(readsConnectionState ? { readsConnectionState } : {}),
    ...(overParameterLimit ? { overParameterLimit } : {}),
  };
}

/**
 * What a transaction statement does. Malformed ones (a missing name) get a shape SQLite will refuse
 * when it prepares them; the handle runs them as written.
 */
function transactionControl(sql: string, body: Token[]): TransactionControl {
  const words = body.filter((t) => t.type !== 'semicolon');
  const verb = keyword(sql, words[0]);
  const at = (i: number) => keyword(sql, words[i]);
  /** The savepoint name after optional words (SAVEPOINT, TRANSACTION): names compare case-insensitively. */
  const nameFrom = (i: number, optional: string[]) => {
    while (optional.includes(at(i))) i++;
    return asciiLower(identifier(sql, words[i]) ?? '');
  };
  switch (verb) {
    case 'BEGIN': {
      const mode = at(1);
      return { op: 'begin', mode: mode === 'IMMEDIATE' || mode === 'EXCLUSIVE' ? mode : 'DEFERRED' };
    }
    case 'COMMIT':
    case 'END':
      return { op: 'commit' };
    case 'SAVEPOINT':
      return { op: 'savepoint', name: nameFrom(1, []) };
    case 'RELEASE':
      return { op: 'release', name: nameFrom(1, ['SAVEPOINT']) };
    default: {
      // ROLLBACK [TRANSACTION] [TO [SAVEPOINT] name]
      let i = 1;
      if (at(i) === 'TRANSACTION') i++;
      if (at(i) !== 'TO') return { op: 'rollback' };
      return { op: 'rollback-to', name: nameFrom(i + 1, ['SAVEPOINT']) };
    }
  }
}

/** The verb of the statement a WITH clause leads into: the first DML keyword outside parentheses. */
function withMainVerb(sql: string, body: Token[]): string {
  let depth = 0;
  for (const t of body) {
    if (t.type === 'lparen') depth++;
    else if (t.type === 'rparen') depth--;
    else if (depth === 0 && t.type === 'word') {
      const k = keyword(sql, t);
      if (DML_VERBS.has(k)) return k;
    }
  }
  return 'WITH';
}

const CONNECTION_STATE_FUNCTIONS = new Set(['last_insert_rowid', 'changes', 'total_changes']);

/** A call of a function whose answer is its connection's state (a name quoted or not, before its `(`). */
function callsConnectionState(sql: string, body: Token[]): boolean {
  for (let i = 0; i + 1 < body.length; i++) {
    const t = body[i]!;
    if (body[i + 1]!.type !== 'lparen' || (t.type !== 'word' && t.type !== 'quoted')) continue;
    const name = t.type === 'word' ? sql.slice(t.start, t.end) : sql.slice(t.start + 1, t.end - 1);
    if (CONNECTION_STATE_FUNCTIONS.has(name.toLowerCase())) return true;
  }
  return false;
}

function callsLoadExtension(sql: string, body: Token[]): boolean {
  for (let i = 0; i + 1 < body.length; i++) {
    if (body[i]!.type === 'word' && body[i + 1]!.type === 'lparen' && keyword(sql, body[i]) === 'LOAD_EXTENSION') return true;
  }
  return false;
}

function writesSchemaTable(sql: string, body: Token[], mainVerb: string): boolean {
  if (mainVerb !== 'INSERT' && mainVerb !== 'REPLACE' && mainVerb !== 'UPDATE' && mainVerb !== 'DELETE') return false;
  let depth = 0;
  let i = 0;
  for (; i < body.length; i++) {
    const t = body[i]!;
    if (t.type === 'lparen') depth++;
    else if (t.type === 'rparen') depth--;
    else if (depth === 0 && keyword(sql, t) === mainVerb) break;
  }
  i++;
  if (mainVerb === 'INSERT' || mainVerb === 'UPDATE') {
    if (keyword(sql, body[i]) === 'OR') i += 2;
  }
  if (mainVerb === 'INSERT' || mainVerb === 'REPLACE') {
    if (keyword(sql, body[i]) === 'INTO') i++;
  }
  if (mainVerb === 'DELETE' && keyword(sql, body[i]) === 'FROM') i++;
  let name = identifier(sql, body[i]);
  if (body[i + 1] && sql.slice(body[i + 1]!.start, body[i + 1]!.end) === '.') name = identifier(sql, body[i + 2]);
  return name !== undefined && SCHEMA_TABLES.has(asciiLower(name));
}

function pragmaCall(sql: string, body: Token[]): PragmaCall | undefined {
  let i = 1;
  let schema: string | undefined;
  let name = identifier(sql, body[i]);
  if (name === undefined) return undefined;
  if (body[i + 1] && sql.slice(body[i + 1]!.start, body[i + 1]!.end) === '.') {
    schema = name;
    name = identifier(sql, body[i + 2]);
    if (name === undefined) return undefined;
    i += 2;
  }
  i++;
  const rest = body.slice(i);
  if (rest.length === 0) return { schema, name };
  const text = (ts: Token[]) => ts.map((t) => sql.slice(t.start, t.end)).join('');
  const op = sql.slice(rest[0]!.start, rest[0]!.end);
  if (op === '=' && rest.length >= 2) return { schema, name, argument: text(rest.slice(1)) };
  if (rest[0]!.type === 'lparen' && rest.at(-1)!.type === 'rparen' && rest.length >= 3) {
    return { schema, name, argument: text(rest.slice(1, -1)) };
  }
  return undefined;
}

interface Parameters {
  parameterCount: number;
  bindSlots: number[];
  executable: string;
  error?: string;
}

/** Numbers parameters as SQLite does (?, ?NNN, :name, @name, $name) and rewrites them to plain `?`. */
function parameters(sql: string, tokens: Token[], start: number): Parameters {
  let max = 0;
  const bindSlots: number[] = [];
  const names = new Map<string, number>();
  let executable = '';
  let from = start;
  let error: string | undefined;
  for (const t of tokens) {
    if (t.type !== 'param') continue;
    const text = sql.slice(t.start, t.end);
    let slot: number;
    if (text === '?') slot = ++max;
    else if (text[0] === '?') {
      slot = Number(text.slice(1));
      if (!(slot >= 1 && slot <= Limits.boundParameters)) {
        error ??= `variable number must be between ?1 and ?${Limits.boundParameters} at offset ${utf8Length(sql.slice(start, t.start))}: SQLITE_ERROR`;
        slot = 1;
      }
      max = Math.max(max, slot);
    } else {
      const known = names.get(text);
      slot = known ?? ++max;
      if (known === undefined) names.set(text, slot);
    }
    if (slot > Limits.boundParameters) error ??= `too many SQL variables at offset ${utf8Length(sql.slice(start, t.start))}: SQLITE_ERROR`;
    bindSlots.push(slot);
    executable += sql.slice(from, t.start) + '?' + ' '.repeat(t.end - t.start - 1);
    from = t.end;
  }
  const end = tokens.at(-1)!.end;
  executable = bindSlots.length === 0 ? sql.slice(start, end) : executable + sql.slice(from, end);
  return { parameterCount: max, bindSlots, executable, error };
}
