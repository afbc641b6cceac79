// Who is signed in, and the API client with their token: given to every page.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api, Whoami } from './api.ts';

export interface SessionValue {
  api: Api;
  who: Whoami;
  signOut(): void;
}

export const Session = createContext<SessionValue | null>(null);

export function useSession(): SessionValue {
  const session = useContext(Session);
  if (!session) throw new Error('useSession outside a signed-in page');
  return session;
}
