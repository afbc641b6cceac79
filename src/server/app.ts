// The HTTP application: routes, authentication, errors in each protocol's shape, request logs.
import { type MiddlewareHandler, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { AuthError, authenticate, type Authenticator } from './auth.ts';
import type { Env, ServerContext } from './context.ts';
import { ErrorCodes, envelopeError } from './protocols/envelope.ts';
import { MALFORMED_PATH, pathDecodes } from './protocols/requests.ts';
import { bindingRoutes } from './routes/database-protocols.ts';
import { consoleApiRoutes } from './routes/console-api.ts';
import { consolePages } from './routes/console-pages.ts';
import { ApiError } from './protocols/api-errors.ts';
import { errorAnswer, recordRequest, tooLargeMessage } from './request-log.ts';
import { restRoutes } from './routes/rest.ts';
import { transferUrls } from './routes/transfer.ts';

export function createApp(server: ServerContext, isServing: () => boolean, resolveGrant: Authenticator) {
  const app = new Hono<Env>();

  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const reason = c.get('logReason') ?? (c.res.status >= 400 ? await reasonInBody(c.res) : undefined);
    recordRequest(server, {
      method: c.req.method,
      path: c.req.path,
      route: c.req.routePath,
      status: c.res.status,
      ms: performance.now() - started,
      database: c.get('logDatabase') ?? databaseInPath(c.req.path),
      rows: c.get('logRows'),
      token: c.get('grant')?.tokenId,
      reason,
    });
  });

  // The router decodes each path segment once, leaving what does not decode as it came; such a
  // path names nothing, and is told so before anything else looks at it.
  app.use(async (c, next) => {
    if (c.req.url.includes('%') && !pathDecodes(new URL(c.req.url).pathname)) throw new ApiError(400, ErrorCodes.badRequest, MALFORMED_PATH);
    return next();
  });

  const auth = authenticate(resolveGrant);
  // Metrics name every database and count its traffic: a token made for one database does not read them.
  const metricsAccess: MiddlewareHandler<Env> = server.settings.metricsPublic
    ? (_c, next) => next()
    : (c, next) =>
        auth(c, async () => {
          if (c.get('grant').databaseUuid !== null) throw new AuthError(403, 'Metrics cover every database: this token is for one database only');
          await next();
        });

  app.get('/healthz', (c) => (isServing() ? c.text('ok') : c.text('starting', 503)));
  app.get('/metrics', metricsAccess, async (c) => c.text(await server.metrics.registry.metrics(), 200, { 'content-type': server.metrics.registry.contentType }));

  app.route('/dione', transferUrls(server));

  // The token before the body: bodyLimit reads a chunked body into memory to count it, so without a
  // token a client could make the server hold up to the limit per connection (an attacker's review).
  app.use('/client/v4/*', auth);
  // POST /query, /execute and /dione/v1/databases/:db/execute are the fast path's (fast-path.ts).
  app.use('/dione/v1/*', auth);
  app.use(
    bodyLimit({
      maxSize: server.settings.maxBodyBytes,
      onError: (c) => c.json(envelopeError(ErrorCodes.tooLarge, tooLargeMessage(server.settings.maxBodyBytes)), 413),
    }),
  );

  app.route('/client/v4', restRoutes(server));
  app.route('/dione/v1', consoleApiRoutes(server));
  if (server.settings.console) app.route('/', consolePages());
  app.route('/', bindingRoutes(server));

  app.notFound((c) => c.json(envelopeError(ErrorCodes.notFound, `No route for ${c.req.method} ${c.req.path}`), 404));

  app.onError((error, c) => {
    const answer = errorAnswer(server, error, c.req.path);
    c.set('logReason', answer.reason);
    return c.json(answer.body, answer.status as 400);
  });

  return app;
}

/** The database a REST path names (its id or name, as given). */
function databaseInPath(path: string): string | undefined {
  const match = /\/d1\/database\/([^/]+)/.exec(path);
  return match ? match[1] : undefined;
}

/** The error message of a failed answer a route built itself (a Cloudflare envelope or `{error}`). */
async function reasonInBody(response: Response): Promise<string | undefined> {
  if (!response.headers.get('content-type')?.includes('json')) return undefined;
  try {
    const body = (await response.clone().json()) as { errors?: { message?: string }[]; error?: string };
    return body.errors?.[0]?.message ?? body.error ?? undefined;
  } catch {
    return undefined;
  }
}
