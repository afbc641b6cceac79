// Conformance adapter: dione/client's connect() against a real Dione server on 127.0.0.1, a
// fresh database per scenario. `serverAdapter` is shared with the other server adapters.
import { connect } from '../../src/client.ts';
import { startTestServer } from '../helpers/server.ts';

/** makeDb/teardown over one real server started with `options` on first use. */
export function serverAdapter(options) {
  let server;
  let count = 0;
  return {
    async makeDb() {
      server ??= await startTestServer({ idleMs: 2_000, ...options });
      const name = `scenario-${++count}`;
      await server.createDatabase(name);
      return connect({ url: server.url, token: server.token, database: name });
    },
    async teardown() {
      await server?.close();
    },
  };
}

export const { makeDb, teardown } = serverAdapter({});
