// A deadline over one HTTP exchange, sending through reading the whole answer. fetch's own timeouts
// do not do this (Node's body timeout starts again with every chunk, so a server that trickles a
// byte now and then holds a call forever), and a caller's fetch may not heed its signal at all: the
// exchange is raced against the deadline, and its signal aborted so a fetch that listens stops too.
// Only setTimeout and AbortController, which every runtime dione/client runs in has.

export interface DeadlineLimits {
  /** Infinity: none. */
  timeoutMs: number;
  /** The handle's own signal (connect({ signal })). */
  signal?: AbortSignal | undefined;
}

/** The exchange was given up: its message says why (the cause of a lost connection). */
export class ExchangeAbandoned extends Error {
  override name = 'ExchangeAbandoned';
}

function abortedBy(signal: AbortSignal): ExchangeAbandoned {
  const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
  return new ExchangeAbandoned(`aborted by connect()'s signal: ${reason}`);
}

/** Runs `exchange`, rejecting with ExchangeAbandoned when the deadline passes or the handle's signal aborts first. */
export function withinDeadline<T>(limits: DeadlineLimits, exchange: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const outer = limits.signal;
  if (outer?.aborted) return Promise.reject(abortedBy(outer));
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const onAbort = () => abandon(abortedBy(outer!));
    const settle = () => {
      if (timer !== undefined) clearTimeout(timer);
      outer?.removeEventListener('abort', onAbort);
    };
    const abandon = (why: ExchangeAbandoned) => {
      settle();
      reject(why);
      controller.abort(why);
    };
    if (Number.isFinite(limits.timeoutMs)) {
      timer = setTimeout(
        () => abandon(new ExchangeAbandoned(`no complete answer within ${limits.timeoutMs} ms (connect()'s timeoutMs)`)),
        limits.timeoutMs,
      );
    }
    outer?.addEventListener('abort', onAbort, { once: true });
    let running: Promise<T>;
    try {
      running = exchange(controller.signal);
    } catch (e) {
      running = Promise.reject(e);
    }
    running.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error) => {
        settle();
        reject(error);
      },
    );
  });
}
