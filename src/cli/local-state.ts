// Where `wrangler d1 … --local` (miniflare) keeps a database: <persist root>/v3/d1/
// miniflare-D1DatabaseObject/<id>.sqlite, where <id> is the Durable Object id workerd derives with
// idFromName(preview_database_id ?? database_id ?? binding).
import { createHash, createHmac } from 'node:crypto';
import path from 'node:path';
import type { D1DatabaseConfig, WranglerConfig } from './wrangler-config.ts';

export const D1_UNIQUE_KEY = 'miniflare-D1DatabaseObject';

/** workerd's ActorIdFactoryImpl::idFromName, as 64 hex digits. */
export function durableObjectIdFromName(uniqueKey: string, name: string): string {
  const key = createHash('sha256').update(uniqueKey).digest();
  const a = createHmac('sha256', key).update(name).digest().subarray(0, 16);
  const b = createHmac('sha256', key).update(a).digest().subarray(0, 16);
  return Buffer.concat([a, b]).toString('hex');
}

/** The name wrangler derives the local file from. */
export function localDatabaseKey(db: D1DatabaseConfig): string {
  return db.preview_database_id ?? db.database_id ?? db.binding;
}

/** <persist-to (from cwd)> or <config dir>/.wrangler/state, then v3/d1. */
export function localD1Root(config: WranglerConfig, persistTo?: string, cwd = process.cwd()): string {
  const state = persistTo ? path.resolve(cwd, persistTo) : path.join(config.dir, '.wrangler', 'state');
  return path.join(state, 'v3', 'd1');
}

export function localDatabaseFile(config: WranglerConfig, db: D1DatabaseConfig, persistTo?: string, cwd = process.cwd()): string {
  return path.join(localD1Root(config, persistTo, cwd), D1_UNIQUE_KEY, `${durableObjectIdFromName(D1_UNIQUE_KEY, localDatabaseKey(db))}.sqlite`);
}
