// POST /client/v4/graphql: Cloudflare's GraphQL Analytics API for what D1 tools ask (schema in
// ../graphql/schema.ts), behind the REST API's authentication. Every problem is answered in
// GraphQL's shape, `{data: null, errors: [{message}]}`: a body that is not a GraphQL request with
// 400, a query that does not parse or asks for what the schema lacks with 200, as Cloudflare does.
import { execute, type GraphQLError, Lexer, parse, Source, specifiedRules, TokenKind, validate, VariablesInAllowedPositionRule } from 'graphql';
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
export const GRAPHQL_LIMITS = { queryChars: 100_000, tokens: 5_000, depth: 64 };

const OPENING = new Set<string>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L]);
const CLOSING = new Set<string>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R]);

/**
 * How deep a document's braces, brackets and parentheses nest, read token by token (no recursion).
 * graphql-js parses, validates and coerces values recursively: a filter of a thousand nested ANDs
 * ran out of stack. Undefined when the text does not lex (parse then says why).
 */
function nestingOf(query: string): number | undefined {
  try {
    const lexer = new Lexer(new Source(query));
    let depth = 0;
    let deepest = 0;
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (OPENING.has(token.kind)) deepest = Math.max(deepest, ++depth);
      else if (CLOSING.has(token.kind)) depth--;
    }
    return deepest;
  } catch {
    return undefined;
  }
}

/** How deep a JSON value nests (objects and arrays), without recursion; stops counting past `limit`. */
function depthOf(value: unknown, limit: number): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > limit) return deepest;
    for (const item of Array.isArray(v) ? v : Object.values(v)) stack.push([item, depth + 1]);
  }
  return deepest;
}

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
    // (The variables' own object is a level of its own.)
    const nested =
      (nestingOf(request.query) ?? 0) > GRAPHQL_LIMITS.depth ? 'the query nests' : request.variables && depthOf(request.variables, GRAPHQL_LIMITS.depth + 1) > GRAPHQL_LIMITS.depth + 1 ? 'the variables nest' : undefined;
    if (nested) {
      const message = `${nested} deeper than ${GRAPHQL_LIMITS.depth} levels of braces, brackets and parentheses`;
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
