// The Executor over HTTP to a Dione server, in Dione's lossless wire format: a call (a batch is one)
// made alone is one POST; calls made in the same event-loop turn share one (pipeline.ts). Uses only
// fetch, so it runs in any JavaScript runtime.
import { Messages } from '../api/errors.ts';
import { type ExecuteRequest, type ExecuteResponse, type Executor, malformedQuery } from '../api/executor.ts';
import type { IntMode } from '../api/types.ts';
import { encodeRequest } from '../api/wire.ts';
import { malformedAnswer, readCallAnswer, resultsDue } from './call-answer.ts';
import { type DeadlineLimits, withinDeadline } from './deadline.ts';
import { bodyText, post, quoted, RefusedAnswer } from './http.ts';
import { commitOutcomeUnknown, commits, NETWORK_LOST, networkLost } from './lost-connection.ts';
import { checkOptions, type ConnectOptions } from './options.ts';
import { CallPipeline } from './pipeline.ts';
import { pipelinedAnswers, pipelinedBody } from './pipelined-wire.ts';

export type { ConnectOptions };

/** How much JSON text goes in one HTTP request (far under the server's default 64 MiB body limit). */
const MAX_CHARS = 1024 * 1024;

/** A call on its way: its JSON body, and how many results its answer must hold. */
interface WireCall {
  body: string;
  resultsDue: number;
}

/** What an HTTP exchange brought: the status and JSON, or the failure every call in it gets. */
type Exchange = { status: number; json: unknown } | { failure: ExecuteResponse & { success: false } };

export class FetchExecutor implements Executor {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly fetch: typeof fetch;
  private readonly intMode: IntMode;
  private readonly limits: DeadlineLimits;
  private readonly pipeline: CallPipeline<WireCall, ExecuteResponse>;
  /** Cleared when the server refuses a pipelined request as a whole (a server from before version 2). */
  private pipelining: boolean;
  private readonly options: ConnectOptions;
  /** With `transactions`: names this handle to the server, which holds its transaction. */
  private readonly handle: string | undefined;
  /** The server said this handle holds a transaction (closing rolls it back). */
  private holding = false;

  constructor(options: ConnectOptions) {
    this.options = options;
    const { maxCalls, timeoutMs } = checkOptions(options);
    this.handle = options.transactions ? crypto.randomUUID() : undefined;
    this.base = `${options.url.replace(/\/+$/, '')}/dione/v1/databases/${encodeURIComponent(options.database)}`;
    this.headers = { 'content-type': 'application/json' };
    if (options.token) this.headers.authorization = `Bearer ${options.token}`;
    this.fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.intMode = options.intMode ?? 'number';
    this.limits = { timeoutMs, signal: options.signal };
    this.pipelining = maxCalls > 1;
    this.pipeline = new CallPipeline((calls) => this.sendGroup(calls), { maxCalls, maxChars: MAX_CHARS });
  }

  execute(request: ExecuteRequest): Promise<ExecuteResponse> {
    // (Answered here, in the engine's words: encoding it would fail on what is not a statement.)
    const malformed = malformedQuery(request);
    if (malformed !== undefined) return Promise.resolve({ success: false, error: malformed });
    const wire = encodeRequest(request, this.intMode);
    const due = resultsDue(request.queries);
    if (this.handle === undefined) return this.send({ body: JSON.stringify(wire), resultsDue: due });
    wire.transaction = this.handle;
    if (this.holding) wire.held = true;
    return this.send({ body: JSON.stringify(wire), resultsDue: due }).then((response) => {
      if (response.inTransaction !== undefined) this.holding = response.inTransaction;
      if (!response.success && response.error.startsWith(NETWORK_LOST) && commits(request.queries)) {
        return { ...response, error: commitOutcomeUnknown(response.error) };
      }
      return response;
    });
  }

  private send(call: WireCall): Promise<ExecuteResponse> {
    return this.pipelining ? this.pipeline.submit(call) : this.sendOne(call);
  }

  /** A transaction of its own: a new handle the server holds a transaction for, one call per request, in order. */
  async openTransaction(): Promise<Executor> {
    if (!this.options.transactions) throw new TypeError(Messages.noTransactions);
    return new FetchExecutor({ ...this.options, maxCallsPerRequest: 1 });
  }

  private sendGroup(calls: WireCall[]): Promise<ExecuteResponse[]> {
    if (calls.length === 1 || !this.pipelining) return Promise.all(calls.map((call) => this.sendOne(call)));
    return this.sendPipelined(calls);
  }

  private get executeUrl(): string {
    return `${this.base}/execute`;
  }

  /** One call in one request: version 1 of the wire format. */
  private async sendOne(call: WireCall): Promise<ExecuteResponse> {
    const answer = await this.exchange(call.body);
    if ('failure' in answer) return answer.failure;
    return this.callAnswer(answer.json, answer.status, call);
  }

  /** Several calls in one request (version 2); a failure of the request itself is every call's failure. */
  private async sendPipelined(calls: WireCall[]): Promise<ExecuteResponse[]> {
    const answer = await this.exchange(pipelinedBody(calls.map((call) => call.body)));
    if ('failure' in answer) return calls.map(() => ({ ...answer.failure }));
    const answers = pipelinedAnswers(answer.json, calls.length);
    if (Array.isArray(answers)) return answers.map((a, i) => this.callAnswer(a.body, a.status, calls[i]!));
    if (answers !== undefined) return this.everyCallMalformed(calls, answers.malformed);
    // Refused whole, before any call ran (so sending them again is safe): 400 from a server that speaks
    // only version 1, 413 from one with a smaller body limit.
    if (answer.status === 400 || answer.status === 413) {
      if (answer.status === 400) this.pipelining = false;
      return Promise.all(calls.map((call) => this.sendOne(call)));
    }
    if (answer.status >= 200 && answer.status <= 299) return this.everyCallMalformed(calls, 'it is no version 2 answer, with one answer per call');
    const failure = this.callAnswer(answer.json, answer.status, { body: '', resultsDue: 0 });
    return calls.map(() => ({ ...failure }));
  }

  private everyCallMalformed(calls: WireCall[], detail: string): ExecuteResponse[] {
    const error = malformedAnswer(`POST ${this.executeUrl}`, detail);
    return calls.map(() => ({ success: false, error }));
  }

  private callAnswer(body: unknown, status: number, call: WireCall): ExecuteResponse {
    return readCallAnswer(body, status, this.intMode, { request: `POST ${this.executeUrl}`, resultsDue: call.resultsDue });
  }

  /** POSTs a body to the execute endpoint, within the deadline: its status and JSON, or the failure every call in it gets. */
  private async exchange(body: string): Promise<Exchange> {
    const url = this.executeUrl;
    let answer: { status: number; text: string; cut: boolean };
    try {
      answer = await withinDeadline(this.limits, async (signal) => {
        const response = await post(this.fetch, { url, headers: this.headers, body, signal });
        return { status: response.status, ...(await bodyText(response)) };
      });
    } catch (e) {
      return { failure: { success: false, error: e instanceof RefusedAnswer ? e.message : networkLost('POST', url, e) } };
    }
    try {
      return { status: answer.status, json: JSON.parse(answer.text) };
    } catch {
      // D1's text for a body that is no JSON, then as much of it as an error message can hold.
      const status = answer.status >= 200 && answer.status <= 299 ? '' : ` (HTTP ${answer.status})`;
      return { failure: { success: false, error: `Failed to parse body as JSON, got: ${quoted(answer.text, answer.cut)}${status}` } };
    }
  }

  async dump(): Promise<ArrayBuffer> {
    const url = `${this.base}/dump`;
    try {
      return await withinDeadline(this.limits, async (signal) => {
        const response = await post(this.fetch, { url, headers: this.headers, signal });
        if (!response.ok) {
          await response.body?.cancel().catch(() => {});
          throw new RefusedAnswer(`Status + ${response.status}`);
        }
        return response.arrayBuffer();
      });
    } catch (e) {
      if (e instanceof RefusedAnswer) throw new Error(e.message);
      throw new Error(networkLost('POST', url, e));
    }
  }

  /** A transaction the server still holds for this handle is rolled back (it would be at its idle timeout anyway). */
  async close(): Promise<void> {
    if (!this.holding) return;
    this.holding = false;
    await this.execute({ queries: [{ sql: 'ROLLBACK', params: [] }] }).catch(() => {});
  }
}
