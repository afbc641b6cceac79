// getPlatformProxy() with wrangler's signature and result, without wrangler, miniflare or workerd:
// env holds the config's vars and its D1 databases (as Dione bindings over the files wrangler uses,
// or on a Dione server), and one warning names the bindings Dione does not provide.
import path from 'node:path';
import type { D1Database } from '../index.ts';
import { checkPlacements, type D1Placement, locateD1, openD1 } from './d1-bindings.ts';
import { type Persist, platformD1Root } from './local-d1.ts';
import { otherBindings } from './other-bindings.ts';
import { readProject } from './project.ts';
import { localVars } from './vars.ts';
import { CacheStorage, ExecutionContext, type LocalCfProperties, localCf } from './worker-context.ts';

export interface GetPlatformProxyOptions {
  /**
   * The environment of the config to use ([env.<name>]); its bindings and vars replace the top
   * level's. Default: CLOUDFLARE_ENV, as wrangler's getPlatformProxy (an empty one is the top level).
   */
  environment?: string;
  /** The wrangler config file (default: wrangler.json, wrangler.jsonc or wrangler.toml from the working directory up). */
  configPath?: string;
  /** .env files to read instead of .dev.vars and the default .env files, relative to the config's directory. */
  envFiles?: string[];
  /**
   * Where local D1 data is kept: true or absent for .wrangler/state/v3 of the working directory (where
   * wrangler's getPlatformProxy keeps it, and `wrangler dev` too when the config is there), { path }
   * for another folder (given as to wrangler: the one holding d1/), false for databases in memory.
   */
  persist?: Persist;
  /** Accepted for wrangler's signature. Dione has no Cloudflare remote bindings; see `d1` for Dione servers. */
  remoteBindings?: boolean;
  /**
   * Dione's own: where each D1 binding, by name, is served: 'local' (the file above) or a Dione server.
   * A binding not named here is on the server of DIONE_URL (token DIONE_TOKEN) when that is set, else local.
   */
  d1?: Record<string, D1Placement>;
}

export interface PlatformProxy<Env = Record<string, unknown>, CfProperties extends Record<string, unknown> = LocalCfProperties> {
  /** The config's vars and D1 bindings. */
  env: Env;
  /** The `cf` properties of a request, those of a local one (frozen). */
  cf: CfProperties;
  /** A Worker's ExecutionContext; its methods do nothing. */
  ctx: ExecutionContext;
  /** The Workers Cache API; its methods do nothing (as wrangler's). */
  caches: CacheStorage;
  /** Closes the databases. */
  dispose: () => Promise<void>;
}

async function closeAll(databases: D1Database[]): Promise<void> {
  await Promise.all(databases.map((db) => db.close()));
}

export async function getPlatformProxy<Env = Record<string, unknown>, CfProperties extends Record<string, unknown> = LocalCfProperties>(
  options: GetPlatformProxyOptions = {},
): Promise<PlatformProxy<Env, CfProperties>> {
  const cwd = process.cwd();
  const warn = (message: string) => console.warn(`dione/platform: ${message}`);
  const project = readProject({ configPath: options.configPath, environment: options.environment ?? (process.env.CLOUDFLARE_ENV || undefined), cwd });
  const placements = options.d1 ?? {};
  checkPlacements(placements, project.d1Databases, project.file);
  const root = platformD1Root(options.persist, cwd);

  const left = otherBindings(project);
  if (left.length > 0) {
    const file = path.relative(cwd, project.file!) || project.file;
    warn(`env has no ${left.join(', ')}: Dione provides the D1 databases and vars of ${file} only (use wrangler's getPlatformProxy for the others).`);
  }

  // vars never replace a binding of another kind with the same name (wrangler's rule).
  const env = localVars(project, options.envFiles, warn, options.environment);
  const databases: D1Database[] = [];
  try {
    for (const entry of project.d1Databases) {
      const db = openD1(locateD1(entry, { root, placements, environment: process.env }));
      databases.push(db);
      env[entry.binding] = db;
    }
  } catch (e) {
    await closeAll(databases);
    throw e;
  }

  let disposed: Promise<void> | undefined;
  return {
    env: env as Env,
    cf: localCf() as unknown as CfProperties,
    ctx: new ExecutionContext(),
    caches: new CacheStorage(),
    dispose: () => (disposed ??= closeAll(databases)),
  };
}
