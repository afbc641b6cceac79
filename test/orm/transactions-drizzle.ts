// drizzle-orm's d1 driver on a `transactions: true` handle (issue 17): db.transaction() begins,
// commits and rolls back for real, tx.rollback() undoes the transaction, nested transactions are
// savepoints. The first four tests carry the intent of drizzle's own SQLite integration tests
// ("transaction", "transaction rollback", "nested transaction", "nested transaction rollback"),
// rewritten here; the rest check isolation between handles, and that a handle without the option
// refuses BEGIN as D1 does.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { eq, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/d1';
import { TransactionRollbackError } from 'drizzle-orm/errors';
import { integer, sqliteTable, text } from 'drizzle-orm/sqlite-core';
import { Messages } from '../../src/api/errors.ts';
import type { D1Database } from '../../src/index.ts';
import { withTransaction } from '../../src/index.ts';
import { errorText, rejection } from './common.ts';
import { type TransactionTarget, sleep, whileHeldOpen, withTestDatabase } from './transactions-common.ts';

const wallets = sqliteTable('wallets', {
  id: integer('id').primaryKey(),
  owner: text('owner').notNull(),
  balance: integer('balance').notNull(),
});

const stock = sqliteTable('stock', {
  id: integer('id').primaryKey(),
  item: text('item').notNull().unique(),
  price: integer('price').notNull(),
  left: integer('left').notNull(),
});

async function createTables(db: D1Database): Promise<void> {
  await db.batch([
    db.prepare('CREATE TABLE wallets (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, balance INTEGER NOT NULL)'),
    db.prepare('CREATE TABLE stock (id INTEGER PRIMARY KEY, item TEXT NOT NULL UNIQUE, price INTEGER NOT NULL, "left" INTEGER NOT NULL)'),
  ]);
}

async function ownersOf(db: D1Database): Promise<string[]> {
  const { results } = await db.prepare('SELECT owner FROM wallets ORDER BY id').all<{ owner: string }>();
  return results.map((r) => r.owner);
}

export function drizzleTransactionSuite(target: TransactionTarget): void {
  describe(`drizzle-orm/d1 on a transactions handle (${target.label})`, () => {
    test('transaction: a purchase debits the wallet and takes one item from stock, both or neither', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await createTables(db);
        const d = drizzle(db);
        const [wallet] = await d.insert(wallets).values({ owner: 'ada', balance: 100 }).returning();
        const [lamp] = await d.insert(stock).values({ item: 'lamp', price: 30, left: 5 }).returning();

        const receipt = await d.transaction(async (tx) => {
          await tx.update(wallets).set({ balance: sql`${wallets.balance} - ${lamp!.price}` }).where(eq(wallets.id, wallet!.id));
          await tx.update(stock).set({ left: sql`${stock.left} - 1` }).where(eq(stock.id, lamp!.id));
          return tx.select().from(wallets).get();
        });

        assert.deepEqual(receipt, { id: 1, owner: 'ada', balance: 70 });
        assert.deepEqual(await d.select().from(wallets), [{ id: 1, owner: 'ada', balance: 70 }]);
        assert.deepEqual(await d.select().from(stock), [{ id: 1, item: 'lamp', price: 30, left: 4 }]);
      });
    });

    test('transaction rollback: tx.rollback() rejects with TransactionRollbackError and nothing is kept', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await createTables(db);
        const d = drizzle(db);
        const error = await rejection(
          d.transaction(async (tx) => {
            await tx.insert(wallets).values({ owner: 'ada', balance: 10 });
            assert.equal((await tx.select().from(wallets)).length, 1);
            tx.rollback();
          }),
        );
        assert.ok(error instanceof TransactionRollbackError, `expected TransactionRollbackError, got ${errorText(error)}`);
        assert.deepEqual(await d.select().from(wallets), []);

        // Any error thrown in the callback rolls back the same way, and the handle goes on working.
        const thrown = new Error('nope');
        assert.equal(
          await rejection(
            d.transaction(async (tx) => {
              await tx.insert(wallets).values({ owner: 'bob', balance: 1 });
              throw thrown;
            }),
          ),
          thrown,
        );
        assert.deepEqual(await d.select().from(wallets), []);
        await d.insert(wallets).values({ owner: 'cy', balance: 3 });
        assert.deepEqual(await ownersOf(db), ['cy']);
      });
    });

    test('nested transaction: the inner transaction (a savepoint) commits with the outer one', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await createTables(db);
        const d = drizzle(db);
        await d.transaction(async (tx) => {
          await tx.insert(wallets).values({ owner: 'ada', balance: 1 });
          await tx.transaction(async (tx2) => {
            await tx2.update(wallets).set({ balance: 2 });
            // Deeper still.
            await tx2.transaction(async (tx3) => {
              await tx3.insert(wallets).values({ owner: 'bob', balance: 5 });
            });
          });
          assert.deepEqual(await tx.select().from(wallets), [
            { id: 1, owner: 'ada', balance: 2 },
            { id: 2, owner: 'bob', balance: 5 },
          ]);
        });
        assert.deepEqual(await d.select().from(wallets), [
          { id: 1, owner: 'ada', balance: 2 },
          { id: 2, owner: 'bob', balance: 5 },
        ]);
      });
    });

    test('nested transaction rollback: rolling back the inner one keeps the outer one’s writes', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await createTables(db);
        const d = drizzle(db);
        await d.transaction(async (tx) => {
          await tx.insert(wallets).values({ owner: 'ada', balance: 1 });
          const error = await rejection(
            tx.transaction(async (tx2) => {
              await tx2.update(wallets).set({ balance: 2 });
              await tx2.insert(wallets).values({ owner: 'bob', balance: 5 });
              tx2.rollback();
            }),
          );
          assert.ok(error instanceof TransactionRollbackError, `expected TransactionRollbackError, got ${errorText(error)}`);
          assert.deepEqual(await tx.select().from(wallets), [{ id: 1, owner: 'ada', balance: 1 }]);
        });
        assert.deepEqual(await d.select().from(wallets), [{ id: 1, owner: 'ada', balance: 1 }]);

        // And when the outer one rolls back, the released inner one goes with it.
        const error = await rejection(
          d.transaction(async (tx) => {
            await tx.transaction(async (tx2) => {
              await tx2.insert(wallets).values({ owner: 'cy', balance: 3 });
            });
            tx.rollback();
          }),
        );
        assert.ok(error instanceof TransactionRollbackError, `expected TransactionRollbackError, got ${errorText(error)}`);
        assert.deepEqual(await ownersOf(db), ['ada']);
      });
    });

    test('isolation: another handle sees nothing of an open transaction, then all of it at commit', async () => {
      await withTestDatabase(target, async ({ db, handle }) => {
        await createTables(db);
        const other = handle();
        const plain = handle({ transactions: false });
        const d = drizzle(db);
        await d.insert(wallets).values({ owner: 'ada', balance: 1 });
        await whileHeldOpen(
          (reached, hold) =>
            d.transaction(async (tx) => {
              await tx.insert(wallets).values({ owner: 'bob', balance: 2 });
              await tx.update(wallets).set({ balance: 100 }).where(eq(wallets.owner, 'ada'));
              reached();
              await hold;
            }),
          async () => {
            for (const h of [other, plain]) {
              assert.deepEqual(await drizzle(h).select().from(wallets), [{ id: 1, owner: 'ada', balance: 1 }]);
            }
          },
        );
        for (const h of [other, plain]) {
          assert.deepEqual(await drizzle(h).select().from(wallets), [
            { id: 1, owner: 'ada', balance: 100 },
            { id: 2, owner: 'bob', balance: 2 },
          ]);
        }
      });
    });

    test("no lost updates: two handles' immediate transactions increment one balance, every increment counts", async () => {
      await withTestDatabase(target, async ({ db, handle }) => {
        await createTables(db);
        await drizzle(db).insert(wallets).values({ owner: 'ada', balance: 0 });
        const rounds = 4;
        const worker = async (h: D1Database) => {
          const d = drizzle(h);
          for (let i = 0; i < rounds; i++) {
            await d.transaction(
              async (tx) => {
                const row = await tx.select().from(wallets).where(eq(wallets.id, 1)).get();
                await sleep(10); // the other handle tries to read the same balance meanwhile
                await tx.update(wallets).set({ balance: row!.balance + 1 }).where(eq(wallets.id, 1));
              },
              { behavior: 'immediate' },
            );
          }
        };
        const outcomes = await Promise.allSettled([worker(db), worker(handle()), worker(handle())]);
        assert.deepEqual(
          outcomes.filter((o) => o.status === 'rejected').map((o) => errorText((o as PromiseRejectedResult).reason)),
          [],
        );
        assert.deepEqual(await drizzle(db).select().from(wallets), [{ id: 1, owner: 'ada', balance: 3 * rounds }]);
      });
    });

    test('no lost updates with deferred transactions either: each one commits its increment or fails as busy', async () => {
      await withTestDatabase(target, async ({ db, handle }) => {
        await createTables(db);
        await drizzle(db).insert(wallets).values({ owner: 'ada', balance: 0 });
        let committed = 0;
        const refusals: string[] = [];
        const worker = async (h: D1Database) => {
          const d = drizzle(h);
          for (let i = 0; i < 4; i++) {
            try {
              // drizzle's default: a plain (deferred) BEGIN, which reads before it takes the write lock.
              await d.transaction(async (tx) => {
                const row = await tx.select().from(wallets).where(eq(wallets.id, 1)).get();
                await sleep(10);
                await tx.update(wallets).set({ balance: row!.balance + 1 }).where(eq(wallets.id, 1));
              });
              committed++;
            } catch (error) {
              refusals.push(errorText(error));
            }
          }
        };
        await Promise.all([worker(db), worker(handle()), worker(handle())]);
        for (const text of refusals) assert.match(text, /SQLITE_BUSY|database is locked/);
        assert.ok(committed > 0, 'at least one transaction commits');
        assert.deepEqual(await drizzle(db).select().from(wallets), [{ id: 1, owner: 'ada', balance: committed }]);
      });
    });

    test('drizzle over withTransaction(): its tx is a D1Database drizzle can use, committed or rolled back whole', async () => {
      await withTestDatabase(target, async ({ db }) => {
        await createTables(db);
        await withTransaction(db, async (tx) => {
          await drizzle(tx).insert(wallets).values({ owner: 'ada', balance: 1 });
        });
        const thrown = new Error('undo');
        assert.equal(
          await rejection(
            withTransaction(db, async (tx) => {
              await drizzle(tx).insert(wallets).values({ owner: 'bob', balance: 2 });
              throw thrown;
            }),
          ),
          thrown,
        );
        assert.deepEqual(await ownersOf(db), ['ada']);
      });
    });

    test('without transactions: true, db.transaction() fails as on D1 (Failed query: begin) and writes nothing', async () => {
      await withTestDatabase(
        target,
        async ({ db }) => {
          await createTables(db);
          const d = drizzle(db);
          const error = await rejection(
            d.transaction(async (tx) => {
              await tx.insert(wallets).values({ owner: 'ada', balance: 1 });
            }),
          );
          const text = errorText(error);
          assert.match(text, /^Failed query: begin\b/);
          assert.ok(text.includes(Messages.transactionStatement), `expected D1's refusal of BEGIN, got ${text}`);
          assert.deepEqual(await d.select().from(wallets), []);
        },
        { transactions: false },
      );
    });
  });
}
