// Query insights for one database: its top statements over a window, by total time, rows read,
// rows written or count, and its read and write queries over time, from the GraphQL Analytics API
// (what `wrangler d1 insights` reads). The server keeps statistics per hour, so that is the finest step.
import { useMemo, useState } from 'preact/hooks';
import { TimeChart } from '../chart.tsx';
import { Choice, ErrorMessage, useLoad } from '../components.tsx';
import { useSession } from '../session.ts';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

const WINDOWS = [
  { id: 'hour', label: 'Last hour', ms: HOUR_MS, step: 'hour' },
  { id: 'day', label: 'Last 24 hours', ms: DAY_MS, step: 'hour' },
  { id: 'week', label: 'Last 7 days', ms: 7 * DAY_MS, step: 'hour' },
  { id: 'month', label: 'Last 30 days', ms: 30 * DAY_MS, step: 'day' },
] as const;
type WindowId = (typeof WINDOWS)[number]['id'];

const SORTS = [
  { id: 'time', label: 'Total time', orderBy: ['sum_queryDurationMs_DESC', 'count_DESC'] },
  { id: 'read', label: 'Rows read', orderBy: ['sum_rowsRead_DESC', 'sum_queryDurationMs_DESC'] },
  { id: 'written', label: 'Rows written', orderBy: ['sum_rowsWritten_DESC', 'sum_queryDurationMs_DESC'] },
  { id: 'count', label: 'Count', orderBy: ['count_DESC', 'sum_queryDurationMs_DESC'] },
] as const;
type SortId = (typeof SORTS)[number]['id'];

const TOP = 25;

interface QueryGroup {
  count: number;
  sum: { queryDurationMs: number; rowsRead: number; rowsWritten: number; rowsReturned: number };
  avg: { queryDurationMs: number };
  dimensions: { query: string };
}

interface ActivityGroup {
  sum: { readQueries: number; writeQueries: number };
  dimensions: { datetimeHour?: string; date?: string };
}

type Answer<K extends string, T> = { viewer: { accounts: Record<K, T[]>[] } };

const TOP_QUERIES = `query ConsoleTopQueries($account: string!, $filter: AccountD1QueriesAdaptiveGroupsFilter_InputObject, $orderBy: [AccountD1QueriesAdaptiveGroupsOrderBy!], $limit: Int!) {
  viewer {
    accounts(filter: { accountTag: $account }) {
      d1QueriesAdaptiveGroups(limit: $limit, filter: $filter, orderBy: $orderBy) {
        count
        sum { queryDurationMs rowsRead rowsWritten rowsReturned }
        avg { queryDurationMs }
        dimensions { query }
      }
    }
  }
}`;

const activityQuery = (dimension: 'datetimeHour' | 'date') => `query ConsoleActivity($account: string!, $filter: AccountD1AnalyticsAdaptiveGroupsFilter_InputObject) {
  viewer {
    accounts(filter: { accountTag: $account }) {
      d1AnalyticsAdaptiveGroups(limit: 10000, filter: $filter, orderBy: [${dimension}_ASC]) {
        sum { readQueries writeQueries }
        dimensions { ${dimension} }
      }
    }
  }
}`;

/** The filter for a database over the window ending now (hours that overlap it count). */
function windowFilter(uuid: string, ms: number) {
  const until = Date.now();
  return { until, since: until - ms, filter: { databaseId: uuid, datetime_geq: new Date(until - ms).toISOString(), datetime_leq: new Date(until).toISOString() } };
}

const formatCount = (n: number) => Math.round(n).toLocaleString();
const formatMs = (ms: number) => ms.toLocaleString(undefined, { maximumFractionDigits: ms < 10 ? 2 : 1 });

export function InsightsTab({ database }: { database: string }) {
  const { api, who } = useSession();
  const [windowId, setWindowId] = useState<WindowId>('day');
  const [sortId, setSortId] = useState<SortId>('time');
  const win = WINDOWS.find((w) => w.id === windowId)!;
  const sort = SORTS.find((s) => s.id === sortId)!;

  const info = useLoad(() => api.request<{ uuid: string; name: string }>('GET', api.databasePath(database)), [database]);
  const uuid = info.value?.uuid;

  const top = useLoad(async () => {
    if (!uuid) return null;
    const { filter } = windowFilter(uuid, win.ms);
    const answer = await api.graphql<Answer<'d1QueriesAdaptiveGroups', QueryGroup>>(TOP_QUERIES, {
      account: who.account_id,
      filter,
      orderBy: sort.orderBy,
      limit: TOP,
    });
    return answer.viewer.accounts[0]?.d1QueriesAdaptiveGroups ?? [];
  }, [uuid, windowId, sortId]);

  const activity = useLoad(async () => {
    if (!uuid) return null;
    const { filter, since, until } = windowFilter(uuid, win.ms);
    const dimension = win.step === 'day' ? 'date' : 'datetimeHour';
    const answer = await api.graphql<Answer<'d1AnalyticsAdaptiveGroups', ActivityGroup>>(activityQuery(dimension), { account: who.account_id, filter });
    return { groups: answer.viewer.accounts[0]?.d1AnalyticsAdaptiveGroups ?? [], since, until, step: win.step };
  }, [uuid, windowId]);

  // Every hour (or UTC day) of the window, with zeros where nothing ran.
  const chart = useMemo(() => {
    const value = activity.value;
    if (!value) return null;
    const span = value.step === 'day' ? DAY_MS : HOUR_MS;
    const first = Math.floor(value.since / span) * span;
    const times: number[] = [];
    for (let t = first; t <= value.until; t += span) times.push(t);
    const reads = times.map(() => 0);
    const writes = times.map(() => 0);
    for (const group of value.groups) {
      const at = group.dimensions.date !== undefined ? Date.parse(`${group.dimensions.date}T00:00:00Z`) : Date.parse(group.dimensions.datetimeHour ?? '');
      const i = Math.round((at - first) / span);
      if (i < 0 || i >= times.length) continue;
      reads[i]! += group.sum.readQueries;
      writes[i]! += group.sum.writeQueries;
    }
    const total = reads.reduce((a, b) => a + b, 0) + writes.reduce((a, b) => a + b, 0);
    return {
      times,
      total,
      step: value.step,
      series: [
        { label: 'Read queries', values: reads, color: 'var(--accent)' },
        { label: 'Write queries', values: writes, color: '#d97706' },
      ],
    };
  }, [activity.value]);

  const reload = () => {
    top.reload();
    activity.reload();
  };

  return (
    <section aria-labelledby="insights-title">
      <h2 id="insights-title">Query insights</h2>
      <form class="inline-form" aria-label="Insights window and order" onSubmit={(e) => e.preventDefault()}>
        <Choice label="Window" value={windowId} options={WINDOWS} onChange={setWindowId} />
        <Choice label="Sort by" value={sortId} options={SORTS} onChange={setSortId} />
        <button type="button" onClick={reload} disabled={!uuid || top.loading || activity.loading}>
          Refresh
        </button>
      </form>
      <ErrorMessage error={info.error} />

      <ErrorMessage error={activity.error} />
      {/* An empty window is said once, under the table's heading: an empty chart is left out. */}
      {chart && chart.total > 0 && (
        <TimeChart label={chart.step === 'day' ? 'Queries per day (UTC days)' : 'Queries per hour'} unit={chart.step} times={chart.times} series={chart.series} />
      )}
      {win.id === 'hour' && <p class="hint">Statistics are kept per hour: the last hour takes in the hours it overlaps.</p>}

      <h3>Top queries by {sort.label.toLowerCase()}</h3>
      <ErrorMessage error={top.error} />
      {(top.loading || info.loading) && !top.value && <p class="loading">Loading…</p>}
      {top.value &&
        (top.value.length === 0 ? (
          <p class="empty">No queries in this window.</p>
        ) : (
          // biome-ignore lint/a11y/useSemanticElements: a scrolling table's wrapper, named for the keyboard focus it takes
          // biome-ignore lint/a11y/noNoninteractiveTabindex: a region that scrolls must take focus to scroll by keyboard
          <div class="grid-wrap" role="region" aria-label={`Top queries by ${sort.label.toLowerCase()}`} tabIndex={0}>
            <table class="grid insights-grid">
              <thead>
                <tr>
                  <th scope="col">Query</th>
                  <th scope="col" aria-sort={sortId === 'count' ? 'descending' : undefined}>
                    Count
                  </th>
                  <th scope="col" aria-sort={sortId === 'time' ? 'descending' : undefined}>
                    Total ms
                  </th>
                  <th scope="col">Avg ms</th>
                  <th scope="col" aria-sort={sortId === 'read' ? 'descending' : undefined}>
                    Rows read
                  </th>
                  <th scope="col" aria-sort={sortId === 'written' ? 'descending' : undefined}>
                    Rows written
                  </th>
                </tr>
              </thead>
              <tbody>
                {top.value.map((g) => (
                  <tr key={g.dimensions.query}>
                    <td>
                      <code class="query-text">{g.dimensions.query}</code>
                    </td>
                    <td class="num">{formatCount(g.count)}</td>
                    <td class="num">{formatMs(g.sum.queryDurationMs)}</td>
                    <td class="num">{formatMs(g.avg.queryDurationMs)}</td>
                    <td class="num">{formatCount(g.sum.rowsRead)}</td>
                    <td class="num">{formatCount(g.sum.rowsWritten)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        ))}
      {top.value && top.value.length === TOP && <p class="hint">The {TOP} statements first in this order; statements differing only in their values count as one.</p>}
    </section>
  );
}
