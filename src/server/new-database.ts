// What a new database must be, for every way one is made: the REST API's create and fork, and
// `dione d1 create --data` (which writes a server's catalogue directly). A name as D1 allows it and
// not yet used; an id, when the caller chooses one (to match a wrangler config's database_id),
// written as Cloudflare writes database ids and not yet used either.
import { existsSync } from 'node:fs';
import type { Catalog } from './catalog.ts';

export const NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$/;

/** A UUID in lowercase hex, 8-4-4-4-12, as Cloudflare gives database ids (the version digit is not checked). */
export const DATABASE_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type RefusalReason = 'invalid-name' | 'invalid-id' | 'name-taken' | 'id-taken';

export class NewDatabaseRefused extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
  ) {
    super(message);
  }
}

export function invalidIdMessage(id: string): string {
  const hint = DATABASE_ID_PATTERN.test(id.toLowerCase()) ? ' (write it in lowercase)' : '';
  return `Invalid database id "${id}": a database id is a UUID in lowercase hex digits, 8-4-4-4-12, e.g. "6d1b2c3e-0f4a-4b5c-8d9e-0a1b2c3d4e5f"${hint}`;
}

/** Throws NewDatabaseRefused unless a database `name` (with id `uuid`, when chosen) can be created in `catalog`. */
export function checkNewDatabase(catalog: Catalog, name: string, uuid?: string): void {
  if (!NAME_PATTERN.test(name)) throw new NewDatabaseRefused('invalid-name', `Invalid database name "${name}": use 1-64 letters, digits, "_" and "-"`);
  if (uuid !== undefined && !DATABASE_ID_PATTERN.test(uuid)) throw new NewDatabaseRefused('invalid-id', invalidIdMessage(uuid));
  // find() matches ids and names alike, so a name that is another database's id is taken too:
  // either would make lookups ambiguous.
  if (catalog.find(name)) throw new NewDatabaseRefused('name-taken', 'A database with that name already exists');
  if (uuid === undefined) return;
  const holder = catalog.find(uuid);
  if (holder) {
    throw new NewDatabaseRefused(
      'id-taken',
      holder.uuid === uuid ? `A database with the id ${uuid} already exists: '${holder.name}'` : `The id ${uuid} is the name of another database`,
    );
  }
  // A file the catalogue does not list (kept when a damaged catalogue was moved away) would
  // become the new database's content: a new database starts empty.
  const file = catalog.file(uuid);
  if (existsSync(file)) {
    throw new NewDatabaseRefused('id-taken', `A database file for the id ${uuid} already exists (${file}) though no database in the catalogue has it: move it away to create a new, empty database with this id`);
  }
}
