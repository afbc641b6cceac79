// The HTTP application: routes, authentication, errors in each protocol's shape, request logs.
import { type MiddlewareHandler, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AuthError, authenticate, type Authenticator } from './auth.ts';
import type { Env, ServerContext } from './context.ts';
import { ErrorCodes, envelopeError } from './protocols/envelope.ts';
import { MALFORMED_PATH, pathDecodes } from './protocols/requests.ts';
import { bindingRoutes } from './routes/database-protocols.ts';
import { ApiError, restRoutes } from './routes/rest.ts';
import { transferUrls } from './routes/transfer.ts';

export function createApp(server: ServerContext, isServing: () => boolean, resolveGrant: Authenticator) {
  const app = new Hono<Env>();

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const ms = performance.now() - started;
    const route = c.req.routePath;
    server.metrics.requests.inc({ route, status: `${Math.floor(c.res.status / 100)}xx` });
    if (route === '/healthz' || route === '/metrics') return;
    const rows = c.get('logRows');
    server.logger.info(
      { method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(ms * 100) / 100, database: c.get('logDatabase'), rows_read: rows?.read, rows_written: rows?.written },
      'request',
    );
  });

  // The router decodes each path segment once, leaving what does not decode as it came; such a
  // path names nothing, and is told so before anything else looks at it.
  app.use(async (c, next) => {
    if (c.req.url.includes('%') && !pathDecodes(new URL(c.req.url).pathname)) throw new ApiError(400, ErrorCodes.badRequest, MALFORMED_PATH);
    return next();
  });

  const auth = authenticate(resolveGrant);
  const metricsAccess: MiddlewareHandler<Env> = server.settings.metricsPublic ? (_c, next) => next() : auth;

  app.get('/healthz', (c) => (isServing() ? c.text('ok') : c.text('starting', 503)));
  app.get('/metrics', metricsAccess, async (c) => c.text(await server.metrics.registry.metrics(), 200, { 'content-type': server.metrics.registry.contentType }));

  app.route('/dione', transferUrls(server));

  app.use(
    bodyLimit({
      maxSize: server.settings.maxBodyBytes,
      onError: (c) => c.json(envelopeError(ErrorCodes.tooLarge, `Request body is larger than ${server.settings.maxBodyBytes} bytes`), 413),
    }),
  );
  app.use('/client/v4/*', auth);
  app.use('/query', auth);
  app.use('/execute', auth);
  app.use('/dione/v1/*', auth);

  app.route('/client/v4', restRoutes(server));
  app.route('/', bindingRoutes(server));

  app.notFound((c) => c.json(envelopeError(ErrorCodes.notFound, `No route for ${c.req.method} ${c.req.path}`), 404));

  app.onError((error, c) => {
    const d1Protocol = c.req.path === '/query' || c.req.path === '/execute' || c.req.path.startsWith('/dione/v1/');
    if (error instanceof AuthError || error instanceof ApiError) {
      const code = error instanceof ApiError ? error.code : error.status === 401 ? ErrorCodes.authentication : ErrorCodes.forbidden;
      if (d1Protocol) return c.json({ success: false, error: error.message }, error.status as 400);
      return c.json(envelopeError(code, error.message), error.status as 400);
    }
    server.logger.error({ err: error, path: c.req.path }, 'unhandled error');
    const message = 'Internal error in the Dione server; see its log';
    return d1Protocol ? c.json({ success: false, error: message }, 500) : c.json(envelopeError(ErrorCodes.sql, message), 500);
  });

  return app;
}
