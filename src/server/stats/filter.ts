// The filter of an analytics question (Cloudflare's GraphQL filter objects) over hour buckets:
// `AND` / `OR` lists, databaseId (and _in), query, and datetimeHour / datetime / date with
// eq/_geq/_gt/_leq/_lt. Times arrive as ms since the epoch (the schema's Time and Date scalars).
// A bucket is an hour, so `datetime` bounds keep every hour that overlaps them. Besides the test
// for a row, it gives the bounds the store can read within (from the top-level conjunction only).
import type { StatBounds } from './query-stats-store.ts';
import { HOUR_MS, hourOf, type StatRow } from './stat-row.ts';

export class FilterError extends Error {}

export interface CompiledFilter {
  bounds: StatBounds;
  test(row: StatRow): boolean;
}

type Test = (row: StatRow) => boolean;

const DAY_MS = 24 * HOUR_MS;
const dayOf = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;

function time(field: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new FilterError(`filter field ${field} needs a time, got ${JSON.stringify(value)}`);
  return value;
}

function text(field: string, value: unknown): string {
  if (typeof value !== 'string') throw new FilterError(`filter field ${field} needs a string, got ${JSON.stringify(value)}`);
  return value;
}

/** Values one `_in` list may hold (the store reads them as bound parameters). */
export const MAX_IN_VALUES = 1000;

function texts(field: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw new FilterError(`filter field ${field} needs a list of strings, got ${JSON.stringify(value)}`);
  if (value.length > MAX_IN_VALUES) throw new FilterError(`filter field ${field} may list at most ${MAX_IN_VALUES} values, got ${value.length}`);
  return value.map((v) => text(field, v));
}

type Op = '' | 'geq' | 'gt' | 'leq' | 'lt';

/** A time condition: its test, and the bucket starts the store must read to find every match. */
interface TimeCondition {
  test: Test;
  from?: number;
  to?: number;
}

/** Compares a value of the bucket (its hour or its day, `span` ms long) with `v`. */
function onValue(value: (r: StatRow) => number, span: number, op: Op, v: number): TimeCondition {
  const tests: Record<Op, Test> = {
    '': (r) => value(r) === v,
    geq: (r) => value(r) >= v,
    gt: (r) => value(r) > v,
    leq: (r) => value(r) <= v,
    lt: (r) => value(r) < v,
  };
  const lower = op === 'geq' || op === 'gt';
  return { test: tests[op], from: op === '' ? v : lower ? hourOf(v) : undefined, to: lower ? undefined : v + span - 1 };
}

/** An event's time lies somewhere in its bucket, [hour, hour + 1 h): a bucket matches when it may hold a match. */
function onSpan(op: Op, v: number): TimeCondition {
  switch (op) {
    case '':
      return { test: (r) => r.hour === hourOf(v), from: hourOf(v), to: hourOf(v) };
    case 'geq':
    case 'gt':
      return { test: (r) => r.hour + HOUR_MS > v, from: hourOf(v) };
    case 'leq':
      return { test: (r) => r.hour <= v, to: v };
    case 'lt':
      return { test: (r) => r.hour < v, to: v };
  }
}

const TIME_CONDITIONS: Record<string, (op: Op, v: number) => TimeCondition> = {
  datetimeHour: (op, v) => onValue((r) => r.hour, 1, op, v),
  date: (op, v) => onValue((r) => dayOf(r.hour), DAY_MS, op, v),
  datetime: onSpan,
};

const TIME_FIELD = /^(datetimeHour|datetime|date)(?:_(geq|gt|leq|lt))?$/;

interface Part {
  test: Test;
  bounds: StatBounds;
}

function intersect(a: readonly string[] | undefined, b: readonly string[]): readonly string[] {
  return a === undefined ? b : a.filter((x) => b.includes(x));
}

function compileObject(filter: unknown, path: string): Part {
  if (filter === null || filter === undefined) return { test: () => true, bounds: {} };
  if (typeof filter !== 'object' || Array.isArray(filter)) throw new FilterError(`${path} must be an object, got ${JSON.stringify(filter)}`);
  const tests: Test[] = [];
  const bounds: StatBounds = {};
  const narrow = (b: StatBounds) => {
    if (b.fromHour !== undefined) bounds.fromHour = Math.max(bounds.fromHour ?? b.fromHour, b.fromHour);
    if (b.toHour !== undefined) bounds.toHour = Math.min(bounds.toHour ?? b.toHour, b.toHour);
    if (b.databases !== undefined) bounds.databases = intersect(bounds.databases, b.databases);
  };
  for (const [field, value] of Object.entries(filter as Record<string, unknown>)) {
    if (value === undefined) continue;
    const at = `${path}.${field}`;
    if (field === 'AND' || field === 'OR') {
      if (!Array.isArray(value)) throw new FilterError(`${at} must be a list of filters`);
      const parts = value.map((f, i) => compileObject(f, `${at}[${i}]`));
      if (field === 'AND') {
        tests.push((r) => parts.every((p) => p.test(r)));
        for (const p of parts) narrow(p.bounds);
      } else if (parts.length > 0) tests.push((r) => parts.some((p) => p.test(r)));
      continue;
    }
    if (field === 'databaseId') {
      const id = text(at, value);
      tests.push((r) => r.database === id);
      narrow({ databases: [id] });
      continue;
    }
    if (field === 'databaseId_in') {
      const ids = texts(at, value);
      tests.push((r) => ids.includes(r.database));
      narrow({ databases: ids });
      continue;
    }
    if (field === 'query') {
      const q = text(at, value);
      tests.push((r) => r.query === q);
      continue;
    }
    const match = TIME_FIELD.exec(field);
    if (!match) throw new FilterError(`unknown filter field ${at}`);
    const compiled = TIME_CONDITIONS[match[1]!]!((match[2] ?? '') as Op, time(at, value));
    tests.push(compiled.test);
    narrow({ fromHour: compiled.from, toHour: compiled.to });
  }
  return { test: (r) => tests.every((t) => t(r)), bounds };
}

/** Compiles a filter; throws FilterError with the offending field. `databases` (a token's reach) narrows it further. */
export function compileFilter(filter: unknown, databases?: readonly string[]): CompiledFilter {
  const part = compileObject(filter, 'filter');
  if (!databases) return part;
  const test = part.test;
  return { bounds: { ...part.bounds, databases: intersect(part.bounds.databases, databases) }, test: (r) => databases.includes(r.database) && test(r) };
}
