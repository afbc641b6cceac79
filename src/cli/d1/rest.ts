// The Cloudflare-style REST API of a Dione server (/client/v4/…), for the commands that manage
// databases and reach their history: create, list, info, delete, export, time travel. Every request
// names the token scope it needs, so a refused token gets a hint that says which one to make.
import type { TokenScope } from '../../server/catalog.ts';
import { CliError } from './output.ts';

interface Envelope<T> {
  success: boolean;
  result: T;
  errors?: { code: number; message: string }[];
  result_info?: { page: number; per_page: number; count: number; total_count: number };
}

export interface DatabaseInfo {
  uuid: string;
  name: string;
  created_at?: string;
  version?: string;
  num_tables?: number;
  file_size?: number;
  [key: string]: unknown;
}

/** A failed request: its HTTP status, for callers that handle some (404) themselves. */
export class ApiFailure extends CliError {
  constructor(
    message: string,
    readonly status: number,
    private readonly request: { resource: string; errors: { code: number; message: string }[] } = { resource: '', errors: [] },
  ) {
    super(message);
  }

  /** wrangler's APIError, as its --json prints one. */
  override json(): Record<string, unknown> {
    const { resource, errors } = this.request;
    if (!resource) return super.json();
    const account = /^\/accounts\/([^/]+)/.exec(resource)?.[1];
    return {
      text: `A request to the Cloudflare API (${resource.split('?')[0]}) failed.`,
      notes: errors.map((e) => ({ text: `${e.message} [code: ${e.code}]` })),
      kind: 'error',
      name: 'APIError',
      code: errors[0]?.code,
      ...(account ? { accountTag: account } : {}),
    };
  }
}

export function serverUrl(url: string | undefined): string {
  const value = url ?? process.env.DIONE_URL;
  if (!value) {
    throw new CliError('No Dione server given for --remote: pass --url http://host:port or set DIONE_URL (and DIONE_TOKEN to a token from `dione token create`).');
  }
  try {
    return new URL(value).origin;
  } catch {
    throw new CliError(`"${value}" is not a URL: give the Dione server as http://host:port (--url or DIONE_URL).`);
  }
}

/** What to do when the server refused the token (401: none or unknown; 403: too narrow), for an operation that needs `needs`. */
export function tokenHint(status: 401 | 403, needs: TokenScope): string {
  const make = `\`dione token create --scope ${needs}\` (run where the server keeps its data)`;
  if (status === 401) return ` Set DIONE_TOKEN to a token of scope ${needs} or wider: ${make}.`;
  const reach = needs === 'admin' ? 'on every database' : 'on this database';
  return ` The token in DIONE_TOKEN is not allowed to do this: it needs scope ${needs} ${reach}. Make one with ${make}.`;
}

/** The status a binding error stands for when the server refused its token (the texts of src/server/auth.ts), else undefined. */
export function tokenRefusal(message: string): 401 | 403 | undefined {
  if (message.includes('Authentication error')) return 401;
  if (/This token('s scope| can only read| is for)/.test(message)) return 403;
  return undefined;
}

export class RestClient {
  private account: string | undefined;
  readonly token: string | undefined;

  constructor(readonly url: string) {
    this.token = process.env.DIONE_TOKEN || undefined;
  }

  async request<T>(method: string, resource: string, body: unknown, needs: TokenScope): Promise<Envelope<T>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.url}/client/v4${resource}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      const cause = e instanceof Error && e.cause instanceof Error ? e.cause.message : String(e);
      throw new CliError(`Could not reach the Dione server at ${this.url} (${cause}). Is \`dione serve\` running there? Check --url / DIONE_URL.`);
    }
    const text = await response.text();
    let envelope: Envelope<T>;
    try {
      envelope = JSON.parse(text) as Envelope<T>;
    } catch {
      throw new ApiFailure(`The server at ${this.url} answered ${method} ${resource} with HTTP ${response.status} and no JSON: ${text.slice(0, 200)}`, response.status);
    }
    if (!response.ok || !envelope.success) {
      const errors = (envelope.errors ?? []).map((e) => `${e.message} [code: ${e.code}]`).join('; ') || `HTTP ${response.status}`;
      const hint = response.status === 401 || response.status === 403 ? tokenHint(response.status, needs) : '';
      throw new ApiFailure(`A request to the Dione API (${method} ${resource}) failed. ${errors}${hint}`, response.status, { resource, errors: envelope.errors ?? [] });
    }
    return envelope;
  }

  /** The account id (DIONE_ACCOUNT_ID, or the server's answer), asked for on the way to something that needs `needs`. */
  async accountId(needs: TokenScope): Promise<string> {
    if (this.account) return this.account;
    const fromEnv = process.env.DIONE_ACCOUNT_ID;
    if (fromEnv) return (this.account = fromEnv);
    const { result } = await this.request<{ account: { id: string } }[]>('GET', '/memberships', undefined, needs);
    const id = result[0]?.account.id;
    if (!id) throw new CliError(`The server at ${this.url} lists no account for this token.`);
    return (this.account = id);
  }

  /** The databases' resource, for a request that needs `needs`. */
  async databases(needs: TokenScope): Promise<string> {
    return `/accounts/${await this.accountId(needs)}/d1/database`;
  }

  /** A request about one database: /accounts/:account/d1/database/:uuid[/more]. */
  async onDatabase<T>(method: string, uuid: string, more: string, body: unknown, needs: TokenScope): Promise<T> {
    return (await this.request<T>(method, `${await this.databases(needs)}/${uuid}${more}`, body, needs)).result;
  }

  /** The database with this uuid or name, or undefined when the server has none; `needs` is what the caller will do with it. */
  async find(nameOrId: string, needs: TokenScope = 'read'): Promise<DatabaseInfo | undefined> {
    try {
      return await this.onDatabase<DatabaseInfo>('GET', encodeURIComponent(nameOrId), '', undefined, needs);
    } catch (e) {
      if (e instanceof ApiFailure && e.status === 404) return undefined;
      throw e;
    }
  }

  async list(): Promise<DatabaseInfo[]> {
    const all: DatabaseInfo[] = [];
    for (let page = 1; ; page++) {
      const { result } = await this.request<DatabaseInfo[]>('GET', `${await this.databases('read')}?per_page=100&page=${page}`, undefined, 'read');
      all.push(...result);
      if (result.length < 100) return all;
    }
  }
}
