// kysely 0.28 with kysely-d1's D1Dialect, unmodified, over a Dione D1Database: the schema builder,
// introspection (as far as D1 allows it), inserts (insertId / numInsertedOrUpdatedRows), joins, updates and deletes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ColumnType, type Generated, Kysely, sql } from 'kysely';
import { D1Dialect } from 'kysely-d1';
import type { D1Database } from '../../src/index.ts';
import { type DatabaseFactory, errorText, rejection, withDatabase } from './common.ts';

interface UserTable {
  id: Generated<number>;
  name: string;
  email: string;
  age: number | null;
  score: number;
  /** 0/1; booleans are bound as 1/0 by the binding. */
  active: ColumnType<number, number | boolean | undefined, number | boolean>;
  /** D1 returns BLOBs as arrays of bytes and takes typed arrays. */
  avatar: ColumnType<number[] | null, Uint8Array | null | undefined, Uint8Array | null>;
}

interface PostTable {
  id: Generated<number>;
  author_id: number;
  title: string;
  views: ColumnType<number, number | undefined, number>;
}

interface Database {
  users: UserTable;
  posts: PostTable;
}

function kysely(db: D1Database): Kysely<Database> {
  return new Kysely<Database>({ dialect: new D1Dialect({ database: db }) });
}

async function createSchema(k: Kysely<Database>): Promise<void> {
  await k.schema
    .createTable('users')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull().unique())
    .addColumn('age', 'integer')
    .addColumn('score', 'real', (c) => c.notNull())
    .addColumn('active', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('avatar', 'blob')
    .execute();
  await k.schema
    .createTable('posts')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('author_id', 'integer', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('title', 'text', (c) => c.notNull())
    .execute();
  await k.schema
    .alterTable('posts')
    .addColumn('views', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await k.schema.createIndex('posts_author_idx').on('posts').column('author_id').execute();
}

/** A fresh database with the schema made by kysely's schema builder. */
async function withSchema<T>(factory: DatabaseFactory, fn: (k: Kysely<Database>, db: D1Database) => Promise<T>): Promise<T> {
  return withDatabase(factory, async (db) => {
    const k = kysely(db);
    try {
      await createSchema(k);
      return await fn(k, db);
    } finally {
      await k.destroy();
    }
  });
}

const ada = { name: 'Ada', email: 'ada@example.com', age: 36, score: 97.5, active: 1 };
const bob = { name: 'Bob', email: 'bob@example.com', age: null, score: -0.25, active: 0 };
const cy = { name: 'Cy', email: 'cy@example.com', age: 51, score: 60, active: 1 };

async function seed(k: Kysely<Database>): Promise<void> {
  await k.insertInto('users').values([ada, bob, cy]).execute();
  await k
    .insertInto('posts')
    .values([
      { author_id: 1, title: 'First', views: 10 },
      // A multi-row VALUES has no DEFAULT keyword in SQLite, so every row names every column.
      { author_id: 3, title: 'Second', views: 0 },
      { author_id: 1, title: 'Third', views: 5 },
    ])
    .execute();
}

export function kyselySuite(label: string, factory: DatabaseFactory): void {
  describe(`kysely + kysely-d1 (${label})`, () => {
    test('the schema builder creates tables, a column and an index that introspection sees', async () => {
      await withSchema(factory, async (k, db) => {
        // kysely's introspection reads pragma_table_info of every table in sqlite_master, and every
        // D1 database holds a reserved _cf_ table whose columns D1 does not show: it fails on D1 as
        // here. The same pragma, asked of the user's tables, sees what the schema builder made.
        assert.match(errorText(await rejection(k.introspection.getTables())), /not authorized/);
        const columnsOf = async (table: string) =>
          (await sql<{ name: string; type: string; notnull: number; dflt_value: unknown }>`SELECT name, type, "notnull", dflt_value FROM pragma_table_info(${table})`.execute(k)).rows;
        const tables = [];
        for (const name of ['posts', 'users']) tables.push({ name, isView: false, columns: await columnsOf(name) });
        assert.deepEqual(
          tables.map((t) => ({ name: t.name, isView: t.isView, columns: t.columns.map((c) => [c.name, c.type, c.notnull === 0, c.dflt_value !== null]) })),
          [
            {
              name: 'posts',
              isView: false,
              columns: [
                ['id', 'INTEGER', true, false],
                ['author_id', 'INTEGER', false, false],
                ['title', 'TEXT', false, false],
                ['views', 'INTEGER', false, true],
              ],
            },
            {
              name: 'users',
              isView: false,
              columns: [
                ['id', 'INTEGER', true, false],
                ['name', 'TEXT', false, false],
                ['email', 'TEXT', false, false],
                ['age', 'INTEGER', true, false],
                ['score', 'REAL', false, false],
                ['active', 'INTEGER', false, true],
                ['avatar', 'BLOB', true, false],
              ],
            },
          ],
        );
        const { results } = await db.prepare("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").all();
        assert.deepEqual(results, [{ name: 'posts_author_idx', tbl_name: 'posts' }]);

        // IF NOT EXISTS over an existing table is a no-op; without it, SQLite's error comes back.
        await k.schema.createTable('users').ifNotExists().addColumn('x', 'integer').execute();
        assert.match(errorText(await rejection(k.schema.createTable('users').addColumn('x', 'integer').execute())), /table "users" already exists/);
      });
    });

    test('insert reports insertId and numInsertedOrUpdatedRows; returning gives exact values', async () => {
      await withSchema(factory, async (k) => {
        const one = await k.insertInto('users').values(ada).executeTakeFirstOrThrow();
        assert.deepEqual({ ...one }, { insertId: 1n, numInsertedOrUpdatedRows: 1n });

        const two = await k.insertInto('users').values([bob, cy]).executeTakeFirstOrThrow();
        assert.deepEqual({ ...two }, { insertId: 3n, numInsertedOrUpdatedRows: 2n });

        const skipped = await k
          .insertInto('users')
          .values({ ...bob, name: 'Bob again' })
          .onConflict((oc) => oc.column('email').doNothing())
          .executeTakeFirstOrThrow();
        assert.equal(skipped.numInsertedOrUpdatedRows, 0n);

        const upserted = await k
          .insertInto('users')
          .values({ ...bob, score: 2.5 })
          .onConflict((oc) => oc.column('email').doUpdateSet({ score: (eb) => eb.ref('excluded.score') }))
          .returning(['id', 'score'])
          .executeTakeFirstOrThrow();
        assert.deepEqual(upserted, { id: 2, score: 2.5 });

        // SQLite's AUTOINCREMENT spends an id on each upsert above, so the next row gets 6, not 4.
        const row = await k
          .insertInto('users')
          .values({ name: 'Dee', email: 'dee@example.com', age: 0, score: 1e-7, avatar: new Uint8Array([0, 1, 255]) })
          .returningAll()
          .executeTakeFirstOrThrow();
        assert.deepEqual(row, { id: 6, name: 'Dee', email: 'dee@example.com', age: 0, score: 1e-7, active: 1, avatar: [0, 1, 255] });

        const duplicate = await rejection(k.insertInto('users').values(ada).execute());
        assert.match(errorText(duplicate), /UNIQUE constraint failed: users\.email/);

        assert.deepEqual(await k.selectFrom('users').selectAll().orderBy('id').execute(), [
          { id: 1, ...ada, avatar: null },
          { id: 2, ...bob, score: 2.5, avatar: null },
          { id: 3, ...cy, avatar: null },
          { id: 6, name: 'Dee', email: 'dee@example.com', age: 0, score: 1e-7, active: 1, avatar: [0, 1, 255] },
        ]);
      });
    });

    test('select with joins, where, group by and order by', async () => {
      await withSchema(factory, async (k) => {
        await seed(k);

        const inner = await k
          .selectFrom('posts')
          .innerJoin('users', 'users.id', 'posts.author_id')
          .select(['posts.title', 'users.name as author', 'posts.views'])
          .where('users.active', '=', 1)
          .where('posts.views', '<', 10)
          .orderBy('posts.id', 'desc')
          .execute();
        assert.deepEqual(inner, [
          { title: 'Third', author: 'Ada', views: 5 },
          { title: 'Second', author: 'Cy', views: 0 },
        ]);

        const left = await k
          .selectFrom('users')
          .leftJoin('posts', 'posts.author_id', 'users.id')
          .select(['users.name', (eb) => eb.fn.count<number>('posts.id').as('posts'), (eb) => eb.fn.sum<number | null>('posts.views').as('views')])
          .groupBy('users.id')
          .orderBy('users.id')
          .execute();
        assert.deepEqual(left, [
          { name: 'Ada', posts: 2, views: 15 },
          { name: 'Bob', posts: 0, views: null },
          { name: 'Cy', posts: 1, views: 0 },
        ]);

        const filtered = await k
          .selectFrom('users')
          .select(['id', 'age', 'score'])
          .where((eb) => eb.or([eb('age', 'is', null), eb('score', '>', 90)]))
          .where('email', 'like', '%@example.com')
          .orderBy('score')
          .execute();
        assert.deepEqual(filtered, [
          { id: 2, age: null, score: -0.25 },
          { id: 1, age: 36, score: 97.5 },
        ]);

        const inSubquery = await k
          .selectFrom('users')
          .select('name')
          .where('id', 'in', k.selectFrom('posts').select('author_id').where('title', '=', 'Second'))
          .executeTakeFirst();
        assert.deepEqual(inSubquery, { name: 'Cy' });
        assert.equal(await k.selectFrom('users').select('name').where('id', '=', 99).executeTakeFirst(), undefined);

        const raw = await sql<{ n: number; avg: number }>`SELECT count(*) AS n, avg(score) AS avg FROM users WHERE active = ${1}`.execute(k);
        assert.deepEqual(raw.rows, [{ n: 2, avg: 78.75 }]);
      });
    });

    test('update and delete report affected rows; cascades follow the foreign key', async () => {
      await withSchema(factory, async (k) => {
        await seed(k);

        const updated = await k.updateTable('users').set({ score: 50.5, active: true }).where('active', '=', 1).executeTakeFirstOrThrow();
        assert.equal(updated.numUpdatedRows, 2n);
        const none = await k.updateTable('users').set({ age: 1 }).where('id', '=', 99).executeTakeFirstOrThrow();
        assert.equal(none.numUpdatedRows, 0n);
        const returned = await k
          .updateTable('posts')
          .set((eb) => ({ views: eb('views', '+', 1) }))
          .where('author_id', '=', 1)
          .returning(['id', 'views'])
          .execute();
        assert.deepEqual(returned, [
          { id: 1, views: 11 },
          { id: 3, views: 6 },
        ]);

        const deleted = await k.deleteFrom('posts').where('title', '=', 'Second').executeTakeFirstOrThrow();
        assert.equal(deleted.numDeletedRows, 1n);
        // Deleting Ada cascades to her two posts; D1 counts those changes too.
        const cascaded = await k.deleteFrom('users').where('id', '=', 1).executeTakeFirstOrThrow();
        assert.equal(cascaded.numDeletedRows, 3n);

        assert.deepEqual(await k.selectFrom('users').select(['id', 'score', 'active']).orderBy('id').execute(), [
          { id: 2, score: -0.25, active: 0 },
          { id: 3, score: 50.5, active: 1 },
        ]);
        assert.deepEqual(await k.selectFrom('posts').selectAll().execute(), []);

        const orphan = await rejection(k.insertInto('posts').values({ author_id: 1, title: 'orphan' }).execute());
        assert.match(errorText(orphan), /FOREIGN KEY constraint failed/);
      });
    });
  });
}
