// bench:client's second baseline: D1's binding inside a Worker, as wrangler runs it locally
// (miniflare, its workerd process, an in-memory D1). The Worker runs the point selects itself, with
// k calls in flight, for a given time, and answers how many it completed; no HTTP per call.
import { Miniflare } from 'miniflare';

const WORKER = (rows: number, maxCalls: number) => `
const ROWS = ${rows};
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === '/seed') {
      await env.DB.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, price REAL)');
      await env.DB.prepare(\`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \${ROWS}) INSERT INTO items SELECT i, 'item ' || i, i * 0.25 FROM n\`).run();
      return new Response('ok');
    }
    const inFlight = Number(url.searchParams.get('inFlight'));
    const deadline = Date.now() + Number(url.searchParams.get('ms'));
    let started = 0;
    let calls = 0;
    let errors = 0;
    const start = Date.now();
    // Date.now() moves on I/O in workerd; every call is I/O (to D1's Durable Object).
    const loop = async () => {
      while (Date.now() < deadline && started < ${maxCalls}) {
        const id = (started++ % ROWS) + 1;
        const row = await env.DB.prepare('SELECT * FROM items WHERE id = ?').bind(id).first();
        if (row && row.id === id) calls++;
        else errors++;
      }
    };
    await Promise.all(Array.from({ length: inFlight }, loop));
    return Response.json({ calls, errors, ms: Date.now() - start });
  },
};
`;

export interface InWorkerResult {
  /** Completed calls per second. */
  rate: number;
  errors: number;
}

export interface MiniflareD1 {
  /** Point selects in the Worker, `inFlight` at a time, for `seconds`. */
  run(inFlight: number, seconds: number): Promise<InWorkerResult>;
  stop(): Promise<void>;
}

export async function startMiniflareD1(rows: number, maxCalls: number): Promise<MiniflareD1> {
  const mf = new Miniflare({ modules: true, script: WORKER(rows, maxCalls), d1Databases: { DB: 'bench' }, compatibilityDate: '2025-01-01' });
  try {
    const seeded = await mf.dispatchFetch('http://bench/seed');
    if (!seeded.ok) throw new Error(`seeding miniflare's D1 failed: ${await seeded.text()}`);
  } catch (error) {
    await mf.dispose();
    throw error;
  }
  return {
    async run(inFlight, seconds) {
      const response = await mf.dispatchFetch(`http://bench/run?inFlight=${inFlight}&ms=${seconds * 1000}`);
      const { calls, errors, ms } = (await response.json()) as { calls: number; errors: number; ms: number };
      return { rate: (calls / ms) * 1000, errors };
    },
    stop: () => mf.dispose(),
  };
}
