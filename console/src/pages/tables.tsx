// The table browser: tables and views, a table's columns and indexes, its rows a page at a time
// with sort and filter, and (for write tokens) rows edited, added and deleted — all as SQL through
// the REST API, so D1's limits and the token's scope apply as they do to any client.
import { useState } from 'preact/hooks';
import { canWrite, quoteIdentifier, type RawResult } from '../api.ts';
import { cellText, ConfirmDialog, DataGrid, ErrorMessage, useLoad } from '../components.tsx';
import { href } from '../route.ts';
import { useSession } from '../session.ts';

interface TableEntry {
  name: string;
  type: 'table' | 'view';
  sql: string | null;
}

interface ColumnInfo {
  cid: number;
  name: string;
  type: string;
  notnull: number;
  dflt_value: unknown;
  pk: number;
  /** table_xinfo: 2 and 3 are generated columns (not written by hand). */
  hidden?: number;
}

const PAGE_ROWS = 50;
/** A decimal number as typed (no hex, no Infinity). */
const DECIMAL = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

export function TablesTab({ database, table }: { database: string; table?: string }) {
  const { api } = useSession();
  const tables = useLoad(
    () => api.rows<TableEntry>(database, "SELECT name, type, sql FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name"),
    // Again on each table chosen: a table created meanwhile (in the SQL console, by another client) is found.
    [database, table],
  );
  const entry = tables.value?.find((t) => t.name === table);
  return (
    <div class="tables">
      <nav class="table-list" aria-label="Tables">
        <h2>Tables</h2>
        <ErrorMessage error={tables.error} />
        {tables.value && tables.value.length === 0 && <p class="empty">No tables yet: create one in the SQL console.</p>}
        <ul>
          {tables.value?.map((t) => (
            <li key={t.name}>
              <a href={href('db', database, 'tables', t.name)} aria-current={t.name === table ? 'page' : undefined}>
                {t.name}
                {t.type === 'view' && <span class="sub"> view</span>}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="table-detail">
        {table && entry && <TableView key={`${database}/${table}`} database={database} entry={entry} onChanged={tables.reload} />}
        {table && tables.value && !entry && <p class="error">No table {table} in {database}.</p>}
        {!table && tables.value && tables.value.length > 0 && <p class="hint">Choose a table.</p>}
      </div>
    </div>
  );
}

type Operator = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'contains' | 'is null' | 'is not null';
const OPERATORS: Operator[] = ['=', '!=', '<', '<=', '>', '>=', 'contains', 'is null', 'is not null'];

interface Filter {
  column: string;
  operator: Operator;
  value: string;
}

/** A column's affinity is TEXT: a value compared with it is compared as text anyway. */
const textAffinity = (column: ColumnInfo | undefined) => /CHAR|CLOB|TEXT/i.test(column?.type ?? '');

function whereClause(filter: Filter | null, columns: ColumnInfo[]): { sql: string; params: unknown[] } {
  if (!filter) return { sql: '', params: [] };
  const column = quoteIdentifier(filter.column);
  if (filter.operator === 'is null') return { sql: ` WHERE ${column} IS NULL`, params: [] };
  if (filter.operator === 'is not null') return { sql: ` WHERE ${column} IS NOT NULL`, params: [] };
  if (filter.operator === 'contains') return { sql: ` WHERE ${column} LIKE ? ESCAPE '\\'`, params: [`%${filter.value.replace(/[\\%_]/g, (c) => `\\${c}`)}%`] };
  // A number typed for a column without text affinity is compared as a number (a column with no type
  // would never equal the text '5').
  const info = columns.find((c) => c.name === filter.column);
  const value = !textAffinity(info) && DECIMAL.test(filter.value.trim()) && Number.isSafeInteger(Math.trunc(Number(filter.value))) ? Number(filter.value) : filter.value;
  return { sql: ` WHERE ${column} ${filter.operator} ?`, params: [value] };
}

/**
 * How rows are found again to edit or delete them: by rowid (under a name no column shadows, and as
 * text, so rowids past 2^53 stay exact), or in a WITHOUT ROWID table by its primary key, compared
 * through quote() (exact for every type, NULL included). Each key is selected before the row's
 * columns, as __dione_key<i>.
 */
interface RowKey {
  select: string[];
  where: string;
  order: string[];
}

function rowKeyOf(entry: TableEntry, columns: ColumnInfo[], withoutRowid: boolean): RowKey | undefined {
  if (entry.type !== 'table') return undefined;
  if (!withoutRowid) {
    const taken = new Set(columns.map((c) => c.name.toLowerCase()));
    const alias = ['rowid', '_rowid_', 'oid'].find((a) => !taken.has(a));
    if (!alias) return undefined;
    return { select: [`CAST(${alias} AS TEXT)`], where: `${alias} = CAST(? AS INTEGER)`, order: [alias] };
  }
  const keys = columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => quoteIdentifier(c.name));
  if (keys.length === 0) return undefined;
  return { select: keys.map((k) => `quote(${k})`), where: keys.map((k) => `quote(${k}) = ?`).join(' AND '), order: keys };
}

/** The one row a statement was meant to change was changed, else it says what happened. */
function expectOneChange(result: RawResult[] | undefined, what: string): void {
  const changes = result?.[0]?.meta.changes ?? 0;
  if (changes === 1) return;
  if (changes === 0) throw new Error(`No row was ${what}: the row is no longer there as shown (changed or deleted since). Reload the rows and try again.`);
  throw new Error(`${changes} rows were ${what}, not one.`);
}

function TableView({ database, entry, onChanged }: { database: string; entry: TableEntry; onChanged: () => void }) {
  const { api, who } = useSession();
  const name = quoteIdentifier(entry.name);
  const [page, setPage] = useState(0);
  const [sort, setSort] = useState<{ column: string; descending: boolean } | null>(null);
  const [filter, setFilter] = useState<Filter | null>(null);
  const [editing, setEditing] = useState<{ row: unknown[] | null } | null>(null);
  const [deleting, setDeleting] = useState<unknown[] | null>(null);

  const schema = useLoad(async () => {
    const [columns, indexes, listed] = await Promise.all([
      // table_xinfo: generated columns too (hidden 2 and 3); hidden 1 is a virtual table's own.
      api.rows<ColumnInfo & { hidden: number }>(database, `PRAGMA table_xinfo(${name})`),
      api.rows<{ name: string; sql: string | null; unique: number; origin: string }>(
        database,
        `SELECT l.name, l."unique", l.origin, m.sql FROM pragma_index_list(?) AS l LEFT JOIN sqlite_master AS m ON m.type = 'index' AND m.name = l.name ORDER BY l.name`,
        [entry.name],
      ),
      api.rows<{ wr: number }>(database, "SELECT wr FROM pragma_table_list WHERE name = ? AND schema = 'main'", [entry.name]),
    ]);
    return { columns: columns.filter((c) => c.hidden !== 1), indexes, withoutRowid: listed[0]?.wr === 1 };
  }, [database, entry.name]);

  const columns = schema.value?.columns ?? [];
  const key = schema.value ? rowKeyOf(entry, columns, schema.value.withoutRowid) : undefined;
  const keyCount = key?.select.length ?? 0;
  const editable = key !== undefined && canWrite(who.scope);

  const rows = useLoad(async () => {
    if (!schema.value) return undefined;
    const where = whereClause(filter, columns);
    // The row key last in the order: pages neither repeat nor skip rows that sort alike.
    const order = [...(sort ? [`${quoteIdentifier(sort.column)} ${sort.descending ? 'DESC' : 'ASC'}`] : []), ...(key?.order ?? [])];
    const select = [...(key?.select.map((k, i) => `${k} AS __dione_key${i}`) ?? []), '*'].join(', ');
    const [[counted], page_] = await Promise.all([
      api.rows<{ n: number }>(database, `SELECT count(*) AS n FROM ${name}${where.sql}`, where.params),
      api.raw(database, `SELECT ${select} FROM ${name}${where.sql}${order.length ? ` ORDER BY ${order.join(', ')}` : ''} LIMIT ${PAGE_ROWS} OFFSET ${page * PAGE_ROWS}`, where.params),
    ]);
    return { total: counted?.n ?? 0, ...page_[0]!.results };
  }, [schema.value, page, sort?.column, sort?.descending, filter?.column, filter?.operator, filter?.value]);

  const shownColumns = rows.value ? rows.value.columns.slice(keyCount) : [];
  const shownRow = (row: unknown[]) => row.slice(keyCount);
  const keyOf = (row: unknown[]): { sql: string; params: unknown[] } => ({ sql: key!.where, params: row.slice(0, keyCount) });
  const pages = rows.value ? Math.max(1, Math.ceil(rows.value.total / PAGE_ROWS)) : 1;

  return (
    <div>
      <h2>
        {entry.type === 'view' ? 'View' : 'Table'} {entry.name}
      </h2>
      <ErrorMessage error={schema.error} />
      {schema.value && (
        <details class="schema">
          <summary>Schema: {columns.length} columns, {schema.value.indexes.length} indexes</summary>
          <DataGrid
            label="Columns"
            columns={['column', 'type', 'not null', 'default', 'primary key']}
            rows={columns.map((c) => [c.name, c.type, c.notnull ? 'yes' : '', c.dflt_value ?? '', c.pk ? `#${c.pk}` : ''])}
          />
          {schema.value.indexes.length > 0 && (
            <DataGrid
              label="Indexes"
              columns={['index', 'unique', 'origin', 'definition']}
              rows={schema.value.indexes.map((i) => [i.name, i.unique ? 'yes' : '', i.origin === 'pk' ? 'primary key' : i.origin === 'u' ? 'UNIQUE constraint' : 'CREATE INDEX', i.sql ?? ''])}
            />
          )}
          {entry.sql && <pre class="code">{entry.sql}</pre>}
        </details>
      )}
      {schema.value && (
        <FilterForm
          columns={columns.map((c) => c.name)}
          filter={filter}
          onFilter={(f) => {
            setPage(0);
            setFilter(f);
          }}
        />
      )}
      <ErrorMessage error={rows.error} />
      {rows.value && (
        <>
          <p class="meta" aria-live="polite">
            {rows.value.total} row{rows.value.total === 1 ? '' : 's'}
            {filter ? ' match' : ''}
            {rows.value.total > 0 && ` · showing ${page * PAGE_ROWS + 1}–${Math.min(rows.value.total, (page + 1) * PAGE_ROWS)}`}
            {editable && (
              <button type="button" class="add-row" onClick={() => setEditing({ row: null })}>
                Add row
              </button>
            )}
          </p>
          <DataGrid
            label={`Rows of ${entry.name}`}
            columns={shownColumns}
            rows={rows.value.rows.map(shownRow)}
            columnHeader={(column) => {
              const sorted = sort?.column === column;
              return (
                <button
                  type="button"
                  class="sort"
                  aria-label={`Sort by ${column}${sorted ? (sort.descending ? ', now descending' : ', now ascending') : ''}`}
                  onClick={() => setSort(sorted ? (sort.descending ? null : { column, descending: true }) : { column, descending: false })}
                >
                  {column}
                  <span aria-hidden="true">{sorted ? (sort.descending ? ' ▼' : ' ▲') : ''}</span>
                </button>
              );
            }}
            rowActions={
              editable
                ? (_row, r) => {
                    const full = rows.value!.rows[r]!;
                    return (
                      <>
                        <button type="button" onClick={() => setEditing({ row: full })} aria-label={`Edit row ${page * PAGE_ROWS + r + 1}`}>
                          Edit
                        </button>
                        <button type="button" class="danger" onClick={() => setDeleting(full)} aria-label={`Delete row ${page * PAGE_ROWS + r + 1}`}>
                          Delete
                        </button>
                      </>
                    );
                  }
                : undefined
            }
          />
          {pages > 1 && (
            <nav class="pager" aria-label="Pages of rows">
              <button type="button" disabled={page === 0} onClick={() => setPage(page - 1)}>
                Previous
              </button>
              <span>
                Page {page + 1} of {pages}
              </span>
              <button type="button" disabled={page + 1 >= pages} onClick={() => setPage(page + 1)}>
                Next
              </button>
            </nav>
          )}
        </>
      )}
      {editing && rows.value && (
        <RowEditor
          title={editing.row ? `Edit row of ${entry.name}` : `Add a row to ${entry.name}`}
          columns={columns}
          values={editing.row ? Object.fromEntries(rows.value.columns.map((c, i) => [c, editing.row![i]])) : null}
          onSave={async (changed) => {
            const names = Object.keys(changed);
            if (editing.row) {
              if (names.length === 0) return;
              const key = keyOf(editing.row);
              const updated = await api.raw(database, `UPDATE ${name} SET ${names.map((n) => `${quoteIdentifier(n)} = ?`).join(', ')} WHERE ${key.sql}`, [...Object.values(changed), ...key.params]);
              expectOneChange(updated, 'changed');
            } else {
              await api.raw(
                database,
                names.length ? `INSERT INTO ${name} (${names.map(quoteIdentifier).join(', ')}) VALUES (${names.map(() => '?').join(', ')})` : `INSERT INTO ${name} DEFAULT VALUES`,
                Object.values(changed),
              );
            }
            rows.reload();
            onChanged();
          }}
          onClose={() => setEditing(null)}
        />
      )}
      {deleting && (
        <ConfirmDialog
          title="Delete this row?"
          action="Delete row"
          danger
          onConfirm={async () => {
            const key = keyOf(deleting);
            expectOneChange(await api.raw(database, `DELETE FROM ${name} WHERE ${key.sql}`, key.params), 'deleted');
            rows.reload();
          }}
          onClose={() => setDeleting(null)}
        >
          <p class="code">{shownRow(deleting).map(cellText).join(' · ')}</p>
        </ConfirmDialog>
      )}
    </div>
  );
}

function FilterForm({ columns, filter, onFilter }: { columns: string[]; filter: Filter | null; onFilter: (f: Filter | null) => void }) {
  const [column, setColumn] = useState(filter?.column ?? columns[0] ?? '');
  const [operator, setOperator] = useState<Operator>(filter?.operator ?? '=');
  const [value, setValue] = useState(filter?.value ?? '');
  const needsValue = operator !== 'is null' && operator !== 'is not null';
  return (
    <form
      class="inline-form filter"
      aria-label="Filter rows"
      onSubmit={(e) => {
        e.preventDefault();
        onFilter({ column, operator, value });
      }}
    >
      <label>
        Filter column
        <select value={column} onChange={(e) => setColumn(e.currentTarget.value)}>
          {columns.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
      </label>
      <label>
        Operator
        <select value={operator} onChange={(e) => setOperator(e.currentTarget.value as Operator)}>
          {OPERATORS.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      </label>
      {needsValue && (
        <label>
          Value
          <input value={value} onInput={(e) => setValue(e.currentTarget.value)} />
        </label>
      )}
      <button type="submit">Apply filter</button>
      {filter && (
        <button
          type="button"
          onClick={() => {
            setValue('');
            onFilter(null);
          }}
        >
          Clear filter
        </button>
      )}
    </form>
  );
}

/** A value typed into a cell: a number when the column's affinity is numeric and the text is one. */
function typedValue(text: string, column: ColumnInfo): unknown {
  const type = column.type.toUpperCase();
  const numeric = /INT|REAL|FLOA|DOUB|NUM|DEC|BOOL/.test(type);
  if (!numeric || !DECIMAL.test(text.trim())) return text;
  // An integer past 2^53 goes as text: the column's affinity makes it an exact integer in SQLite.
  if (/^[-+]?\d+$/.test(text.trim()) && !Number.isSafeInteger(Number(text))) return text;
  return Number(text);
}

function RowEditor(props: {
  title: string;
  columns: ColumnInfo[];
  values: Record<string, unknown> | null;
  onSave: (changed: Record<string, unknown>) => Promise<void>;
  onClose: () => void;
}) {
  const initial = (c: ColumnInfo) => {
    const v = props.values?.[c.name];
    return { text: v === null || v === undefined ? '' : Array.isArray(v) ? '' : String(v), isNull: props.values ? v === null : false, locked: c.hidden === 2 || c.hidden === 3 ? 'generated column' : Array.isArray(v) ? 'blob: not editable here' : undefined };
  };
  const [fields, setFields] = useState(() => Object.fromEntries(props.columns.map((c) => [c.name, { ...initial(c), touched: false }])));
  const set = (name: string, change: Partial<{ text: string; isNull: boolean }>) => setFields((f) => ({ ...f, [name]: { ...f[name]!, ...change, touched: true } }));
  return (
    <ConfirmDialog
      title={props.title}
      action="Save row"
      onConfirm={() => {
        const changed: Record<string, unknown> = {};
        for (const c of props.columns) {
          const f = fields[c.name]!;
          if (!f.touched || f.locked) continue;
          changed[c.name] = f.isNull ? null : typedValue(f.text, c);
        }
        return props.onSave(changed);
      }}
      onClose={props.onClose}
    >
      <div class="row-fields">
        {props.columns.map((c) => {
          const f = fields[c.name]!;
          return (
            <div class="row-field" key={c.name}>
              <label>
                {c.name} <span class="sub">{c.type || 'any'}{c.pk ? ', primary key' : ''}</span>
                <input value={f.locked ? `[${f.locked}]` : f.text} disabled={f.isNull || f.locked !== undefined} onInput={(e) => set(c.name, { text: e.currentTarget.value })} />
              </label>
              <label class="null-toggle">
                <input type="checkbox" checked={f.isNull} disabled={f.locked !== undefined} onChange={(e) => set(c.name, { isNull: e.currentTarget.checked })} /> NULL
              </label>
            </div>
          );
        })}
      </div>
      {!props.values && <p class="hint">Columns left untouched take their default.</p>}
    </ConfirmDialog>
  );
}
