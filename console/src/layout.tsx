// The frame of every signed-in page: the header with who is signed in, the main navigation.
import type { ComponentChildren } from 'preact';
import { isAdmin } from './api.ts';
import { href } from './route.ts';
import { useSession } from './session.ts';

export function Layout({ route, children }: { route: string[]; children: ComponentChildren }) {
  const { who, signOut } = useSession();
  const current = (name: string) => (route[0] ?? '') === name || (name === '' && route[0] === 'db');
  return (
    <>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <a class="brand" href={href()}>Dione</a>
        <nav aria-label="Main">
          <a href={href()} aria-current={current('') ? 'page' : undefined}>Databases</a>
          {isAdmin(who) && <a href={href('tokens')} aria-current={current('tokens') ? 'page' : undefined}>Tokens</a>}
        </nav>
        <div class="who">
          <span class={`badge scope-${who.scope}`} title="This token's scope">{who.dev ? 'dev mode' : `${who.scope} token`}</span>
          {who.database && <span class="badge">only {who.database.name}</span>}
          {who.node && <span class="badge" title="The node serving this console">node {who.node}</span>}
          {!who.dev && (
            <button type="button" class="link" onClick={signOut}>
              Sign out
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </>
  );
}
