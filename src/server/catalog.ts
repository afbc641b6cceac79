// The server's catalogue: which databases exist (name, id, creation time, settings), the account
// id, and API tokens (stored hashed). One SQLite file, <data>/catalog.sqlite, opened by the server
// and by `dione token` commands alike (WAL, so both can use it at once).
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { openSqlite } from '../engine/sqlite.ts';

export interface DatabaseRecord {
  uuid: string;
  name: string;
  created_at: string;
  read_replication: 'auto' | 'disabled';
}

export type TokenScope = 'read' | 'write' | 'admin';

export interface TokenRecord {
  id: string;
  /** A label given at creation (`dione token create --name`), or null. */
  name: string | null;
  secret_hash: string;
  scope: TokenScope;
  database_uuid: string | null;
  created_at: string;
  revoked_at: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS databases (
  uuid TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL,
  read_replication TEXT NOT NULL DEFAULT 'disabled'
);
CREATE TABLE IF NOT EXISTS tokens (
  id TEXT PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  scope TEXT NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
  database_uuid TEXT,
  created_at TEXT NOT NULL,
  revoked_at TEXT,
  name TEXT
);`;

/** Catalogues made before tokens had names. */
const TOKEN_NAMES = 'ALTER TABLE tokens ADD COLUMN name TEXT';

const TOKEN_COLUMNS = '(id, secret_hash, scope, database_uuid, created_at, revoked_at, name) VALUES (@id, @secret_hash, @scope, @database_uuid, @created_at, @revoked_at, @name)';

/**
 * The setting under which a node's catalogue records the cluster it mirrors: such a catalogue is a
 * copy of the cluster's, so a database added to it directly would never reach the other nodes.
 */
export const CLUSTER_CATALOG_SETTING = 'cluster_catalog';

/** The catalogue file is not a database, or a damaged one. The message is one line: what and what to do. */
export class CatalogDamaged extends Error {
  override name = 'CatalogDamaged';
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(
      `dione: the catalogue ${file} is damaged (${reason}); restore it from a backup, or move it away (with its -wal and -shm files) to start a new, empty catalogue: the database files under ${path.join(path.dirname(file), 'databases')} are kept but no longer listed, and every token must be made again`,
    );
  }
}

export class Catalog {
  private readonly db: Database.Database;
  readonly dataDir: string;
  private readonly databasesDir: string;
  /**
   * Databases found by id or name; every change made through this object clears it. Misses are
   * not kept: a database created meanwhile by another process (`dione d1 create --data`) is found.
   */
  private readonly found = new Map<string, DatabaseRecord>();

  constructor(dataDir: string) {
    this.dataDir = path.resolve(dataDir);
    this.databasesDir = path.join(this.dataDir, 'databases');
    mkdirSync(this.databasesDir, { recursive: true });
    const file = path.join(this.dataDir, 'catalog.sqlite');
    this.db = openSqlite(file);
    try {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('busy_timeout = 5000');
      // A damaged catalogue is never made anew in silence: its databases and tokens would vanish.
      const check = this.db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw Object.assign(new Error(String(check)), { code: 'SQLITE_CORRUPT' });
      this.db.exec(SCHEMA);
      const columns = this.db.prepare("SELECT name FROM pragma_table_info('tokens')").pluck().all();
      if (!columns.includes('name')) this.db.exec(TOKEN_NAMES);
    } catch (e) {
      this.db.close();
      const code = (e as { code?: string }).code ?? '';
      if (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT')) throw new CatalogDamaged(file, (e as Error).message);
      throw e;
    }
  }

  /** The account id: the one given, or the one stored, or a new one (32 hex, as Cloudflare's). */
  accountId(requested?: string): string {
    const stored = this.setting('account_id');
    if (requested) {
      if (stored !== requested) this.setSetting('account_id', requested);
      return requested;
    }
    if (stored) return stored;
    const id = randomUUID().replaceAll('-', '');
    this.setSetting('account_id', id);
    return id;
  }

  setting(key: string): string | undefined {
    return (this.db.prepare('SELECT value FROM settings WHERE key = ?').pluck().get(key) as string | undefined) ?? undefined;
  }

  setSetting(key: string, value: string): void {
    this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** The file holding a database. */
  file(uuid: string): string {
    // Not path.join: asked on every request, and a uuid needs no normalising.
    return `${this.databasesDir}${path.sep}${uuid}.sqlite`;
  }

  list(nameFilter?: string): DatabaseRecord[] {
    if (nameFilter) {
      return this.db.prepare("SELECT * FROM databases WHERE instr(name, ?) > 0 ORDER BY created_at, name").all(nameFilter) as DatabaseRecord[];
    }
    return this.db.prepare('SELECT * FROM databases ORDER BY created_at, name').all() as DatabaseRecord[];
  }

  /** Whether a database with this id is listed (read from the catalogue, not a cache). */
  has(uuid: string): boolean {
    return this.db.prepare('SELECT 1 FROM databases WHERE uuid = ?').get(uuid) !== undefined;
  }

  /** By id, or else by name (wrangler looks databases up by name too). */
  find(idOrName: string): DatabaseRecord | undefined {
    const known = this.found.get(idOrName);
    if (known) return known;
    if (this.found.size > 10_000) this.found.clear();
    const record = this.lookup(idOrName);
    if (record) this.found.set(idOrName, record);
    return record;
  }

  private lookup(idOrName: string): DatabaseRecord | undefined {
    return (this.db.prepare('SELECT * FROM databases WHERE uuid = @id OR name = @id ORDER BY uuid = @id DESC LIMIT 1').get({ id: idOrName }) as DatabaseRecord | undefined) ?? undefined;
  }

  /** Registers a database; `uuid` when its file was written first (a fork). */
  create(name: string, uuid: string = randomUUID()): DatabaseRecord {
    const record: DatabaseRecord = { uuid, name, created_at: new Date().toISOString(), read_replication: 'disabled' };
    this.db.prepare('INSERT INTO databases (uuid, name, created_at, read_replication) VALUES (@uuid, @name, @created_at, @read_replication)').run(record);
    this.found.clear();
    return record;
  }

  setReadReplication(uuid: string, mode: 'auto' | 'disabled'): void {
    this.db.prepare('UPDATE databases SET read_replication = ? WHERE uuid = ?').run(mode, uuid);
    this.found.clear();
  }

  remove(uuid: string): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM databases WHERE uuid = ?').run(uuid);
      this.db.prepare("UPDATE tokens SET revoked_at = ? WHERE database_uuid = ? AND revoked_at IS NULL").run(new Date().toISOString(), uuid);
    })();
    this.found.clear();
  }

  /**
   * A database as the cluster's catalogue has it (cluster mode): inserted, or its settings updated.
   * When another database holds the name here, nothing changes and that one is returned.
   */
  upsertDatabase(record: DatabaseRecord): DatabaseRecord | undefined {
    const holder = this.db.transaction(() => {
      const other = this.db.prepare('SELECT * FROM databases WHERE name = ? AND uuid <> ?').get(record.name, record.uuid) as DatabaseRecord | undefined;
      if (other) return other;
      this.db
        .prepare(
          `INSERT INTO databases (uuid, name, created_at, read_replication) VALUES (@uuid, @name, @created_at, @read_replication)
           ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, created_at = excluded.created_at, read_replication = excluded.read_replication`,
        )
        .run(record);
      return undefined;
    })();
    this.found.clear();
    return holder;
  }

  addToken(record: TokenRecord): void {
    this.db.prepare(`INSERT INTO tokens ${TOKEN_COLUMNS}`).run(record);
  }

  token(id: string): TokenRecord | undefined {
    return (this.db.prepare('SELECT * FROM tokens WHERE id = ?').get(id) as TokenRecord | undefined) ?? undefined;
  }

  tokens(): TokenRecord[] {
    return this.db.prepare('SELECT * FROM tokens ORDER BY created_at').all() as TokenRecord[];
  }

  revokeToken(id: string): boolean {
    return this.db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(new Date().toISOString(), id).changes > 0;
  }

  /** A token as the cluster's catalogue has it (cluster mode). A revocation, here or there, stays. */
  upsertToken(record: TokenRecord): void {
    this.db
      .prepare(`INSERT INTO tokens ${TOKEN_COLUMNS} ON CONFLICT (id) DO UPDATE SET revoked_at = coalesce(tokens.revoked_at, excluded.revoked_at)`)
      // Records shared by nodes from before tokens had names have none.
      .run({ ...record, name: record.name ?? null });
  }

  /** Differs whenever the file changed since, through this object or another (a `dione token` command). */
  changeMark(): string {
    const others = this.db.pragma('data_version', { simple: true }) as number;
    const own = this.db.prepare('SELECT total_changes()').pluck().get() as number;
    return `${others}/${own}`;
  }

  close(): void {
    this.db.close();
  }
}
