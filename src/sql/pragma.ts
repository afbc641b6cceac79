// The PRAGMAs D1 lets user SQL run, with the argument forms it accepts (workerd's allowlist,
// checked against the reference runtime: page_size, user_version and the rest are refused). As in
// workerd's authorizer, names are matched as written (`PRAGMA FOREIGN_KEYS` is refused) and a
// boolean's value by its first letters, case aside (`1.5`, `normal`, `0x10` pass; SQLite reads them).
import { asciiLower } from './lexer.ts';

const BOOLEAN_PREFIXES = ['true', 'false', 'yes', 'no', 'on', 'off', '1', '0'];

const BOOLEAN_PRAGMAS = new Set([
  'case_sensitive_like',
  'foreign_keys',
  'defer_foreign_keys',
  'ignore_check_constraints',
  'legacy_alter_table',
  'recursive_triggers',
  'reverse_unordered_selects',
]);

const OBJECT_PRAGMAS = new Set(['foreign_key_list', 'index_info', 'index_list', 'index_xinfo']);

/** PRAGMAs whose query form only reads. */
const READ_PRAGMAS = new Set([
  'table_list',
  'table_info',
  'table_xinfo',
  'data_version',
  'foreign_key_list',
  'index_info',
  'index_list',
  'index_xinfo',
  'foreign_key_check',
  'quick_check',
  ...BOOLEAN_PRAGMAS,
]);

const reserved = (name: string | undefined) => name?.startsWith('_cf_') === true;

function unquote(value: string): string {
  const q = value[0];
  if ((q === "'" || q === '"') && value.length >= 2 && value.at(-1) === q) return value.slice(1, -1);
  return value;
}

export interface PragmaCall {
  schema?: string;
  name: string;
  /** The argument as written (after `=` or inside parentheses), undefined when absent. */
  argument?: string;
}

const isBooleanValue = (value: string) => {
  const lower = asciiLower(value);
  return BOOLEAN_PREFIXES.some((prefix) => lower.startsWith(prefix));
};

/**
 * Whether D1 runs this PRAGMA for user SQL. The guard's authorizer (native/dione_guard.c) applies
 * the same rules inside SQLite, which refuses what this does not allow once it has parsed it.
 */
export function pragmaAllowed({ schema, name, argument }: PragmaCall): boolean {
  if (schema !== undefined && asciiLower(schema) !== 'main') return false;
  const arg = argument === undefined ? undefined : unquote(argument);
  if (name === 'table_list') return true;
  // (Without a table: refused, as D1 refuses it.)
  if (name === 'table_info' || name === 'table_xinfo') return arg !== undefined && !reserved(arg);
  if (name === 'data_version') return arg === undefined;
  if (BOOLEAN_PRAGMAS.has(name)) return arg === undefined || isBooleanValue(arg);
  if (OBJECT_PRAGMAS.has(name)) return arg !== undefined && !reserved(arg);
  if (name === 'foreign_key_check' || name === 'quick_check') return !reserved(arg);
  if (name === 'optimize') return arg === undefined || isInt32(arg);
  return false;
}

/**
 * Whether workerd reads the value as a 32-bit integer (its authorizer's rule for PRAGMA optimize):
 * decimal with an optional sign, or hexadecimal `0x…` with an optional minus, within range.
 */
function isInt32(value: string): boolean {
  const hex = /^(-?)0[xX]([0-9a-fA-F]+)$/.exec(value);
  const decimal = hex ? undefined : /^\s*([+-]?)(\d+)$/.exec(value);
  const found = hex ?? decimal;
  if (!found) return false;
  const magnitude = BigInt(hex ? `0x${found[2]}` : found[2]!);
  const number = found[1] === '-' ? -magnitude : magnitude;
  return number >= -(2n ** 31n) && number < 2n ** 31n;
}

/**
 * Settings a PRAGMA changes on its connection until it closes (a transaction's end undoes none of
 * them). foreign_keys is left out: inside a transaction, where D1 runs every query, SQLite ignores
 * it; defer_foreign_keys ends with the transaction.
 */
const CONNECTION_SETTINGS = new Set(['case_sensitive_like', 'ignore_check_constraints', 'legacy_alter_table', 'recursive_triggers', 'reverse_unordered_selects']);

/** Whether the PRAGMA sets one of its connection's settings (CONNECTION_SETTINGS). */
export function pragmaSetsConnection({ name, argument }: PragmaCall): boolean {
  return argument !== undefined && CONNECTION_SETTINGS.has(asciiLower(name));
}

/** Whether the PRAGMA only reads (a query form); setting a value or optimize counts as a write. */
export function pragmaReads({ name, argument }: PragmaCall): boolean {
  const n = asciiLower(name);
  if (!READ_PRAGMAS.has(n)) return false;
  return !(BOOLEAN_PRAGMAS.has(n) && argument !== undefined);
}
