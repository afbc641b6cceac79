// connect() for Node: dione/client's binding, sending over node:http(s) with keep-alive agents
// instead of fetch. Node's fetch builds WHATWG streams, Headers and Request objects for every call,
// which costs about as much as the rest of a point select's round trip on loopback; dione/client
// itself stays fetch-only (Workers, browsers, Deno, Bun), and `fetch` in the options still wins.
import http from 'node:http';
import https from 'node:https';
import type { D1Database } from './binding/database.ts';
import { type ConnectOptions, connect as connectOverFetch } from './client.ts';

/**
 * A kept-alive connection idle this long is closed here: before Node's servers (Dione's among them)
 * close it, 5 s after their last answer. So a request is not sent on a connection at the moment the
 * server closes it, which would fail it as a lost connection.
 */
const IDLE_MS = 4000;

const agents = {
  'http:': new http.Agent({ keepAlive: true, timeout: IDLE_MS }),
  'https:': new https.Agent({ keepAlive: true, timeout: IDLE_MS }),
};

function headersOf(init: RequestInit['headers']): Record<string, string> {
  if (init === undefined) return {};
  if (init instanceof Headers || Array.isArray(init)) return Object.fromEntries(init as Iterable<[string, string]>);
  return { ...(init as Record<string, string>) };
}

function bodyOf(body: RequestInit['body']): string | Uint8Array | undefined {
  if (body === null || body === undefined) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('nodeFetch: the body must be a string, an ArrayBuffer or a typed array');
}

/**
 * The part of fetch() that dione/client uses (method, headers, a string or byte body, a signal),
 * over node:http(s) with keep-alive connections. Answers a real Response; a request that cannot be
 * sent or answered rejects with Node's error (its message names the cause, e.g. ECONNREFUSED).
 * Nothing is sent twice: a connection reset after the request went out may come after the server
 * ran it (a write sent again would be applied twice), so the caller hears of it, as with fetch.
 */
export function nodeFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  if (input instanceof Request) return fetch(input, init);
  const url = new URL(input);
  if (!(url.protocol in agents)) return fetch(url, init);
  const signal = init.signal ?? undefined;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const options = { method: init.method ?? 'GET', headers: headersOf(init.headers), agent: agents[url.protocol as keyof typeof agents] };
  const body = bodyOf(init.body);
  return new Promise((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('error', reject);
      response.once('end', () => {
        try {
          const headers = new Headers();
          const raw = response.rawHeaders;
          for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
          const status = response.statusCode ?? 0;
          // A Response may carry no body with these statuses.
          const empty = status === 204 || status === 205 || status === 304 || options.method === 'HEAD';
          resolve(new Response(empty ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), { status, statusText: response.statusMessage, headers }));
        } catch (e) {
          reject(e);
        }
      });
    });
    request.once('error', reject);
    if (signal) {
      const abort = () => request.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
      signal.addEventListener('abort', abort, { once: true });
      request.once('close', () => signal.removeEventListener('abort', abort));
    }
    request.end(body);
  });
}

/**
 * dione/client's connect(), sending over node:http(s) (nodeFetch) unless `options.fetch` is given:
 * the same D1Database, the same wire, a shorter round trip in Node.
 */
export function connect(options: ConnectOptions): D1Database {
  return connectOverFetch({ ...options, fetch: options.fetch ?? (nodeFetch as typeof fetch) });
}

export type { ConnectOptions };
