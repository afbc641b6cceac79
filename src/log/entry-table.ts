// What the write log knows of its records in memory: each one's summary and place, segment by
// segment. A sealed segment with an index on disk (segment-index.ts) keeps only what the log's
// searches need — its sequences and times from first to last, its page bytes, its newest image,
// where its sequences jump — and its entries are read back from the index when a search lands in
// it; a few such segments stay loaded at a time. So memory grows with the number of segments and
// the open segment's records, not with the history (a busy database keeps weeks of commits).
import type { RecordSummary } from './record.ts';
import { summarizeSegment } from './segment-index.ts';

export interface Segment {
  file: string;
  first: number;
  bytes: number;
  /** The file's size, zeros past `bytes` included. */
  allocated: number;
  /** It has an index and takes no more appends (the next append starts a new segment). */
  sealed?: boolean;
}

export interface Entry extends RecordSummary {
  segment: Segment;
  offset: number;
  length: number;
}

/**
 * A record's entry, built with one literal: `{ ...summary, segment, … }` goes through V8's slow
 * property definition on every append (~4% of a logged commit's CPU, measured with perf).
 */
export function entryFor(summary: RecordSummary, segment: Segment, offset: number, length: number): Entry {
  return { kind: summary.kind, seq: summary.seq, time: summary.time, pageBytes: summary.pageBytes, segment, offset, length };
}

/** Sealed segments whose entries stay loaded at once, besides the ones that cannot be read back. */
const LOADED_SEALED = 2;

/** Where a sealed segment's entries are read back from (its index, else its own frames). */
export interface Backing {
  /** Reads the entries back; `fits` says whether a candidate list is the one the table held. */
  entries(fits: (entries: Entry[]) => boolean): Entry[];
  /**
   * The page bytes of the entries after sequence `seq`, read in place from the index (no entries
   * built) when it lists `count` entries of `total` page bytes; undefined: the entries are read.
   */
  pageBytesAfter(seq: number, count: number, total: number): number | undefined;
}

/** A sealed segment as its index's head describes it (segment-index.ts). */
export interface SegmentBounds {
  count: number;
  first: Entry;
  last: Entry;
  pageBytes: number;
  lastImage: Entry | undefined;
  /**
   * Positions of entries that are no image and not the one after the entry before them (from 1 in
   * an index's head; in the table, 0 too when the segment's first does not follow the one before).
   */
  jumps: number[];
}

interface Block extends SegmentBounds {
  segment: Segment;
  /** The position of its first entry in the table. */
  start: number;
  /** Undefined while unloaded. */
  entries: Entry[] | undefined;
  /** Reads the entries back (from the segment's index); absent: they stay loaded. */
  backing: Backing | undefined;
}

export const summaryOf = (e: Entry): RecordSummary => ({ kind: e.kind, seq: e.seq, time: e.time, pageBytes: e.pageBytes });

export class EntryTable {
  private blocks: Block[] = [];
  /** Loaded blocks that can be unloaded, least recently used first. */
  private loaded: Block[] = [];
  private size = 0;

  get length(): number {
    return this.size;
  }

  /** Appends an entry (of the last segment, or of a new one after it). */
  push(entry: Entry): void {
    const previous = this.last();
    let block = this.blocks.at(-1);
    if (!block || block.segment !== entry.segment) {
      block = { segment: entry.segment, start: this.length, count: 0, first: entry, last: entry, pageBytes: 0, lastImage: undefined, jumps: [], entries: [], backing: undefined };
      this.blocks.push(block);
    }
    this.loadedEntries(block).push(entry);
    this.note(block, entry, previous);
    this.size++;
  }

  /** Adds a sealed segment's entries by their bounds, unloaded: they are read back when a search needs them. */
  pushBounds(segment: Segment, bounds: SegmentBounds, backing: Backing): void {
    const previous = this.last();
    const { count, first, last, pageBytes, lastImage } = bounds;
    const jumps = previous && first.kind !== 'image' && first.seq !== previous.seq + 1 ? [0, ...bounds.jumps] : [...bounds.jumps];
    this.blocks.push({ segment, start: this.length, count, first, last, pageBytes, lastImage, jumps, entries: undefined, backing });
    this.size += count;
  }

  private note(block: Block, entry: Entry, previous: Entry | undefined): void {
    if (previous && entry.kind !== 'image' && entry.seq !== previous.seq + 1) block.jumps.push(block.count);
    if (entry.kind === 'image') block.lastImage = entry;
    block.pageBytes += entry.pageBytes;
    block.last = entry;
    block.count++;
  }

  /** The segment's entries can be read back from now on (its index is written): it may be unloaded. */
  indexed(segment: Segment, backing: Backing): void {
    const block = this.blocks.find((b) => b.segment === segment);
    if (!block || block.backing) return;
    block.backing = backing;
    this.touch(block);
  }

  /** The segment takes appends again (its index is gone): its entries stay loaded. */
  reopened(segment: Segment): void {
    const block = this.blocks.find((b) => b.segment === segment);
    if (!block?.backing) return;
    this.loadedEntries(block);
    block.backing = undefined;
    this.loaded = this.loaded.filter((b) => b !== block);
  }

  /** The segment's entries, loaded. */
  entriesOf(segment: Segment): Entry[] {
    const block = this.blocks.find((b) => b.segment === segment);
    return block ? this.loadedEntries(block) : [];
  }

  first(): Entry | undefined {
    return this.blocks[0]?.first;
  }

  last(): Entry | undefined {
    return this.blocks.at(-1)?.last;
  }

  at(position: number): Entry | undefined {
    if (position < 0 || position >= this.length) return undefined;
    const block = this.blockAt(position);
    // A segment's first and last entries are at hand without loading it.
    if (!block.entries && position === block.start) return block.first;
    if (!block.entries && position === block.start + block.count - 1) return block.last;
    return this.loadedEntries(block)[position - block.start];
  }

  /** The position of the first entry whose sequence is at least `seq` (length when none). */
  indexOf(seq: number): number {
    return this.search((b) => b.last.seq >= seq, (e) => e.seq >= seq);
  }

  /** How many entries were committed at or before `time` (commit times never go back). */
  countThrough(time: number): number {
    return this.search((b) => b.last.time > time, (e) => e.time > time);
  }

  /** The newest image entry before `position`. */
  lastImageBefore(position: number): Entry | undefined {
    if (position <= 0 || this.blocks.length === 0) return undefined;
    for (let b = this.blockIndexAt(Math.min(position, this.length) - 1); b >= 0; b--) {
      const block = this.blocks[b]!;
      if (!block.lastImage) continue;
      if (block.start + block.count <= position) return block.lastImage;
      const entries = this.loadedEntries(block);
      for (let i = position - block.start - 1; i >= 0; i--) if (entries[i]!.kind === 'image') return entries[i];
    }
    return undefined;
  }

  /** The page bytes of the entries after sequence `seq`. */
  pageBytesAfter(seq: number): number {
    let total = 0;
    for (const block of this.blocks) {
      if (block.first.seq > seq) total += block.pageBytes;
      else if (block.last.seq > seq) {
        const inPlace = block.entries ? undefined : block.backing?.pageBytesAfter(seq, block.count, block.pageBytes);
        if (inPlace !== undefined) total += inPlace;
        else for (const e of this.loadedEntries(block)) if (e.seq > seq) total += e.pageBytes;
      }
    }
    return total;
  }

  /** Positions whose entry is no image and does not follow the entry before it, in order. */
  jumps(): number[] {
    return this.blocks.flatMap((b) => b.jumps.map((j) => b.start + j));
  }

  /** Forgets the entries from `position` on (they were never made durable: all in loaded segments). */
  truncate(position: number): void {
    while (this.length > position) {
      const block = this.blocks.at(-1)!;
      const keep = Math.max(0, position - block.start);
      const entries = this.loadedEntries(block);
      this.size -= block.count - keep;
      if (keep === 0) {
        this.blocks.pop();
        this.loaded = this.loaded.filter((b) => b !== block);
        continue;
      }
      const kept = entries.slice(0, keep);
      const previous = this.blocks.at(-2)?.last;
      Object.assign(block, { count: 0, pageBytes: 0, lastImage: undefined, jumps: [], entries: kept, first: kept[0]!, last: kept[0]! });
      let before = previous;
      for (const entry of kept) {
        this.note(block, entry, before);
        before = entry;
      }
    }
  }

  /** Forgets the first segment's entries (compacted away); returns how many there were. */
  dropSegment(segment: Segment): number {
    const block = this.blocks[0];
    if (!block || block.segment !== segment) return 0;
    this.blocks.shift();
    this.loaded = this.loaded.filter((b) => b !== block);
    for (const b of this.blocks) b.start -= block.count;
    this.size -= block.count;
    // Its first entry starts the table now: no jump can be said of it.
    const next = this.blocks[0];
    if (next?.jumps[0] === 0) next.jumps.shift();
    return block.count;
  }

  /** Binary search: the first position where `after` holds (it holds for every later one). */
  private search(blockAfter: (b: Block) => boolean, after: (e: Entry) => boolean): number {
    let low = 0;
    let high = this.blocks.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (blockAfter(this.blocks[mid]!)) high = mid;
      else low = mid + 1;
    }
    const block = this.blocks[low];
    if (!block) return this.length;
    if (after(block.first)) return block.start;
    const entries = this.loadedEntries(block);
    let lo = 0;
    let hi = entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (after(entries[mid]!)) hi = mid;
      else lo = mid + 1;
    }
    return block.start + lo;
  }

  private blockIndexAt(position: number): number {
    let low = 0;
    let high = this.blocks.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (this.blocks[mid]!.start <= position) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  private blockAt(position: number): Block {
    return this.blocks[this.blockIndexAt(position)]!;
  }

  private loadedEntries(block: Block): Entry[] {
    if (!block.entries) {
      const fits = (entries: Entry[]) => fitsBlock(block, entries);
      const entries = block.backing!.entries(fits);
      if (!fits(entries)) throw new Error(`the entries read back for ${block.segment.file} are not the ones it held (${entries.length} of ${block.count})`);
      block.entries = entries;
    }
    if (block.backing) this.touch(block);
    return block.entries;
  }

  /** Marks an unloadable block used now; unloads the least recently used beyond the budget. */
  private touch(block: Block): void {
    const at = this.loaded.indexOf(block);
    if (at >= 0) this.loaded.splice(at, 1);
    if (block.entries) this.loaded.push(block);
    while (this.loaded.length > LOADED_SEALED) this.loaded.shift()!.entries = undefined;
  }
}

/** Whether `entries` are the ones a block describes: count, first and last, page bytes, newest image, jumps. */
function fitsBlock(block: Block, entries: Entry[]): boolean {
  if (entries.length !== block.count || entries.length === 0) return false;
  const { first, last, pageBytes, lastImage, jumps } = summarizeSegment(entries);
  const own = block.jumps.filter((j) => j > 0);
  return (
    first.seq === block.first.seq &&
    first.time === block.first.time &&
    last.seq === block.last.seq &&
    last.time === block.last.time &&
    pageBytes === block.pageBytes &&
    lastImage?.seq === block.lastImage?.seq &&
    jumps.length === own.length &&
    jumps.every((j, i) => j === own[i])
  );
}
