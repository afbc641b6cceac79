import { D1Database } from '../binding/database.ts';
import { FetchExecutor } from './fetch-executor.ts';
import type { ConnectOptions } from './options.ts';

/** A D1Database backed by a Dione server over fetch. Synchronous: no request is made until a query runs. */
export function connect(options: ConnectOptions): D1Database {
  return new D1Database(new FetchExecutor(options), { intMode: options.intMode });
}

export type { ConnectOptions };
