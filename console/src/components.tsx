// Pieces every page uses: an error message, a confirmation dialog, a grid of rows, async state.
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiFailure } from './api.ts';

export function ErrorMessage({ error }: { error: unknown }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const status = error instanceof ApiFailure && error.status ? ` (${error.status})` : '';
  return (
    <p class="error" role="alert">
      {message}
      {status}
    </p>
  );
}

/**
 * A form's submit: prevents the page load, runs `action` (one at a time), and keeps its failure to
 * show; `busy` while it runs.
 */
export function useSubmit(action: () => Promise<void>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const submit = async (e?: Event) => {
    e?.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (failure) {
      setError(failure);
    } finally {
      setBusy(false);
    }
  };
  return { submit, busy, error };
}

/** Loads with `load` now and whenever `deps` change; `reload` loads again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ value?: T; error?: unknown; loading: boolean }>({ loading: true });
  const generation = useRef(0);
  const reload = useCallback(() => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (value) => mine === generation.current && setState({ value, loading: false }),
      (error) => mine === generation.current && setState({ error, loading: false }),
    );
  }, deps);
  useEffect(reload, [reload]);
  return { ...state, reload };
}

/**
 * A modal confirmation. `confirmText`, when given, must be typed before the action is allowed
 * (a database's name before it is deleted).
 */
export function ConfirmDialog(props: {
  title: string;
  children: ComponentChildren;
  action: string;
  danger?: boolean;
  confirmText?: string;
  onConfirm: () => Promise<void> | void;
  onClose: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [typed, setTyped] = useState('');
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const { submit: confirm, busy, error } = useSubmit(async () => {
    await props.onConfirm();
    props.onClose();
  });
  const allowed = props.confirmText === undefined || typed === props.confirmText;
  return (
    <dialog ref={ref} onClose={props.onClose} aria-labelledby="dialog-title" class="dialog">
      <form onSubmit={confirm}>
        <h2 id="dialog-title">{props.title}</h2>
        {props.children}
        {props.confirmText !== undefined && (
          <label>
            Type <code>{props.confirmText}</code> to confirm
            <input value={typed} onInput={(e) => setTyped(e.currentTarget.value)} autoComplete="off" />
          </label>
        )}
        <ErrorMessage error={error} />
        <div class="actions">
          <button type="button" onClick={() => ref.current?.close()}>
            Cancel
          </button>
          <button type="submit" class={props.danger ? 'danger' : 'primary'} disabled={!allowed || busy}>
            {busy ? 'Working…' : props.action}
          </button>
        </div>
      </form>
    </dialog>
  );
}

/** A table's header row: one header per column, and an "Actions" column (named for screen readers only) when asked. */
export function TableHead({ columns, actions }: { columns: ComponentChildren[]; actions?: boolean }) {
  return (
    <thead>
      <tr>
        {columns.map((c, i) => (
          <th scope="col" key={i}>
            {c}
          </th>
        ))}
        {actions && (
          <th scope="col">
            <span class="visually-hidden">Actions</span>
          </th>
        )}
      </tr>
    </thead>
  );
}

/** A labelled select of fixed choices. */
export function Choice<T extends string>(props: { label: string; value: T; options: readonly { id: T; label: string }[]; onChange: (value: T) => void }) {
  return (
    <label>
      {props.label}
      <select value={props.value} onChange={(e) => props.onChange(e.currentTarget.value as T)}>
        {props.options.map((o) => (
          <option key={o.id} value={o.id}>
            {o.label}
          </option>
        ))}
      </select>
    </label>
  );
}

export function cellText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (Array.isArray(value)) return `[blob ${value.length} bytes]`;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/** Rows as a table; `columnHeader` may make headers interactive, `rowActions` adds a last cell. */
export function DataGrid(props: {
  label: string;
  columns: string[];
  rows: unknown[][];
  columnHeader?: (column: string, index: number) => ComponentChildren;
  rowActions?: (row: unknown[], index: number) => ComponentChildren;
}) {
  return (
    <section class="grid-wrap" aria-label={props.label}>
      <table class="grid">
        <TableHead columns={props.columns.map((c, i) => (props.columnHeader ? props.columnHeader(c, i) : c))} actions={props.rowActions !== undefined} />
        <tbody>
          {props.rows.map((row, r) => (
            <tr key={r}>
              {row.map((value, i) => (
                <td key={i} class={value === null ? 'null' : typeof value === 'number' ? 'num' : undefined}>
                  {cellText(value)}
                </td>
              ))}
              {props.rowActions && (
                <td class="row-actions">
                  <div>{props.rowActions(row, r)}</div>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {props.rows.length === 0 && <p class="empty">No rows.</p>}
    </section>
  );
}
