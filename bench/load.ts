// The benches' load generator. harness.ts runLoad() forks this module (its own process, so the
// load shares an event loop with neither the server nor the bench driver), sends it a LoadSpec and
// gets a LoadResult back; then this process exits. The load is autocannon, bounded by time
// (seconds) and by count (maxRequests). Latencies are recorded here from every 2xx answer, in
// fractional ms: autocannon's own histogram keeps whole milliseconds only.
import autocannon from 'autocannon';

/** What each request asks for. Every workload is a POST of D1's binding protocol (POST /query). */
export type Workload =
  /** SELECT * FROM items WHERE id = ?, ids cycling over 1..rows. */
  | { kind: 'select'; rows: number }
  /** INSERT INTO log (at, note) VALUES (?, ?), one row per request. */
  | { kind: 'insert' }
  /** SELECT * FROM t WHERE id = 1, round-robin over these databases (the x-dione-database header). */
  | { kind: 'tenants'; databases: string[] };

export interface LoadSpec {
  /** Origin and path, e.g. http://127.0.0.1:8787/query?resultsFormat=ROWS_AND_COLUMNS */
  url: string;
  headers: Record<string, string>;
  connections: number;
  seconds: number;
  maxRequests: number;
  /** Per-request timeout in seconds (a timed-out request counts as an error). */
  timeoutSeconds: number;
  workload: Workload;
}

export interface LoadResult {
  /** 2xx answers. */
  ok: number;
  /** Non-2xx answers plus connection errors and timeouts. */
  errors: number;
  seconds: number;
  /** 2xx answers per second. */
  rps: number;
  p50: number;
  p99: number;
  /** Requests sent and not answered when the time was up (neither counted nor timed). */
  unanswered: number;
  statuses: Record<string, number>;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

export function run(spec: LoadSpec): Promise<LoadResult> {
  const { workload } = spec;
  let seq = 0;
  const body = (i: number): string => {
    if (workload.kind === 'select') return JSON.stringify({ sql: 'SELECT * FROM items WHERE id = ?', params: [(i % workload.rows) + 1] });
    if (workload.kind === 'insert') return JSON.stringify({ sql: 'INSERT INTO log (at, note) VALUES (?, ?)', params: [i, 'bench'] });
    return JSON.stringify({ sql: 'SELECT * FROM t WHERE id = ?', params: [1] });
  };
  let latencies = new Float64Array(Math.min(spec.maxRequests, 1 << 20));
  let recorded = 0;
  const statuses: Record<string, number> = {};
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: spec.url,
        method: 'POST',
        headers: spec.headers,
        connections: spec.connections,
        duration: spec.seconds,
        maxOverallRequests: spec.maxRequests,
        timeout: spec.timeoutSeconds,
        requests: [
          {
            setupRequest: (request) => {
              const i = seq++;
              const r = request as { body?: string; headers?: Record<string, string> };
              r.body = body(i);
              if (workload.kind === 'tenants') r.headers = { ...spec.headers, 'x-dione-database': workload.databases[i % workload.databases.length]! };
              return request;
            },
          },
        ],
      },
      (error, result) => {
        if (error) return reject(error);
        const sorted = latencies.subarray(0, recorded).sort();
        const ok = statuses['2xx'] ?? 0;
        const seconds = result.duration > 0 ? result.duration : spec.seconds;
        const answered = Object.values(statuses).reduce((n, c) => n + c, 0);
        const unanswered = Math.max(0, result.requests.sent - answered - result.errors);
        resolve({ ok, errors: result.errors + result.non2xx, seconds, rps: ok / seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99), unanswered, statuses });
      },
    );
    // autocannon emits (client, status, bytes, ms); its typings leave out the client.
    (instance as NodeJS.EventEmitter).on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      const key = `${Math.floor(status / 100)}xx`;
      statuses[key] = (statuses[key] ?? 0) + 1;
      if (key !== '2xx') return;
      if (recorded === latencies.length) {
        const grown = new Float64Array(Math.min(spec.maxRequests, latencies.length * 2));
        if (grown.length === latencies.length) return;
        grown.set(latencies);
        latencies = grown;
      }
      latencies[recorded++] = ms;
    });
  });
}

if (process.send) {
  process.once('message', (spec: LoadSpec) => {
    // Never outlive the load by much, whatever happens to the target.
    setTimeout(() => process.exit(3), (spec.seconds + spec.timeoutSeconds + 30) * 1000).unref();
    run(spec).then(
      (result) => process.send!({ result }, () => process.exit(0)),
      (error: Error) => process.send!({ error: error.stack ?? String(error) }, () => process.exit(1)),
    );
  });
}
