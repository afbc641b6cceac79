// Prisma Client 7 with @prisma/adapter-d1, unmodified, over a Dione D1Database. The client is generated
// here by the real `prisma generate` (no engine binary needed), and the tables are made with the SQL
// `prisma migrate diff --script` produces (the schema engine cannot be downloaded on these machines).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { PrismaD1 } from '@prisma/adapter-d1';
import type { D1Database } from '../../src/index.ts';
import { root } from '../helpers/paths.ts';
import { type DatabaseFactory, rejection, userTables, withDatabase } from './common.ts';

const fixture = path.join(root, 'test/fixtures/prisma');
const prismaBin = path.join(root, 'node_modules/.bin/prisma');
/** Generous: generation takes about a second; only a hang (e.g. an engine download) comes near it. */
const GENERATE_TIMEOUT_MS = 60_000;

/** The generated module, loosely typed: its code is generated per run and not type-checked here. */
export interface GeneratedPrismaClient {
  PrismaClient: new (options: { adapter: unknown }) => any;
  Prisma: { PrismaClientKnownRequestError: new (...args: any[]) => Error & { code: string; meta?: unknown } };
}

let generated: { dir: string; client: Promise<GeneratedPrismaClient> } | undefined;

/**
 * Runs `prisma generate` once per process into a fresh folder under test/fixtures/prisma/generated/ and
 * imports the client from it. The CLI would otherwise try to download the schema engine: pointing
 * PRISMA_SCHEMA_ENGINE_BINARY at any existing file stops that, and generate itself needs no engine.
 */
export function prismaClient(): Promise<GeneratedPrismaClient> {
  if (!generated) {
    const dir = path.join(fixture, 'generated', `run-${process.pid}-${Date.now().toString(36)}`);
    mkdirSync(dir, { recursive: true });
    process.once('exit', () => removeDir(dir));
    generated = { dir, client: generate(dir) };
  }
  return generated.client;
}

/** Removes the generated client (also done at process exit); the next prismaClient() generates anew. */
export function removeGeneratedPrismaClient(): void {
  if (generated) removeDir(generated.dir);
  generated = undefined;
}

/** Removes one generated client, and generated/ itself once it is empty. */
function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  try {
    rmdirSync(path.dirname(dir)); // only succeeds when empty: another process may still be using its own run folder
  } catch {}
}

async function generate(dir: string): Promise<GeneratedPrismaClient> {
  const args = [prismaBin, 'generate', '--config', path.join(fixture, 'prisma.config.ts')];
  const env = {
    ...process.env,
    DIONE_PRISMA_CLIENT_OUTPUT: dir,
    PRISMA_SCHEMA_ENGINE_BINARY: process.execPath,
    PRISMA_HIDE_UPDATE_MESSAGE: '1',
    CHECKPOINT_DISABLE: '1',
    PRISMA_DISABLE_WARNINGS: '1',
  };
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, args, { cwd: root, env, timeout: GENERATE_TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (!error) return resolve();
      const output = `\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr}`;
      if (error.killed) {
        reject(new Error(`\`prisma generate\` did not finish within ${GENERATE_TIMEOUT_MS / 1000} s and was killed: is it trying to download an engine?${output}`));
      } else {
        reject(new Error(`\`prisma generate\` failed (${error.message.split('\n')[0]})${output}`));
      }
    });
  });
  return (await import(pathToFileURL(path.join(dir, 'client.ts')).href)) as GeneratedPrismaClient;
}

/**
 * Applies test/fixtures/prisma/migrations/0001_init.sql in one atomic batch, one prepared statement per SQL
 * statement (as `wrangler d1 migrations apply` sends a file: all of it, or nothing).
 */
async function applyMigration(db: D1Database): Promise<void> {
  const text = readFileSync(path.join(fixture, 'migrations/0001_init.sql'), 'utf8');
  const statements = text
    .split(/;[ \t]*$/m)
    .map((s) => s.trim())
    .filter((s) => s.replace(/^--.*$/gm, '').trim() !== '');
  assert.equal(statements.length, 3, 'the migration holds two CREATE TABLEs and one CREATE INDEX');
  await db.batch(statements.map((s) => db.prepare(s)));
}

async function withPrisma<T>(
  factory: DatabaseFactory,
  client: () => GeneratedPrismaClient,
  fn: (prisma: any, db: D1Database) => Promise<T>,
): Promise<T> {
  return withDatabase(factory, async (db) => {
    await applyMigration(db);
    const prisma = new (client().PrismaClient)({ adapter: new PrismaD1(db) });
    try {
      return await fn(prisma, db);
    } finally {
      await prisma.$disconnect();
    }
  });
}

const adaAvatar = new Uint8Array([0, 1, 2, 127, 128, 254, 255]);
const adaCreated = new Date('2024-01-02T03:04:05.678Z');
const ada = { email: 'ada@example.com', name: 'Ada', age: 36, score: 97.5, active: true, avatar: adaAvatar, createdAt: adaCreated };
const bob = { email: 'bob@example.com', name: null, age: 0, score: -0.25, active: false, avatar: null, createdAt: new Date('2025-06-07T08:09:10.000Z') };
const cy = { email: 'cy@example.com', name: 'Cy', age: 51, score: 60, active: true, avatar: null, createdAt: new Date('2023-12-31T23:59:59.999Z') };

/** Ada (posts 1 "First" published, 2 "Draft"), Bob (no posts), Cy (post 3 "Hello" published). */
async function seed(prisma: any): Promise<void> {
  await prisma.user.create({ data: { ...ada, posts: { create: [{ title: 'First', published: true }, { title: 'Draft' }] } } });
  await prisma.user.create({ data: bob });
  await prisma.user.create({ data: { ...cy, posts: { create: { title: 'Hello', published: true } } } });
}

export function prismaSuite(label: string, factory: DatabaseFactory): void {
  describe(`Prisma Client 7 + @prisma/adapter-d1 (${label})`, () => {
    let client: GeneratedPrismaClient | undefined;
    const loaded = () => {
      assert.ok(client, 'the generated Prisma client was not loaded');
      return client;
    };
    before(async () => {
      client = await prismaClient();
    });

    test('the migrate-diff SQL applies through the binding and matches the schema', async () => {
      await withPrisma(factory, loaded, async (prisma, db) => {
        assert.deepEqual(await userTables(db), ['Post', 'User']);
        const { results } = await db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").all();
        assert.deepEqual(results, [{ name: 'User_email_key' }]);
        assert.equal(await prisma.user.count(), 0);
      });
    });

    test('create and nested create return exact values of every type', async () => {
      await withPrisma(factory, loaded, async (prisma, db) => {
        const created = await prisma.user.create({
          data: { ...ada, posts: { create: [{ title: 'First', published: true }, { title: 'Draft' }] } },
          include: { posts: { orderBy: { id: 'asc' } } },
        });
        assert.deepEqual(created, {
          id: 1,
          ...ada,
          posts: [
            { id: 1, title: 'First', published: true, authorId: 1 },
            { id: 2, title: 'Draft', published: false, authorId: 1 },
          ],
        });

        // Defaults: active = true and createdAt = now(); name and avatar stay null.
        const minimal = await prisma.user.create({ data: { email: 'min@example.com', age: 0, score: 0.5 } });
        const { createdAt, ...rest } = minimal;
        assert.deepEqual(rest, { id: 2, email: 'min@example.com', name: null, age: 0, score: 0.5, active: true, avatar: null });
        assert.ok(createdAt instanceof Date && !Number.isNaN(createdAt.getTime()), `createdAt should be a valid Date, got ${createdAt}`);

        const post = await prisma.post.create({ data: { title: 'Later', author: { connect: { email: 'min@example.com' } } }, include: { author: { select: { email: true } } } });
        assert.deepEqual(post, { id: 3, title: 'Later', published: false, authorId: 2, author: { email: 'min@example.com' } });

        // How Prisma's values are stored: integers, a real, 1/0 booleans, a real BLOB, the date as ISO text.
        const stored = await db
          .prepare('SELECT typeof(age) AS age, typeof(score) AS score, active, typeof(avatar) AS avatar, hex(avatar) AS hex, createdAt FROM "User" WHERE id = 1')
          .first();
        assert.deepEqual(stored, { age: 'integer', score: 'real', active: 1, avatar: 'blob', hex: '0001027F80FEFF', createdAt: '2024-01-02T03:04:05.678+00:00' });
      });
    });

    test('findMany / findUnique / findFirst with include, select, where, orderBy, and count', async () => {
      await withPrisma(factory, loaded, async (prisma) => {
        await seed(prisma);

        const users = await prisma.user.findMany({ include: { posts: { orderBy: { id: 'desc' } } }, orderBy: { id: 'asc' } });
        assert.deepEqual(users, [
          {
            id: 1,
            ...ada,
            posts: [
              { id: 2, title: 'Draft', published: false, authorId: 1 },
              { id: 1, title: 'First', published: true, authorId: 1 },
            ],
          },
          { id: 2, ...bob, posts: [] },
          { id: 3, ...cy, posts: [{ id: 3, title: 'Hello', published: true, authorId: 3 }] },
        ]);

        assert.deepEqual(
          await prisma.user.findMany({
            where: { OR: [{ score: { gt: 90 } }, { name: null }] },
            select: { email: true, score: true, _count: { select: { posts: true } } },
            orderBy: { score: 'desc' },
          }),
          [
            { email: 'ada@example.com', score: 97.5, _count: { posts: 2 } },
            { email: 'bob@example.com', score: -0.25, _count: { posts: 0 } },
          ],
        );
        assert.deepEqual(await prisma.user.findMany({ where: { posts: { some: { published: true } } }, select: { id: true }, orderBy: { id: 'asc' } }), [
          { id: 1 },
          { id: 3 },
        ]);
        assert.deepEqual(await prisma.user.findMany({ where: { createdAt: { lt: new Date('2024-01-01T00:00:00Z') } }, select: { email: true } }), [
          { email: 'cy@example.com' },
        ]);
        assert.deepEqual(await prisma.user.findUnique({ where: { email: 'cy@example.com' }, select: { id: true, name: true, active: true } }), {
          id: 3,
          name: 'Cy',
          active: true,
        });
        assert.equal(await prisma.user.findUnique({ where: { email: 'nobody@example.com' } }), null);
        assert.deepEqual(
          await prisma.post.findFirst({ where: { published: true }, orderBy: { id: 'desc' }, include: { author: { select: { email: true } } } }),
          { id: 3, title: 'Hello', published: true, authorId: 3, author: { email: 'cy@example.com' } },
        );
        assert.deepEqual(await prisma.post.findMany({ skip: 1, take: 1, orderBy: { title: 'asc' }, select: { title: true } }), [{ title: 'First' }]);

        assert.equal(await prisma.user.count(), 3);
        assert.equal(await prisma.post.count({ where: { published: true } }), 2);
        assert.equal(await prisma.user.count({ where: { active: false } }), 1);
        assert.deepEqual(await prisma.user.aggregate({ _sum: { age: true }, _max: { score: true } }), { _sum: { age: 87 }, _max: { score: 97.5 } });
      });
    });

    test('update, updateMany, upsert, delete, deleteMany (with cascades)', async () => {
      await withPrisma(factory, loaded, async (prisma) => {
        await seed(prisma);

        const updated = await prisma.user.update({
          where: { email: 'bob@example.com' },
          data: { name: 'Bob', score: { increment: 1.5 }, active: true, avatar: new Uint8Array([9]) },
        });
        assert.deepEqual(updated, { id: 2, ...bob, name: 'Bob', score: 1.25, active: true, avatar: new Uint8Array([9]) });

        assert.deepEqual(await prisma.post.updateMany({ where: { published: false }, data: { published: true } }), { count: 1 });
        assert.deepEqual(await prisma.post.updateMany({ where: { title: 'missing' }, data: { published: false } }), { count: 0 });

        const upserted = await prisma.user.upsert({
          where: { email: 'dee@example.com' },
          create: { email: 'dee@example.com', age: 22, score: 3, createdAt: adaCreated },
          update: { age: 23 },
          select: { id: true, age: true },
        });
        assert.deepEqual(upserted, { id: 4, age: 22 });
        assert.deepEqual(
          await prisma.user.upsert({ where: { email: 'dee@example.com' }, create: { email: 'x', age: 0, score: 0 }, update: { age: 23 }, select: { id: true, age: true } }),
          { id: 4, age: 23 },
        );

        // Deleting Ada cascades to her two posts.
        const deleted = await prisma.user.delete({ where: { id: 1 }, select: { email: true } });
        assert.deepEqual(deleted, { email: 'ada@example.com' });
        assert.deepEqual(await prisma.post.findMany({ select: { id: true, authorId: true } }), [{ id: 3, authorId: 3 }]);

        // Cy and Dee go, and Cy's post with them: Prisma's count is the binding's meta.changes, which on D1
        // (workerd's recording, conformance scenario meta_cascade_changes) includes cascaded rows.
        assert.deepEqual(await prisma.user.deleteMany({ where: { age: { gte: 23 } } }), { count: 3 });
        assert.deepEqual(await prisma.user.findMany({ select: { email: true, name: true, score: true } }), [{ email: 'bob@example.com', name: 'Bob', score: 1.25 }]);
        assert.equal(await prisma.post.count(), 0);
      });
    });

    test('constraint errors surface as Prisma known errors (P2002, P2003, P2025)', async () => {
      await withPrisma(factory, loaded, async (prisma) => {
        const { PrismaClientKnownRequestError } = loaded().Prisma;
        await seed(prisma);

        const unique = await rejection(prisma.user.create({ data: { email: 'ada@example.com', age: 1, score: 1 } }));
        assert.ok(unique instanceof PrismaClientKnownRequestError, `expected a known request error, got ${unique}`);
        assert.equal(unique.code, 'P2002');

        const foreign = await rejection(prisma.post.create({ data: { title: 'orphan', authorId: 99 } }));
        assert.ok(foreign instanceof PrismaClientKnownRequestError, `expected a known request error, got ${foreign}`);
        assert.equal(foreign.code, 'P2003');

        const missing = await rejection(prisma.user.update({ where: { id: 99 }, data: { age: 1 } }));
        assert.ok(missing instanceof PrismaClientKnownRequestError, `expected a known request error, got ${missing}`);
        assert.equal(missing.code, 'P2025');

        assert.equal(await prisma.user.count(), 3);
        assert.equal(await prisma.post.count(), 3);
      });
    });

    test('$queryRaw and $executeRaw', async () => {
      await withPrisma(factory, loaded, async (prisma) => {
        await seed(prisma);
        const min = 50;
        assert.deepEqual(await prisma.$queryRaw`SELECT email, score, age FROM "User" WHERE score > ${min} ORDER BY id`, [
          { email: 'ada@example.com', score: 97.5, age: 36 },
          { email: 'cy@example.com', score: 60, age: 51 },
        ]);
        assert.equal(await prisma.$executeRaw`UPDATE "Post" SET title = title || ${'!'} WHERE published = ${true}`, 2);
        assert.deepEqual(await prisma.post.findMany({ select: { title: true }, orderBy: { id: 'asc' } }), [{ title: 'First!' }, { title: 'Draft' }, { title: 'Hello!' }]);
      });
    });
  });
}
