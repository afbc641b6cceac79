// drizzle-orm/d1, unmodified, over a Dione D1Database: drizzle's migrator, CRUD, relational queries,
// db.batch (atomic), raw sql, foreign keys. Every check compares exact values.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { and, asc, desc, eq, gt, inArray, isNull, like, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/d1';
import { migrate } from 'drizzle-orm/d1/migrator';
import type { D1Database } from '../../src/index.ts';
import { type DatabaseFactory, errorText, rejection, userTables, withDatabase } from './common.ts';
import { posts, schema, users } from './drizzle-schema.ts';

const migrationsFolder = fileURLToPath(new URL('../fixtures/orm/drizzle', import.meta.url));

function orm(db: D1Database) {
  return drizzle(db, { schema });
}

type Orm = ReturnType<typeof orm>;

/** A fresh database with the schema applied by drizzle's own migrator. */
async function migrated<T>(factory: DatabaseFactory, fn: (d: Orm, db: D1Database) => Promise<T>): Promise<T> {
  return withDatabase(factory, async (db) => {
    const d = orm(db);
    await migrate(d, { migrationsFolder });
    return fn(d, db);
  });
}

const ada = { name: 'Ada', email: 'ada@example.com', age: 36, score: 97.5, active: true };
const bob = { name: 'Bob', email: 'bob@example.com', age: null, score: -0.25, active: false };
const cy = { name: 'Cy', email: 'cy@example.com', age: 51, score: 60, active: true };

export function drizzleSuite(label: string, factory: DatabaseFactory): void {
  describe(`drizzle-orm/d1 (${label})`, () => {
    test('migrate() applies the drizzle-kit migration once and records it', async () => {
      await migrated(factory, async (d, db) => {
        await migrate(d, { migrationsFolder }); // already applied: must be a no-op
        assert.deepEqual(await userTables(db), ['__drizzle_migrations', 'posts', 'users']);

        const migration = readFileSync(`${migrationsFolder}/0000_init.sql`, 'utf8');
        const { results: journal } = await db.prepare('SELECT hash, created_at FROM __drizzle_migrations').all();
        assert.deepEqual(journal, [{ hash: createHash('sha256').update(migration).digest('hex'), created_at: 1763900000000 }]);

        const { results: columns } = await db
          .prepare('SELECT name, type, "notnull" AS nn, dflt_value AS dflt, pk FROM pragma_table_info(?) ORDER BY cid')
          .bind('users')
          .all();
        assert.deepEqual(columns, [
          { name: 'id', type: 'INTEGER', nn: 1, dflt: null, pk: 1 },
          { name: 'name', type: 'TEXT', nn: 1, dflt: null, pk: 0 },
          { name: 'email', type: 'TEXT', nn: 1, dflt: null, pk: 0 },
          { name: 'age', type: 'INTEGER', nn: 0, dflt: null, pk: 0 },
          { name: 'score', type: 'REAL', nn: 1, dflt: null, pk: 0 },
          { name: 'active', type: 'INTEGER', nn: 1, dflt: 'true', pk: 0 },
          { name: 'avatar', type: 'BLOB', nn: 0, dflt: null, pk: 0 },
          { name: 'joined_at', type: 'INTEGER', nn: 0, dflt: null, pk: 0 },
        ]);
        const { results: fks } = await db.prepare('SELECT "table", "from", "to", on_delete FROM pragma_foreign_key_list(?)').bind('posts').all();
        assert.deepEqual(fks, [{ table: 'users', from: 'author_id', to: 'id', on_delete: 'CASCADE' }]);
      });
    });

    test('insert ... returning gives back integers, reals, text, booleans, buffers, timestamps and nulls exactly', async () => {
      await migrated(factory, async (d, db) => {
        const avatar = Buffer.from([0, 1, 2, 127, 128, 254, 255]);
        const joinedAt = new Date('2024-05-06T07:08:09.000Z');
        const first = await d
          .insert(users)
          .values({ ...ada, avatar, joinedAt })
          .returning();
        assert.deepEqual(first, [{ id: 1, ...ada, avatar, joinedAt }]);

        const second = await d.insert(users).values(bob).returning();
        assert.deepEqual(second, [{ id: 2, ...bob, avatar: null, joinedAt: null }]);

        // The column default (active = true) applies when the value is left out.
        const third = await d
          .insert(users)
          .values({ name: 'Dee', email: 'dee@example.com', score: 0 })
          .returning({ id: users.id, active: users.active, age: users.age });
        assert.deepEqual(third, [{ id: 3, active: true, age: null }]);

        // What drizzle wrote is stored with SQLite's own storage classes.
        const { results } = await db
          .prepare(
            'SELECT typeof(age) AS age, typeof(score) AS score, typeof(active) AS active, typeof(avatar) AS avatar, hex(avatar) AS hex, joined_at FROM users ORDER BY id',
          )
          .all();
        assert.deepEqual(results, [
          { age: 'integer', score: 'real', active: 'integer', avatar: 'blob', hex: '0001027F80FEFF', joined_at: 1714979289 },
          { age: 'null', score: 'real', active: 'integer', avatar: 'null', hex: '', joined_at: null },
          // REAL affinity: the 0 drizzle sent is stored as a real.
          { age: 'null', score: 'real', active: 'integer', avatar: 'null', hex: '', joined_at: null },
        ]);

        // Reading back through a plain select maps the same values again.
        const [read] = await d.select().from(users).where(eq(users.id, 1));
        assert.deepEqual(read, { id: 1, ...ada, avatar, joinedAt });
      });
    });

    test('select with where / orderBy / limit, update and delete', async () => {
      await migrated(factory, async (d) => {
        const ids = await d.insert(users).values([ada, bob, cy]).returning({ id: users.id });
        assert.deepEqual(ids, [{ id: 1 }, { id: 2 }, { id: 3 }]);

        assert.deepEqual(await d.select({ name: users.name, score: users.score }).from(users).where(gt(users.score, 50)).orderBy(desc(users.score)), [
          { name: 'Ada', score: 97.5 },
          { name: 'Cy', score: 60 },
        ]);
        assert.deepEqual(await d.select({ name: users.name }).from(users).where(and(eq(users.active, false), isNull(users.age))), [{ name: 'Bob' }]);
        assert.deepEqual(await d.select({ id: users.id }).from(users).where(like(users.email, '%y@%')).orderBy(asc(users.id)), [{ id: 3 }]);
        assert.deepEqual(await d.select({ id: users.id }).from(users).orderBy(asc(users.name)).limit(1).offset(1), [{ id: 2 }]);
        assert.equal(await d.$count(users, eq(users.active, true)), 2);

        const updated = await d
          .update(users)
          .set({ score: 10.5, active: true, age: 40 })
          .where(eq(users.name, 'Bob'))
          .returning({ id: users.id, score: users.score, active: users.active, age: users.age });
        assert.deepEqual(updated, [{ id: 2, score: 10.5, active: true, age: 40 }]);

        const result = await d
          .update(users)
          .set({ age: null })
          .where(inArray(users.id, [1, 3]));
        assert.equal(result.meta.changes, 2);

        const deleted = await d.delete(users).where(eq(users.id, 1)).returning({ id: users.id, name: users.name });
        assert.deepEqual(deleted, [{ id: 1, name: 'Ada' }]);
        const none = await d.delete(users).where(eq(users.id, 1)).returning({ id: users.id });
        assert.deepEqual(none, []);

        assert.deepEqual(await d.select({ id: users.id, age: users.age, active: users.active }).from(users).orderBy(users.id), [
          { id: 2, age: 40, active: true },
          { id: 3, age: null, active: true },
        ]);
      });
    });

    test('relational queries: findMany / findFirst with nested relations', async () => {
      await migrated(factory, async (d) => {
        await d.insert(users).values([ada, bob, cy]);
        await d.insert(posts).values([
          { authorId: 1, title: 'First', body: 'hello' },
          { authorId: 3, title: 'Second', body: null },
          { authorId: 1, title: 'Third', body: 'again' },
        ]);

        const all = await d.query.users.findMany({
          columns: { id: true, name: true, active: true },
          orderBy: (u, { asc }) => [asc(u.id)],
          with: { posts: { orderBy: (p, { desc }) => [desc(p.id)] } },
        });
        assert.deepEqual(all, [
          {
            id: 1,
            name: 'Ada',
            active: true,
            posts: [
              { id: 3, authorId: 1, title: 'Third', body: 'again' },
              { id: 1, authorId: 1, title: 'First', body: 'hello' },
            ],
          },
          { id: 2, name: 'Bob', active: false, posts: [] },
          { id: 3, name: 'Cy', active: true, posts: [{ id: 2, authorId: 3, title: 'Second', body: null }] },
        ]);

        const withPosts = await d.query.users.findMany({ with: { posts: true }, where: (u, { eq }) => eq(u.email, 'cy@example.com') });
        assert.deepEqual(withPosts, [
          { id: 3, ...cy, avatar: null, joinedAt: null, posts: [{ id: 2, authorId: 3, title: 'Second', body: null }] },
        ]);

        const post = await d.query.posts.findFirst({
          where: (p, { eq }) => eq(p.title, 'Second'),
          columns: { title: true },
          with: { author: { columns: { name: true, score: true, active: true } } },
        });
        assert.deepEqual(post, { title: 'Second', author: { name: 'Cy', score: 60, active: true } });

        assert.equal(await d.query.posts.findFirst({ where: (p, { eq }) => eq(p.title, 'missing') }), undefined);
      });
    });

    test('db.batch runs statements in order and returns each result', async () => {
      await migrated(factory, async (d) => {
        const [inserted, updated, listed, counted] = await d.batch([
          d.insert(users).values([ada, bob]).returning({ id: users.id, name: users.name }),
          d.update(users).set({ score: 1.5 }).where(eq(users.name, 'Bob')),
          d.select({ name: users.name, score: users.score }).from(users).orderBy(users.id),
          d.query.users.findFirst({ columns: { email: true }, where: (u, { eq }) => eq(u.id, 2) }),
        ]);
        assert.deepEqual(inserted, [
          { id: 1, name: 'Ada' },
          { id: 2, name: 'Bob' },
        ]);
        assert.equal(updated.meta.changes, 1);
        assert.deepEqual(listed, [
          { name: 'Ada', score: 97.5 },
          { name: 'Bob', score: 1.5 },
        ]);
        assert.deepEqual(counted, { email: 'bob@example.com' });
      });
    });

    test('db.batch is atomic: a failing statement rolls back the ones before it', async () => {
      await migrated(factory, async (d, db) => {
        await d.insert(users).values(ada);

        const duplicate = await rejection(
          d.batch([
            d.insert(users).values(cy),
            d.insert(posts).values({ authorId: 2, title: 'by Cy' }),
            d.update(users).set({ score: 0 }).where(eq(users.id, 1)),
            d.insert(users).values({ ...bob, email: ada.email }),
          ]),
        );
        assert.match(errorText(duplicate), /UNIQUE constraint failed: users\.email/);

        const orphan = await rejection(
          d.batch([d.insert(users).values(cy), d.insert(posts).values({ authorId: 99, title: 'orphan' })]),
        );
        assert.match(errorText(orphan), /FOREIGN KEY constraint failed/);

        assert.deepEqual(await d.select({ id: users.id, name: users.name, score: users.score }).from(users), [{ id: 1, name: 'Ada', score: 97.5 }]);
        assert.deepEqual(await d.select().from(posts), []);
        // The AUTOINCREMENT counter was rolled back with the rows.
        assert.deepEqual(await db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'users'").all().then((r) => r.results), [{ seq: 1 }]);
        assert.deepEqual(await d.insert(users).values(bob).returning({ id: users.id }), [{ id: 2 }]);
      });
    });

    test('foreign keys are enforced and ON DELETE CASCADE runs', async () => {
      await migrated(factory, async (d) => {
        await d.insert(users).values([ada, bob]);
        await d.insert(posts).values([
          { authorId: 1, title: 'a1' },
          { authorId: 2, title: 'b1' },
          { authorId: 1, title: 'a2' },
        ]);
        assert.match(errorText(await rejection(d.insert(posts).values({ authorId: 42, title: 'nobody' }))), /FOREIGN KEY constraint failed/);

        const result = await d.delete(users).where(eq(users.id, 1));
        assert.equal(result.meta.changes, 3, 'the user and its two posts (total_changes counts cascades)');
        assert.deepEqual(await d.select({ title: posts.title, authorId: posts.authorId }).from(posts), [{ title: 'b1', authorId: 2 }]);
      });
    });

    test('raw sql through drizzle: all, get, values, run', async () => {
      await migrated(factory, async (d) => {
        await d.insert(users).values([ada, bob, cy]);
        const min = 50;
        assert.deepEqual(await d.all(sql`SELECT name, score FROM ${users} WHERE ${users.score} > ${min} ORDER BY id`), [
          { name: 'Ada', score: 97.5 },
          { name: 'Cy', score: 60 },
        ]);
        assert.deepEqual(await d.get(sql`SELECT count(*) AS n, sum(age) AS ages FROM users`), { n: 3, ages: 87 });
        assert.deepEqual(await d.values(sql`SELECT id, email, age FROM users ORDER BY id DESC`), [
          [3, 'cy@example.com', 51],
          [2, 'bob@example.com', null],
          [1, 'ada@example.com', 36],
        ]);
        const run = await d.run(sql`UPDATE users SET score = score * 2 WHERE active = ${true}`);
        assert.equal(run.meta.changes, 2);
        assert.deepEqual(await d.select({ score: users.score }).from(users).orderBy(users.id), [{ score: 195 }, { score: -0.25 }, { score: 120 }]);
      });
    });

    test('db.transaction() is refused as on D1 (BEGIN is rejected) and writes nothing', async () => {
      await migrated(factory, async (d) => {
        const error = await rejection(
          d.transaction(async (tx) => {
            await tx.insert(users).values(ada);
          }),
        );
        assert.match(errorText(error), /begin/i);
        assert.deepEqual(await d.select().from(users), []);
      });
    });
  });
}
