// `dione d1 insights NAME`: wrangler's `d1 insights` (its flags, its JSON) on a Dione server, from
// the server's GraphQL Analytics API: the statements run on a database over a time period, with
// their counts, durations and rows, sorted as asked. Like wrangler's, it works on a server only.
import { type Command, Option } from 'commander';
import { projectConfig } from '../wrangler-config.ts';
import { graphql, windowFilter } from './analytics.ts';
import { remoteOnly } from './databases.ts';
import { findOnServer } from './find-database.ts';
import { serverOptions } from './options.ts';
import { CliError, run, say } from './output.ts';
import { RestClient, serverUrl } from './rest.ts';

interface InsightsOptions {
  url?: string;
  local?: boolean;
  config?: string;
  env?: string;
  json?: boolean;
  timePeriod: string;
  sortType: 'sum' | 'avg';
  sortBy: keyof typeof SORT_FIELDS;
  sortDirection: 'ASC' | 'DESC';
  limit: number;
}

/** wrangler's --sort-by values and the GraphQL fields they order by. */
const SORT_FIELDS = { time: 'queryDurationMs', reads: 'rowsRead', writes: 'rowsWritten', count: 'count' } as const;

const MAX_DAYS = 31;

/** The window a --time-period like 1d, 12h or 30m names, ending now; wrangler's limits and messages. */
export function periodWindow(period: string, now = new Date()): [Date, Date] {
  const amount = Number.parseInt(period.slice(0, -1), 10);
  const unit = period.slice(-1);
  const ms = { d: 86_400_000, h: 3_600_000, m: 60_000 }[unit];
  if (ms === undefined) throw new CliError('Invalid duration unit');
  if (!Number.isFinite(amount)) throw new CliError(`Invalid --time-period '${period}': a whole number and a unit, as 1d, 12h or 30m`);
  if (unit === 'd' && amount > MAX_DAYS) throw new CliError(`Duration cannot be greater than ${MAX_DAYS} days`);
  if (unit === 'h' && amount > MAX_DAYS * 24) throw new CliError(`Duration cannot be greater than ${MAX_DAYS * 24} hours (${MAX_DAYS} days)`);
  if (unit === 'm' && amount > MAX_DAYS * 24 * 60) throw new CliError(`Duration cannot be greater than ${MAX_DAYS * 24 * 60} minutes (${MAX_DAYS} days)`);
  return [new Date(now.getTime() - amount * ms), now];
}

interface QueryGroup {
  sum?: { queryDurationMs?: number; rowsRead?: number; rowsWritten?: number; rowsReturned?: number };
  avg?: { queryDurationMs?: number; rowsRead?: number; rowsWritten?: number; rowsReturned?: number };
  count?: number;
  dimensions: { query?: string };
}

const QUERY = `query getD1QueriesOverviewQuery($accountTag: string, $filter: ZoneWorkersRequestsFilter_InputObject, $limit: Int!) {
  viewer { accounts(filter: {accountTag: $accountTag}) {
    d1QueriesAdaptiveGroups(limit: $limit, filter: $filter, orderBy: [ORDER]) {
      sum { queryDurationMs rowsRead rowsWritten rowsReturned }
      avg { queryDurationMs rowsRead rowsWritten rowsReturned }
      count
      dimensions { query }
    }
  } }
}`;

async function insights(name: string, options: InsightsOptions): Promise<void> {
  remoteOnly('insights', options);
  const rest = new RestClient(serverUrl(options.url));
  const db = await findOnServer(rest, projectConfig(options), name, { needs: 'read' });
  const output: Record<string, unknown>[] = [];
  if (db.version !== 'alpha') {
    const [from, to] = periodWindow(options.timePeriod);
    const field = SORT_FIELDS[options.sortBy];
    const order = field === 'count' ? `count_${options.sortDirection}` : `${options.sortType}_${field}_${options.sortDirection}`;
    const data = await graphql<{ viewer: { accounts: { d1QueriesAdaptiveGroups: QueryGroup[] }[] } }>(rest, QUERY.replace('ORDER', order), {
      accountTag: await rest.accountId('read'),
      filter: windowFilter(from, to, db.uuid),
      limit: options.limit,
    });
    for (const row of data.viewer.accounts[0]?.d1QueriesAdaptiveGroups ?? []) {
      if (!row.dimensions.query) continue;
      output.push({
        query: row.dimensions.query,
        avgRowsRead: row.avg?.rowsRead ?? 0,
        totalRowsRead: row.sum?.rowsRead ?? 0,
        avgRowsWritten: row.avg?.rowsWritten ?? 0,
        totalRowsWritten: row.sum?.rowsWritten ?? 0,
        avgDurationMs: row.avg?.queryDurationMs ?? 0,
        totalDurationMs: row.sum?.queryDurationMs ?? 0,
        numberOfTimesRun: row.count ?? 0,
        queryEfficiency: row.avg?.rowsReturned && row.avg?.rowsRead ? row.avg.rowsReturned / row.avg.rowsRead : 0,
      });
    }
  }
  // wrangler prints the same JSON with and without --json.
  say(JSON.stringify(output, null, 2));
}

const whole = (flag: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CliError(`${flag} must be a whole number, got "${value}"`);
  return n;
};

export function registerInsights(d1: Command): void {
  const command = serverOptions(d1.command('insights <name>').description('the statements run on a database, with their counts, durations and rows (on a Dione server)'));
  // wrangler (yargs) also takes the flags in camelCase.
  for (const [flag, camel, description, fallback, choices] of [
    ['--time-period <period>', '--timePeriod <period>', 'from now back this far: 1d, 12h, 30m (at most 31 days)', '1d', undefined],
    ['--sort-type <type>', '--sortType <type>', 'sort by the sum or the average', 'sum', ['sum', 'avg']],
    ['--sort-by <field>', '--sortBy <field>', 'the field to sort by', 'time', Object.keys(SORT_FIELDS)],
    ['--sort-direction <direction>', '--sortDirection <direction>', 'the sort direction', 'DESC', ['ASC', 'DESC']],
  ] as const) {
    const option = new Option(flag, description).default(fallback);
    command.addOption(choices ? option.choices(choices) : option);
    const alias = new Option(camel).hideHelp();
    command.addOption(choices ? alias.choices(choices) : alias);
  }
  command
    .addOption(new Option('--limit <n>', 'how many statements').argParser(whole('--limit')).default(5))
    .addOption(new Option('--count <n>', 'the same as --limit (deprecated)').argParser(whole('--count')).hideHelp())
    .option('--json', 'as JSON (the output is JSON either way, as in wrangler)')
    .action((name: string, options: InsightsOptions & { count?: number }) => run(options.json, () => insights(name, { ...options, limit: options.count ?? options.limit })));
}
