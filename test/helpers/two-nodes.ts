// Two in-process `dione serve` nodes on a real 3-node NATS cluster: a (region WEUR) and b (ENAM),
// each talking to its own nats-server, and b accepting a's admin token (it reaches b through the
// shared catalogue). The caller closes them (b, a, then nats).
import assert from 'node:assert/strict';
import type { StartOptions } from '../../src/server/serve.ts';
import { type NatsCluster, startNatsCluster } from './nats-cluster.ts';
import { startTestServer, type TestServer } from './server.ts';
import { poll } from './server-checks.ts';

export async function startTwoNodes(options: { leaseTtlMs: number; history?: StartOptions['history'] }): Promise<{ nats: NatsCluster; a: TestServer; b: TestServer }> {
  const nats = await startNatsCluster({ nodes: 3 });
  const urls = nats.urls;
  const history = options.history === undefined ? {} : { history: options.history };
  const a = await startTestServer({ region: 'WEUR', ...history, cluster: { servers: [urls[0]!], node: 'a', leaseTtlMs: options.leaseTtlMs } });
  const b = await startTestServer({ region: 'ENAM', ...history, cluster: { servers: [urls[1]!], node: 'b', leaseTtlMs: options.leaseTtlMs } });
  const reached = await poll(async () => ((await b.call(b.api, { token: a.token })).status === 200 ? true : undefined), 50, 100);
  assert.ok(reached, "a's token never reached b");
  return { nats, a, b };
}
