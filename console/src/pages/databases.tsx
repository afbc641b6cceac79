// Every database the token reaches: size, tables, where it is written; create and delete (admin).
import { useState } from 'preact/hooks';
import { formatBytes, formatTime, isAdmin } from '../api.ts';
import { ConfirmDialog, ErrorMessage, TableHead, useLoad, useSubmit } from '../components.tsx';
import { href } from '../route.ts';
import { useSession } from '../session.ts';

export interface DatabaseSummary {
  uuid: string;
  name: string;
  created_at: string;
  num_tables?: number;
  file_size?: number;
  read_replication?: { mode: string };
  primary: { node: string; region?: string } | null;
  /** Followers' copies and how many commits each lacks (cluster mode). */
  replicas: { node: string; region?: string; sequence?: number; behind?: number }[];
}

interface DatabaseList {
  databases: DatabaseSummary[];
  page: number;
  per_page: number;
  total_count: number;
}

const PER_PAGE = 50;

export function DatabasesPage() {
  const { api, who } = useSession();
  const [page, setPage] = useState(1);
  const list = useLoad(() => api.request<DatabaseList>('GET', `/dione/v1/databases?page=${page}&per_page=${PER_PAGE}`), [page]);
  const [deleting, setDeleting] = useState<DatabaseSummary | null>(null);
  const admin = isAdmin(who);
  const clustered = who.node !== null;
  const pages = list.value ? Math.max(1, Math.ceil(list.value.total_count / PER_PAGE)) : 1;
  return (
    <section aria-labelledby="databases-title">
      <h1 id="databases-title">Databases</h1>
      {admin && <CreateDatabase onCreated={list.reload} />}
      <ErrorMessage error={list.error} />
      {list.value && (
        <section class="grid-wrap" aria-label="Databases">
          <table class="grid">
            <TableHead columns={['Name', 'Tables', 'Size', 'Created', ...(clustered ? ['Primary', 'Replicas (lag)'] : [])]} actions={admin} />
            <tbody>
              {list.value.databases.map((d) => (
                <tr key={d.uuid}>
                  <td>
                    <a href={href('db', d.name)}>{d.name}</a>
                    <div class="sub">{d.uuid}</div>
                  </td>
                  <td class="num">{d.num_tables ?? '–'}</td>
                  <td class="num">{formatBytes(d.file_size)}</td>
                  <td>{formatTime(d.created_at)}</td>
                  {clustered && <td>{d.primary ? `${d.primary.node}${d.primary.region ? ` (${d.primary.region})` : ''}` : 'none'}</td>}
                  {clustered && (
                    <td>
                      {d.replicas.length === 0
                        ? '–'
                        : d.replicas.map((r) => (
                            <div key={r.node}>
                              {r.node}: {r.behind === undefined ? 'lag unknown' : r.behind === 0 ? 'caught up' : `${r.behind} commit${r.behind === 1 ? '' : 's'} behind`}
                            </div>
                          ))}
                    </td>
                  )}
                  {admin && (
                    <td class="row-actions">
                      <button type="button" class="danger" onClick={() => setDeleting(d)} aria-label={`Delete ${d.name}`}>
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          {list.value.databases.length === 0 && <p class="empty">No databases yet.</p>}
        </section>
      )}
      {pages > 1 && (
        <nav class="pager" aria-label="Pages of databases">
          <button type="button" disabled={page <= 1} onClick={() => setPage(page - 1)}>
            Previous
          </button>
          <span>
            Page {page} of {pages}
          </span>
          <button type="button" disabled={page >= pages} onClick={() => setPage(page + 1)}>
            Next
          </button>
        </nav>
      )}
      {deleting && (
        <ConfirmDialog
          title={`Delete ${deleting.name}?`}
          action="Delete database"
          danger
          confirmText={deleting.name}
          onConfirm={async () => {
            await api.request('DELETE', api.databasePath(deleting.uuid));
            list.reload();
          }}
          onClose={() => setDeleting(null)}
        >
          <p>The database, its files and its Time Travel history are removed. This cannot be undone.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function CreateDatabase({ onCreated }: { onCreated: () => void }) {
  const { api } = useSession();
  const [name, setName] = useState('');
  const { submit, busy, error } = useSubmit(async () => {
    await api.request('POST', `/client/v4/accounts/${encodeURIComponent(api.accountId)}/d1/database`, { name: name.trim() });
    setName('');
    onCreated();
  });
  return (
    <form class="inline-form" onSubmit={submit} aria-label="Create a database">
      <label>
        New database name
        <input value={name} onInput={(e) => setName(e.currentTarget.value)} required autoComplete="off" />
      </label>
      <button type="submit" class="primary" disabled={busy || !name.trim()}>
        Create database
      </button>
      <ErrorMessage error={error} />
    </form>
  );
}
