// The two SQL protocols addressed to one database: workerd's D1 binding protocol (POST /query and
// /execute at the root; the database comes from a header the binding's service injects) and
// Dione's own lossless protocol used by dione/client.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Hono } from 'hono';
import { authorize } from '../auth.ts';
import type { Env, ServerContext } from '../context.ts';
import { ErrorCodes } from '../protocols/envelope.ts';
import { ApiError } from './rest.ts';
import { runSql, SESSION_HEADER } from './sql.ts';

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

  for (const endpoint of ['/query', '/execute'] as const) {
    app.post(endpoint, (c) =>
      runSql(server, c, lookup(c.req.header(DATABASE_HEADER), c.get('grant')), 'd1', {
        resultsFormat: c.req.query('resultsFormat'),
        session: c.req.header(SESSION_HEADER) || undefined,
      }),
    );
  }

  app.post('/dione/v1/databases/:db/execute', (c) => runSql(server, c, lookup(c.req.param('db'), c.get('grant')), 'dione'));

  app.post('/dione/v1/databases/:db/dump', async (c) => {
    const record = lookup(c.req.param('db'), c.get('grant')); // decoded once, by the router
    const dir = mkdtempSync(path.join(tmpdir(), 'dione-dump-'));
    try {
      const file = path.join(dir, 'dump.sqlite');
      await server.pool.send(record.uuid, server.catalog.file(record.uuid), { op: 'dump', file }, 0);
      return new Response(readFileSync(file), { headers: { 'content-type': 'application/vnd.sqlite3' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  return app;
}
