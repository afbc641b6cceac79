// connect() for Node: dione/client's binding, sending over node:http(s) with keep-alive agents
// instead of fetch. Node's fetch builds WHATWG streams, Headers and Request objects for every call,
// which costs about as much as the rest of a point select's round trip on loopback; dione/client
// itself stays fetch-only (Workers, browsers, Deno, Bun), and `fetch` in the options still wins.
import http from 'node:http';
import https from 'node:https';
import type { D1Database } from './binding/database.ts';
import { type ConnectOptions, connect as connectOverFetch } from './client.ts';

const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
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
    const send = (retry: boolean) => {
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
      request.once('error', (error: NodeJS.ErrnoException) => {
        // A kept-alive connection the server closed as idle just as this request went out: the
        // server never read it (Node's documented case), so it goes once more on a new connection.
        if (retry && request.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE') && !signal?.aborted) send(false);
        else reject(error);
      });
      if (signal) {
        const abort = () => request.destroy(signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
        signal.addEventListener('abort', abort, { once: true });
        request.once('close', () => signal.removeEventListener('abort', abort));
      }
      request.end(body);
    };
    send(true);
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
