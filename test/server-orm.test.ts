// The ORM suites of the foundation issue (drizzle-orm/d1, kysely + kysely-d1, Prisma Client with
// @prisma/adapter-d1), unmodified, over HTTP: each test gets a fresh database created on a real
// server through the REST API and reached with dione/client's connect().
import { after, before } from 'node:test';
import { connect } from '../src/client.ts';
import type { DatabaseFactory } from './orm/common.ts';
import { drizzleSuite } from './orm/drizzle.ts';
import { kyselySuite } from './orm/kysely.ts';
import { prismaSuite, removeGeneratedPrismaClient } from './orm/prisma.ts';
import { startTestServer, type TestServer } from './helpers/server.ts';

let server: TestServer | undefined;
let count = 0;
before(async () => {
  server = await startTestServer({});
});
after(() => server?.close());
after(removeGeneratedPrismaClient);

/** A new database on the server, for one test. */
const overHttp: DatabaseFactory = async () => {
  if (!server) throw new Error('the server is not running');
  const name = `orm-${++count}`;
  await server.createDatabase(name);
  return connect({ url: server.url, token: server.token, database: name });
};

drizzleSuite('dione/client over HTTP', overHttp);
kyselySuite('dione/client over HTTP', overHttp);
prismaSuite('dione/client over HTTP', overHttp);
