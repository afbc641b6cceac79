// `--dev` lets a request without a token act as admin, for tools on the developer's machine. A web
// page the developer visits must not: a browser sends Origin with every cross-site POST (even a
// "simple" one that needs no preflight), and a page whose name an attacker rebinds to 127.0.0.1
// still sends its own name as Host. Tools (wrangler, workerd, curl, dione/client) send no Origin,
// and a loopback name, an IP address or this server's public name as Host.
import type { IncomingHttpHeaders } from 'node:http';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The host name of a Host header or an origin's authority (without the port), lower-cased. */
function hostName(authority: string): string {
  const bracket = authority.startsWith('[') ? authority.indexOf(']') : -1;
  if (bracket > 0) return authority.slice(0, bracket + 1).toLowerCase();
  const colon = authority.lastIndexOf(':');
  return (colon >= 0 ? authority.slice(0, colon) : authority).toLowerCase();
}

/** A name no DNS answer stands behind: loopback, an IP address, or the public URL's own host. */
function trusted(name: string, publicHost: string | undefined): boolean {
  if (LOOPBACK_NAMES.has(name) || name.endsWith('.localhost') || name === publicHost) return true;
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(name) || /^\[[0-9a-f:.]+\]$/.test(name);
}

/**
 * Why a request without a token is refused under --dev (undefined: it is served as admin): a
 * Host that names a host a DNS answer could point here, or an Origin of another site.
 */
export function devRequestRefusal(headers: IncomingHttpHeaders, publicUrl: string): string | undefined {
  const publicHost = URL.canParse(publicUrl) ? hostName(new URL(publicUrl).host) : undefined;
  const host = headers.host === undefined ? undefined : hostName(headers.host);
  if (host !== undefined && !trusted(host, publicHost)) {
    return `--dev serves requests without a token only for a loopback or IP address Host (or --public-url's), not ${host}: send a token`;
  }
  const origin = headers.origin;
  if (origin === undefined) return undefined;
  let originHost: string;
  try {
    originHost = hostName(new URL(origin).host);
  } catch {
    originHost = '';
  }
  if (originHost === '' || !trusted(originHost, publicHost)) {
    return `--dev serves requests without a token only to tools, not to web pages of other sites (Origin ${origin}): send a token`;
  }
  return undefined;
}
