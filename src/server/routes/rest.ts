// Cloudflare's D1 REST API (client/v4), as wrangler, the cloudflare SDK, drizzle-kit and Prisma
// call it: databases, SQL (/query, /raw), export/import and Time Travel; beyond D1, forks.
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { AuthError, authorize } from '../auth.ts';
import type { DatabaseRecord } from '../catalog.ts';
import type { Env, ServerContext } from '../context.ts';
import { parseTimestamp } from '../../api/time-travel.ts';
import type { DatabaseInfo, HistoryPointMessage, HostCallOf, HostOp, HostOperations } from '../host/protocol.ts';
import { ApiError, apiErrorOf, jsonBody } from '../protocols/api-errors.ts';
import { ErrorCodes, success } from '../protocols/envelope.ts';
import { checkNewDatabase, NewDatabaseRefused } from '../new-database.ts';
import { visibleDatabase } from './database-protocols.ts';
import { graphqlRoute } from './graphql.ts';
import { primaryOf, relay, runSql } from './sql.ts';
import { endTransfers, transferRoutes } from './transfer.ts';

const createBody = z.object({
  name: z.string(),
  primary_location_hint: z.string().optional(),
  jurisdiction: z.string().optional(),
  // Beyond D1: the new database's id, chosen by the caller (a wrangler config's database_id).
  uuid: z.string().optional(),
});
const updateBody = z.object({ read_replication: z.object({ mode: z.enum(['auto', 'disabled']) }) });
const forkBody = z.object({
  name: z.string(),
  bookmark: z.string().optional(),
  timestamp: z.union([z.string(), z.number()]).optional(),
});
const patchBody = z.object({ read_replication: z.object({ mode: z.enum(['auto', 'disabled']) }).optional() });

/** A database's file and everything beside it: WAL, shared memory, journal, write log. */
function removeFiles(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(file + suffix, { force: true });
  rmSync(`${file}-history`, { recursive: true, force: true });
}

function timestampOf(text: string): number {
  const date = parseTimestamp(text);
  if (!date) throw new ApiError(400, ErrorCodes.badRequest, `Invalid timestamp '${text}'. Please provide a valid Unix timestamp or ISO string`);
  return date.getTime();
}

/** Exactly one of a bookmark and a timestamp names the point. */
function pointOf(bookmark: string | undefined, timestamp: string | undefined): HistoryPointMessage {
  if (bookmark !== undefined && timestamp !== undefined) throw new ApiError(400, ErrorCodes.badRequest, 'Provide a bookmark or a timestamp, not both');
  if (bookmark !== undefined) return { bookmark };
  if (timestamp !== undefined) return { timestamp: timestampOf(timestamp) };
  throw new ApiError(400, ErrorCodes.badRequest, 'Provide a bookmark or a timestamp');
}

export function restRoutes(server: ServerContext) {
  const app = new Hono<Env>();

  app.use('/accounts/:account/*', async (c, next) => {
    if (c.req.param('account') !== server.settings.accountId) {
      throw new ApiError(404, ErrorCodes.notFound, `Unknown account ${c.req.param('account')}: this server's account id is ${server.settings.accountId}`);
    }
    return next();
  });

  /** A name (and a chosen id) for a new database: valid, and not taken. */
  const checkNew = (name: string, uuid?: string): void => {
    try {
      checkNewDatabase(server.catalog, name, uuid);
    } catch (e) {
      if (!(e instanceof NewDatabaseRefused)) throw e;
      throw new ApiError(400, e.reason === 'name-taken' ? ErrorCodes.nameTaken : ErrorCodes.badRequest, e.message);
    }
  };

  /** The answer to creating a database (and to forking one). */
  const created = (record: DatabaseRecord) => ({
    uuid: record.uuid,
    name: record.name,
    created_at: record.created_at,
    version: 'production',
    created_in_region: server.settings.region,
    jurisdiction: null,
    read_replication: { mode: record.read_replication },
  });

  /**
   * The database named by the :db path segment (an id or a name), visible to the caller. The
   * router has decoded the segment once; decoding it again would make `%2525` name `%`.
   */
  const database = async (c: { req: { param(name: 'db'): string } }, grant: Env['Variables']['grant']): Promise<DatabaseRecord> => {
    const record = await visibleDatabase(server, c.req.param('db'), grant);
    if (!record) throw new ApiError(404, ErrorCodes.notFound, 'database not found');
    authorize(grant, 'read', record);
    return record;
  };

  const info = (record: DatabaseRecord): Promise<DatabaseInfo> => hostCall(record, { op: 'info' });

  const describe = async (record: DatabaseRecord, fields?: string[]) => {
    const needsInfo = !fields || fields.some((f) => f === 'num_tables' || f === 'file_size');
    const details = needsInfo ? await info(record) : undefined;
    const full: Record<string, unknown> = {
      uuid: record.uuid,
      name: record.name,
      created_at: record.created_at,
      version: 'production',
      num_tables: details?.num_tables,
      file_size: details?.file_size,
      jurisdiction: null,
      read_replication: { mode: record.read_replication },
      running_in_region: server.settings.region,
    };
    return fields ? Object.fromEntries(fields.filter((f) => Object.hasOwn(full, f)).map((f) => [f, full[f]])) : full;
  };

  app.get('/accounts/:account/d1/database', (c) => {
    const grant = c.get('grant');
    // Whole numbers within range (page=1e309 read as Infinity, which JSON writes as null).
    const page = Math.min(Number.MAX_SAFE_INTEGER, Math.max(1, Math.floor(Number(c.req.query('page') ?? 1)) || 1));
    const perPage = Math.min(10_000, Math.max(1, Math.floor(Number(c.req.query('per_page') ?? 100)) || 100));
    const all = server.catalog.list(c.req.query('name') || undefined).filter((d) => grant.databaseUuid === null || d.uuid === grant.databaseUuid);
    const slice = all.slice((page - 1) * perPage, page * perPage);
    const result = slice.map((d) => ({ uuid: d.uuid, name: d.name, created_at: d.created_at, version: 'production', jurisdiction: null }));
    return c.json(success(result, { page, per_page: perPage, count: result.length, total_count: all.length }));
  });

  app.post('/accounts/:account/d1/database', async (c) => {
    authorize(c.get('grant'), 'admin');
    const body = await jsonBody(c, createBody);
    checkNew(body.name, body.uuid);
    const record = server.catalog.create(body.name, body.uuid);
    await server.clusterCatalog?.created(record);
    return c.json(success({ ...created(record), primary_location_hint: body.primary_location_hint ?? server.settings.region.toLowerCase() }));
  });

  app.get('/accounts/:account/d1/database/:db', async (c) => {
    const record = await database(c, c.get('grant'));
    const fields = c.req.query('fields')?.split(',').map((f) => f.trim()).filter(Boolean);
    return c.json(success(await describe(record, fields)));
  });

  // PUT replaces the settings (read_replication required); PATCH changes what it names.
  const update = (schema: z.ZodType<z.infer<typeof patchBody>>) => async (c: Context<Env, '/accounts/:account/d1/database/:db'>) => {
    const record = await database(c, c.get('grant'));
    authorize(c.get('grant'), 'admin', record);
    const body = await jsonBody(c, schema);
    const mode = body.read_replication?.mode ?? record.read_replication;
    if (mode !== record.read_replication) {
      server.catalog.setReadReplication(record.uuid, mode);
      await server.clusterCatalog?.changed({ ...record, read_replication: mode });
    }
    return c.json(success(await describe({ ...record, read_replication: mode })));
  };
  app.put('/accounts/:account/d1/database/:db', update(updateBody));
  app.patch('/accounts/:account/d1/database/:db', update(patchBody));

  app.delete('/accounts/:account/d1/database/:db', async (c) => {
    const record = await database(c, c.get('grant'));
    authorize(c.get('grant'), 'admin', record);
    await server.pool.stop(record.uuid);
    // The cluster first: when NATS cannot take the deletion, nothing is deleted anywhere.
    await server.clusterCatalog?.removed(record.uuid, record.name);
    server.catalog.remove(record.uuid);
    // A request that came in meanwhile may have opened it again; from here on none can (pool `exists`).
    await server.pool.stop(record.uuid);
    removeFiles(server.catalog.file(record.uuid));
    endTransfers(server, record.uuid);
    return c.json(success(null));
  });

  app.post('/accounts/:account/d1/database/:db/query', async (c) => runSql(server, c, await database(c, c.get('grant')), 'rest-query'));
  app.post('/accounts/:account/d1/database/:db/raw', async (c) => runSql(server, c, await database(c, c.get('grant')), 'rest-raw'));

  /** An operation on the database's host; its typed failures become the API's errors. */
  const hostCall = async <K extends HostOp>(record: DatabaseRecord, call: HostCallOf<K>): Promise<HostOperations[K]['value']> => {
    try {
      return await server.pool.call({ uuid: record.uuid, file: server.catalog.file(record.uuid) }, call);
    } catch (e) {
      throw apiErrorOf(e);
    }
  };
  const history = hostCall;

  app.get('/accounts/:account/d1/database/:db/time_travel/bookmark', async (c) => {
    const record = await database(c, c.get('grant'));
    const primary = await primaryOf(server, record);
    if (primary !== 'self') return relay(server, c, primary);
    const timestamp = c.req.query('timestamp');
    return c.json(success(await history(record, { op: 'bookmark', timestamp: timestamp === undefined ? undefined : timestampOf(timestamp) })));
  });

  app.post('/accounts/:account/d1/database/:db/time_travel/restore', async (c) => {
    const record = await database(c, c.get('grant'));
    authorize(c.get('grant'), 'write', record);
    const primary = await primaryOf(server, record);
    if (primary !== 'self') return relay(server, c, primary);
    const point = pointOf(c.req.query('bookmark'), c.req.query('timestamp'));
    return c.json(success(await history(record, { op: 'restore', point })));
  });

  // Beyond D1: a new database equal to this one at a point of its history.
  app.post('/accounts/:account/d1/database/:db/fork', async (c) => {
    const source = await database(c, c.get('grant'));
    authorize(c.get('grant'), 'admin');
    const primary = await primaryOf(server, source);
    if (primary !== 'self') return relay(server, c, primary);
    const body = await jsonBody(c, forkBody);
    checkNew(body.name);
    const point = pointOf(body.bookmark, body.timestamp === undefined ? undefined : String(body.timestamp));
    const uuid = randomUUID();
    const file = server.catalog.file(uuid);
    let forked: { bookmark: string; forkBookmark: string };
    try {
      forked = (await history(source, { op: 'fork', point, file })) as typeof forked;
    } catch (e) {
      removeFiles(file);
      throw e;
    }
    let record: DatabaseRecord;
    try {
      // Another request may have taken the name while this one forked: refused as before the fork.
      checkNew(body.name);
      record = server.catalog.create(body.name, uuid);
    } catch (e) {
      removeFiles(file);
      throw e;
    }
    try {
      await server.clusterCatalog?.created(record);
    } catch (e) {
      removeFiles(file);
      throw e;
    }
    // In a cluster, the fork's history starts here, from its file, before any other node can
    // take the new database (and start it empty).
    if (server.clusterCatalog) await primaryOf(server, record);
    return c.json(success({ ...created(record), forked_from: { uuid: source.uuid, bookmark: forked.bookmark }, bookmark: forked.forkBookmark }));
  });

  app.route('/accounts/:account/d1/database/:db', transferRoutes(server, database));

  // wrangler asks for analytics (d1 info, d1 insights) and, without an account id, for memberships.
  app.post('/graphql', graphqlRoute(server));
  app.get('/memberships', (c) =>
    c.json(success([{ id: server.settings.accountId, account: { id: server.settings.accountId, name: 'Dione' }, status: 'accepted' }], { page: 1, per_page: 20, count: 1, total_count: 1 })),
  );
  app.get('/accounts', (c) => c.json(success([{ id: server.settings.accountId, name: 'Dione' }], { page: 1, per_page: 20, count: 1, total_count: 1 })));

  return app;
}

export { AuthError };
