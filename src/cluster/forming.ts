// A NATS cluster that has just started (or lost a node) may not yet place a new stream or bucket,
// or answer for it: such requests are retried for a bounded time instead of failing a node's start.

const FORMING = /no suitable peers for placement|timeout|no responders|jetstream is not enabled/i;

export async function whileForming<T>(request: () => Promise<T>, boundMs = 15_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    try {
      return await request();
    } catch (e) {
      if (!(e instanceof Error) || !FORMING.test(e.message) || Date.now() - started > boundMs) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
