// The Executor over HTTP to a Dione server, in Dione's lossless wire format: a call (a batch is one)
// made alone is one POST; calls made in the same event-loop turn share one (pipeline.ts). Uses only
// fetch, so it runs in any JavaScript runtime.
import { Messages } from '../api/errors.ts';
import type { ExecuteRequest, ExecuteResponse, Executor } from '../api/executor.ts';
import type { IntMode } from '../api/types.ts';
import { decodeResponse, encodeRequest, type WireResponse } from '../api/wire.ts';
import { CallPipeline } from './pipeline.ts';
import { pipelinedAnswers, pipelinedBody } from './pipelined-wire.ts';

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
  /**
   * Calls made in the same event-loop turn share one HTTP request, up to this many (default 64);
   * 1 sends every call in its own request.
   */
  maxCallsPerRequest?: number;
  /**
   * Interactive transactions (Dione's opt-in; D1 refuses them): BEGIN…COMMIT, ROLLBACK and
   * savepoints on this handle, held by the server for it, and beginTransaction()/withTransaction().
   * A transaction idle longer than the server's --transaction-timeout is rolled back.
   */
  transactions?: boolean;
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

/** How many calls, and how much JSON text, go in one HTTP request by default (far under the server's default 64 MiB body limit). */
const DEFAULT_MAX_CALLS = 64;
const MAX_CHARS = 1024 * 1024;

export class FetchExecutor implements Executor {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly fetch: typeof fetch;
  private readonly intMode: IntMode;
  private readonly pipeline: CallPipeline<ExecuteResponse>;
  /** Cleared when the server refuses a pipelined request as a whole (a server from before version 2). */
  private pipelining: boolean;
  private readonly options: ConnectOptions;
  /** With `transactions`: names this handle to the server, which holds its transaction. */
  private readonly handle: string | undefined;
  /** The server said this handle holds a transaction (closing rolls it back). */
  private holding = false;

  constructor(options: ConnectOptions) {
    this.options = options;
    this.handle = options.transactions ? crypto.randomUUID() : undefined;
    if (typeof options.url !== 'string' || !/^https?:\/\//.test(options.url)) throw new TypeError('connect(): url must be an http(s) URL');
    if (typeof options.database !== 'string' || options.database === '') throw new TypeError('connect(): database must be a name or id');
    const maxCalls = options.maxCallsPerRequest ?? DEFAULT_MAX_CALLS;
    if (!Number.isInteger(maxCalls) || maxCalls < 1) throw new TypeError('connect(): maxCallsPerRequest must be a positive integer');
    this.base = `${options.url.replace(/\/+$/, '')}/dione/v1/databases/${encodeURIComponent(options.database)}`;
    this.headers = { 'content-type': 'application/json' };
    if (options.token) this.headers.authorization = `Bearer ${options.token}`;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.intMode = options.intMode ?? 'number';
    this.pipelining = maxCalls > 1;
    this.pipeline = new CallPipeline((bodies) => this.sendGroup(bodies), { maxCalls, maxChars: MAX_CHARS });
  }

  execute(request: ExecuteRequest): Promise<ExecuteResponse> {
    const wire = encodeRequest(request, this.intMode);
    if (this.handle === undefined) {
      const body = JSON.stringify(wire);
      return this.pipelining ? this.pipeline.submit(body) : this.sendOne(body);
    }
    wire.transaction = this.handle;
    if (this.holding) wire.held = true;
    const body = JSON.stringify(wire);
    const answer = this.pipelining ? this.pipeline.submit(body) : this.sendOne(body);
    return answer.then((response) => {
      if (response.inTransaction !== undefined) this.holding = response.inTransaction;
      return response;
    });
  }

  /** A transaction of its own: a new handle the server holds a transaction for, one call per request, in order. */
  async openTransaction(): Promise<Executor> {
    if (!this.options.transactions) throw new TypeError(Messages.noTransactions);
    return new FetchExecutor({ ...this.options, maxCallsPerRequest: 1 });
  }

  private sendGroup(bodies: string[]): Promise<ExecuteResponse[]> {
    if (bodies.length === 1 || !this.pipelining) return Promise.all(bodies.map((body) => this.sendOne(body)));
    return this.sendPipelined(bodies);
  }

  /** One call in one request: version 1 of the wire format. */
  private async sendOne(body: string): Promise<ExecuteResponse> {
    const answer = await this.post(body);
    if ('failure' in answer) return answer.failure;
    return this.callAnswer(answer.json, answer.status);
  }

  /** Several calls in one request (version 2); a failure of the request itself is every call's failure. */
  private async sendPipelined(bodies: string[]): Promise<ExecuteResponse[]> {
    const answer = await this.post(pipelinedBody(bodies));
    if ('failure' in answer) return bodies.map(() => ({ ...answer.failure }));
    const answers = pipelinedAnswers(answer.json, bodies.length);
    if (answers) return answers.map((a) => this.callAnswer(a.body, a.status));
    // Refused whole, before any call ran (so sending them again is safe): 400 from a server that speaks
    // only version 1, 413 from one with a smaller body limit.
    if (answer.status === 400 || answer.status === 413) {
      if (answer.status === 400) this.pipelining = false;
      return Promise.all(bodies.map((body) => this.sendOne(body)));
    }
    const failure = this.callAnswer(answer.json, answer.status);
    return bodies.map(() => ({ ...failure }));
  }

  /** POSTs a body to the execute endpoint: its status and JSON, or the failure every call in it gets. */
  private async post(body: string): Promise<{ status: number; json: unknown } | { failure: ExecuteResponse }> {
    const url = `${this.base}/execute`;
    let response: Response;
    let text: string;
    try {
      response = await this.fetch(url, { method: 'POST', headers: this.headers, body });
      text = await response.text();
    } catch (e) {
      return { failure: { success: false, error: networkLost('POST', url, e) } };
    }
    try {
      return { status: response.status, json: JSON.parse(text) };
    } catch {
      return { failure: { success: false, error: `Failed to parse body as JSON, got: ${text}` } };
    }
  }

  /** One call's answer (a whole version 1 response, or one of a version 2 response's answers) for the binding. */
  private callAnswer(body: unknown, status: number): ExecuteResponse {
    if (isWireResponse(body)) return decodeResponse(body, this.intMode);
    return { success: false, error: errorText(body, status) };
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

  /** A transaction the server still holds for this handle is rolled back (it would be at its idle timeout anyway). */
  async close(): Promise<void> {
    if (!this.holding) return;
    this.holding = false;
    await this.execute({ queries: [{ sql: 'ROLLBACK', params: [] }] }).catch(() => {});
  }
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
