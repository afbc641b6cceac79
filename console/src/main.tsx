// The Dione console: sign in with a token, then databases, tables, SQL, insights, Time Travel and
// tokens, each through the server's API with that token's scope.
import { type JSX, render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { Api, ApiFailure, type Whoami } from './api.ts';
import { Session, type SessionValue } from './session.ts';
import { Layout } from './layout.tsx';
import { useRoute } from './route.ts';
import { SignIn } from './pages/sign-in.tsx';
import { DatabasesPage } from './pages/databases.tsx';
import { DatabasePage } from './pages/database.tsx';
import { TokensPage } from './pages/tokens.tsx';
import './style.css';

const TOKEN_KEY = 'dione.token';

function App() {
  const [session, setSession] = useState<SessionValue | null>(null);
  const [checking, setChecking] = useState(true);
  const route = useRoute();

  const signIn = async (token: string | null): Promise<void> => {
    const who: Whoami = await new Api(token).whoami();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    setSession({ api: new Api(token, who.account_id), who, signOut });
  };
  const signOut = () => {
    sessionStorage.removeItem(TOKEN_KEY);
    setSession(null);
    location.hash = '#/';
  };

  // A token kept from earlier in this tab, else a server in --dev mode answers without one.
  useEffect(() => {
    signIn(sessionStorage.getItem(TOKEN_KEY))
      .catch((e) => {
        if (!(e instanceof ApiFailure) || e.status !== 401) console.warn(e);
        sessionStorage.removeItem(TOKEN_KEY);
      })
      .finally(() => setChecking(false));
  }, []);

  if (checking) return <p class="loading">Loading…</p>;
  if (!session) return <SignIn onSignIn={signIn} />;
  let page: JSX.Element;
  if (route[0] === 'db' && route[1]) page = <DatabasePage name={route[1]} tab={route[2] ?? 'tables'} rest={route.slice(3)} />;
  else if (route[0] === 'tokens') page = <TokensPage />;
  else page = <DatabasesPage />;
  return (
    <Session.Provider value={session}>
      <Layout route={route}>{page}</Layout>
    </Session.Provider>
  );
}

render(<App />, document.getElementById('app')!);
