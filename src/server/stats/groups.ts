// Analytics answers are groups: the recorded rows summed per value of the dimensions asked for
// (Cloudflare's "adaptive groups"), then ordered and cut to the limit. Partial groups from several
// nodes merge by the same key, so sums and counts stay exact and averages are taken at the end.
import { addTotals, emptyTotals, type StatRow, type StatTotals } from './stat-row.ts';

export const DIMENSIONS = ['query', 'databaseId', 'datetimeHour', 'date'] as const;
export type Dimension = (typeof DIMENSIONS)[number];

export interface Group {
  dimensions: Partial<Record<Dimension, string>>;
  totals: StatTotals;
}

/** An hour's start as Cloudflare writes times: ISO 8601 without milliseconds. */
export const isoTime = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

function dimensionOf(row: StatRow, dimension: Dimension): string {
  switch (dimension) {
    case 'query':
      return row.query;
    case 'databaseId':
      return row.database;
    case 'datetimeHour':
      return isoTime(row.hour);
    case 'date':
      return isoTime(row.hour).slice(0, 10);
  }
}

const keyOf = (dimensions: Group['dimensions'], asked: readonly Dimension[]) => asked.map((d) => dimensions[d] ?? '').join('\u0000');

function add(into: Map<string, Group>, group: Group, asked: readonly Dimension[]): void {
  const key = keyOf(group.dimensions, asked);
  const found = into.get(key);
  if (found) addTotals(found.totals, group.totals);
  else {
    const totals = emptyTotals();
    addTotals(totals, group.totals);
    into.set(key, { dimensions: { ...group.dimensions }, totals });
  }
}

export function groupRows(rows: readonly StatRow[], asked: readonly Dimension[]): Group[] {
  const groups = new Map<string, Group>();
  for (const row of rows) {
    const dimensions: Group['dimensions'] = {};
    for (const d of asked) dimensions[d] = dimensionOf(row, d);
    add(groups, { dimensions, totals: row }, asked);
  }
  return [...groups.values()];
}

export function mergeGroups(lists: readonly (readonly Group[])[], asked: readonly Dimension[]): Group[] {
  const groups = new Map<string, Group>();
  for (const list of lists) for (const group of list) add(groups, group, asked);
  return [...groups.values()];
}

export const countOf = (t: StatTotals): number => t.readQueries + t.writeQueries;

/** A value groups are ordered by: a dimension, the count, or a total's sum or average. */
export type OrderValue = (g: Group) => number | string;

export interface Ordering {
  value: OrderValue;
  descending: boolean;
}

export function orderGroups(groups: Group[], orderings: readonly Ordering[], asked: readonly Dimension[]): Group[] {
  return groups.sort((a, b) => {
    for (const { value, descending } of orderings) {
      const x = value(a);
      const y = value(b);
      if (x === y) continue;
      const lower = typeof x === 'number' && typeof y === 'number' ? x < y : String(x) < String(y);
      return (lower ? -1 : 1) * (descending ? -1 : 1);
    }
    // The same order every time for ties.
    const ka = keyOf(a.dimensions, asked);
    const kb = keyOf(b.dimensions, asked);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}
