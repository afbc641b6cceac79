// Hash routes (#/db/<name>/sql): the server serves one page, and a link can be bookmarked.
import { useEffect, useState } from 'preact/hooks';

/** A hash's parts, decoded; a part that does not decode is kept as written (a hand-typed `%E0`). */
export const parseRoute = (hash: string) =>
  hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter(Boolean)
    .map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part;
      }
    });

export const href = (...parts: string[]) => `#/${parts.map(encodeURIComponent).join('/')}`;

export function useRoute(): string[] {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', changed);
    return () => removeEventListener('hashchange', changed);
  }, []);
  return route;
}
