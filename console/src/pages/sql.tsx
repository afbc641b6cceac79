// The SQL console: one or more statements, run as one batch (as `wrangler d1 execute` does), each
// statement's rows and meta; a failure's position marked in the text.
import { useState } from 'preact/hooks';
import { type RawResult, ApiFailure } from '../api.ts';
import { DataGrid, ErrorMessage } from '../components.tsx';
import { useSession } from '../session.ts';
import { errorPosition } from '../sql-text.ts';

/** Rows drawn per statement: a page with a million rows in it would stop responding. */
const SHOWN_ROWS = 1000;

const formatMs = (ms: unknown) => (typeof ms === 'number' ? `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms` : '–');

export function SqlTab({ database }: { database: string }) {
  const { api, who } = useSession();
  const [sql, setSql] = useState(() => sessionStorage.getItem(`dione.sql.${database}`) ?? '');
  const [results, setResults] = useState<{ sql: string; results: RawResult[]; ms: number } | null>(null);
  const [failure, setFailure] = useState<{ sql: string; error: unknown } | null>(null);
  const [busy, setBusy] = useState(false);

  const run = async () => {
    if (!sql.trim() || busy) return;
    setBusy(true);
    setFailure(null);
    const started = performance.now();
    try {
      try {
        sessionStorage.setItem(`dione.sql.${database}`, sql);
      } catch {
        // Too large to keep for the tab (a pasted dump): it runs all the same.
      }
      const answer = await api.raw(database, sql);
      setResults({ sql, results: answer, ms: performance.now() - started });
    } catch (error) {
      setResults(null);
      setFailure({ sql, error });
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="sql-console">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void run();
        }}
      >
        <label for="sql-input">SQL</label>
        <textarea
          id="sql-input"
          class="code"
          rows={8}
          spellcheck={false}
          value={sql}
          onInput={(e) => setSql(e.currentTarget.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
              e.preventDefault();
              void run();
            }
          }}
          aria-describedby="sql-hint"
        />
        <p id="sql-hint" class="hint">
          Statements separated by <code>;</code> run as one batch: all or nothing. Ctrl+Enter runs.
          {who.scope === 'read' && ' This token reads only: the server refuses writes.'}
        </p>
        <button type="submit" class="primary" disabled={busy || !sql.trim()}>
          {busy ? 'Running…' : 'Run'}
        </button>
      </form>
      {failure && <SqlError sql={failure.sql} error={failure.error} />}
      {results && (
        <section aria-label="Results" class="results">
          <p class="meta" aria-live="polite">
            {results.results.length} statement{results.results.length === 1 ? '' : 's'} in {formatMs(results.ms)} (round trip)
          </p>
          {results.results.map((r, i) => (
            <div key={i} class="result">
              <h3>Statement {i + 1}</h3>
              <p class="meta">
                duration {formatMs(r.meta.duration)} · rows read {r.meta.rows_read ?? 0} · rows written {r.meta.rows_written ?? 0}
                {r.meta.changes ? ` · changes ${r.meta.changes}` : ''}
                {r.meta.last_row_id ? ` · last row id ${r.meta.last_row_id}` : ''}
              </p>
              {r.results.columns.length > 0 ? (
                <>
                  <DataGrid label={`Statement ${i + 1} rows`} columns={r.results.columns} rows={r.results.rows.slice(0, SHOWN_ROWS)} />
                  {r.results.rows.length > SHOWN_ROWS && (
                    <p class="hint">
                      Showing the first {SHOWN_ROWS} of {r.results.rows.length} rows: add a LIMIT, or browse the table page by page.
                    </p>
                  )}
                </>
              ) : (
                <p class="empty">No rows.</p>
              )}
            </div>
          ))}
        </section>
      )}
    </div>
  );
}

function SqlError({ sql, error }: { sql: string; error: unknown }) {
  const message = error instanceof Error ? error.message : String(error);
  const position = error instanceof ApiFailure ? errorPosition(sql, message) : undefined;
  return (
    <div class="sql-error">
      <ErrorMessage error={error} />
      {position && (
        <figure>
          <figcaption class="visually-hidden">Where the error is</figcaption>
          <pre class="code">
            {sql.slice(0, position.start)}
            <mark>{sql.slice(position.start, position.end)}</mark>
            {sql.slice(position.end)}
          </pre>
        </figure>
      )}
    </div>
  );
}
