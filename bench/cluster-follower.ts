// The follower side of bench:cluster, in its own process: one node's part of one database, as a
// `dione serve` node runs it (ClusterDatabase: woken by each append, catching up from the stream),
// printing "<sequence> <wall-clock ms>" each time its copy reaches a new commit.
// Arguments: <JSON {servers, database, dir, seconds}>.
import { connect } from '@nats-io/transport-node';
import { ClusterDatabase } from '../src/cluster/cluster-database.ts';
import { Leases } from '../src/cluster/leases.ts';
import { ObjectSnapshots } from '../src/cluster/object-snapshots.ts';

const { servers, database, dir, seconds } = JSON.parse(process.argv[2]!) as { servers: string[]; database: string; dir: string; seconds: number };
const nc = await connect({ servers, timeout: 2000 });
const follower = await ClusterDatabase.start({
  nc,
  database,
  dir,
  self: { node: 'bench-follower', url: 'http://bench-follower.invalid', region: 'BENCH' },
  leases: await Leases.open(nc, { ttlMs: 10_000, replicas: 3 }),
  snapshots: await ObjectSnapshots.open(nc, { replicas: 3 }),
  replicas: 3,
});
if (follower.role !== 'follower') throw new Error('the bench follower took the lease: the primary is not running');
process.stdout.write(`ready ${follower.sequence}\n`);
let last = follower.sequence;
const until = Date.now() + seconds * 1000;
while (Date.now() < until) {
  if (follower.sequence !== last) {
    last = follower.sequence;
    process.stdout.write(`${last} ${Date.now()}\n`);
  }
  await new Promise((r) => setTimeout(r, 1));
}
await follower.stop();
await nc.close();
