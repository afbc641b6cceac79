// Crash safety of the write log: a child process (fixtures/log-crash-worker.ts) works on a
// database with a history — single rows, 2-row batches, large transactions, snapshots, retention
// compaction, restores to bookmarks it acknowledged — and prints every acknowledged operation.
// The test SIGKILLs it (by its PID) at a random moment, aimed in most rounds at one kind of
// operation or, with the worker pausing there, at one step inside a restore or a retention pass.
// In some rounds the unacknowledged last log record is then torn (as a power loss would), and in
// half of them a second worker runs the crash recovery and is killed during it. Then the test
// reopens the database here and checks:
//   1. every acknowledged write is there, as the acknowledged restores leave it: the expected
//      rows are the replay of the acknowledged lines, a restore resetting them to its target's;
//   2. the one operation in flight at the kill is there entirely or not at all;
//   3. the log and the database agree: the log ends at the database's commit number, the log
//      rebuilds exactly the live tables (materialize), integrity_check passes, and the log rebuilds
//      acknowledged bookmarks of the round as they were acknowledged;
//   4. service resumes: a write succeeds (and the log still agrees), and the next round goes on
//      with the same files.
// The rounds are seeded (LOG_CRASH_SEED=<n> replays one) and bounded in count and time.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { crc32 } from 'node:zlib';
import type Database from 'better-sqlite3';
import { parseBookmark } from '../src/api/bookmark.ts';
import { D1Database, HistoryError } from '../src/index.ts';
import { LoggedExecutor } from '../src/log/executor.ts';
import type { HistoryOptions, LoggedDatabase } from '../src/log/logged-database.ts';
import { materialize, sequenceOfFile } from '../src/log/pages.ts';
import { tempDir } from './helpers/binding.ts';
import { contents, withDatabase } from './helpers/database-files.ts';
import { root } from './helpers/paths.ts';
import { mulberry32 } from './helpers/random.ts';

const worker = path.join(root, 'test', 'fixtures', 'log-crash-worker.ts');
const ROUNDS = 16;
const MIN_ROUNDS = 6;
/** No round starts after this much of the file's time has gone. */
const TOTAL_BUDGET_MS = 65_000;
/** A round's worker is killed at the latest this long after it was started. */
const KILL_BY_MS = 7_000;

// One simulated hour per real second; the Time Travel window is 3 simulated hours (3 real
// seconds), so retention drops snapshots and log segments while the test runs.
const SPEED = 3600;
const RETENTION_DAYS = 3 / 24;
const CLOCK_BASE = Date.now();
const HISTORY = {
  snapshotBytes: 32 * 1024,
  checkpointBytes: 64 * 1024,
  retentionDays: RETENTION_DAYS,
};
const historyOptions = (): HistoryOptions => ({ ...HISTORY, clock: () => CLOCK_BASE + (Date.now() - CLOCK_BASE) * SPEED });

const SEED = Number(process.env.LOG_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

const random = mulberry32(SEED);
const between = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));

const children = new Set<ChildProcess>();
after(() => {
  // Only the workers this file started, by PID, if one is somehow still running.
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
});

// ---------------------------------------------------------------------------------------------
// The model: row ids are never reused, so a state is a set of ids. States form a tree (a restore
// makes an earlier state current again); each acknowledged bookmark names a node.

interface State {
  parent: State | undefined;
  added: number[];
}

function idsOf(state: State): Set<number> {
  const ids = new Set<number>();
  for (let s: State | undefined = state; s; s = s.parent) for (const id of s.added) ids.add(id);
  return ids;
}

type Operation =
  | { kind: 'insert' | 'pair' | 'big'; ids: number[] }
  | { kind: 'restore'; target: string }
  | { kind: 'snapshot' | 'retention' };

const range = (first: number, count: number) => Array.from({ length: count }, (_, i) => first + i);

function parseBegin(parts: string[]): Operation {
  const n = parts.slice(2).map(Number);
  switch (parts[1]) {
    case 'insert':
      return { kind: 'insert', ids: [n[0]!] };
    case 'pair':
      return { kind: 'pair', ids: [n[0]!, n[1]!] };
    case 'big':
      return { kind: 'big', ids: range(n[0]!, n[1]!) };
    case 'restore':
      return { kind: 'restore', target: parts[2]! };
    case 'snapshot':
    case 'retention':
      return { kind: parts[1] };
    default:
      throw new Error(`unknown operation in ${parts.join(' ')}`);
  }
}

interface Replay {
  /** The state every acknowledged line leads to. */
  current: State;
  /** The operation begun and not acknowledged when the worker died, if any. */
  inFlight: Operation | undefined;
  /** Each acknowledged bookmark of the run: its state, and the index of the line that acknowledged it. */
  states: Map<string, { state: State; line: number }>;
  /** Every id the run used or may have used. */
  maxId: number;
  lastAckedSeq: number;
  acks: Record<string, number>;
  /** A background snapshot was running at the kill. */
  backgroundSnapshot: boolean;
  /** The last step the worker announced since the operation in flight began. */
  step: string | undefined;
  ready: boolean;
}

function replay(lines: string[], start: State, batches: Map<number, number>): Replay {
  const r: Replay = { current: start, inFlight: undefined, states: new Map(), maxId: 0, lastAckedSeq: -1, acks: {}, backgroundSnapshot: false, step: undefined, ready: false };
  const seqOf = (bookmark: string) => {
    const parsed = parseBookmark(bookmark);
    assert.ok(parsed, `not a bookmark: ${bookmark}`);
    return parsed.sequence;
  };
  let index = 0;
  const acknowledge = (bookmark: string, write: boolean) => {
    const seq = seqOf(bookmark);
    if (write) assert.ok(seq > r.lastAckedSeq, `acknowledged bookmarks go backwards: ${bookmark} after commit ${r.lastAckedSeq}`);
    else assert.ok(seq >= r.lastAckedSeq, `acknowledged bookmarks go backwards: ${bookmark} after commit ${r.lastAckedSeq}`);
    r.lastAckedSeq = seq;
    r.states.set(bookmark, { state: r.current, line: index });
  };
  for (; index < lines.length; index++) {
    const line = lines[index]!;
    const parts = line.split(' ');
    if (line === 'opening') continue;
    if (parts[0] === 'step') {
      r.step = parts[1];
      continue;
    }
    if (parts[0] === 'ready') {
      r.ready = true;
      r.lastAckedSeq = seqOf(parts[1]!);
      r.states.set(parts[1]!, { state: r.current, line: index });
    } else if (parts[0] === 'begin') {
      assert.equal(r.inFlight, undefined, `two operations in flight: ${line}`);
      r.inFlight = parseBegin(parts);
      r.step = undefined;
      if ('ids' in r.inFlight) {
        r.maxId = Math.max(r.maxId, ...r.inFlight.ids);
        for (const id of r.inFlight.ids) batches.set(id, r.inFlight.ids.length);
      }
    } else if (parts[0] === 'ack' || parts[0] === 'nack') {
      const op = r.inFlight;
      assert.ok(op && op.kind === parts[1], `an acknowledgement of an operation not begun: ${line}`);
      r.inFlight = undefined;
      r.step = undefined;
      r.acks[`${parts[0] === 'nack' ? 'refused ' : ''}${op.kind}`] = (r.acks[`${parts[0] === 'nack' ? 'refused ' : ''}${op.kind}`] ?? 0) + 1;
      if (parts[0] === 'nack') continue;
      if (op.kind === 'restore') {
        const target = r.states.get(op.target);
        assert.ok(target, `restored to ${op.target}, a bookmark the worker never acknowledged`);
        assert.equal(parts[2], op.target);
        // The bookmark that undoes the restore is where the database stood before it.
        assert.equal(seqOf(parts[4]!), r.lastAckedSeq, `a restore answered previous_bookmark ${parts[4]}, the database stood at ${r.lastAckedSeq}`);
        r.current = target.state;
        acknowledge(parts[3]!, true);
      } else if ('ids' in op) {
        r.current = { parent: r.current, added: op.ids };
        acknowledge(parts.at(-1)!, true);
      } else acknowledge(parts[2]!, false);
    } else if (line === 'bg-snapshot begin') r.backgroundSnapshot = true;
    else if (line === 'bg-snapshot end') r.backgroundSnapshot = false;
    else if (line.startsWith('bg-snapshot failed')) assert.fail(`a background snapshot failed: ${line}`);
    else assert.fail(`unexpected line from the worker: ${line}`);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Running the worker and killing it.

type Target = 'write' | 'big' | 'snapshot' | 'restore' | 'restore-stored' | 'restore-logged' | 'retention' | 'bg-snapshot' | 'recovery' | 'any';

/**
 * Which lines a target waits for, and how long after one the kill comes (ms). An aim with a
 * `pause` makes the worker stand still after announcing that step, so the kill lands right there.
 */
const AIMS: Record<Exclude<Target, 'any'>, { match: (line: string) => boolean; delay: [number, number]; pause?: string }> = {
  recovery: { match: (l) => l === 'opening', delay: [0, 40] },
  write: { match: (l) => l.startsWith('begin insert') || l.startsWith('begin pair'), delay: [0, 6] },
  big: { match: (l) => l.startsWith('begin big'), delay: [0, 150] },
  snapshot: { match: (l) => l === 'begin snapshot', delay: [0, 60] },
  restore: { match: (l) => l.startsWith('begin restore'), delay: [0, 40] },
  // Inside a restore: its snapshot is stored, its image not yet logged; or its image is logged.
  'restore-stored': { match: (l) => l.startsWith('step stored-ahead'), delay: [0, 0], pause: 'stored-ahead' },
  'restore-logged': { match: (l) => l.startsWith('step image-logged'), delay: [0, 0], pause: 'image-logged' },
  // Inside retention: a snapshot removed, the others and the log's segments not yet.
  retention: { match: (l) => l.startsWith('step removed'), delay: [0, 0], pause: 'removed' },
  'bg-snapshot': { match: (l) => l === 'bg-snapshot begin', delay: [0, 40] },
};

interface Run {
  lines: string[];
  /** When each line arrived (Date.now()). */
  arrivals: number[];
  started: number;
  /** The kill came from the fallback timer, not from the aim. */
  fallback: boolean;
  /** ms from the start to the kill. */
  killedAfter: number;
  /** The worker finished by itself before the kill (allowed only when asked for). */
  finished: boolean;
}

async function runAndKill(config: object, target: Target, warmup: number, delay: number, mayFinish = false): Promise<Run> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', worker, JSON.stringify(config)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const lines: string[] = [];
  const arrivals: number[] = [];
  let partial = '';
  let stderr = '';
  let acknowledged = 0;
  let fired = false;
  let fallback = false;
  let killedAfter = -1;
  const kill = () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    killedAfter = Date.now() - started;
    process.kill(child.pid!, 'SIGKILL');
  };
  const fire = (ms: number) => {
    if (fired) return;
    fired = true;
    if (ms === 0) kill();
    else setTimeout(kill, ms);
  };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    const complete = (partial + chunk.toString()).split('\n');
    partial = complete.pop()!; // a line cut by the kill acknowledges nothing
    for (const line of complete) {
      lines.push(line);
      arrivals.push(Date.now());
      if (line.startsWith('ack ') || line.startsWith('nack ')) acknowledged++;
      if (fired || acknowledged < warmup) continue;
      if (target === 'any') fire(delay);
      else if (AIMS[target].match(line)) fire(delay);
    }
  });
  const timer = setTimeout(() => {
    if (!fired) fallback = true;
    fired = true;
    kill();
  }, KILL_BY_MS);
  const { code, signal } = await exited;
  clearTimeout(timer);
  await closed;
  children.delete(child);
  const finished = mayFinish && code === 0 && lines.at(-1) === 'done';
  if (!finished) assert.equal(signal, 'SIGKILL', `[seed ${SEED}] the worker ended by itself (code ${code}); stderr:\n${stderr}`);
  return { lines, arrivals, started, fallback, killedAfter, finished };
}

// ---------------------------------------------------------------------------------------------
// What the files say about where the kill landed (read before anything reopens the database).

interface LogTail {
  seq: number;
  kind: 'pages' | 'image' | undefined;
  torn: boolean;
  /** The last segment, and where and how long its last whole record is. */
  segment: string;
  offset: number;
  length: number;
}

function logTail(historyDir: string): LogTail {
  const dir = path.join(historyDir, 'segments');
  const last = readdirSync(dir)
    .filter((n) => /^[0-9a-f]{16}\.log$/.test(n))
    .sort()
    .at(-1);
  const tail: LogTail = { seq: -1, kind: undefined, torn: false, segment: '', offset: 0, length: 0 };
  if (!last) return tail;
  tail.segment = path.join(dir, last);
  const bytes = readFileSync(tail.segment);
  let at = 0;
  while (at + 8 <= bytes.length) {
    const length = bytes.readUInt32LE(at);
    if (length < 17 || at + 8 + length > bytes.length) break; // 17: a record's kind, seq and time; 0: the zeros ahead
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (crc32(body) !== bytes.readUInt32LE(at + 4)) break;
    tail.kind = body.readUInt8(0) === 2 ? 'image' : 'pages';
    tail.seq = body.readDoubleLE(1);
    tail.offset = at;
    tail.length = 8 + length;
    at += 8 + length;
  }
  // The log extends the segment with zeros ahead of its records; anything else is a torn record.
  const rest = bytes.subarray(at);
  tail.torn = Buffer.compare(rest, Buffer.alloc(rest.length)) !== 0;
  return tail;
}

function fileEvidence(file: string, historyDir: string, since: number): string[] {
  const found: string[] = [];
  const recent = (p: string) => existsSync(p) && statSync(p).mtimeMs >= since - 5;
  const snapshots = path.join(historyDir, 'snapshots');
  for (const name of readdirSync(snapshots)) {
    if (!recent(path.join(snapshots, name))) continue;
    if (name.startsWith('next.sqlite.tmp-')) found.push('snapshot: killed during the backup');
    else if (name.startsWith('restore.sqlite.tmp-')) found.push('restore: killed while its target copy existed (building or storing it)');
    else if (name.includes('.sqlite.tmp-')) found.push('snapshot store: killed while copying a snapshot in');
  }
  if (recent(`${file}.restore-tmp`)) found.push('restore: killed while writing the file to swap in');
  return found;
}

// ---------------------------------------------------------------------------------------------
// Reading databases.

const idsIn = (connection: Database.Database) => new Set((connection.prepare('SELECT id FROM rows').pluck().all() as number[]).map(Number));

function describeDifference(actual: Set<number>, expected: Set<number>): string {
  const missing = [...expected].filter((id) => !actual.has(id));
  const extra = [...actual].filter((id) => !expected.has(id));
  return `${missing.length} missing (${missing.slice(0, 8).join(', ')}), ${extra.length} unexpected (${extra.slice(0, 8).join(', ')})`;
}

const sameSet = (a: Set<number>, b: Set<number>) => a.size === b.size && [...a].every((id) => b.has(id));

/** The log rebuilds the live database: same commit number, same tables, both intact. */
function assertLogAgrees(logged: LoggedDatabase, file: string, scratch: string, where: string, evidence: string[]): void {
  const last = logged.log.last();
  assert.ok(last, `${where}: the log has no records`);
  assert.equal(last.seq, logged.engine.commitSequence, `${where}: the log ends at commit ${last.seq}, the database is at ${logged.engine.commitSequence}`);
  const rebuilt = path.join(scratch, 'rebuilt.sqlite');
  rmSync(rebuilt, { force: true });
  materialize(logged.log, logged.snapshots, last.seq, rebuilt);
  assert.equal(sequenceOfFile(rebuilt), last.seq);
  const live = withDatabase(file, (c) => {
    assert.equal(c.pragma('integrity_check', { simple: true }), 'ok', `${where}: integrity_check of the live database`);
    return contents(c);
  });
  const fromLog = withDatabase(rebuilt, (c) => {
    assert.equal(c.pragma('integrity_check', { simple: true }), 'ok', `${where}: integrity_check of the database rebuilt from the log`);
    return contents(c);
  });
  const beyond = logged.snapshots.list().filter((s) => s.seq > last.seq);
  assert.deepEqual(
    fromLog,
    live,
    `${where}: the log rebuilds commit ${last.seq} differently from the live database` +
      (beyond.length > 0 ? ` (snapshots beyond the log's end: ${beyond.map((s) => s.seq).join(', ')})` : '') +
      (evidence.length > 0 ? ` [the kill: ${evidence.join('; ')}]` : ''),
  );
}

// ---------------------------------------------------------------------------------------------

test('the write log survives SIGKILL during writes, snapshots, compaction and restores', { timeout: 120_000 }, async (t) => {
  const scratch = tempDir();
  const file = path.join(scratch, 'crash', 'logged.db');
  const historyDir = `${path.resolve(file)}-history`;
  const began = Date.now();
  // Rounds aim at each kind of operation; restores (the most steps) more often.
  const aims: Target[] = [
    'write',
    'restore',
    'snapshot',
    'big',
    'restore-stored',
    'retention',
    'bg-snapshot',
    'any',
    'write',
    'restore-logged',
    'snapshot',
    'big',
    'restore-stored',
    'retention',
    'restore',
    'any',
  ];
  const landed: Record<string, number> = {};
  const evidence: Record<string, number> = {};
  const acks: Record<string, number> = {};
  const note = (tally: Record<string, number>, key: string) => {
    tally[key] = (tally[key] ?? 0) + 1;
  };
  let verified: State = { parent: undefined, added: [] };
  const batches = new Map<number, number>();
  let nextId = 1;
  let rounds = 0;
  const segmentsSeen = new Set<string>();
  const segmentNames = () => (existsSync(path.join(historyDir, 'segments')) ? readdirSync(path.join(historyDir, 'segments')) : []);
  t.diagnostic(`seed ${SEED} (LOG_CRASH_SEED=${SEED} replays it)`);
  try {
    for (let round = 0; round < ROUNDS && Date.now() - began < TOTAL_BUDGET_MS; round++) {
      const target = aims[round % aims.length]!;
      const warmup = between(5, 60);
      const delay = target === 'any' ? between(0, 1500) : between(...AIMS[target].delay);
      const where = `[seed ${SEED} round ${round} aim ${target}]`;
      const config = {
        file,
        seed: between(1, 2 ** 31),
        nextId,
        clockBase: CLOCK_BASE,
        speed: SPEED,
        ...HISTORY,
        restoreReachMs: 1500,
        maxMs: 20_000,
        pauseAt: target === 'any' ? undefined : AIMS[target].pause,
        pauseMs: 150,
        pauseAfter: warmup,
      };
      const run = await runAndKill(config, target, warmup, delay);
      const model = replay(run.lines, verified, batches);
      for (const [kind, n] of Object.entries(model.acks)) acks[kind] = (acks[kind] ?? 0) + n;
      nextId = Math.max(nextId, model.maxId + 1);

      // Where the kill landed: the operation begun and not acknowledged, and what the files show.
      const phase = !model.ready
        ? 'opening'
        : `${model.inFlight?.kind ?? 'between operations'}${model.step ? ` after step ${model.step}` : ''}${model.backgroundSnapshot ? ' + background snapshot' : ''}`;
      note(landed, phase);
      const found = fileEvidence(file, historyDir, run.started);
      const tail = logTail(historyDir);
      if (tail.torn) found.push('log: a torn record at the end');
      // SIGKILL rarely tears a record (one write call), a power loss can: in some rounds, when the
      // last record is not acknowledged yet, zero it from some byte on, as a power loss during
      // its write over the segment's zeros would leave it. The WAL still holds the commit, so
      // recovery must drop the torn record and take the commit from the WAL again (or not at
      // all: it was never acknowledged).
      if (tail.kind === 'pages' && tail.seq > model.lastAckedSeq && random() < 0.6) {
        const cut = Math.floor(random() * tail.length);
        const fd = openSync(tail.segment, 'r+');
        writeSync(fd, Buffer.alloc(tail.length - cut), 0, tail.length - cut, tail.offset + cut);
        closeSync(fd);
        found.push('log: unacknowledged last record torn (simulated)');
        tail.seq -= 1;
      }
      // A snapshot past the log's end: a restore stored its image and died before logging it.
      const snapshotSeqs = readdirSync(path.join(historyDir, 'snapshots')).flatMap((n) => (/^[0-9a-f]{16}-\d+\.sqlite$/.test(n) ? [Number.parseInt(n.slice(0, 16), 16)] : []));
      if (snapshotSeqs.some((seq) => seq > tail.seq)) found.push('restore: snapshot stored, image not logged');
      const headerSeq = existsSync(file) ? sequenceOfFile(file) : 0;

      let recoveryNote = '';
      // In half the rounds a second worker runs the crash recovery first and is killed during it
      // (or finishes it): recovery itself must survive a crash.
      if (random() < 0.5) {
        const recoveryDelay = between(...AIMS.recovery.delay);
        const recovery = await runAndKill({ ...config, recoverOnly: true }, 'recovery', 0, recoveryDelay, true);
        const opened = recovery.lines.some((l) => l.startsWith('ready '));
        const phase = recovery.finished ? 'recovery, finished before the kill' : opened ? 'recovery, closing' : 'recovery';
        note(landed, phase);
        found.push(recovery.finished ? 'then a recovery run finished' : `then a recovery run killed${opened ? ' while closing' : ''}`);
        recoveryNote = ` (recovery run: kill aimed ${recoveryDelay} ms after opening)`;
        for (const e of fileEvidence(file, historyDir, recovery.started)) found.push(`recovery: ${e}`);
        const ready = recovery.lines.find((l) => l.startsWith('ready '));
        if (ready) {
          const seq = parseBookmark(ready.slice(6))!.sequence;
          assert.ok(seq >= model.lastAckedSeq, `${where}: recovery opened at commit ${seq}, before acknowledged commit ${model.lastAckedSeq}`);
        }
      }

      const executor = new LoggedExecutor(file, {}, historyOptions());
      const logged = executor.database;
      const db = new D1Database(executor);
      try {
        const last = logged.log.last()!;
        if (last.seq > tail.seq && tail.kind !== undefined && last.kind === 'pages') found.push('log: commits recovered from the WAL');
        if (tail.kind === 'image' && tail.seq > model.lastAckedSeq && model.inFlight?.kind === 'restore') {
          found.push(headerSeq < tail.seq ? 'restore: logged, swap finished by reopening' : 'restore: logged and swapped, not acknowledged');
        }
        const distinct = [...new Set(found)];
        for (const e of distinct) note(evidence, e);
        t.diagnostic(
          `${where} warm-up ${warmup}, delay ${delay} ms${run.fallback ? ' (fallback kill)' : ''}, killed after ${run.killedAfter} ms${recoveryNote}: landed in ${phase}${distinct.length ? `; ${distinct.join('; ')}` : ''}`,
        );

        // (3) The log and the database agree, before anything else writes.
        assert.ok(last.seq >= model.lastAckedSeq, `${where}: the log ends at ${last.seq}, before acknowledged commit ${model.lastAckedSeq}`);
        assertLogAgrees(logged, file, scratch, where, distinct);
        assert.equal(await db.prepare('PRAGMA quick_check').first('quick_check'), 'ok', `${where}: quick_check`);

        // (1) and (2): the rows are those of the acknowledged operations, plus all or nothing of the one in flight.
        const actual = new Set((await db.prepare('SELECT id FROM rows').raw<[number]>()).map(([id]) => id));
        const expected = idsOf(model.current);
        const op = model.inFlight;
        let alternative: Set<number> | undefined;
        if (op && 'ids' in op) alternative = new Set([...expected, ...op.ids]);
        if (op?.kind === 'restore') {
          const state = model.states.get(op.target);
          assert.ok(state, `${where}: the worker began a restore to ${op.target}, which it never acknowledged`);
          alternative = idsOf(state.state);
        }
        if (op && 'ids' in op) {
          const present = op.ids.filter((id) => actual.has(id)).length;
          assert.ok(present === 0 || present === op.ids.length, `${where}: ${present} of the ${op.ids.length} rows of the ${op.kind} in flight are there`);
        }
        const byBatch = (await db.prepare('SELECT batch, count(*) AS n FROM rows GROUP BY batch').raw<[number, number]>()).filter(
          ([batch, n]) => n !== (batches.get(batch) ?? 1),
        );
        assert.deepEqual(byBatch, [], `${where}: batches with some of their rows only [batch, rows]`);
        const matches = sameSet(actual, expected) || (alternative !== undefined && sameSet(actual, alternative));
        assert.ok(
          matches,
          `${where}: the rows differ from the acknowledged operations: ${describeDifference(actual, expected)}` +
            (alternative ? `; with the ${op!.kind} in flight: ${describeDifference(actual, alternative)}` : ''),
        );

        // (3) Time travel reaches acknowledged points of the round, as they were acknowledged: the
        // newest one and a few at random. One acknowledged in the last 2 s is inside the 3 s window
        // and must resolve; an older one may have left it.
        const acknowledgedPoints = [...model.states.entries()];
        const points = [acknowledgedPoints.at(-1)!, ...acknowledgedPoints.sort(() => random() - 0.5).slice(0, 3)];
        for (const [bookmark, { state, line }] of points) {
          let seq: number;
          try {
            seq = logged.resolve({ bookmark });
          } catch (e) {
            const recent = run.arrivals[line]! >= Date.now() - 2000;
            if (e instanceof HistoryError && !recent) continue;
            throw new Error(`${where}: acknowledged bookmark ${bookmark} (${Date.now() - run.arrivals[line]!} ms ago) cannot be reached: ${(e as Error).message}`);
          }
          const rebuilt = path.join(scratch, 'point.sqlite');
          rmSync(rebuilt, { force: true });
          materialize(logged.log, logged.snapshots, seq, rebuilt);
          const ids = withDatabase(rebuilt, idsIn);
          assert.ok(sameSet(ids, idsOf(state)), `${where}: the log rebuilds acknowledged bookmark ${bookmark} wrongly: ${describeDifference(ids, idsOf(state))}`);
        }

        // (4) Service resumes: a write is acknowledged, and the log still agrees.
        const before = logged.engine.commitSequence;
        const id = nextId++;
        await db.batch([db.prepare('INSERT INTO rows (id, batch, payload) VALUES (?, ?, randomblob(64))').bind(id, id)]);
        assert.equal(await db.prepare('SELECT count(*) AS n FROM rows WHERE id = ?').bind(id).first('n'), 1);
        assert.equal(logged.engine.commitSequence, before + 1, `${where}: the write after reopening`);
        assertLogAgrees(logged, file, scratch, `${where} after a write`, distinct);
        actual.add(id);
        verified = { parent: undefined, added: [...actual] };
      } finally {
        await db.close();
      }
      for (const name of segmentNames()) segmentsSeen.add(name);
      rounds++;
    }
  } finally {
    const segments = segmentNames();
    t.diagnostic(`${rounds} rounds in ${((Date.now() - began) / 1000).toFixed(1)} s`);
    t.diagnostic(`kills landed in: ${JSON.stringify(landed)}`);
    t.diagnostic(`evidence from the files: ${JSON.stringify(evidence)}`);
    t.diagnostic(`acknowledged operations: ${JSON.stringify(acks)}; log segments now: ${segments.join(', ')} (${[...segmentsSeen].filter((n) => !segments.includes(n)).length} removed by compaction)`);
  }
  assert.ok(rounds >= MIN_ROUNDS, `only ${rounds} rounds ran within the time budget`);
});
