// What the binding protocols address a database by (workerd's binding names it in a header its
// service injects; dione/client in the path), and dione/client's dump route. Their SQL endpoints
// are the fast path's (fast-path.ts).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Hono } from 'hono';
import { authorize } from '../auth.ts';
import type { Env, ServerContext } from '../context.ts';
import { ErrorCodes } from '../protocols/envelope.ts';
import { ApiError, apiErrorOf } from '../protocols/api-errors.ts';

export const DATABASE_HEADER = 'x-dione-database';

/** The database a binding-protocol request names, if the grant reaches it. */
export function findDatabase(server: ServerContext, idOrName: string | undefined, grant: Env['Variables']['grant']) {
  if (!idOrName) throw new ApiError(400, ErrorCodes.badRequest, `Name the database in the ${DATABASE_HEADER} header`);
  const record = server.catalog.find(idOrName);
  if (!record) throw new ApiError(404, ErrorCodes.notFound, `database not found: ${idOrName}`);
  authorize(grant, 'read', record);
  return record;
}

export function bindingRoutes(server: ServerContext) {
  const app = new Hono<Env>();
  const lookup = (idOrName: string | undefined, grant: Env['Variables']['grant']) => findDatabase(server, idOrName, grant);

  app.post('/dione/v1/databases/:db/dump', async (c) => {
    const record = lookup(c.req.param('db'), c.get('grant')); // decoded once, by the router
    const dir = mkdtempSync(path.join(tmpdir(), 'dione-dump-'));
    try {
      const file = path.join(dir, 'dump.sqlite');
      try {
        await server.pool.call({ uuid: record.uuid, file: server.catalog.file(record.uuid) }, { op: 'dump', file });
      } catch (e) {
        throw apiErrorOf(e);
      }
      return new Response(readFileSync(file), { headers: { 'content-type': 'application/vnd.sqlite3' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  return app;
}
