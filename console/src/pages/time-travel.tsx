// Time Travel for one database: its commits over time, the recent ones, restoring to one of them,
// a time or a bookmark (confirmed, then offered back as an undo), and forking a new database from
// a point of its history (admin).
import { useMemo, useState } from 'preact/hooks';
import { canWrite, formatTime, isAdmin } from '../api.ts';
import { TimeChart } from '../chart.tsx';
import { Choice, ConfirmDialog, ErrorMessage, TableHead, useLoad, useSubmit } from '../components.tsx';
import { href } from '../route.ts';
import { useSession } from '../session.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

const WINDOWS = [
  { id: 'hour', label: 'Last hour', ms: HOUR_MS, buckets: 60 },
  { id: 'day', label: 'Last 24 hours', ms: DAY_MS, buckets: 96 },
  { id: 'week', label: 'Last 7 days', ms: 7 * DAY_MS, buckets: 168 },
  { id: 'month', label: 'Last 30 days', ms: 30 * DAY_MS, buckets: 120 },
] as const;
type WindowId = (typeof WINDOWS)[number]['id'];

interface Commit {
  bookmark: string;
  time: number | string;
}

interface Commits {
  since: number;
  until: number;
  bucket_ms: number;
  counts: number[];
  total: number;
  recent: Commit[];
  oldest_restorable: Commit | null;
}

interface RestoreResult {
  bookmark: string;
  previous_bookmark: string;
  message: string;
}

/** A point of the history, as the REST API takes it, and in words for the confirmation. */
type Point = { bookmark: string; description: string } | { timestamp: string; description: string };

/** A bucket's span in words: "minute", "15 minutes", "hour", "6 hours", "day". */
function spanText(ms: number): string {
  const units: [number, string][] = [
    [DAY_MS, 'day'],
    [HOUR_MS, 'hour'],
    [MINUTE_MS, 'minute'],
    [1000, 'second'],
  ];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) return ms === size ? name : `${ms / size} ${name}s`;
  }
  return `${ms} ms`;
}

/** A time as a datetime-local input shows it (local time, to the second). */
function localInput(ms: number): string {
  const date = new Date(ms);
  return new Date(ms - date.getTimezoneOffset() * MINUTE_MS).toISOString().slice(0, 19);
}

/** A datetime-local input's value (local time) as ISO 8601, or undefined when it is none. */
function isoOfLocal(value: string): string | undefined {
  const ms = new Date(value).getTime();
  return value && !Number.isNaN(ms) ? new Date(ms).toISOString() : undefined;
}

const pointQuery = (point: Point) => ('bookmark' in point ? `bookmark=${encodeURIComponent(point.bookmark)}` : `timestamp=${encodeURIComponent(point.timestamp)}`);

export function TimeTravelTab({ database }: { database: string }) {
  const { who } = useSession();
  if (!who.history) {
    return (
      <section aria-labelledby="time-travel-title">
        <h2 id="time-travel-title">Time Travel</h2>
        <p class="hint">This server keeps no history of its databases, so there is nothing to travel to.</p>
      </section>
    );
  }
  return <TimeTravel database={database} />;
}

function TimeTravel({ database }: { database: string }) {
  const { api, who } = useSession();
  const [windowId, setWindowId] = useState<WindowId>('day');
  const win = WINDOWS.find((w) => w.id === windowId)!;
  const writer = canWrite(who.scope);

  const commits = useLoad(() => {
    const until = Date.now();
    return api.request<Commits>('GET', `/dione/v1/databases/${encodeURIComponent(database)}/commits?since=${until - win.ms}&until=${until}&buckets=${win.buckets}`);
  }, [database, windowId]);
  const current = useLoad(() => api.request<{ bookmark: string }>('GET', `${api.databasePath(database)}/time_travel/bookmark`), [database]);

  const [pending, setPending] = useState<{ point: Point; undo: boolean } | null>(null);
  const [result, setResult] = useState<(RestoreResult & { undo: boolean }) | null>(null);

  const chart = useMemo(() => {
    const c = commits.value;
    if (!c) return null;
    return {
      times: c.counts.map((_, i) => c.since + i * c.bucket_ms),
      series: [{ label: 'Commits', values: c.counts, color: 'var(--accent)' }],
      span: spanText(c.bucket_ms),
      step: c.bucket_ms,
    };
  }, [commits.value]);

  const restore = async (point: Point, undo: boolean) => {
    const answer = await api.request<RestoreResult>('POST', `${api.databasePath(database)}/time_travel/restore?${pointQuery(point)}`);
    setResult({ ...answer, undo });
    commits.reload();
    current.reload();
  };

  const oldest = commits.value?.oldest_restorable;

  return (
    <>
      <section aria-labelledby="commits-title">
        <h2 id="commits-title">Commits over time</h2>
        <p class="hint">Current bookmark: {current.value ? <code class="bookmark">{current.value.bookmark}</code> : current.loading ? 'loading…' : 'unknown'}</p>
        <ErrorMessage error={current.error} />
        <form class="inline-form" aria-label="Commits window" onSubmit={(e) => e.preventDefault()}>
          <Choice label="Window" value={windowId} options={WINDOWS} onChange={setWindowId} />
          <button type="button" onClick={commits.reload} disabled={commits.loading}>
            Refresh
          </button>
        </form>
        <ErrorMessage error={commits.error} />
        {commits.loading && !commits.value && <p class="loading">Loading…</p>}
        {commits.value && chart && (
          <>
            {commits.value.total === 0 ? (
              <p class="empty">No commits in this window.</p>
            ) : (
              <TimeChart label={`Commits per ${chart.span}`} unit={chart.span} times={chart.times} series={chart.series} step={chart.step} bars />
            )}
            <p class="hint">
              {commits.value.total.toLocaleString()} {commits.value.total === 1 ? 'commit' : 'commits'} from {formatTime(commits.value.since)} to {formatTime(commits.value.until)}.{' '}
              {oldest ? `The history reaches back to ${formatTime(oldest.time)}.` : 'There is no commit to restore to yet.'}
            </p>
          </>
        )}
      </section>

      <section aria-labelledby="recent-title">
        <h2 id="recent-title">Recent commits</h2>
        {commits.value &&
          (commits.value.recent.length === 0 ? (
            <p class="empty">No commits in this window.</p>
          ) : (
            // biome-ignore lint/a11y/useSemanticElements: a scrolling table's wrapper, named for the keyboard focus it takes
            // biome-ignore lint/a11y/noNoninteractiveTabindex: a region that scrolls must take focus to scroll by keyboard
            <div class="grid-wrap" role="region" aria-label="Recent commits" tabIndex={0}>
              <table class="grid commits-grid">
                <TableHead columns={['Time', 'Bookmark']} actions={writer} />
                <tbody>
                  {commits.value.recent.map((commit) => (
                    <tr key={commit.bookmark}>
                      <td class="time">{formatTime(commit.time)}</td>
                      <td class="bookmark-cell">
                        <code class="bookmark">{commit.bookmark}</code>
                        {commit.bookmark === current.value?.bookmark && <span class="sub"> (current)</span>}
                      </td>
                      {writer && (
                        <td class="row-actions">
                          <button
                            type="button"
                            aria-label={`Restore to this commit, ${formatTime(commit.time)}`}
                            disabled={commit.bookmark === current.value?.bookmark}
                            onClick={() =>
                              setPending({
                                point: { bookmark: commit.bookmark, description: `the commit of ${formatTime(commit.time)} (bookmark ${commit.bookmark})` },
                                undo: false,
                              })
                            }
                          >
                            Restore to this commit
                          </button>
                        </td>
                      )}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          ))}
      </section>

      <section aria-labelledby="restore-title">
        <h2 id="restore-title">Restore</h2>
        <div aria-live="polite">
          {result && (
            <div class="restore-result">
              <p>
                {result.undo ? 'The restore was undone. ' : 'The database was restored. '}
                {result.message}
              </p>
              <p class="hint">
                Bookmark now: <code class="bookmark">{result.bookmark}</code>. Before: <code class="bookmark">{result.previous_bookmark}</code>.
              </p>
              {writer && (
                <button
                  type="button"
                  onClick={() =>
                    setPending({ point: { bookmark: result.previous_bookmark, description: `where it was before (bookmark ${result.previous_bookmark})` }, undo: true })
                  }
                >
                  Undo restore
                </button>
              )}
            </div>
          )}
        </div>
        {writer ? (
          <RestoreForms oldest={oldest ?? null} onRestore={(point) => setPending({ point, undo: false })} />
        ) : (
          <p class="hint">Restoring needs a token that may write to this database.</p>
        )}
      </section>

      {isAdmin(who) && <ForkForm database={database} />}

      {pending && (
        <ConfirmDialog
          title={pending.undo ? `Undo the last restore of ${database}?` : `Restore ${database}?`}
          action={pending.undo ? 'Undo restore' : 'Restore'}
          danger
          onConfirm={() => restore(pending.point, pending.undo)}
          onClose={() => setPending(null)}
        >
          <p>
            {database} is rewound to {pending.point.description}: every change committed after that point is undone, for everyone using the database.
          </p>
          <p>
            The restore is recorded as a new commit, so nothing is lost: afterwards an <strong>Undo restore</strong> button returns the database to where it is now
            {current.value ? (
              <>
                {' '}
                (bookmark <code class="bookmark">{current.value.bookmark}</code>)
              </>
            ) : null}
            .
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

function RestoreForms({ oldest, onRestore }: { oldest: Commit | null; onRestore: (point: Point) => void }) {
  const [time, setTime] = useState('');
  const [bookmark, setBookmark] = useState('');
  const [invalid, setInvalid] = useState<string>();
  const oldestMs = oldest ? new Date(oldest.time).getTime() : Number.NaN;
  const byTime = (e: Event) => {
    e.preventDefault();
    const timestamp = isoOfLocal(time);
    if (!timestamp) return setInvalid('Give the time to restore to.');
    setInvalid(undefined);
    onRestore({ timestamp, description: `its state at ${formatTime(timestamp)} (the last commit at or before it)` });
  };
  const byBookmark = (e: Event) => {
    e.preventDefault();
    if (!bookmark.trim()) return setInvalid('Give the bookmark to restore to.');
    setInvalid(undefined);
    onRestore({ bookmark: bookmark.trim(), description: `bookmark ${bookmark.trim()}` });
  };
  return (
    <>
      <form class="inline-form" onSubmit={byTime} aria-label="Restore to a time">
        <label>
          Restore to time
          <input
            type="datetime-local"
            step={1}
            value={time}
            min={Number.isNaN(oldestMs) ? undefined : localInput(oldestMs)}
            max={localInput(Date.now())}
            onInput={(e) => setTime(e.currentTarget.value)}
            required
          />
        </label>
        <button type="submit" class="danger" disabled={!time}>
          Restore…
        </button>
      </form>
      <form class="inline-form" onSubmit={byBookmark} aria-label="Restore to a bookmark">
        <label>
          Restore to bookmark
          <input value={bookmark} onInput={(e) => setBookmark(e.currentTarget.value)} required autoComplete="off" spellcheck={false} />
        </label>
        <button type="submit" class="danger" disabled={!bookmark.trim()}>
          Restore…
        </button>
      </form>
      <ErrorMessage error={invalid} />
      <p class="hint">A time restores the last commit at or before it (your local time zone).</p>
    </>
  );
}

function ForkForm({ database }: { database: string }) {
  const { api } = useSession();
  const [name, setName] = useState('');
  const [from, setFrom] = useState<'now' | 'time' | 'bookmark'>('now');
  const [time, setTime] = useState('');
  const [bookmark, setBookmark] = useState('');
  const [forked, setForked] = useState<{ name: string; bookmark?: string } | null>(null);

  const { submit, busy, error } = useSubmit(async () => {
    const body: { name: string; bookmark?: string; timestamp?: string } = { name: name.trim() };
    if (from === 'time') {
      const timestamp = isoOfLocal(time);
      if (!timestamp) throw new Error('Give the time to fork from.');
      body.timestamp = timestamp;
    } else if (from === 'bookmark') {
      if (!bookmark.trim()) throw new Error('Give the bookmark to fork from.');
      body.bookmark = bookmark.trim();
    } else {
      // Now: the database's current bookmark, exactly (the server needs a point).
      body.bookmark = (await api.request<{ bookmark: string }>('GET', `${api.databasePath(database)}/time_travel/bookmark`)).bookmark;
    }
    const answer = await api.request<{ name: string; uuid: string; bookmark?: string }>('POST', `${api.databasePath(database)}/fork`, body);
    setForked({ name: answer.name ?? body.name, bookmark: answer.bookmark });
    setName('');
  });

  return (
    <section aria-labelledby="fork-title">
      <h2 id="fork-title">Fork</h2>
      <p class="hint">Fork into a new database: a copy of {database} as it was at a point of its history, with a history of its own.</p>
      <form class="inline-form" onSubmit={submit} aria-label="Fork into a new database">
        <label>
          New database name
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} required autoComplete="off" />
        </label>
        <label>
          From
          <select value={from} onChange={(e) => setFrom(e.currentTarget.value as typeof from)}>
            <option value="now">Now</option>
            <option value="time">A time</option>
            <option value="bookmark">A bookmark</option>
          </select>
        </label>
        {from === 'time' && (
          <label>
            Fork from time
            <input type="datetime-local" step={1} value={time} max={localInput(Date.now())} onInput={(e) => setTime(e.currentTarget.value)} required />
          </label>
        )}
        {from === 'bookmark' && (
          <label>
            Fork from bookmark
            <input value={bookmark} onInput={(e) => setBookmark(e.currentTarget.value)} required autoComplete="off" spellcheck={false} />
          </label>
        )}
        <button type="submit" class="primary" disabled={busy || !name.trim()}>
          {busy ? 'Forking…' : 'Fork into a new database'}
        </button>
      </form>
      <ErrorMessage error={error} />
      <div aria-live="polite">
        {forked && (
          <p>
            Forked into <a href={href('db', forked.name)}>{forked.name}</a>
            {forked.bookmark ? (
              <>
                {' '}
                (its first bookmark: <code class="bookmark">{forked.bookmark}</code>)
              </>
            ) : null}
            .
          </p>
        )}
      </div>
    </section>
  );
}
