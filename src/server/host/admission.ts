// Which databases stay open once the open-database budget is full. Least-recently-used eviction
// alone lets one pass over many databases (a job that visits every tenant, a round-robin over more
// databases than the budget holds) close every database in use and keep none of them: each open
// then costs a SQLite open and close (~0.5 ms of a worker). Here a database that is not open, and
// was not used more recently than the least recently used open one, is opened for the requests at
// hand only ("turned away": closed once they are answered) instead of replacing it. Its use is
// remembered, so that when it comes back before the open ones are used again, it is admitted (the
// least recently used one closes, as before). Hot databases stay open through a sweep over cold
// ones; over a cycle of more databases than fit, the ones open stay open (a share of the requests
// find theirs open) instead of each request closing the one the next request needs.
//
// Uses are numbered by the pool (a counter, not a clock: two in the same millisecond are ordered).

/** Turned-away opens kept at once at most (they are closed as soon as their requests are answered). */
const MAX_HEADROOM = 256;
/** Below this budget every database is admitted (least recently used eviction only). */
const MIN_BUDGET = 64;

export class Admission {
  /** Databases turned away recently, with their last use, oldest first; at most `capacity` of them. */
  private readonly turnedAway = new Map<string, number>();

  private constructor(
    /** Databases admitted (kept open) at most. */
    readonly capacity: number,
    /** Databases open for their requests only, at most, on top of `capacity`. */
    readonly headroom: number,
  ) {}

  /** The admission for a budget of `maxOpen` databases, or undefined when it is too small to spare room for turned-away opens. */
  static forBudget(maxOpen: number): Admission | undefined {
    if (maxOpen < MIN_BUDGET) return undefined;
    const headroom = Math.min(MAX_HEADROOM, Math.floor(maxOpen / 16));
    return new Admission(maxOpen - headroom, headroom);
  }

  /**
   * Whether `uuid`, asked for now (use number `use`), takes the place of the least recently used
   * open database, last used at `victimUse`: only when its own previous use is more recent. When it
   * does not, its use is remembered.
   */
  admits(uuid: string, use: number, victimUse: number): boolean {
    const previous = this.turnedAway.get(uuid);
    this.turnedAway.delete(uuid);
    if (previous !== undefined && previous > victimUse) return true;
    this.turnedAway.set(uuid, use);
    if (this.turnedAway.size > this.capacity) this.turnedAway.delete(this.turnedAway.keys().next().value!);
    return false;
  }
}
