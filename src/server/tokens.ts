// API tokens: `dione_<id>_<secret>`. The catalogue keeps the id and a SHA-256 of the secret; a
// presented token is found by id and its secret compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Catalog, TokenRecord, TokenScope } from './catalog.ts';

export interface Grant {
  tokenId: string;
  scope: TokenScope;
  /** The one database the token is for, or null for all. */
  databaseUuid: string | null;
}

const TOKEN_PATTERN = /^dione_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

const hash = (secret: string) => createHash('sha256').update(secret).digest('hex');

/** A new token; `name` is a label for people (what it is for), never used to check it. */
export function createToken(catalog: Catalog, scope: TokenScope, databaseUuid: string | null, name: string | null = null): { token: string; record: TokenRecord } {
  const id = randomBytes(9).toString('base64url').replace(/[-_]/g, 'x').slice(0, 12);
  const secret = randomBytes(32).toString('base64url');
  const record: TokenRecord = { id, name, secret_hash: hash(secret), scope, database_uuid: databaseUuid, created_at: new Date().toISOString(), revoked_at: null };
  catalog.addToken(record);
  return { token: `dione_${id}_${secret}`, record };
}

/** The grant of a presented token, or undefined when it is malformed, unknown or revoked. */
export function verifyToken(catalog: Catalog, token: string): Grant | undefined {
  const match = TOKEN_PATTERN.exec(token);
  // Hash even when the format is wrong, so timing says nothing about which check failed.
  const presented = Buffer.from(hash(match?.[2] ?? token), 'hex');
  const record = match ? catalog.token(match[1]!) : undefined;
  const stored = Buffer.from(record?.secret_hash ?? '0'.repeat(64), 'hex');
  const equal = timingSafeEqual(presented, stored);
  if (!record || !equal || record.revoked_at !== null) return undefined;
  return { tokenId: record.id, scope: record.scope, databaseUuid: record.database_uuid };
}

/** A scope allows an action: read ⊂ write ⊂ admin. */
export function allows(scope: TokenScope, needed: TokenScope): boolean {
  const rank = { read: 0, write: 1, admin: 2 } as const;
  return rank[scope] >= rank[needed];
}
