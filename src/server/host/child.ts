// A database host: one process per open database. It owns the SQLite connection, so SQLite work
// never blocks the server's HTTP loop, and a runaway query can be stopped by killing the process.
// Requests that arrive together are executed together (group commit for writes).
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ExecuteRequest, ExecuteResponse } from '../../api/executor.ts';
import { parseBookmark } from '../../api/bookmark.ts';
import type { IntMode } from '../../api/types.ts';
import { HistoryError, type HistoryPoint } from '../../api/time-travel.ts';
import type { ClusterDatabase, Forward } from '../../cluster/cluster-database.ts';
import { NOT_DURABLE, UNAVAILABLE } from '../../cluster/messages.ts';
import { Engine } from '../../engine/engine.ts';
import { detailOf } from '../../engine/sqlite-error.ts';
import { setHistoryLockWait } from '../../log/lock.ts';
import { LoggedDatabase } from '../../log/logged-database.ts';
import { setHistoryReporter } from '../../log/report.ts';
import { parseQuery } from '../../sql/parse-cache.ts';
import { ErrorCodes, envelopeError, success } from '../protocols/envelope.ts';
import { BadRequest, parseD1Body, parseDioneBody, parseRestBody, splitSqlText } from '../protocols/requests.ts';
import { d1Response, dioneResponse, type Encoded, restResponse } from '../protocols/responses.ts';
import type { ClusterHost } from './cluster-host.ts';
import type { HistoryPointMessage, HostReply, HostRequest } from './protocol.ts';

// Started ahead of need (a warm spare); the database to open arrives in the first message.
// With a write log, the engine is the log's (a restore replaces it).
let logged: LoggedDatabase | undefined;
let plain: Engine | undefined;
/** Cluster mode: the database is the cluster's; this process holds this node's part. */
let cluster: ClusterHost | undefined;
const engine = (): Engine => logged?.engine ?? plain!;

/** The engine for reads outside SQL requests (info, exports): in cluster mode, this node's copy. */
async function localEngine(): Promise<Engine> {
  if (!cluster) return engine();
  const copy = (await cluster.get()).engine;
  if (!copy) throw new Error(UNAVAILABLE);
  return copy;
}
const RETENTION_CHECK_MS = 60_000;

interface Pending {
  id: number;
  request: ExecuteRequest;
  encode: (response: ExecuteResponse) => Encoded;
}

let queue: Pending[] = [];
let scheduled = false;

// The host replaces a host of the same database that may still be closing (idle, or killed on a
// query timeout): opening waits a few seconds for its hold on the write log to go.
setHistoryLockWait(5000);
// What the write log reports (damage found, a write it could not take) goes to stderr, which the
// server's stderr carries, as structured lines at the report's level (pino's numbers).
setHistoryReporter((level, msg, details) => {
  const line = { level: level === 'error' ? 50 : 40, time: Date.now(), pid: process.pid, hostname: hostname(), ...details, msg };
  process.stderr.write(`${JSON.stringify(line)}\n`);
});

/** An answer, and what it becomes when the commit it reports is not made durable. */
interface Outgoing {
  reply: HostReply;
  unlessDurable?: (error: string) => HostReply;
}

let replies: Outgoing[] = [];

/** Answers go out together, but always before the next unit of work starts (see drain). */
function reply(message: HostReply, unlessDurable?: (error: string) => HostReply): void {
  replies.push({ reply: message, unlessDurable });
}

function flushReplies(): void {
  if (replies.length === 0) return;
  // Nothing is acknowledged before the log holds it. When the log cannot take a commit, the
  // database is brought back to the log's last durable record (LoggedDatabase.flush repairs it
  // before it throws) and the answers of the writes it undid become failures; reads go on, and
  // writes work again once the log can write.
  let failure: string | undefined;
  try {
    logged?.flush();
  } catch (e) {
    failure = detailOf(e);
  }
  const out = replies.map((r) => (failure !== undefined && r.unlessDurable ? r.unlessDurable(failure) : r.reply));
  replies = [];
  process.send!(out.length === 1 ? out[0] : out);
}

/** Why every request of a refused database fails (its log failed and the repair did not succeed yet). */
function refusal(): string | undefined {
  return logged?.unavailable();
}

const WRITE_REFUSED = 'This token can only read: the statement would write';

function writes(request: ExecuteRequest): boolean {
  return request.queries.some((q) => parseQuery(q.sql).statements.some((s) => s.kind === 'write'));
}

/** Parses an execute request in its protocol; answers at once when the request is malformed. */
function accept(message: Extract<HostRequest, { op: 'execute' }>): void {
  let pending: Pending;
  try {
    switch (message.protocol) {
      case 'dione': {
        const { request, intMode } = parseDioneBody(message.body);
        pending = { id: message.id, request, encode: (r) => dioneResponse(r, intMode as IntMode) };
        break;
      }
      case 'd1': {
        const { queries, array } = parseD1Body(message.body);
        const request: ExecuteRequest = { queries, bookmark: message.session };
        pending = { id: message.id, request, encode: (r) => d1Response(r, array, message.resultsFormat) };
        break;
      }
      default: {
        const raw = message.protocol === 'rest-raw';
        pending = { id: message.id, request: { queries: parseRestBody(message.body) }, encode: (r) => restResponse(r, raw) };
      }
    }
  } catch (e) {
    if (!(e instanceof BadRequest)) throw e;
    const body = message.protocol === 'dione' || message.protocol === 'd1' ? { success: false, error: e.message } : envelopeError(ErrorCodes.badRequest, e.message);
    reply({ id: message.id, status: 400, body: JSON.stringify(body) });
    return;
  }
  if (message.readOnly && writes(pending.request)) {
    const body = message.protocol.startsWith('rest') ? envelopeError(ErrorCodes.forbidden, WRITE_REFUSED) : { success: false, error: WRITE_REFUSED };
    reply({ id: message.id, status: 403, body: JSON.stringify(body) });
    return;
  }
  // The check above is the fast path with the token's wording; SQLite enforces it in the engine.
  if (message.readOnly) pending.request.readOnly = true;
  queue.push(pending);
  if (!scheduled) {
    scheduled = true;
    setImmediate(drain);
  }
}

function rowsOf(response: ExecuteResponse): [number, number] {
  let read = 0;
  let written = 0;
  if (response.success) {
    for (const r of response.results) {
      read += r.meta.rows_read;
      written += r.meta.rows_written;
    }
  }
  return [read, written];
}

/** A session read that the copy `engine` may serve: any copy will do, or this one has reached its bookmark. */
function readsAnyCopy(request: ExecuteRequest, copy: Engine): boolean {
  if (request.bookmark === 'first-unconstrained') return true;
  const wanted = request.bookmark === undefined ? undefined : parseBookmark(request.bookmark);
  return wanted !== undefined && wanted.sequence <= copy.commitSequence;
}

/** Cluster mode: the batch runs here (one shipment to the log for all its writes), or is handed on. */
async function drainCluster(batch: Pending[]): Promise<void> {
  let answers: (ExecuteResponse | Forward)[];
  try {
    const database = await cluster!.get();
    answers = await database.executeMany(batch.map((p) => ({ request: p.request, writes: writes(p.request) })));
  } catch (e) {
    // NATS's own errors ("TIMEOUT"…) mean the same to the caller: nothing was made durable.
    const error = (e as Error).message === UNAVAILABLE ? UNAVAILABLE : NOT_DURABLE;
    const copy = cluster!.offlineCopy();
    answers = batch.map((p) => (copy && !writes(p.request) && readsAnyCopy(p.request, copy) ? copy.execute(p.request) : { success: false, error }));
  }
  answers.forEach((answer, i) => {
    const p = batch[i]!;
    if ('forward' in answer) reply({ id: p.id, status: 307, body: '', forward: answer.forward ?? null });
    else reply({ id: p.id, ...p.encode(answer), rows: rowsOf(answer) });
  });
  flushReplies();
}

function drain(): void {
  scheduled = false;
  const batch = queue;
  queue = [];
  if (cluster) {
    void drainCluster(batch);
    return;
  }
  const refused = refusal();
  if (refused !== undefined) {
    for (const p of batch) reply({ id: p.id, ...p.encode({ success: false, error: refused }), rows: [0, 0] });
    flushReplies();
    return;
  }
  // Answer each request as soon as it is committed (or failed): a runaway query later in the batch
  // must not hold back, and then lose, the answers to writes that already committed.
  const running = engine();
  // A repair (the log failed) reopens the engine between two units: the units after it, which the
  // closed engine refused, run again on the new one.
  const again: Pending[] = [];
  let stale = false;
  let sequenceBefore = running.commitSequence;
  running.executeMany(
    batch.map((p) => p.request),
    (i, response) => {
      const p = batch[i]!;
      if (stale) {
        again.push(p);
        return;
      }
      // The unit committed: its answers stand only once the log holds the commit.
      const committed = response.success && running.commitSequence !== sequenceBefore;
      reply(
        { id: p.id, ...p.encode(response), rows: rowsOf(response) },
        committed ? (error) => ({ id: p.id, ...p.encode({ success: false, error }), rows: [0, 0] }) : undefined,
      );
    },
    () => {
      flushReplies();
      stale = engine() !== running || logged?.refused === true;
      sequenceBefore = running.commitSequence;
    },
  );
  flushReplies();
  if (again.length > 0) {
    queue = [...again, ...queue];
    if (!scheduled) {
      scheduled = true;
      setImmediate(drain);
    }
  }
}

async function handle(message: HostRequest): Promise<void> {
  switch (message.op) {
    case 'open':
      try {
        const options = { intMode: 'bigint', servedBy: message.servedBy } as const;
        if (message.cluster) {
          // Loaded only in cluster mode: the NATS client is a fifth of a host's start-up.
          const { ClusterHost } = await import('./cluster-host.ts');
          cluster = new ClusterHost(message.cluster, message.file, { ...options, servedByRegion: message.cluster.region });
        } else if (message.history) {
          logged = new LoggedDatabase(message.file, options, { ...message.history, lockWaitMs: 5000 });
          setInterval(() => logged?.applyRetention(), RETENTION_CHECK_MS).unref();
        } else plain = new Engine(message.file, options);
      } catch (e) {
        process.stderr.write(`dione: cannot open ${message.file}: ${(e as Error).message}\n`);
        process.exit(1);
      }
      return reply({ id: message.id, status: 200, body: 'open' });
    case 'execute':
      return accept(message);
    case 'primary': {
      const where = cluster ? await (await cluster.get()).primaryNode() : 'self';
      if (where === 'self') return reply({ id: message.id, status: 200, body: 'self' });
      return reply({ id: message.id, status: 307, body: '', forward: where ?? null });
    }
    case 'info':
      return reply({ id: message.id, status: 200, body: JSON.stringify((await localEngine()).info()) });
    case 'dump':
      await (await localEngine()).dumpTo(message.file);
      return reply({ id: message.id, status: 200, body: '{}' });
    case 'export': {
      const fd = openSync(message.file, 'w');
      let lines = 0;
      try {
        let first = true;
        const source = await localEngine();
        for (const line of source.dumpSql(message.options)) {
          writeSync(fd, first ? line : `\n${line}`);
          first = false;
          lines++;
        }
      } finally {
        closeSync(fd);
      }
      return reply({ id: message.id, status: 200, body: JSON.stringify({ lines, bookmark: (await localEngine()).bookmark }) });
    }
    case 'import': {
      const sql = readFileSync(message.file, 'utf8');
      const queries = splitSqlText(sql).map((text) => ({ sql: text, params: [] }));
      return answerAsWriter(
        message.id,
        (target) => {
          const response = queries.length === 0 ? null : target.execute({ queries, resultsFormat: 'NONE' });
          if (response && !response.success) return { status: 400, body: JSON.stringify(envelopeError(ErrorCodes.sql, response.error)) };
          const meta = response?.success ? response.results.at(-1)?.meta : undefined;
          return { status: 200, body: JSON.stringify(success({ num_queries: queries.length, meta, final_bookmark: target.bookmark })) };
        },
        // An import the log could not make durable was undone: it failed.
        (error) => ({ status: 400, body: JSON.stringify(envelopeError(ErrorCodes.sql, error)) }),
      );
    }
    case 'bookmark':
      return answerAsWriter(message.id, (_, log) =>
        historyAnswer(() => ({ bookmark: historyOf(log).bookmarkAt(message.timestamp === undefined ? undefined : new Date(message.timestamp)) })),
      );
    case 'restore': {
      const point = pointOf(message.point);
      return answerAsWriter(message.id, (_, log) => historyAnswer(() => historyOf(log).restore(point)));
    }
    case 'fork': {
      const point = pointOf(message.point);
      return answerAsWriter(message.id, (_, log) => historyAnswer(() => historyOf(log).fork(point, message.file)));
    }
  }
}

type Answer = Pick<HostReply, 'status' | 'body'>;

/**
 * Runs work that writes or needs the write log. In cluster mode it runs only on the primary
 * (serialised with its writes, and shipped to the log before the answer); elsewhere the answer
 * says where the primary is.
 */
async function answerAsWriter(
  id: number,
  work: (target: Engine, log: LoggedDatabase | undefined) => Answer | Promise<Answer>,
  unlessDurable?: (error: string) => Answer,
): Promise<void> {
  if (!cluster) {
    const answer = await work(engine(), logged);
    return reply({ id, ...answer }, answer.status === 200 && unlessDurable ? (error) => ({ id, ...unlessDurable(error) }) : undefined);
  }
  const database: ClusterDatabase = await cluster.get();
  const result = await database.asPrimary((primaryLog) => work(primaryLog.engine, primaryLog));
  if ('forward' in result) return reply({ id, status: 307, body: '', forward: result.forward ?? null });
  reply({ id, ...result });
}

function historyOf(log: LoggedDatabase | undefined): LoggedDatabase {
  if (!log) throw new HistoryError('Time Travel is off on this server: it runs without a write log (dione serve --no-history)');
  return log;
}

function pointOf(message: HistoryPointMessage): HistoryPoint {
  return message.bookmark !== undefined ? { bookmark: message.bookmark } : { timestamp: new Date(message.timestamp!) };
}

/** A history operation's answer; a point that cannot be honoured is the caller's error (400). */
async function historyAnswer(run: () => unknown): Promise<Answer> {
  try {
    return { status: 200, body: JSON.stringify(await run()) };
  } catch (e) {
    if (!(e instanceof HistoryError)) throw e;
    return { status: 400, body: JSON.stringify({ error: e.message }) };
  }
}

/** Operations other than SQL requests, on a database refused after its log failed, get the reason. */
function refuses(message: HostRequest): boolean {
  if (message.op === 'open' || message.op === 'execute') return false;
  const refused = refusal();
  if (refused === undefined) return false;
  reply({ id: message.id, status: 503, body: JSON.stringify(envelopeError(ErrorCodes.sql, refused)) });
  return true;
}

function receive(message: HostRequest): void {
  if (refuses(message)) {
    if (!scheduled) flushReplies();
    return;
  }
  handle(message)
    .then(() => {
      if (!scheduled) flushReplies();
    })
    .catch((e: unknown) => {
    const text = e instanceof Error ? e.message : String(e);
    reply({ id: message.id, status: 500, body: JSON.stringify(envelopeError(ErrorCodes.sql, text)) });
    flushReplies();
  });
}

// The server sends the requests of one event-loop turn together, as an array.
process.on('message', (message: HostRequest | HostRequest[]) => {
  if (Array.isArray(message)) for (const m of message) receive(m);
  else receive(message);
});

process.on('disconnect', () => {
  if (cluster) {
    // Gives the lease up, so another node need not wait for it to lapse.
    void cluster.stop().finally(() => process.exit(0));
    return;
  }
  if (logged) logged.closeNow();
  else plain?.close();
  process.exit(0);
});

process.send!({ id: 0, status: 200, body: 'ready' } satisfies HostReply);
