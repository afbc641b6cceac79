// The ownership table the pool shares with its workers (a SharedArrayBuffer). Each open database
// has a slot saying which worker owns it, in which epoch, and whether that worker is working on it
// right now. The pool moves a database to another worker only with a compare-and-swap on an idle
// slot, and a worker starts work on a database only with a compare-and-swap on a slot it owns in
// the epoch of its message: so a database is never worked on by two workers, and requests the pool
// re-sent elsewhere are never run by the worker they were first sent to.
// A worker also notes in the slot the last call (by the database's call number in the epoch) it
// has taken, so the pool, moving a database, re-sends only the calls its old worker never started.
// Beside the slots, each worker publishes since when it has been running its current task, so the
// pool can tell a worker stuck in a long query from a free one.

export const MAX_WORKERS = 256;
export const MAX_SLOTS = 1 << 16;

const OWNER_BITS = 8;
const HELD = 1 << OWNER_BITS;
const EPOCH_SHIFT = OWNER_BITS + 1;
const EPOCH_MASK = (1 << (31 - EPOCH_SHIFT)) - 1;

function word(epoch: number, held: boolean, owner: number): number {
  return ((epoch & EPOCH_MASK) << EPOCH_SHIFT) | (held ? HELD : 0) | owner;
}

export class Slots {
  private readonly words: Int32Array;
  private readonly taken: Int32Array;
  private readonly busy: Int32Array;
  /** Busy times are ms since this instant (an Int32 holds 24 days of them). */
  private readonly origin: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(8 * MAX_SLOTS + 4 * MAX_WORKERS + 8)) {
    this.words = new Int32Array(buffer, 0, MAX_SLOTS);
    this.taken = new Int32Array(buffer, 4 * MAX_SLOTS, MAX_SLOTS);
    this.busy = new Int32Array(buffer, 8 * MAX_SLOTS, MAX_WORKERS);
    this.origin = new Float64Array(buffer, 8 * MAX_SLOTS + 4 * MAX_WORKERS, 1);
    if (this.origin[0] === 0) this.origin[0] = Date.now() - 1;
  }

  private now(): number {
    return Math.max(1, Math.round(Date.now() - this.origin[0]!));
  }

  /** Pool: gives slot `slot` to `owner` in `epoch` (a slot no worker works on). */
  assign(slot: number, epoch: number, owner: number): void {
    Atomics.store(this.taken, slot, 0);
    Atomics.store(this.words, slot, word(epoch, false, owner));
  }

  /**
   * Pool: moves an idle database from `from` to `to`, in a new epoch. Returns the number of the
   * last call `from` took (calls after it are to be re-sent), or undefined when `from` is working on it.
   */
  move(slot: number, epoch: number, from: number, to: number): number | undefined {
    const before = word(epoch, false, from);
    if (Atomics.compareExchange(this.words, slot, before, word(epoch + 1, false, to)) !== before) return undefined;
    // Read after the swap: from then on `from` can no longer take a call of this database.
    const taken = Atomics.load(this.taken, slot);
    Atomics.store(this.taken, slot, 0);
    return taken;
  }

  /** Whether the owner is working on the database now (it cannot move). */
  held(slot: number): boolean {
    return (Atomics.load(this.words, slot) & HELD) !== 0;
  }

  /** Worker (holding the slot): the calls up to number `call` are taken. */
  take(slot: number, call: number): void {
    Atomics.store(this.taken, slot, call);
  }

  /** Worker: starts work on a database it owns in `epoch`; false when it was moved away meanwhile. */
  hold(slot: number, epoch: number, owner: number): boolean {
    return Atomics.compareExchange(this.words, slot, word(epoch, false, owner), word(epoch, true, owner)) === word(epoch, false, owner);
  }

  /** Worker: its work on the database is done. */
  release(slot: number, epoch: number, owner: number): void {
    Atomics.compareExchange(this.words, slot, word(epoch, true, owner), word(epoch, false, owner));
  }

  /** Worker: whether it still owns the database in `epoch` (held or not). */
  owns(slot: number, epoch: number, owner: number): boolean {
    const w = Atomics.load(this.words, slot);
    return (w & ~HELD) === word(epoch, false, owner);
  }

  /** Worker: a task starts (or, with false, ends). */
  working(worker: number, on: boolean): void {
    Atomics.store(this.busy, worker, on ? this.now() : 0);
  }

  /** Pool: how long the worker has been running its current task, in ms (0: idle). */
  busyFor(worker: number): number {
    const since = Atomics.load(this.busy, worker);
    return since === 0 ? 0 : this.now() - since;
  }
}
