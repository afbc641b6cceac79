// The part of Cloudflare's GraphQL Analytics API that D1 tools read: viewer.accounts[] with
// d1AnalyticsAdaptiveGroups (what `wrangler d1 info` sums over 24 h) and d1QueriesAdaptiveGroups
// (what `wrangler d1 insights` lists), both answered from the server's query statistics. Groups are
// formed by the dimensions the query selects (and orders by), as Cloudflare's adaptive groups are.
import {
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLEnumType,
  GraphQLError,
  type GraphQLFieldConfig,
  type GraphQLInputObjectType as InputType,
  GraphQLInputObjectType,
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  type GraphQLResolveInfo,
  GraphQLSchema,
  Kind,
  type SelectionSetNode,
} from 'graphql';
import type { StatsSource } from '../stats/analytics.ts';
import { FilterError } from '../stats/filter.ts';
import { countOf, DIMENSIONS, type Dimension, type Group, type Ordering, orderGroups } from '../stats/groups.ts';
import type { StatTotals } from '../stats/stat-row.ts';
import { DateScalar, Float64Scalar, StringScalar, TimeScalar, Uint64Scalar } from './scalars.ts';

/** What a request's resolvers work with. */
export interface AnalyticsContext {
  source: StatsSource;
  accountId: string;
  /** The databases the token reaches (a token made for one database); all when absent. */
  databases?: string[];
  /** How many more dataset fields (aliases included) this request may run. */
  datasetsLeft: number;
}

/** Cloudflare's largest limit for a dataset. */
export const MAX_LIMIT = 10_000;

/** Dataset fields one request may run (each reads and groups the statistics on the HTTP thread). */
export const MAX_DATASETS = 20;

interface Dataset {
  field: string;
  typeName: string;
  description: string;
  /** GraphQL field → the total it reports. */
  sums: Record<string, keyof StatTotals>;
  /** Averages per query, where the dataset has them. */
  avgs?: Record<string, keyof StatTotals>;
  dimensions: Dimension[];
}

const DATASETS: Dataset[] = [
  {
    field: 'd1AnalyticsAdaptiveGroups',
    typeName: 'AccountD1AnalyticsAdaptiveGroups',
    description: 'Queries and rows per database, by hour (count: queries run)',
    sums: { readQueries: 'readQueries', writeQueries: 'writeQueries', rowsRead: 'rowsRead', rowsWritten: 'rowsWritten' },
    dimensions: ['databaseId', 'datetimeHour', 'date'],
  },
  {
    field: 'd1QueriesAdaptiveGroups',
    typeName: 'AccountD1QueriesAdaptiveGroups',
    description: 'Statistics per normalized statement (count: times run)',
    sums: { queryDurationMs: 'durationMs', rowsRead: 'rowsRead', rowsWritten: 'rowsWritten', rowsReturned: 'rowsReturned' },
    avgs: { queryDurationMs: 'durationMs', rowsRead: 'rowsRead', rowsWritten: 'rowsWritten', rowsReturned: 'rowsReturned' },
    dimensions: ['query', 'databaseId', 'datetimeHour', 'date'],
  },
];

const DIMENSION_TYPES = { query: StringScalar, databaseId: StringScalar, datetimeHour: TimeScalar, date: DateScalar } as const;

/** Filter fields every dataset takes (filter.ts applies them). */
function filterType(name: string): InputType {
  const self: InputType = new GraphQLInputObjectType({
    name,
    fields: () => {
      const list = { type: new GraphQLList(new GraphQLNonNull(self)) };
      const fields: Record<string, { type: any }> = {
        AND: list,
        OR: list,
        databaseId: { type: StringScalar },
        databaseId_in: { type: new GraphQLList(new GraphQLNonNull(StringScalar)) },
        query: { type: StringScalar },
      };
      for (const [field, type] of [['datetimeHour', TimeScalar], ['datetime', TimeScalar], ['date', DateScalar]] as const) {
        for (const op of ['', '_geq', '_gt', '_leq', '_lt']) fields[`${field}${op}`] = { type };
      }
      return fields;
    },
  });
  return self;
}

/** Every dataset's filter has the same fields; wrangler declares its variable as this Cloudflare type, so it exists too. */
const WRANGLERS_FILTER_TYPE = filterType('ZoneWorkersRequestsFilter_InputObject');

function orderByType(dataset: Dataset): GraphQLEnumType {
  const values: Record<string, { value: string }> = {};
  const keys = ['count', ...Object.keys(dataset.sums).map((f) => `sum_${f}`), ...Object.keys(dataset.avgs ?? {}).map((f) => `avg_${f}`), ...dataset.dimensions];
  for (const key of keys) for (const direction of ['ASC', 'DESC']) values[`${key}_${direction}`] = { value: `${key}_${direction}` };
  return new GraphQLEnumType({ name: `${dataset.typeName}OrderBy`, values });
}

function groupType(dataset: Dataset): GraphQLObjectType {
  const totals = (suffix: string, fields: Record<string, keyof StatTotals>, average: boolean) =>
    new GraphQLObjectType({
      name: `${dataset.typeName}${suffix}`,
      fields: Object.fromEntries(Object.keys(fields).map((f) => [f, { type: average || f === 'queryDurationMs' ? Float64Scalar : Uint64Scalar }])),
    });
  const fields: Record<string, { type: any }> = {
    count: { type: Uint64Scalar },
    dimensions: { type: new GraphQLObjectType({ name: `${dataset.typeName}Dimensions`, fields: Object.fromEntries(dataset.dimensions.map((d) => [d, { type: DIMENSION_TYPES[d] }])) }) },
    sum: { type: totals('Sum', dataset.sums, false) },
  };
  if (dataset.avgs) fields.avg = { type: totals('Avg', dataset.avgs, true) };
  return new GraphQLObjectType({ name: dataset.typeName, fields });
}

/** The dimension fields a query selects under `dimensions`, through aliases and fragments. */
function selectedDimensions(info: GraphQLResolveInfo): Set<string> {
  const found = new Set<string>();
  const visit = (set: SelectionSetNode | undefined, under: boolean, seen: Set<string>) => {
    for (const selection of set?.selections ?? []) {
      if (selection.kind === Kind.FIELD) {
        if (under) found.add(selection.name.value);
        else if (selection.name.value === 'dimensions') visit(selection.selectionSet, true, seen);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) visit(selection.selectionSet, under, seen);
      else if (!seen.has(selection.name.value)) {
        seen.add(selection.name.value);
        const fragment: FragmentDefinitionNode | undefined = info.fragments[selection.name.value];
        visit(fragment?.selectionSet, under, seen);
      }
    }
  };
  for (const node of info.fieldNodes as readonly FieldNode[]) visit(node.selectionSet, false, new Set());
  return found;
}

function orderingsOf(dataset: Dataset, orderBy: unknown): { orderings: Ordering[]; dimensions: Dimension[] } {
  const orderings: Ordering[] = [];
  const dimensions: Dimension[] = [];
  const list = orderBy === undefined || orderBy === null ? [] : Array.isArray(orderBy) ? orderBy : [orderBy];
  for (const entry of list) {
    const match = typeof entry === 'string' ? /^(.+)_(ASC|DESC)$/.exec(entry) : null;
    if (!match) throw new GraphQLError(`orderBy: cannot order ${dataset.field} by ${JSON.stringify(entry)}`);
    const [, key, direction] = match as unknown as [string, string, 'ASC' | 'DESC'];
    const descending = direction === 'DESC';
    const [kind, field] = key.includes('_') ? (key.split('_', 2) as [string, string]) : [key, ''];
    if (key === 'count') orderings.push({ value: (g) => countOf(g.totals), descending });
    else if (kind === 'sum' && dataset.sums[field]) {
      const total = dataset.sums[field];
      orderings.push({ value: (g) => g.totals[total], descending });
    } else if (kind === 'avg' && dataset.avgs?.[field]) {
      const total = dataset.avgs[field];
      orderings.push({ value: (g) => average(g.totals, total), descending });
    } else if ((dataset.dimensions as string[]).includes(key)) {
      dimensions.push(key as Dimension);
      orderings.push({ value: (g) => g.dimensions[key as Dimension] ?? '', descending });
    } else throw new GraphQLError(`orderBy: ${dataset.field} has no ${entry}`);
  }
  return { orderings, dimensions };
}

const average = (t: StatTotals, total: keyof StatTotals) => (countOf(t) === 0 ? 0 : t[total] / countOf(t));

function shape(dataset: Dataset, group: Group) {
  const t = group.totals;
  const pick = (fields: Record<string, keyof StatTotals>, value: (k: keyof StatTotals) => number) => Object.fromEntries(Object.entries(fields).map(([f, k]) => [f, value(k)]));
  return {
    count: countOf(t),
    dimensions: group.dimensions,
    sum: pick(dataset.sums, (k) => t[k]),
    avg: dataset.avgs ? pick(dataset.avgs, (k) => average(t, k)) : undefined,
  };
}

function datasetField(dataset: Dataset): GraphQLFieldConfig<unknown, AnalyticsContext> {
  return {
    type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(groupType(dataset)))),
    description: dataset.description,
    args: {
      limit: { type: new GraphQLNonNull(GraphQLInt) },
      filter: { type: filterType(`${dataset.typeName}Filter_InputObject`) },
      orderBy: { type: new GraphQLList(new GraphQLNonNull(orderByType(dataset))) },
    },
    resolve: async (_account, args: { limit: unknown; filter?: unknown; orderBy?: unknown }, context, info) => {
      // Variables are checked against the type they were declared with (wrangler declares another
      // filter type than the argument's), so what arrives is checked here again.
      if (context.datasetsLeft <= 0) throw new GraphQLError(`a query may ask for at most ${MAX_DATASETS} datasets (aliases included)`);
      context.datasetsLeft--;
      const limit = args.limit;
      if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0 || limit > MAX_LIMIT) {
        throw new GraphQLError(`limit must be a whole number from 0 to ${MAX_LIMIT}, got ${JSON.stringify(limit)}`);
      }
      const { orderings, dimensions: ordered } = orderingsOf(dataset, args.orderBy);
      const selected = selectedDimensions(info);
      const dimensions = DIMENSIONS.filter((d) => selected.has(d) || ordered.includes(d));
      let groups: Group[];
      try {
        groups = await context.source.groups({ filter: args.filter ?? null, dimensions, databases: context.databases });
      } catch (e) {
        if (e instanceof FilterError) throw new GraphQLError(e.message);
        throw e;
      }
      return orderGroups(groups, orderings, dimensions)
        .slice(0, limit)
        .map((g) => shape(dataset, g));
    },
  };
}

function accountsField(): GraphQLFieldConfig<unknown, AnalyticsContext> {
  const accountFilter = new GraphQLInputObjectType({
    name: 'AccountFilter_InputObject',
    fields: { accountTag: { type: StringScalar }, accountTag_in: { type: new GraphQLList(new GraphQLNonNull(StringScalar)) } },
  });
  const account = new GraphQLObjectType({ name: 'account', fields: Object.fromEntries(DATASETS.map((d) => [d.field, datasetField(d)])) });
  return {
    type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(account))),
    args: { filter: { type: accountFilter } },
    resolve: (_viewer, args: { filter?: { accountTag?: unknown; accountTag_in?: unknown } | null }, context) => {
      const tag = args.filter?.accountTag;
      const tags = args.filter?.accountTag_in;
      const asked = tag !== undefined && tag !== null ? [tag] : Array.isArray(tags) ? tags : [context.accountId];
      if (!asked.includes(context.accountId)) throw new GraphQLError(`Unknown account ${JSON.stringify(asked.join(', '))}: this server's account id is ${context.accountId}`);
      return [{}];
    },
  };
}

/** The schema, built once per server (its types are plain values; the context carries the state). */
export function analyticsSchema(): GraphQLSchema {
  const viewer = new GraphQLObjectType({ name: 'viewer', fields: { accounts: accountsField() } });
  const query = new GraphQLObjectType({ name: 'Query', fields: { viewer: { type: new GraphQLNonNull(viewer), resolve: () => ({}) } } });
  return new GraphQLSchema({ query, types: [WRANGLERS_FILTER_TYPE] });
}
