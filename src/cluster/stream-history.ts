// A cluster database's history: its records in its JetStream stream, its snapshots in the
// object store. Every node reaches the same one, so Time Travel and forks answer alike on any
// node, before and after any number of failovers.
import type { History } from '../log/history.ts';
import type { LogRecord, RecordSummary } from '../log/record.ts';
import type { SnapshotInfo } from '../log/store.ts';
import type { SharedLog, SnapshotBucket } from './shared.ts';
import { LogFenced } from './stream-log.ts';

export class StreamHistory implements History {
  constructor(
    readonly tag: string,
    private readonly database: string,
    private readonly log: SharedLog,
    private readonly objects: SnapshotBucket,
  ) {}

  last(): Promise<RecordSummary | undefined> {
    return this.log.lastSummary();
  }

  async append(records: LogRecord[], expectedLast: number): Promise<void> {
    if (this.log.lastSeq !== undefined && this.log.lastSeq !== expectedLast) {
      throw new LogFenced(`${this.log.stream} ends at ${this.log.lastSeq}, not ${expectedLast}`);
    }
    await this.log.appendAll(records);
  }

  async *read(from: number, to: number): AsyncIterable<LogRecord> {
    if (to <= from) return;
    for await (const record of this.log.read(from)) {
      if (record.seq > to) return;
      yield record;
      if (record.seq === to) return;
    }
  }

  atTime(time: number): Promise<RecordSummary | undefined> {
    return this.log.atTime(time);
  }

  find(seq: number): Promise<RecordSummary | undefined> {
    return this.log.find(seq);
  }

  positionsAt(times: number[]): Promise<number[]> {
    return this.log.positionsAt(times);
  }

  newestAt(time: number, count: number): Promise<RecordSummary[]> {
    return this.log.newestAt(time, count);
  }

  snapshots(): Promise<SnapshotInfo[]> {
    return this.objects.infos(this.database);
  }

  putSnapshot(file: string, seq: number, time: number): Promise<void> {
    return this.objects.put(this.database, seq, file, time);
  }

  async copySnapshot(seq: number, file: string): Promise<void> {
    if (!(await this.objects.copyTo(this.database, seq, file))) throw new Error(`the snapshot of ${this.database} at commit ${seq} is missing from the object store`);
  }

  removeSnapshot(seq: number): Promise<void> {
    return this.objects.remove(this.database, seq);
  }

  async compact(seq: number): Promise<void> {
    await this.log.purgeThrough(seq);
  }

  async bytes(): Promise<number> {
    return (await this.log.size()).bytes;
  }
}
