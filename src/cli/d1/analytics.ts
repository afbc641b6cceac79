// The GraphQL Analytics API of a Dione server (/client/v4/graphql), as wrangler asks it: the
// queries behind `d1 info`'s 24-hour counters and `d1 insights`.
import { CliError } from './output.ts';
import { type RestClient, tokenHint } from './rest.ts';

interface GraphqlAnswer<T> {
  data: T | null;
  errors: { message: string }[] | null;
}

export async function graphql<T>(rest: RestClient, query: string, variables: Record<string, unknown>): Promise<T> {
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  if (rest.token) headers.authorization = `Bearer ${rest.token}`;
  let response: Response;
  try {
    response = await fetch(`${rest.url}/client/v4/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e);
    throw new CliError(`Could not reach the Dione server at ${rest.url} (${cause}). Is \`dione serve\` running there? Check --url / DIONE_URL.`);
  }
  const text = await response.text();
  let answer: GraphqlAnswer<T> & { success?: boolean };
  try {
    answer = JSON.parse(text);
  } catch {
    throw new CliError(`The server at ${rest.url} answered the analytics query with HTTP ${response.status} and no JSON: ${text.slice(0, 200)}`);
  }
  if (response.status === 401 || response.status === 403) throw new CliError(`A request to the Dione API (POST /graphql) failed. ${answer.errors?.[0]?.message ?? ''}${tokenHint(response.status, 'read')}`);
  if (answer.errors?.length || !answer.data) throw new CliError(`The analytics query failed: ${answer.errors?.map((e) => e.message).join('; ') || `HTTP ${response.status}`}`);
  return answer.data;
}

/** wrangler's filter: the hours from `from` to `to`, one database. */
export const windowFilter = (from: Date, to: Date, databaseId: string) => ({ AND: [{ datetimeHour_geq: from.toISOString(), datetimeHour_leq: to.toISOString(), databaseId }] });

const OVERVIEW = `query getD1MetricsOverviewQuery($accountTag: string, $filter: ZoneWorkersRequestsFilter_InputObject) {
  viewer { accounts(filter: {accountTag: $accountTag}) {
    d1AnalyticsAdaptiveGroups(limit: 10000, filter: $filter) { sum { readQueries writeQueries rowsRead rowsWritten } dimensions { datetimeHour } }
  } }
}`;

interface OverviewGroup {
  sum?: { readQueries?: number; writeQueries?: number; rowsRead?: number; rowsWritten?: number };
}

/** The counters `wrangler d1 info` shows: queries and rows over the last 24 hours. */
export async function last24Hours(rest: RestClient, databaseId: string, now = new Date()) {
  const yesterday = new Date(now.getTime() - 86_400_000);
  const data = await graphql<{ viewer: { accounts: { d1AnalyticsAdaptiveGroups: OverviewGroup[] }[] } }>(rest, OVERVIEW, {
    accountTag: await rest.accountId('read'),
    filter: windowFilter(yesterday, now, databaseId),
  });
  const counters = { read_queries_24h: 0, write_queries_24h: 0, rows_read_24h: 0, rows_written_24h: 0 };
  for (const group of data.viewer.accounts[0]?.d1AnalyticsAdaptiveGroups ?? []) {
    counters.read_queries_24h += group.sum?.readQueries ?? 0;
    counters.write_queries_24h += group.sum?.writeQueries ?? 0;
    counters.rows_read_24h += group.sum?.rowsRead ?? 0;
    counters.rows_written_24h += group.sum?.rowsWritten ?? 0;
  }
  return counters;
}
