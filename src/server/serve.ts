// Starting and stopping a Dione server.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import pino, { type Logger } from 'pino';
import { createApp } from './app.ts';
import { authenticator } from './auth.ts';
import { fastPath } from './fast-path.ts';
import { Catalog } from './catalog.ts';
import type { ServerContext } from './context.ts';
import { HostPool } from './host/pool.ts';
import type { HistorySettings } from './host/protocol.ts';
import { Metrics } from './metrics.ts';

export interface ServeOptions {
  host?: string;
  port?: number;
  /** Directory for the catalogue and the database files. */
  data?: string;
  accountId?: string;
  /** Per-query limit in ms (D1: 30 s). */
  queryTimeoutMs?: number;
  /** Allow requests without a token (as admin). For local development only. */
  allowUnauthenticated?: boolean;
  /** Stop a database's host process after this long idle. */
  idleMs?: number;
  maxHosts?: number;
  /** Database host processes kept started ahead of need (default 1). */
  spares?: number;
  region?: string;
  maxBodyBytes?: number;
  /** Keep a write log for every database: Time Travel and forks (default true). */
  history?: boolean | HistorySettings;
  logger?: Logger;
}

export interface RunningServer {
  url: string;
  port: number;
  accountId: string;
  context: ServerContext;
  /** Graceful: stops accepting, lets in-flight requests finish, closes every database. */
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions = {}): Promise<RunningServer> {
  const logger = options.logger ?? pino({ level: process.env.DIONE_LOG_LEVEL ?? 'info' });
  const catalog = new Catalog(options.data ?? '.dione');
  const accountId = catalog.accountId(options.accountId);
  const metrics = new Metrics();
  const settings = {
    accountId,
    allowUnauthenticated: options.allowUnauthenticated ?? false,
    queryTimeoutMs: options.queryTimeoutMs ?? 30_000,
    region: options.region ?? 'LOCAL',
    maxBodyBytes: options.maxBodyBytes ?? 64 * 1024 * 1024,
  };
  const pool = new HostPool({
    queryTimeoutMs: settings.queryTimeoutMs,
    idleMs: options.idleMs ?? 60_000,
    maxHosts: options.maxHosts ?? 256,
    servedBy: 'dione',
    spares: options.spares,
    history: options.history === false ? false : options.history === true || options.history === undefined ? {} : options.history,
    onEvent: (event) => logger.debug(event, 'database host'),
  });
  const context: ServerContext = { catalog, pool, settings, metrics, logger, transfers: new Map() };
  let serving = false;
  const resolveGrant = authenticator(catalog, settings.allowUnauthenticated);
  const app = createApp(context, () => serving, resolveGrant);
  const honoListener = getRequestListener(app.fetch);
  const sqlListener = fastPath(context, resolveGrant);
  const server = createServer((req, res) => {
    if (!sqlListener(req, res)) void honoListener(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
    server.listen(options.port ?? 8787, options.host ?? '127.0.0.1');
  });
  serving = true;
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    accountId,
    context,
    close: () => {
      closing ??= (async () => {
        serving = false;
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await pool.stopAll();
        catalog.close();
      })();
      return closing;
    },
  };
}
