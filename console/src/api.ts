// The console's one way to the server: the same REST API, GraphQL and console routes any client
// uses, with the token the user signed in with. Failures carry the server's own message.

export type Scope = 'read' | 'write' | 'admin';

export interface Whoami {
  token_id: string;
  scope: Scope;
  database: { uuid: string; name: string } | null;
  dev: boolean;
  node: string | null;
  history: boolean;
  account_id: string;
  region: string;
}

export class ApiFailure extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: number,
  ) {
    super(message);
  }
}

export interface RawResult {
  results: { columns: string[]; rows: unknown[][] };
  success: boolean;
  meta: { duration?: number; rows_read?: number; rows_written?: number; changes?: number; last_row_id?: number; [key: string]: unknown };
}

export class Api {
  constructor(
    readonly token: string | null,
    readonly accountId = '',
  ) {}

  withAccount(accountId: string): Api {
    return new Api(this.token, accountId);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      throw new ApiFailure(`The server cannot be reached (${(e as Error).message})`, 0);
    }
    const text = await response.text();
    let json: { success?: boolean; result?: T; errors?: { code?: number; message?: string }[]; error?: string; data?: unknown } | undefined;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok || json?.success === false) {
      const first = json?.errors?.[0];
      throw new ApiFailure(first?.message ?? json?.error ?? (text.slice(0, 300) || response.statusText), response.status, first?.code);
    }
    if (json && 'result' in json) return json.result as T;
    return json as T;
  }

  whoami(): Promise<Whoami> {
    return this.request('GET', '/dione/v1/whoami');
  }

  databasePath(database: string): string {
    return `/client/v4/accounts/${encodeURIComponent(this.accountId)}/d1/database/${encodeURIComponent(database)}`;
  }

  /** Runs SQL (one statement or several) through the REST API's /raw: columns and rows per statement. */
  raw(database: string, sql: string, params: unknown[] = []): Promise<RawResult[]> {
    return this.request('POST', `${this.databasePath(database)}/raw`, { sql, params });
  }

  /** The first statement's rows as objects. */
  async rows<T = Record<string, unknown>>(database: string, sql: string, params: unknown[] = []): Promise<T[]> {
    const [first] = await this.raw(database, sql, params);
    if (!first) return [];
    const { columns, rows } = first.results;
    return rows.map((row) => Object.fromEntries(columns.map((c, i) => [c, row[i]])) as T);
  }

  graphql<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    return this.request<{ data?: T; errors?: { message: string }[] }>('POST', '/client/v4/graphql', { query, variables }).then((answer) => {
      if (answer.errors?.length) throw new ApiFailure(answer.errors.map((e) => e.message).join('; '), 400);
      return answer.data as T;
    });
  }
}

export const canWrite = (scope: Scope) => scope === 'write' || scope === 'admin';
export const isAdmin = (who: Whoami) => who.scope === 'admin' && who.database === null;

/** `"name"`, for SQL. */
export const quoteIdentifier = (name: string) => `"${name.replaceAll('"', '""')}"`;

export function formatBytes(bytes: number | undefined | null): string {
  if (bytes === undefined || bytes === null) return '–';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatTime(value: string | number | Date): string {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}
