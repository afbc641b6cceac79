// Progress on long work (export, import, migrations): a bar on a terminal, plain lines otherwise
// (CI logs, pipes). Written to stderr so stdout stays clean for --json and redirected output.
import cliProgress from 'cli-progress';

export interface Progress {
  /** Sets the amount done so far. */
  update(done: number): void;
  /** The work is complete. */
  done(): void;
  /** The work stopped short; `reason` says where (the error itself is reported by the caller). */
  failed(reason: string): void;
}

export function startProgress(title: string, total: number, unit: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${title} [{bar}] {percentage}% | {value}/{total} ${unit}`, stream, hideCursor: true, clearOnComplete: false },
      cliProgress.Presets.shades_classic,
    );
    bar.start(Math.max(total, 1), 0);
    return {
      update: (done) => bar.update(Math.min(done, Math.max(total, 1))),
      done: () => bar.stop(),
      failed: (reason) => {
        bar.stop();
        stream.write(`${title}: ${reason}\n`);
      },
    };
  }
  // Plain lines: one per tenth of the work at most, and the end.
  let reported = -1;
  let last = 0;
  return {
    update(done) {
      last = done;
      const tenth = total > 0 ? Math.floor((done / total) * 10) : 0;
      if (tenth > reported && tenth < 10) {
        reported = tenth;
        stream.write(`${title}: ${done}/${total} ${unit}\n`);
      }
    },
    done() {
      stream.write(`${title}: ${last}/${total} ${unit}, done\n`);
    },
    failed(reason) {
      stream.write(`${title}: stopped at ${last}/${total} ${unit}: ${reason}\n`);
    },
  };
}
