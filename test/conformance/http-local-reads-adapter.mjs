// Conformance adapter: dione/client against a real Dione server whose reads are answered on its
// HTTP thread from the first read a worker has answered (local reads at their most eager), so every
// scenario also checks that those answers are the worker's, meta included.
import { connect } from '../../src/client.ts';
import { startTestServer } from '../helpers/server.ts';

let server;
let count = 0;

export async function makeDb() {
  server ??= await startTestServer({ idleMs: 2_000, localReads: 1 });
  const name = `scenario-${++count}`;
  await server.createDatabase(name);
  return connect({ url: server.url, token: server.token, database: name });
}

export async function teardown() {
  await server?.close();
}
