// One HTTP exchange with the server, as dione/client makes every one: POST, redirects never
// followed (one would send the SQL, its parameters and perhaps the token on to wherever the answer
// points, or turn the POST into a GET whose answer passes for the call's), and a failure's body read
// only as far as an error message can reasonably go.

/** An answer that is no answer to the request: a redirect, say. Its message is the call's error. */
export class RefusedAnswer extends Error {
  override name = 'RefusedAnswer';
}

/** The most of a failure's body that is read: a JSON error is far smaller; an HTML page or worse is cut there. */
const FAILURE_BODY_BYTES = 64 * 1024;

/** The most characters of the server's text quoted in an error message. */
export const QUOTED_CHARS = 2048;

export interface HttpRequest {
  url: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

/** `text`, cut to QUOTED_CHARS for an error message. */
export function quoted(text: string, cut = false): string {
  return text.length > QUOTED_CHARS || cut ? `${text.slice(0, QUOTED_CHARS)}… (cut)` : text;
}

/**
 * POSTs and answers the response, refusing (RefusedAnswer) a redirect. 'manual' rather than 'error':
 * the refusal can then say where the server pointed, and Node, Deno, Bun and Workers hand back the
 * 3xx itself; a browser hands back an opaque one, with no status.
 */
export async function post(fetcher: typeof fetch, request: HttpRequest): Promise<Response> {
  const { url, headers, body, signal } = request;
  const response = await fetcher(url, { method: 'POST', headers, body, signal, redirect: 'manual' });
  const redirect = redirectOf(response);
  if (redirect === undefined) return response;
  await response.body?.cancel().catch(() => {});
  throw new RefusedAnswer(
    `The server answered POST ${url} with a redirect (${redirect}), which dione/client does not follow: nothing was sent on. connect() to the URL that serves the database.`,
  );
}

function redirectOf(response: Response): string | undefined {
  // (Workers' Response types know no opaque redirects; browsers answer redirect: 'manual' with one.)
  if ((response.type as string) === 'opaqueredirect') return 'hidden by the runtime';
  if (response.status < 300 || response.status > 399) return undefined;
  const location = response.headers.get('location');
  return location ? `HTTP ${response.status} to ${quoted(location.slice(0, 200), location.length > 200)}` : `HTTP ${response.status}`;
}

/** The body as text: all of it for a success, at most FAILURE_BODY_BYTES of a failure (`cut` then). */
export async function bodyText(response: Response): Promise<{ text: string; cut: boolean }> {
  if (response.ok || response.body === null) return { text: await response.text(), cut: false };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let room = FAILURE_BODY_BYTES;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: text + decoder.decode(), cut: false };
    if (value.byteLength > room) {
      text += decoder.decode(value.subarray(0, room));
      await reader.cancel().catch(() => {});
      return { text, cut: true };
    }
    room -= value.byteLength;
    text += decoder.decode(value, { stream: true });
  }
}
