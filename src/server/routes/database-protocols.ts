// What the binding protocols address a database by (workerd's binding names it in a header its
// service injects; dione/client in the path), and dione/client's dump route. Their SQL endpoints
// are the fast path's (fast-path.ts).
import { createReadStream, fstatSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import { authorize, reaches } from '../auth.ts';
import type { DatabaseRecord } from '../catalog.ts';
import type { Env, ServerContext } from '../context.ts';
import { ErrorCodes } from '../protocols/envelope.ts';
import { ApiError, apiErrorOf } from '../protocols/api-errors.ts';

export const DATABASE_HEADER = 'x-dione-database';

/** Dumps (dione/client's dump()) in progress at once on a server, and for one token. */
export const MAX_DUMPS = 4;
export const MAX_DUMPS_PER_TOKEN = 2;

/** A dump whose answer nobody reads for this long is ended: its slot and disk go to others. */
export const DUMP_STALL_MS = 60_000;

/** The database a binding-protocol request names, if the grant reaches it. */
export async function findDatabase(server: ServerContext, idOrName: string | undefined, grant: Env['Variables']['grant']): Promise<DatabaseRecord> {
  if (!idOrName) throw new ApiError(400, ErrorCodes.badRequest, `Name the database in the ${DATABASE_HEADER} header`);
  const record = await visibleDatabase(server, idOrName, grant);
  if (!record) throw new ApiError(404, ErrorCodes.notFound, `database not found: ${idOrName}`);
  authorize(grant, 'read', record);
  return record;
}

/**
 * The database `idOrName` names, if the grant reaches it. A token for one database is answered
 * from that database's record alone: another name is not looked up, so neither the answer nor
 * its time says whether that name exists (a lookup that finds a record is cached, one that does
 * not asks SQLite: ~20 µs apart).
 */
export async function visibleDatabase(server: ServerContext, idOrName: string, grant: Env['Variables']['grant']): Promise<DatabaseRecord | undefined> {
  if (grant.databaseUuid !== null) {
    const own = await lookUp(server, grant.databaseUuid);
    return own && (own.uuid === idOrName || own.name === idOrName) ? own : undefined;
  }
  const record = await lookUp(server, idOrName);
  return record && reaches(grant, record) ? record : undefined;
}

/**
 * A database by id or name. In cluster mode a name this node has not heard of yet may be one another
 * node created a moment ago: the shared catalogue is read up to its newest write before saying no.
 */
export async function lookUp(server: ServerContext, idOrName: string): Promise<DatabaseRecord | undefined> {
  const record = server.catalog.find(idOrName);
  if (record || !server.clusterCatalog) return record;
  await server.clusterCatalog.readToLatest().catch(() => {});
  return server.catalog.find(idOrName);
}

export function bindingRoutes(server: ServerContext) {
  const app = new Hono<Env>();
  const lookup = (idOrName: string | undefined, grant: Env['Variables']['grant']) => findDatabase(server, idOrName, grant);

  // Each dump is a copy of its database on disk until its answer is read: a few at a time.
  let dumping = 0;
  // A token's own dumps, so that one token left unread cannot take every slot.
  const dumpsOf = new Map<string, number>();
  app.post('/dione/v1/databases/:db/dump', async (c) => {
    const record = await lookup(c.req.param('db'), c.get('grant')); // decoded once, by the router
    const token = c.get('grant').tokenId;
    if (dumping >= MAX_DUMPS) throw new ApiError(429, ErrorCodes.badRequest, `Too many dumps in progress (at most ${MAX_DUMPS} at a time): try again when one has been read`);
    if ((dumpsOf.get(token) ?? 0) >= MAX_DUMPS_PER_TOKEN) {
      throw new ApiError(429, ErrorCodes.badRequest, `Too many dumps in progress for this token (at most ${MAX_DUMPS_PER_TOKEN} at a time): read the ones it started first`);
    }
    dumping++;
    dumpsOf.set(token, (dumpsOf.get(token) ?? 0) + 1);
    const done = () => {
      dumping--;
      const left = dumpsOf.get(token)! - 1;
      if (left === 0) dumpsOf.delete(token);
      else dumpsOf.set(token, left);
    };
    let streaming = false;
    const dir = mkdtempSync(path.join(tmpdir(), 'dione-dump-'));
    try {
      const file = path.join(dir, 'dump.sqlite');
      try {
        await server.pool.call({ uuid: record.uuid, file: server.catalog.file(record.uuid) }, { op: 'dump', file });
      } catch (e) {
        throw apiErrorOf(e);
      }
      // Streamed from the open file, which is gone from the folder at once (its blocks stay until the answer is read).
      const fd = openSync(file, 'r');
      const size = fstatSync(fd).size;
      const stream = createReadStream('', { fd });
      // An answer nobody reads (or reads no further) is ended after a while.
      let read = -1;
      const watch = setInterval(() => {
        if (stream.bytesRead === read) stream.destroy();
        read = stream.bytesRead;
      }, DUMP_STALL_MS);
      watch.unref();
      stream.once('close', () => {
        clearInterval(watch);
        done();
      });
      streaming = true;
      return new Response(Readable.toWeb(stream) as ReadableStream, { headers: { 'content-type': 'application/vnd.sqlite3', 'content-length': String(size) } });
    } finally {
      if (!streaming) done();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  return app;
}
