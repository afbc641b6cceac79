// Conformance adapter: `dione`'s connect() for Node (dione/client over node:http, src/node-client.ts)
// against a real Dione server on 127.0.0.1, a fresh database per scenario.
import { connect } from '../../src/index.ts';
import { startTestServer } from '../helpers/server.ts';

let server;
let count = 0;

export async function makeDb() {
  server ??= await startTestServer({ idleMs: 2_000 });
  const name = `scenario-${++count}`;
  await server.createDatabase(name);
  return connect({ url: server.url, token: server.token, database: name });
}

export async function teardown() {
  await server?.close();
}
