// `dione d1 time-travel info|restore` (wrangler's flags and texts) and `dione d1 fork` (beyond D1:
// a new database equal to one at a point of its history). Both need a Dione server: the history
// they reach is the server's write log, and the local state wrangler keeps has none.
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import type { RestoreResult } from '../../api/time-travel.ts';
import type { TokenScope } from '../../server/catalog.ts';
import { projectConfig, readWranglerConfig } from '../wrangler-config.ts';
import { bindingFor, configSnippet } from './create.ts';
import { findOnServer } from './find-database.ts';
import { CliError, green, run, say } from './output.ts';
import { ApiFailure, type DatabaseInfo, RestClient, serverUrl } from './rest.ts';

interface ServerOptions {
  url?: string;
  local?: boolean;
  config?: string;
  env?: string;
  json?: boolean;
}

interface PointOptions extends ServerOptions {
  bookmark?: string;
  timestamp?: string;
}

interface ForkOptions extends PointOptions {
  binding?: string;
}

interface ForkedDatabase extends DatabaseInfo {
  forked_from: { uuid: string; bookmark: string };
}

// What wrangler takes for a date string: date, hours and minutes, optional seconds (with an optional
// fraction), and a zone (Z or ±hh:mm); found anywhere in the text, as wrangler tests it.
const ISO_DATE = /\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d(:[0-5]\d(\.\d+)?)?([+-][0-2]\d:[0-5]\d|Z)/;

/** `date` in local time with its UTC offset, e.g. 2024-05-01T10:00:00.000+02:00 (wrangler's example). */
function localIsoString(date: Date): string {
  const offset = date.getTimezoneOffset();
  const abs = Math.abs(offset);
  const local = new Date(date.getTime() - offset * 60_000).toISOString().slice(0, -1);
  return `${local}${offset > 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * wrangler's convertTimestampToISO: an ISO 8601 / RFC 3339 string, 10 digits as unix seconds, any
 * other number as unix milliseconds; it must lie in the past 30 days. Returns Date.toISOString().
 */
export function convertTimestampToISO(timestamp: string, now = new Date()): string {
  const parsed = ISO_DATE.test(timestamp) ? new Date(timestamp) : new Date(Number(timestamp.length === 10 ? `${timestamp}000` : timestamp));
  if (Number.isNaN(parsed.getTime())) {
    throw new CliError(
      `Invalid timestamp '${timestamp}'. Please provide a valid Unix timestamp or ISO string, for example: ${localIsoString(now)}\n` +
        'For accepted format, see: https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/Date#date_time_string_format',
    );
  }
  // Calendar days in local time, as wrangler counts them (Date#setDate).
  const thirtyDaysAgo = new Date(now);
  thirtyDaysAgo.setDate(thirtyDaysAgo.getDate() - 30);
  if (parsed > now) throw new CliError(`Invalid timestamp '${timestamp}'. Please provide a timestamp in the past`);
  if (parsed < thirtyDaysAgo) throw new CliError(`Invalid timestamp '${timestamp}'. Please provide a timestamp within the last 30 days`);
  return parsed.toISOString();
}

/** Exactly one of --bookmark and --timestamp (wrangler's rule for restore; fork has the same). */
function checkPoint(options: PointOptions): void {
  if (options.timestamp && options.bookmark) {
    throw new CliError('Cannot use --timestamp and --bookmark together. Provide either a timestamp, or a bookmark - not both.');
  }
  if (!options.timestamp && !options.bookmark) {
    throw new CliError(
      'Missing required option --timestamp or --bookmark. Provide either a timestamp (unix seconds or RFC 3339) or a bookmark; ' +
        '`dione d1 time-travel info <database>` shows the current bookmark.',
    );
  }
}

function serverFor(command: string, options: ServerOptions): RestClient {
  if (options.local) {
    throw new CliError(
      `\`d1 ${command}\` works on a Dione server only: it reaches back through the history the server keeps of each database, ` +
        'and the local state wrangler keeps (.wrangler/state) has no history. Pass --url or set DIONE_URL (and DIONE_TOKEN).',
    );
  }
  return new RestClient(serverUrl(options.url));
}

/** The database on the server, as every command finds it; Time Travel needs a database with a history. */
async function findDatabase(rest: RestClient, name: string, options: ServerOptions, needs: TokenScope): Promise<DatabaseInfo> {
  const found = await findOnServer(rest, projectConfig(options), name, { needs });
  if (found.version === 'alpha') {
    throw new CliError('Time travel is not available for alpha D1 databases. You will need to migrate to a new database for access to this feature.');
  }
  return found;
}

async function bookmarkAt(rest: RestClient, uuid: string, iso: string | undefined): Promise<{ bookmark: string }> {
  const query = iso ? `?timestamp=${encodeURIComponent(iso)}` : '';
  return rest.onDatabase<{ bookmark: string }>('GET', uuid, `/time_travel/bookmark${query}`, undefined, 'read');
}

/** The bookmark --bookmark gives, or the one --timestamp (already converted) resolves to, as wrangler's restore does. */
async function pointBookmark(rest: RestClient, uuid: string, bookmark: string | undefined, iso: string | undefined): Promise<string> {
  return bookmark || (await bookmarkAt(rest, uuid, iso)).bookmark;
}

/** On a terminal, only "y"/"yes" goes ahead (wrangler's default for a restore is no); elsewhere (CI, pipes) it goes ahead, as wrangler's does. */
async function confirmRestore(): Promise<boolean> {
  if (!process.stdin.isTTY || !process.stdout.isTTY || process.env.CI) return true;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const answer = (await rl.question('OK to proceed (y/N) ')).trim().toLowerCase();
    return answer === 'y' || answer === 'yes';
  } finally {
    rl.close();
  }
}

async function info(database: string, options: PointOptions): Promise<void> {
  const iso = options.timestamp ? convertTimestampToISO(options.timestamp) : undefined;
  const rest = serverFor('time-travel info', options);
  const db = await findDatabase(rest, database, options, 'read');
  const result = await bookmarkAt(rest, db.uuid, iso);
  if (options.json) {
    say(JSON.stringify(result, null, 2));
    return;
  }
  say('🚧 Time Traveling...');
  say(options.timestamp ? `⚠️ Timestamp '${options.timestamp}' corresponds with bookmark '${result.bookmark}'` : `⚠️ The current bookmark is '${result.bookmark}'`);
  say(`⚡️ To restore to this specific bookmark, run:\n \`dione d1 time-travel restore ${database} --bookmark=${result.bookmark}\``);
}

async function restore(database: string, options: PointOptions): Promise<void> {
  checkPoint(options);
  const iso = options.timestamp ? convertTimestampToISO(options.timestamp) : undefined;
  const rest = serverFor('time-travel restore', options);
  const db = await findDatabase(rest, database, options, 'write');
  const bookmark = await pointBookmark(rest, db.uuid, options.bookmark, iso);
  const restoreTo = async () => {
    try {
      return await rest.onDatabase<RestoreResult>('POST', db.uuid, `/time_travel/restore?bookmark=${encodeURIComponent(bookmark)}`, undefined, 'write');
    } catch (e) {
      if (e instanceof ApiFailure && e.status === 400) throw new CliError(`${e.message}. Database ${database} was not changed.`);
      throw e;
    }
  };
  if (options.json) {
    say(JSON.stringify(await restoreTo(), null, 2));
    return;
  }
  say(`🚧 Restoring database ${database} from bookmark ${bookmark}`);
  say(`⚠️ This will overwrite all data in database ${database}.\nIn-flight queries and transactions will be cancelled.`);
  if (!(await confirmRestore())) {
    say('Not restoring.');
    return;
  }
  say('⚡️ Time travel in progress...');
  const result = await restoreTo();
  say(green(`✅ Database ${database} restored back to bookmark ${result.bookmark}`));
  say(`↩️ To undo this operation, you can restore to the previous bookmark: ${result.previous_bookmark}`);
}

async function fork(source: string, name: string, options: ForkOptions): Promise<void> {
  checkPoint(options);
  const iso = options.timestamp ? convertTimestampToISO(options.timestamp) : undefined;
  const rest = serverFor('fork', options);
  const db = await findDatabase(rest, source, options, 'admin');
  // A timestamp is resolved first, so the bookmark printed is one of the source database.
  const bookmark = await pointBookmark(rest, db.uuid, options.bookmark, iso);
  const result = await rest.onDatabase<ForkedDatabase>('POST', db.uuid, '/fork', { name, bookmark }, 'admin');
  if (options.json) {
    say(JSON.stringify(result, null, 2));
    return;
  }
  say(green(`✅ Successfully forked DB '${db.name}' at bookmark ${bookmark} into new DB '${result.name}' (${result.uuid})`));
  say('Created your new D1 database.\n');
  say(configSnippet(options.binding ?? bindingFor(name), result, readWranglerConfig({ config: options.config }).file));
}

/** Registers `d1 time-travel info|restore` and `d1 fork`; `serverCommand` adds the options of the server-only commands. */
export function registerTimeTravel(d1: Command, serverCommand: (command: Command) => Command): void {
  const timeTravel = d1.command('time-travel').description('see or restore a database at a point in time (on a Dione server)');
  const timestampHelp = 'a Unix (seconds from epoch) or RFC 3339 timestamp (e.g. 2023-07-13T08:46:42.228Z), within the last 30 days';

  serverCommand(timeTravel.command('info <database>').description('the bookmark of a database now or at a point in time'))
    .option('--timestamp <t>', timestampHelp)
    .option('--json', 'as JSON')
    .action((database: string, options: PointOptions) => run(options.json, () => info(database, options)));

  serverCommand(timeTravel.command('restore <database>').description('restore a database in place to a bookmark or a point in time'))
    .option('--bookmark <b>', 'the bookmark to restore to')
    .option('--timestamp <t>', timestampHelp)
    .option('--json', 'as JSON (no confirmation)')
    .action((database: string, options: PointOptions) => run(options.json, () => restore(database, options)));

  serverCommand(d1.command('fork <source> <new-name>').description('create a database equal to another at a bookmark or a point in time'))
    .option('--bookmark <b>', 'the bookmark of <source> to fork at')
    .option('--timestamp <t>', timestampHelp)
    .option('--binding <name>', 'the binding name for the printed config')
    .option('--json', 'as JSON')
    .action((source: string, name: string, options: ForkOptions) => run(options.json, () => fork(source, name, options)));
}
