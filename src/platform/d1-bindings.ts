// Each D1 binding of the config as a D1Database: the local file wrangler uses for it, a database
// in memory (persist: false), or a database on a Dione server. A binding goes to a server when the
// `d1` option names one for it, or, unless that option says 'local', when DIONE_URL is set.
import { connect } from '../node-client.ts';
import type { D1DatabaseConfig } from '../cli/wrangler-config.ts';
import { type D1Database, open } from '../index.ts';
import { d1FileIn } from './local-d1.ts';

/** A Dione server for one binding; what is left out comes from DIONE_URL and DIONE_TOKEN. */
export interface DioneServer {
  /** The server's base URL, e.g. https://db.example.com (default: DIONE_URL). */
  url?: string;
  /** An API token (default: DIONE_TOKEN). */
  token?: string;
  /** The database's name or id on the server (default: the binding's database_name, else its name). */
  database?: string;
}

export type D1Placement = 'local' | DioneServer;

export type D1Location = { kind: 'file'; file: string } | { kind: 'memory' } | { kind: 'server'; url: string; token?: string; database: string };

export interface PlacementContext {
  /** The d1 folder of local files, or undefined when nothing is persisted. */
  root: string | undefined;
  /** The `d1` option: where given bindings go. */
  placements: Record<string, D1Placement>;
  environment: NodeJS.ProcessEnv;
}

/** Refuses a `d1` option entry that names no D1 binding of the config (most likely a typo). */
export function checkPlacements(placements: Record<string, D1Placement>, databases: D1DatabaseConfig[], configFile: string | undefined): void {
  const known = databases.map((d) => d.binding);
  for (const [binding, placement] of Object.entries(placements)) {
    if (!known.includes(binding)) {
      throw new Error(`getPlatformProxy: d1.${binding} names no D1 binding of ${configFile ?? 'the wrangler config (none was found)'}${known.length ? ` (its bindings: ${known.join(', ')})` : ''}`);
    }
    if (placement !== 'local' && (typeof placement !== 'object' || placement === null)) {
      throw new TypeError(`getPlatformProxy: d1.${binding} must be 'local' or { url?, token?, database? }`);
    }
  }
}

export function locateD1(entry: D1DatabaseConfig, context: PlacementContext): D1Location {
  const placement = context.placements[entry.binding] ?? (context.environment.DIONE_URL ? {} : 'local');
  if (placement === 'local') return context.root === undefined ? { kind: 'memory' } : { kind: 'file', file: d1FileIn(context.root, entry) };
  const url = placement.url ?? context.environment.DIONE_URL;
  if (!url) {
    throw new Error(`getPlatformProxy: D1 binding ${entry.binding} is to be served by a Dione server, but neither d1.${entry.binding}.url nor DIONE_URL says where it is`);
  }
  const token = placement.token ?? context.environment.DIONE_TOKEN;
  return { kind: 'server', url, token, database: placement.database ?? entry.database_name ?? entry.binding };
}

export function openD1(location: D1Location): D1Database {
  switch (location.kind) {
    case 'file':
      return open(location.file);
    case 'memory':
      return open(':memory:');
    case 'server':
      return connect({ url: location.url, token: location.token, database: location.database });
  }
}
