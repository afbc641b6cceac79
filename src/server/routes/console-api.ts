// Dione's own JSON API for the web console (/dione/v1, behind the bearer-token middleware):
// who the caller is, tokens (admin), databases with their sizes and, in cluster mode, where they
// are written, and commits over time for a Time Travel chart. Cloudflare's v4 envelope; failures
// are thrown (ApiError, AuthError) and shaped by app.onError.
import { existsSync, statSync } from 'node:fs';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { parseTimestamp } from '../../api/time-travel.ts';
import { authorize, UNAUTHENTICATED } from '../auth.ts';
import type { DatabaseRecord, TokenRecord } from '../catalog.ts';
import type { NodeCopies } from '../cluster-placements.ts';
import type { Env, ServerContext } from '../context.ts';
import { HISTORY_OFF, type HostCallOf, type HostOp, type HostOperations } from '../host/protocol.ts';
import { ApiError, apiErrorOf, jsonBody } from '../protocols/api-errors.ts';
import { ErrorCodes, success } from '../protocols/envelope.ts';
import { createToken } from '../tokens.ts';
import { lookUp, visibleDatabase } from './database-protocols.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
const PER_PAGE = { default: 50, max: 200 } as const;
const BUCKETS = { default: 60, max: 500 } as const;
/** Open databases asked at once for their sizes when listing. */
const DESCRIBE_AT_ONCE = 4;

const tokenBody = z
  .object({
    scope: z.enum(['read', 'write', 'admin']),
    /** One database (its name or id); absent or null: every database. */
    database: z.string().min(1).nullable().optional(),
    name: z.string().max(100).nullable().optional(),
  })
  .strict();

/** A whole number from a query parameter within [min, max], `fallback` when absent; 400 otherwise. */
function integerParam(value: string | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  const n = /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new ApiError(400, ErrorCodes.badRequest, `Invalid ${name} '${value}': it must be a whole number from ${min} to ${max}`);
  return n;
}

/** A time from a query parameter (Unix seconds or ms, or ISO 8601), in ms since the epoch; 400 otherwise. */
function timeParam(value: string, name: string): number {
  const time = parseTimestamp(value)?.getTime();
  if (time === undefined || Number.isNaN(time)) throw new ApiError(400, ErrorCodes.badRequest, `Invalid ${name} '${value}'. Please provide a valid Unix timestamp or ISO string`);
  return time;
}

/** Runs `work` on each item, at most `limit` at once, answers in order. */
async function mapLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

/** A closed database's size: its file's (closing checkpoints the WAL into it); null when there is none here. */
function closedFileSize(file: string): number | null {
  try {
    return statSync(file).size + (existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0);
  } catch {
    return null;
  }
}

export function consoleApiRoutes(server: ServerContext) {
  const app = new Hono<Env>();

  /** An operation on the database's host; its typed failures become the API's errors. */
  const hostCall = async <K extends HostOp>(record: DatabaseRecord, call: HostCallOf<K>): Promise<HostOperations[K]['value']> => {
    try {
      return await server.pool.call({ uuid: record.uuid, file: server.catalog.file(record.uuid) }, call);
    } catch (e) {
      throw apiErrorOf(e);
    }
  };

  /** The database of the :db segment (id or name), readable by the caller. */
  const database = async (c: Context<Env, '/databases/:db/commits'>): Promise<DatabaseRecord> => {
    const record = await visibleDatabase(server, c.req.param('db'), c.get('grant'));
    if (!record) throw new ApiError(404, ErrorCodes.notFound, 'database not found');
    authorize(c.get('grant'), 'read', record);
    c.set('logDatabase', record.name);
    return record;
  };

  const databaseRef = (uuid: string | null) => (uuid === null ? null : { uuid, name: server.catalog.find(uuid)?.name ?? null });

  const tokenView = (t: TokenRecord) => ({
    id: t.id,
    name: t.name,
    scope: t.scope,
    database: databaseRef(t.database_uuid),
    created_at: t.created_at,
    revoked_at: t.revoked_at,
  });

  app.get('/whoami', (c) => {
    const grant = c.get('grant');
    return c.json(
      success({
        token_id: grant.tokenId,
        scope: grant.scope,
        database: databaseRef(grant.databaseUuid),
        dev: server.settings.allowUnauthenticated && grant.tokenId === UNAUTHENTICATED,
        node: server.settings.node ?? null,
        history: server.settings.history,
        account_id: server.settings.accountId,
        region: server.settings.region,
      }),
    );
  });

  // Tokens are written to this node's catalogue, as `dione token` does; in cluster mode the shared
  // catalogue takes them from there (its poll) and every node has them within about a second.
  app.get('/tokens', (c) => {
    authorize(c.get('grant'), 'admin');
    return c.json(success({ tokens: server.catalog.tokens().map(tokenView) }));
  });

  app.post('/tokens', async (c) => {
    authorize(c.get('grant'), 'admin');
    const body = await jsonBody(c, tokenBody);
    let uuid: string | null = null;
    if (body.database != null) {
      const record = await lookUp(server, body.database);
      if (!record) throw new ApiError(404, ErrorCodes.notFound, 'database not found');
      uuid = record.uuid;
    }
    const name = body.name?.trim() ? body.name.trim() : null;
    const { token, record } = createToken(server.catalog, body.scope, uuid, name);
    return c.json(success({ token, record: tokenView(record) }));
  });

  app.delete('/tokens/:id', (c) => {
    authorize(c.get('grant'), 'admin');
    const id = c.req.param('id');
    const record = server.catalog.token(id);
    if (!record) throw new ApiError(404, ErrorCodes.notFound, `token not found: ${id}`);
    if (record.revoked_at !== null || !server.catalog.revokeToken(id)) throw new ApiError(404, ErrorCodes.notFound, `token ${id} is already revoked`);
    return c.json(success({ id, revoked_at: server.catalog.token(id)?.revoked_at ?? new Date().toISOString() }));
  });

  /**
   * A database as the list shows it: sizes from its host when it is open here, else the file's size
   * (listing opens nothing: a read token paging through thousands of databases must not evict the hot
   * ones), and where it is written and copied.
   */
  const describe = async (record: DatabaseRecord, copies: NodeCopies[]) => {
    const open = server.pool.isOpen(record.uuid);
    let details: { num_tables: number | null; file_size: number | null; error?: string } = { num_tables: null, file_size: null };
    if (open) {
      try {
        const info = await hostCall(record, { op: 'info' });
        details = { num_tables: info.num_tables, file_size: info.file_size };
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        details.error = e.message;
      }
    } else details.file_size = closedFileSize(server.catalog.file(record.uuid));
    let primary: { node: string; region: string } | null = { node: server.settings.node ?? 'local', region: server.settings.region };
    let replicas: { node: string; region: string; sequence: number; behind?: number }[] = [];
    if (server.clusterCatalog) {
      try {
        // Every node's open copy (asked over NATS); lag counted against the newest commit anyone knows of.
        const positions = copies.flatMap((n) => n.copies.filter((c) => c.uuid === record.uuid).map((c) => ({ ...c, node: n.node, region: n.region })));
        const holder = positions.find((p) => p.role === 'primary');
        // Open here, its host also knows the lease holder and the log's end; else the copies tell.
        const where = open ? await hostCall(record, { op: 'placement' }) : undefined;
        primary = where ? where.primary && { node: where.primary.node, region: where.primary.region } : holder ? { node: holder.node, region: holder.region } : null;
        const known = [where?.newest ?? null, ...positions.filter((p) => p.role === 'primary').map((p) => p.sequence)].filter((n): n is number => n !== null);
        const newest = known.length ? Math.max(...known) : undefined;
        replicas = positions
          .filter((p) => p.role === 'follower')
          .sort((a, b) => a.node.localeCompare(b.node))
          .map((p) => ({ node: p.node, region: p.region, sequence: p.sequence, ...(newest === undefined ? {} : { behind: Math.max(0, newest - p.sequence) }) }));
      } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        primary = null;
        details.error ??= e.message;
      }
    }
    return {
      uuid: record.uuid,
      name: record.name,
      created_at: record.created_at,
      num_tables: details.num_tables,
      file_size: details.file_size,
      read_replication: { mode: record.read_replication },
      open,
      primary,
      replicas,
      ...(details.error === undefined ? {} : { error: details.error }),
    };
  };

  app.get('/databases', async (c) => {
    const grant = c.get('grant');
    authorize(grant, 'read');
    const page = integerParam(c.req.query('page'), 'page', 1, Number.MAX_SAFE_INTEGER, 1);
    const perPage = integerParam(c.req.query('per_page'), 'per_page', 1, PER_PAGE.max, PER_PAGE.default);
    const all = server.catalog.list().filter((d) => grant.databaseUuid === null || d.uuid === grant.databaseUuid);
    const slice = all.slice((page - 1) * perPage, page * perPage);
    const copies = server.placements ? await server.placements.copies(slice.map((d) => d.uuid)) : [];
    const databases = await mapLimit(slice, DESCRIBE_AT_ONCE, (record) => describe(record, copies));
    return c.json(success({ databases, page, per_page: perPage, total_count: all.length }));
  });

  app.get('/databases/:db/commits', async (c) => {
    const record = await database(c);
    if (!server.settings.history) throw new ApiError(400, ErrorCodes.badRequest, HISTORY_OFF);
    const untilText = c.req.query('until');
    const sinceText = c.req.query('since');
    const until = untilText === undefined ? Date.now() : timeParam(untilText, 'until');
    const since = sinceText === undefined ? until - DAY_MS : timeParam(sinceText, 'since');
    const buckets = integerParam(c.req.query('buckets'), 'buckets', 1, BUCKETS.max, BUCKETS.default);
    if (since >= until) {
      throw new ApiError(400, ErrorCodes.badRequest, `Invalid range: since (${new Date(since).toISOString()}) must be before until (${new Date(until).toISOString()})`);
    }
    // Any node answers from the database's history (in a cluster, the shared one): no relay.
    return c.json(success(await hostCall(record, { op: 'commits', since, until, buckets })));
  });

  return app;
}
