// The Executor over HTTP: one POST per request (a batch is one round trip) to a Dione server,
// in Dione's lossless wire format. Uses only fetch, so it runs in any JavaScript runtime.
import type { ExecuteRequest, ExecuteResponse, Executor } from '../api/executor.ts';
import type { IntMode } from '../api/types.ts';
import { decodeResponse, encodeRequest, type WireResponse } from '../api/wire.ts';

export interface ConnectOptions {
  /** The server's base URL, e.g. http://127.0.0.1:8787 */
  url: string;
  /** An API token (`dione token create`); omit only for a server in unauthenticated dev mode. */
  token?: string;
  /** The database's name or id. */
  database: string;
  /** 'bigint' returns INTEGER values as exact bigints. Default 'number', as D1. */
  intMode?: IntMode;
  /** A fetch implementation (defaults to the global one). */
  fetch?: typeof fetch;
}

/** D1's text for a request that never got an answer. */
const NETWORK_LOST = 'Network connection lost.';

/**
 * D1's text first (callers match on it), then which request failed and why, e.g.
 * `Network connection lost. (POST http://127.0.0.1:1/dione/v1/databases/shop/execute failed: connect ECONNREFUSED 127.0.0.1:1)`.
 */
function networkLost(method: string, url: string, error: unknown): string {
  // fetch's own error says only "fetch failed"; what went wrong is its cause.
  const cause = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
  return `${NETWORK_LOST} (${method} ${url} failed: ${cause})`;
}

export class FetchExecutor implements Executor {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly fetch: typeof fetch;
  private readonly intMode: IntMode;

  constructor(options: ConnectOptions) {
    if (typeof options.url !== 'string' || !/^https?:\/\//.test(options.url)) throw new TypeError('connect(): url must be an http(s) URL');
    if (typeof options.database !== 'string' || options.database === '') throw new TypeError('connect(): database must be a name or id');
    this.base = `${options.url.replace(/\/+$/, '')}/dione/v1/databases/${encodeURIComponent(options.database)}`;
    this.headers = { 'content-type': 'application/json' };
    if (options.token) this.headers.authorization = `Bearer ${options.token}`;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.intMode = options.intMode ?? 'number';
  }

  async execute(request: ExecuteRequest): Promise<ExecuteResponse> {
    const url = `${this.base}/execute`;
    let response: Response;
    try {
      response = await this.fetch(url, {
        method: 'POST',
        headers: this.headers,
        body: JSON.stringify(encodeRequest(request, this.intMode)),
      });
    } catch (e) {
      return { success: false, error: networkLost('POST', url, e) };
    }
    let text: string;
    try {
      text = await response.text();
    } catch (e) {
      return { success: false, error: networkLost('POST', url, e) };
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { success: false, error: `Failed to parse body as JSON, got: ${text}` };
    }
    if (isWireResponse(body)) return decodeResponse(body, this.intMode);
    return { success: false, error: errorText(body, response.status) };
  }

  async dump(): Promise<ArrayBuffer> {
    const url = `${this.base}/dump`;
    let response: Response;
    try {
      response = await this.fetch(url, { method: 'POST', headers: this.headers });
    } catch (e) {
      throw new Error(networkLost('POST', url, e));
    }
    if (!response.ok) throw new Error(`Status + ${response.status}`);
    return response.arrayBuffer();
  }

  close(): void {}
}

function isWireResponse(body: unknown): body is WireResponse {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as { success?: unknown; results?: unknown; error?: unknown };
  return (b.success === true && Array.isArray(b.results)) || (b.success === false && typeof b.error === 'string');
}

/** The message of a failure envelope: D1's detail for SQL errors, Cloudflare's errors[0] otherwise. */
function errorText(body: unknown, status: number): string {
  if (typeof body === 'object' && body !== null) {
    const b = body as { error?: unknown; errors?: { message?: unknown }[] };
    if (typeof b.error === 'string') return b.error;
    if (Array.isArray(b.errors) && typeof b.errors[0]?.message === 'string') return b.errors[0].message;
  }
  return `HTTP ${status}`;
}
