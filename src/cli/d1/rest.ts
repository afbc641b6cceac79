// The Cloudflare-style REST API of a Dione server (/client/v4/…), for the commands that manage
// databases and move dumps: create, list, info, delete, export, import.
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

export class RestClient {
  private account: string | undefined;
  readonly token: string | undefined;

  constructor(readonly url: string) {
    this.token = process.env.DIONE_TOKEN || undefined;
  }

  async request<T>(method: string, resource: string, body?: unknown): Promise<Envelope<T>> {
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
      throw new CliError(`The server at ${this.url} answered ${method} ${resource} with HTTP ${response.status} and no JSON: ${text.slice(0, 200)}`);
    }
    if (!response.ok || !envelope.success) {
      const errors = (envelope.errors ?? []).map((e) => `${e.message} [code: ${e.code}]`).join('; ') || `HTTP ${response.status}`;
      const hint =
        response.status === 401
          ? ' Set DIONE_TOKEN to a token from `dione token create --scope admin`.'
          : response.status === 403
            ? ' The token in DIONE_TOKEN is not allowed to do this: use a token with a wider scope.'
            : '';
      const error = new CliError(`A request to the Dione API (${method} ${resource}) failed. ${errors}${hint}`);
      (error as CliError & { status?: number }).status = response.status;
      throw error;
    }
    return envelope;
  }

  async accountId(): Promise<string> {
    if (this.account) return this.account;
    const fromEnv = process.env.DIONE_ACCOUNT_ID;
    if (fromEnv) return (this.account = fromEnv);
    const { result } = await this.request<{ account: { id: string } }[]>('GET', '/memberships');
    const id = result[0]?.account.id;
    if (!id) throw new CliError(`The server at ${this.url} lists no account for this token.`);
    return (this.account = id);
  }

  async databases(): Promise<string> {
    return `/accounts/${await this.accountId()}/d1/database`;
  }

  /** The database with this uuid or name, or undefined when the server has none. */
  async find(nameOrId: string): Promise<DatabaseInfo | undefined> {
    try {
      return (await this.request<DatabaseInfo>('GET', `${await this.databases()}/${encodeURIComponent(nameOrId)}`)).result;
    } catch (e) {
      if ((e as { status?: number }).status === 404) return undefined;
      throw e;
    }
  }

  async list(): Promise<DatabaseInfo[]> {
    const all: DatabaseInfo[] = [];
    for (let page = 1; ; page++) {
      const { result } = await this.request<DatabaseInfo[]>('GET', `${await this.databases()}?per_page=100&page=${page}`);
      all.push(...result);
      if (result.length < 100) return all;
    }
  }
}
