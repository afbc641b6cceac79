// The service behind workerd's own D1 binding (`cloudflare-internal:d1-api`) that reaches a Dione
// server, whichever way the binding talks: a Worker module for workerd (or any runtime with
// `cloudflare:workers`), shipped as `dione/workerd/d1-service`.
//
// workerd's binding calls its inner `fetcher` in one of two ways:
// - by default, `fetch()`: POST http://d1/query or /execute with JSON statements. Those are passed
//   on to the Dione server unchanged (Dione serves that protocol itself);
// - with the `d1_binding_jsrpc` compatibility flag (experimental in workerd 1.20261123; no
//   compatibility date turns it on), the JS RPC method `query({queries: [{sql, params}], bookmark})`,
//   answered with `{results: [{meta, data: {kind: 'raw', columns, rows}}], bookmark}`; a failed
//   query is thrown, and the binding reports it as `D1_ERROR: <message>`. This module turns such a
//   call into the same POST /query (all statements in one request, so they commit together, as a
//   batch does) with the bookmark in the session header, and the answer back into that shape.
//
// Configuration (workerd capnp, or wrangler's `services` + `d1_databases` for local tools):
//   the service:  (name = "dione-d1", worker = (modules = [(name = "d1-service.js", esModule = embed
//                 ".../node_modules/dione/workerd/d1-service.js")], compatibilityDate = "2026-11-23",
//                 bindings = [(name = "DIONE", service = "dione")]))
//   DIONE:        a service binding to the Dione server (an external service, which may inject the
//                 `authorization` and `x-dione-database` headers), or
//   DIONE_URL:    a text binding with the server's URL, used when there is no DIONE binding;
//   DIONE_TOKEN:  optional text binding: sent as `authorization: Bearer <token>`;
//   DIONE_DATABASE: optional text binding: the database's name or id (`x-dione-database`);
//   props:        `{"database": "<name or id>"}` on the binding's service designator overrides
//                 DIONE_DATABASE, so one such service serves several D1 bindings.
// And in the Worker: (name = "DB", wrapped = (moduleName = "cloudflare-internal:d1-api",
//                      innerBindings = [(name = "fetcher", service = "dione-d1")]))
import { WorkerEntrypoint } from 'cloudflare:workers';

const SESSION_HEADER = 'x-cf-d1-session-commit-token';
const DATABASE_HEADER = 'x-dione-database';

export default class DioneD1 extends WorkerEntrypoint {
  /** The binding's HTTP protocol (no flag): passed on to the Dione server as it came. */
  async fetch(request) {
    const url = new URL(request.url);
    const headers = new Headers(request.headers);
    this.#authenticate(headers);
    return this.#send(`${url.pathname}${url.search}`, { method: request.method, headers, body: request.body });
  }

  /** The binding's JS RPC protocol (`d1_binding_jsrpc`). */
  async query(request) {
    const queries = Array.isArray(request?.queries) ? request.queries : [];
    const headers = new Headers({ 'content-type': 'application/json' });
    this.#authenticate(headers);
    if (typeof request?.bookmark === 'string' && request.bookmark !== '') headers.set(SESSION_HEADER, request.bookmark);
    const body = JSON.stringify(queries.map((q) => ({ sql: q.sql, params: q.params ?? [] })));
    const response = await this.#send('/query?resultsFormat=ROWS_AND_COLUMNS', { method: 'POST', headers, body });
    const text = await response.text();
    let answer;
    try {
      answer = JSON.parse(text);
    } catch {
      throw new Error(`Failed to parse body as JSON, got: ${text}`);
    }
    const items = Array.isArray(answer) ? answer : [answer];
    const failed = items.find((item) => item?.error || item?.success === false);
    if (failed) throw new Error(failed.error ? String(failed.error) : envelopeMessage(failed, response.status));
    // One result per statement Dione ran: an empty statement in a batch has none, as over HTTP.
    const results = items.map((item) => ({
      meta: item.meta,
      data: { kind: 'raw', columns: item.results?.columns ?? [], rows: item.results?.rows ?? [] },
    }));
    const bookmark = response.headers.get(SESSION_HEADER);
    return bookmark ? { results, bookmark } : { results };
  }

  #authenticate(headers) {
    const { DIONE_TOKEN: token, DIONE_DATABASE: database } = this.env ?? {};
    const named = this.ctx?.props?.database ?? database;
    if (token && !headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
    if (named) headers.set(DATABASE_HEADER, String(named));
  }

  #send(pathAndQuery, init) {
    const { DIONE: service, DIONE_URL: base } = this.env ?? {};
    if (service) return service.fetch(new Request(`http://dione${pathAndQuery}`, init));
    if (!base) throw new Error('dione/workerd/d1-service: bind DIONE (a service) or DIONE_URL (the server URL) to this Worker');
    return fetch(new Request(new URL(pathAndQuery, base), init));
  }
}

/** The message of an answer that is not a D1 result (a Cloudflare envelope, or anything else). */
function envelopeMessage(answer, status) {
  const first = Array.isArray(answer?.errors) ? answer.errors[0] : undefined;
  return first?.message ? String(first.message) : `Dione answered status ${status}`;
}
