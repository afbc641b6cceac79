// A single node's history (segment files and snapshot files under `<file>-history/`) behind the
// History interface: what Time Travel and rebuilding see of it is what they see of a cluster's.
import type { History } from './history.ts';
import type { LogRecord, RecordSummary } from './record.ts';
import type { LogStore, SnapshotInfo, SnapshotStore } from './store.ts';

export class FileHistory implements History {
  constructor(
    private readonly log: LogStore,
    private readonly store: SnapshotStore,
  ) {}

  get tag(): string {
    return this.log.tag;
  }

  async last(): Promise<RecordSummary | undefined> {
    return this.log.last();
  }

  async append(records: LogRecord[], expectedLast: number): Promise<void> {
    let last = expectedLast;
    for (const record of records) {
      this.log.append(record, last);
      last = record.seq;
    }
    this.log.flush();
  }

  async *read(from: number, to: number): AsyncIterable<LogRecord> {
    yield* this.log.read(from, to);
  }

  async atTime(time: number): Promise<RecordSummary | undefined> {
    return this.log.atTime(time);
  }

  async find(seq: number): Promise<RecordSummary | undefined> {
    return this.log.find(seq);
  }

  async positionsAt(times: number[]): Promise<number[]> {
    return times.map((time) => this.log.countThrough(time));
  }

  async newestAt(time: number, count: number): Promise<RecordSummary[]> {
    return this.log.newestThrough(time, count);
  }

  async snapshots(): Promise<SnapshotInfo[]> {
    return this.store.list();
  }

  async putSnapshot(file: string, seq: number, time: number): Promise<void> {
    this.store.put(file, seq, time);
  }

  async copySnapshot(seq: number, file: string): Promise<void> {
    this.store.copyTo(seq, file);
  }

  async removeSnapshot(seq: number): Promise<void> {
    this.store.remove(seq);
  }

  async compact(seq: number): Promise<void> {
    this.log.compact(seq);
  }

  async bytes(): Promise<number> {
    return this.log.bytes();
  }
}
