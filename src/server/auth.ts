// Bearer tokens on every API route. Verified grants are cached briefly, so a hot path does not
// read the catalogue on each request; a revoked token stops working within that time.
import type { MiddlewareHandler } from 'hono';
import type { Catalog, DatabaseRecord } from './catalog.ts';
import type { Env } from './context.ts';
import { type Grant, verifyToken } from './tokens.ts';

const CACHE_MS = 2000;
const MAX_CACHED = 10_000;
/** Dione's tokens are 62 characters (tokens.ts). */
const MAX_CACHED_TOKEN = 80;

export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
  ) {
    super(message);
  }
}

/** The token id of a request a server without tokens (--dev) let in. */
export const UNAUTHENTICATED = 'unauthenticated';

/** Resolves the Authorization header of a request to a grant, or throws a 401 AuthError. */
export type Authenticator = (authorization: string | undefined) => Grant;

export function authenticator(catalog: Catalog, allowUnauthenticated: boolean): Authenticator {
  const cache = new Map<string, { grant: Grant | undefined; expires: number }>();
  return (header) => {
    // An empty or blank header is no token (serve.ts's --dev checks take it so too).
    if (!header?.trim()) {
      if (!allowUnauthenticated) throw new AuthError(401, 'Authentication error: send "Authorization: Bearer <token>" (create one with `dione token create`)');
      return { tokenId: UNAUTHENTICATED, scope: 'admin', databaseUuid: null };
    }
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new AuthError(401, 'Authentication error: the Authorization header must be "Bearer <token>"');
    const token = match[1]!;
    const now = Date.now();
    let entry = cache.get(token);
    if (!entry || entry.expires < now) {
      entry = { grant: verifyToken(catalog, token), expires: now + CACHE_MS };
      // Only strings of a token's length are kept (a miss under any string would let anyone fill the
      // cache with long ones), and the oldest make room, not every token at once.
      if (token.length <= MAX_CACHED_TOKEN) {
        if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
        cache.set(token, entry);
      }
    }
    if (!entry.grant) throw new AuthError(401, 'Authentication error: unknown or revoked token');
    return entry.grant;
  };
}

export function authenticate(resolve: Authenticator): MiddlewareHandler<Env> {
  return async (c, next) => {
    c.set('grant', resolve(c.req.header('authorization')));
    return next();
  };
}

/**
 * Whether a grant may learn that a database exists: an account-wide token sees every database, a
 * database's token only its own. Another database is answered as an unknown one, so a scoped token
 * cannot tell which names or ids exist (a 403 would say that one does).
 */
export function reaches(grant: Grant, database: DatabaseRecord): boolean {
  return grant.databaseUuid === null || grant.databaseUuid === database.uuid;
}

/** Throws 403 unless the grant reaches this database with at least `scope`. */
export function authorize(grant: Grant, scope: Grant['scope'], database?: DatabaseRecord): void {
  const rank = { read: 0, write: 1, admin: 2 } as const;
  if (rank[grant.scope] < rank[scope]) throw new AuthError(403, `This token's scope (${grant.scope}) does not allow this; it needs ${scope}`);
  if (database && grant.databaseUuid !== null && grant.databaseUuid !== database.uuid) {
    throw new AuthError(403, 'This token is for another database');
  }
  if (!database && grant.databaseUuid !== null && scope === 'admin') throw new AuthError(403, 'This token is for one database only');
}
