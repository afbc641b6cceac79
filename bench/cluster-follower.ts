// The follower side of bench:cluster, in its own process: follows one database's JetStream log
// and prints "<sequence> <wall-clock ms>" each time its copy reaches a new commit.
// Arguments: <JSON {servers, database, dir, seconds}>.
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { Follower } from '../src/cluster/follower.ts';
import { ObjectSnapshots } from '../src/cluster/object-snapshots.ts';
import { StreamLog } from '../src/cluster/stream-log.ts';

const { servers, database, dir, seconds } = JSON.parse(process.argv[2]!) as { servers: string[]; database: string; dir: string; seconds: number };
const nc = await connect({ servers, timeout: 2000 });
const follower = await Follower.start(
  path.join(dir, 'follower.sqlite'),
  database,
  await StreamLog.open(nc, database, { replicas: 3 }),
  await ObjectSnapshots.open(nc, { replicas: 3 }),
);
process.stdout.write(`ready ${follower.sequence}\n`);
let last = follower.sequence;
const until = Date.now() + seconds * 1000;
while (Date.now() < until) {
  const reached = await follower.catchUp();
  if (reached !== last) {
    process.stdout.write(`${reached} ${Date.now()}\n`);
    last = reached;
  } else await new Promise((r) => setTimeout(r, 1));
}
follower.close();
await nc.close();
