// How much of the machine's CPU sits idle: the pool hands reads to its workers only when there are
// cores for them to run on. (On a machine whose cores are all busy, a read sent to a worker costs
// two thread hops more CPU than answering it on the HTTP thread, and nothing runs faster for it.)
import os from 'node:os';

function ticks(): { idle: number; total: number; cores: number } {
  let idle = 0;
  let total = 0;
  const cpus = os.cpus();
  for (const { times } of cpus) {
    idle += times.idle;
    total += times.user + times.nice + times.sys + times.idle + times.irq;
  }
  return { idle, total, cores: cpus.length };
}

export class IdleCores {
  private last = ticks();
  /** Smoothed: the counters tick in 10 ms steps, coarse over one short interval. */
  private smoothed: number;

  constructor() {
    this.smoothed = this.last.cores;
  }

  /** Cores idle since the last call (a fraction of the machine's cores), smoothed over the last few calls. */
  sample(): number {
    const now = ticks();
    const total = now.total - this.last.total;
    const idle = now.idle - this.last.idle;
    this.last = now;
    if (total > 0) this.smoothed = 0.6 * this.smoothed + 0.4 * ((idle / total) * now.cores);
    return this.smoothed;
  }
}
