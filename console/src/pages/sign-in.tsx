import { useState } from 'preact/hooks';
import { ErrorMessage, useSubmit } from '../components.tsx';

export function SignIn({ onSignIn }: { onSignIn: (token: string) => Promise<void> }) {
  const [token, setToken] = useState('');
  const { submit, busy, error } = useSubmit(() => onSignIn(token.trim()));
  return (
    <main class="sign-in" id="main">
      <h1>Dione</h1>
      <form onSubmit={submit} aria-labelledby="sign-in-title">
        <h2 id="sign-in-title">Sign in</h2>
        <label>
          API token
          <input type="password" name="token" value={token} onInput={(e) => setToken(e.currentTarget.value)} autoComplete="off" required placeholder="dione_…" />
        </label>
        <p class="hint">
          Create one with <code>npx dione token create --scope admin</code>. The console can do what the token's scope allows, and
          keeps it only in this tab.
        </p>
        <ErrorMessage error={error} />
        <button type="submit" class="primary" disabled={busy || !token.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
