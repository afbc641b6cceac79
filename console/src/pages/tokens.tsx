// API tokens (admin): who can reach which database with which scope; create (shown once) and revoke.
import { useState } from 'preact/hooks';
import { formatTime } from '../api.ts';
import { ConfirmDialog, ErrorMessage, TableHead, useLoad, useSubmit } from '../components.tsx';
import type { DatabaseSummary } from './databases.tsx';
import { useSession } from '../session.ts';

interface TokenRow {
  id: string;
  name: string | null;
  scope: 'read' | 'write' | 'admin';
  database: { uuid: string; name: string } | null;
  created_at: string;
  revoked_at: string | null;
}

export function TokensPage() {
  const { api, who } = useSession();
  const tokens = useLoad(() => api.request<{ tokens: TokenRow[] }>('GET', '/dione/v1/tokens'), []);
  const [revoking, setRevoking] = useState<TokenRow | null>(null);
  const [showRevoked, setShowRevoked] = useState(false);
  const shown = tokens.value?.tokens.filter((t) => showRevoked || t.revoked_at === null) ?? [];
  return (
    <section aria-labelledby="tokens-title">
      <h1 id="tokens-title">Tokens</h1>
      <CreateToken onCreated={tokens.reload} />
      <h2>Tokens</h2>
      <label class="check">
        <input type="checkbox" checked={showRevoked} onChange={(e) => setShowRevoked(e.currentTarget.checked)} /> Show revoked tokens
      </label>
      <ErrorMessage error={tokens.error} />
      {tokens.value && (
        <section class="grid-wrap" aria-label="Tokens">
          <table class="grid">
            <TableHead columns={['Id', 'Name', 'Scope', 'Database', 'Created']} actions />
            <tbody>
              {shown.map((t) => (
                <tr key={t.id} class={t.revoked_at ? 'revoked' : undefined}>
                  <td>
                    <code>{t.id}</code>
                  </td>
                  <td>{t.name ?? ''}</td>
                  <td>{t.scope}</td>
                  <td>{t.database?.name ?? 'every database'}</td>
                  <td>{formatTime(t.created_at)}</td>
                  <td class="row-actions">
                    {t.revoked_at ? (
                      `revoked ${formatTime(t.revoked_at)}`
                    ) : t.id === who.token_id ? (
                      <span class="sub">this session</span>
                    ) : (
                      <button type="button" class="danger" onClick={() => setRevoking(t)} aria-label={`Revoke token ${t.name ?? t.id}`}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {shown.length === 0 && <p class="empty">No tokens.</p>}
        </section>
      )}
      {revoking && (
        <ConfirmDialog
          title={`Revoke token ${revoking.name ?? revoking.id}?`}
          action="Revoke token"
          danger
          onConfirm={async () => {
            await api.request('DELETE', `/dione/v1/tokens/${encodeURIComponent(revoking.id)}`);
            tokens.reload();
          }}
          onClose={() => setRevoking(null)}
        >
          <p>Clients using it are refused from now on (within two seconds). This cannot be undone.</p>
        </ConfirmDialog>
      )}
    </section>
  );
}

function CreateToken({ onCreated }: { onCreated: () => void }) {
  const { api } = useSession();
  const databases = useLoad(() => api.request<{ databases: DatabaseSummary[] }>('GET', '/dione/v1/databases?per_page=200'), []);
  const [name, setName] = useState('');
  const [scope, setScope] = useState<'read' | 'write' | 'admin'>('read');
  const [database, setDatabase] = useState('');
  const [created, setCreated] = useState<string | null>(null);
  const { submit, busy, error } = useSubmit(async () => {
    setCreated(null);
    const answer = await api.request<{ token: string }>('POST', '/dione/v1/tokens', { scope, name: name.trim() || undefined, database: database.trim() || undefined });
    setCreated(answer.token);
    setName('');
    onCreated();
  });
  return (
    <form class="inline-form" onSubmit={submit} aria-label="Create a token">
      <label>
        Token name
        <input value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={100} placeholder="what it is for" />
      </label>
      <label>
        Scope
        <select value={scope} onChange={(e) => setScope(e.currentTarget.value as typeof scope)}>
          <option value="read">read</option>
          <option value="write">write</option>
          <option value="admin">admin</option>
        </select>
      </label>
      <label>
        Database (name or id; empty: every database)
        <input value={database} onInput={(e) => setDatabase(e.currentTarget.value)} list="token-databases" autoComplete="off" />
        <datalist id="token-databases">
          {databases.value?.databases.map((d) => (
            <option key={d.uuid} value={d.name} />
          ))}
        </datalist>
      </label>
      <button type="submit" class="primary" disabled={busy}>
        Create token
      </button>
      <ErrorMessage error={error ?? databases.error} />
      {created && (
        <div class="new-token" aria-live="polite">
          <label>
            New token (shown once: copy it now)
            <input readOnly value={created} onFocus={(e) => e.currentTarget.select()} />
          </label>
          <button type="button" onClick={() => navigator.clipboard?.writeText(created)}>
            Copy
          </button>
        </div>
      )}
    </form>
  );
}
