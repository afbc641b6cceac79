// POST /client/v4/graphql: Cloudflare's GraphQL Analytics API for what D1 tools ask (schema in
// ../graphql/schema.ts), behind the REST API's authentication. Every problem is answered in
// GraphQL's shape, `{data: null, errors: [{message}]}`: a body that is not a GraphQL request with
// 400, a query that does not parse or asks for what the schema lacks with 200, as Cloudflare does.
import { execute, type GraphQLError, parse, specifiedRules, validate, VariablesInAllowedPositionRule } from 'graphql';
import type { Context } from 'hono';
import type { Env, ServerContext } from '../context.ts';
import { type AnalyticsContext, analyticsSchema, MAX_DATASETS } from '../graphql/schema.ts';

// wrangler declares its filter variable as ZoneWorkersRequestsFilter_InputObject and passes it
// where the schema has the dataset's own filter type; Cloudflare accepts that, so this rule goes
// (the resolvers check the values they get).
const RULES = specifiedRules.filter((rule) => rule !== VariablesInAllowedPositionRule);

interface GraphqlRequest {
  query: string;
  variables?: Record<string, unknown>;
  operationName?: string;
}

const failure = (message: string) => ({ data: null, errors: [{ message }] });

/**
 * Bounds on one document, which is parsed and run on the server's HTTP thread: wrangler's and the
 * console's questions are a few hundred tokens and one or two datasets (MAX_DATASETS bounds those).
 */
export const GRAPHQL_LIMITS = { queryChars: 100_000, tokens: 5_000 };

function requestOf(text: string): GraphqlRequest | string {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    return `the request body is not JSON (${(e as Error).message}); send {"query": "...", "variables": {...}}`;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'the request body must be a JSON object {"query": "...", "variables": {...}}';
  const { query, variables, operationName } = body as Record<string, unknown>;
  if (typeof query !== 'string' || query.trim() === '') return 'the request has no "query" (a GraphQL document as a string)';
  if (variables !== undefined && variables !== null && (typeof variables !== 'object' || Array.isArray(variables))) return '"variables" must be a JSON object';
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string') return '"operationName" must be a string';
  return { query, variables: (variables ?? undefined) as Record<string, unknown> | undefined, operationName: (operationName ?? undefined) as string | undefined };
}

const messages = (errors: readonly GraphQLError[]) => errors.map((e) => ({ message: e.message, path: e.path, locations: e.locations }));

export function graphqlRoute(server: ServerContext) {
  const schema = analyticsSchema();
  return async (c: Context<Env>) => {
    const request = requestOf(await c.req.text());
    if (typeof request === 'string') {
      c.set('logReason', request);
      return c.json(failure(request), 400);
    }
    if (request.query.length > GRAPHQL_LIMITS.queryChars) {
      const message = `the query is longer than ${GRAPHQL_LIMITS.queryChars} characters`;
      c.set('logReason', message);
      return c.json(failure(message), 200);
    }
    let document: ReturnType<typeof parse>;
    try {
      document = parse(request.query, { maxTokens: GRAPHQL_LIMITS.tokens });
    } catch (e) {
      c.set('logReason', (e as Error).message);
      return c.json(failure((e as Error).message), 200);
    }
    const invalid = validate(schema, document, RULES);
    if (invalid.length > 0) {
      c.set('logReason', invalid[0]!.message);
      return c.json({ data: null, errors: messages(invalid) }, 200);
    }
    const grant = c.get('grant');
    const contextValue: AnalyticsContext = {
      source: server.stats,
      accountId: server.settings.accountId,
      databases: grant.databaseUuid === null ? undefined : [grant.databaseUuid],
      datasetsLeft: MAX_DATASETS,
    };
    const result = await execute({ schema, document, variableValues: request.variables, operationName: request.operationName, contextValue });
    if (result.errors?.length) c.set('logReason', result.errors[0]!.message);
    return c.json({ data: result.data ?? null, errors: result.errors?.length ? messages(result.errors) : null }, 200);
  };
}
