// A JSON array printed once the work it describes has succeeded (wrangler prints execute's results
// only then), held meanwhile in a temporary file: a file of millions of statements has as many
// results, more than memory should hold. The text is JSON.stringify(array, null, 2)'s.
import { closeSync, createReadStream, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';

const FLUSH_CHARS = 1 << 16;

export class JsonArraySpool {
  private readonly dir = mkdtempSync(path.join(tmpdir(), 'dione-results-'));
  private readonly file = path.join(this.dir, 'results.json');
  private readonly fd = openSync(this.file, 'w');
  private pending = '';
  private count = 0;
  private closed = false;

  push(value: unknown): void {
    // An element of a 2-space indented array: its own lines one level in.
    this.pending += `${this.count === 0 ? '[\n' : ',\n'}  ${JSON.stringify(value, null, 2).replaceAll('\n', '\n  ')}`;
    this.count++;
    if (this.pending.length >= FLUSH_CHARS) this.flush();
  }

  /** Writes the array, and a newline, to `out`. */
  async writeTo(out: NodeJS.WritableStream): Promise<void> {
    this.pending += this.count === 0 ? '[]\n' : '\n]\n';
    this.flush();
    closeSync(this.fd);
    this.closed = true;
    for await (const chunk of createReadStream(this.file)) {
      if (!out.write(chunk as Buffer)) await once(out, 'drain');
    }
  }

  /** Removes the temporary file. */
  dispose(): void {
    if (!this.closed) closeSync(this.fd);
    this.closed = true;
    rmSync(this.dir, { recursive: true, force: true });
  }

  private flush(): void {
    writeSync(this.fd, this.pending);
    this.pending = '';
  }
}
