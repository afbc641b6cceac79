// Gathers the calls made in the same event-loop turn and hands them on together, in groups under a
// cap of calls and of JSON text, so that concurrent calls share HTTP requests. Runtime-neutral:
// only queueMicrotask, which Workers, browsers, Deno, Bun and Node all have.

export interface PipelineLimits {
  /** The most calls in one group. */
  maxCalls: number;
  /** The most characters of JSON text in one group (a call longer than this goes alone). */
  maxChars: number;
}

interface Pending<C, T> {
  call: C;
  resolve(answer: T): void;
  reject(error: unknown): void;
}

/**
 * How many more microtasks to wait while calls keep arriving: code that awaits before it calls
 * (an ORM, a helper) reaches the pipeline a few microtasks later than its neighbours. A call
 * alone is sent in the first microtask, so it waits for nothing.
 */
const SETTLE_HOPS = 4;

/** A call to send: its JSON body, and whatever its sender needs to read its answer. */
export interface Call {
  body: string;
}

/** Sends groups of calls; answers each call, in order. */
export type SendGroup<C extends Call, T> = (calls: C[]) => Promise<T[]>;

export class CallPipeline<C extends Call, T> {
  #queue: Pending<C, T>[] = [];
  #scheduled = false;

  constructor(
    private readonly send: SendGroup<C, T>,
    private readonly limits: PipelineLimits,
  ) {}

  /** Queues one call; resolves with its own answer. */
  submit(call: C): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ call, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        this.#settle(this.#queue.length, SETTLE_HOPS);
      }
    });
  }

  #settle(seen: number, hopsLeft: number): void {
    queueMicrotask(() => {
      if (this.#queue.length > seen && hopsLeft > 0) return this.#settle(this.#queue.length, hopsLeft - 1);
      this.#scheduled = false;
      const calls = this.#queue;
      this.#queue = [];
      for (const group of groups(calls, this.limits)) void this.#sendGroup(group);
    });
  }

  async #sendGroup(group: Pending<C, T>[]): Promise<void> {
    let answers: T[];
    try {
      answers = await this.send(group.map((pending) => pending.call));
    } catch (error) {
      for (const call of group) call.reject(error);
      return;
    }
    for (let i = 0; i < group.length; i++) group[i]!.resolve(answers[i]!);
  }
}

/** Splits calls, in order, into groups within the limits. */
export function groups<P extends { call: Call }>(calls: P[], limits: PipelineLimits): P[][] {
  const result: P[][] = [];
  let group: P[] = [];
  let chars = 0;
  for (const pending of calls) {
    const length = pending.call.body.length;
    if (group.length > 0 && (group.length >= limits.maxCalls || chars + length > limits.maxChars)) {
      result.push(group);
      group = [];
      chars = 0;
    }
    group.push(pending);
    chars += length;
  }
  if (group.length > 0) result.push(group);
  return result;
}
