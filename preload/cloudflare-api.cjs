// dione/cloudflare-api: for tools that only speak to Cloudflare's API address (drizzle-kit's d1-http
// driver, Prisma's D1 HTTP mode). Preload it — `node --require dione/cloudflare-api` or
// `node --import dione/cloudflare-api` (or NODE_OPTIONS) — and their calls to
// https://api.cloudflare.com/client/v4 go to the Dione server named by DIONE_URL instead, whether
// they use the global fetch (Prisma, through ky) or node:https (drizzle-kit bundles node-fetch).
// DIONE_TOKEN, when set, replaces the token they send; DIONE_ACCOUNT_ID the account id in the path.
'use strict';

const CLOUDFLARE_API = 'https://api.cloudflare.com/client/v4';
const target = process.env.DIONE_URL;

if (!target) {
  process.emitWarning('dione/cloudflare-api is loaded but DIONE_URL is not set: Cloudflare API calls are not redirected');
} else if (!globalThis.__dioneCloudflareApi) {
  globalThis.__dioneCloudflareApi = true;
  const base = `${target.replace(/\/+$/, '')}/client/v4`;
  const original = globalThis.fetch;

  const redirect = (url) => {
    if (!url.startsWith(CLOUDFLARE_API)) return undefined;
    let rest = url.slice(CLOUDFLARE_API.length);
    if (process.env.DIONE_ACCOUNT_ID) rest = rest.replace(/^\/accounts\/[^/]+/, `/accounts/${process.env.DIONE_ACCOUNT_ID}`);
    return base + rest;
  };

  const http = require('node:http');
  const https = require('node:https');
  const server = new URL(base);
  const client = server.protocol === 'https:' ? https : http;

  /** node:https request options aimed at the Dione server, or undefined when not for Cloudflare's API. */
  const redirectOptions = (options) => {
    if (options.hostname !== 'api.cloudflare.com' && options.host !== 'api.cloudflare.com') return undefined;
    const url = redirect(`https://api.cloudflare.com${options.path ?? '/'}`);
    if (url === undefined) return undefined;
    const target = new URL(url);
    const headers = { ...(options.headers ?? {}) };
    if (process.env.DIONE_TOKEN) {
      for (const name of Object.keys(headers)) if (name.toLowerCase() === 'authorization') delete headers[name];
      headers.authorization = `Bearer ${process.env.DIONE_TOKEN}`;
    }
    for (const name of Object.keys(headers)) if (name.toLowerCase() === 'host') delete headers[name];
    const { agent: _agent, host: _host, servername: _servername, ...rest } = options;
    return { ...rest, protocol: target.protocol, hostname: target.hostname, port: target.port, path: target.pathname + target.search, headers };
  };

  const wrap = (original) =>
    function dioneRequest(...args) {
      const [first, second, third] = args;
      let options;
      let callback;
      if (typeof first === 'string' || first instanceof URL) {
        const url = new URL(first);
        options = { protocol: url.protocol, hostname: url.hostname, port: url.port, path: url.pathname + url.search, ...(typeof second === 'object' ? second : {}) };
        callback = typeof second === 'function' ? second : third;
      } else {
        options = first ?? {};
        callback = second;
      }
      const redirected = redirectOptions(options);
      if (!redirected) return original.apply(this, args);
      return client.request(redirected, callback);
    };
  https.request = wrap(https.request);
  https.get = function dioneGet(...args) {
    const request = https.request(...args);
    request.end();
    return request;
  };

  globalThis.fetch = async function dioneFetch(input, init) {
    const request = new Request(input, init);
    const url = redirect(request.url);
    if (url === undefined) return original(input, init);
    const headers = new Headers(request.headers);
    if (process.env.DIONE_TOKEN) headers.set('authorization', `Bearer ${process.env.DIONE_TOKEN}`);
    const body = request.body === null ? undefined : await request.arrayBuffer();
    return original(url, { method: request.method, headers, body, redirect: request.redirect, signal: request.signal });
  };
}
