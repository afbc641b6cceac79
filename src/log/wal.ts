// Reads committed transactions out of a SQLite WAL file as page images (see
// design/physical-replication.md): every frame is checked against the WAL header's salts and the
// running checksum, and a transaction is taken only once its commit frame is there.
import { closeSync, openSync } from 'node:fs';
import { IdleCloser, readFully } from './files.ts';

export const WAL_HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;
/** Frames read at first on each call; each further read takes four times as many, up to MAX_CHUNK_BYTES. */
const FIRST_CHUNK_FRAMES = 4;
/** A transaction of gigabytes is read 64 MiB at a time (growing without end, one read asked for 4× the WAL left). */
const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

/** Where capture stands in the WAL: after the last commit frame taken. offset 0: nothing known yet. */
export interface WalPosition {
  salt1: number;
  salt2: number;
  offset: number;
  checksum1: number;
  checksum2: number;
}

export const NO_POSITION: WalPosition = { salt1: 0, salt2: 0, offset: 0, checksum1: 0, checksum2: 0 };

/** A commit's page images by page number: a Map, or a large transaction's pages read again from the WAL when asked for. */
export interface PageImages extends Iterable<[number, Buffer]> {
  readonly size: number;
  get(page: number): Buffer | undefined;
  has(page: number): boolean;
  keys(): IterableIterator<number>;
}

/**
 * A transaction's page images are kept as read up to this many bytes; a larger one's (a bulk write,
 * an index built, an import) are read again from the WAL when asked for, so logging it does not
 * hold all of it in memory (the chunks read are let go once checksummed).
 */
const KEEP_IMAGES_BYTES = 16 * 1024 * 1024;

/** One committed transaction: the last version of every page it wrote, and the database size after it. */
export interface CapturedCommit {
  pageSize: number;
  /** Database size in pages after the commit. */
  pages: number;
  images: PageImages;
  position: WalPosition;
}

/**
 * A large transaction's pages, read from the WAL one at a time when asked for. Valid until the
 * reader reads again or closes (the frames may be overwritten, the descriptor's number reused):
 * asked after that, it throws instead of reading whatever is there.
 */
class WalPages implements PageImages {
  constructor(
    private readonly reader: WalReader,
    private readonly generation: number,
    private readonly fd: number,
    private readonly offsets: Map<number, number>,
    private readonly pageSize: number,
  ) {}

  get size(): number {
    return this.offsets.size;
  }

  has(page: number): boolean {
    return this.offsets.has(page);
  }

  keys(): IterableIterator<number> {
    return this.offsets.keys();
  }

  get(page: number): Buffer | undefined {
    const at = this.offsets.get(page);
    if (at === undefined) return undefined;
    if (!this.reader.holds(this.generation)) throw new Error(`page ${page} of a large transaction was asked for after the WAL reader moved on`);
    const image = Buffer.allocUnsafe(this.pageSize);
    if (readFully(this.fd, image, at) < this.pageSize) throw new Error(`the WAL ended before page ${page}'s frame at byte ${at}`);
    return image;
  }

  *[Symbol.iterator](): IterableIterator<[number, Buffer]> {
    for (const page of this.offsets.keys()) yield [page, this.get(page)!];
  }
}

type Words = (buffer: Buffer, at: number) => number;
const littleEndian: Words = (b, at) => b.readUInt32LE(at);
const bigEndian: Words = (b, at) => b.readUInt32BE(at);

/** SQLite's WAL checksum over `length` bytes (a multiple of 8), continuing from [s1, s2]. */
function checksum(buffer: Buffer, start: number, length: number, s: [number, number], word: Words): void {
  let s1 = s[0];
  let s2 = s[1];
  const end = start + length;
  if (word === littleEndian && (buffer.byteOffset + start) % 4 === 0) {
    const words = new Uint32Array(buffer.buffer, buffer.byteOffset + start, length / 4);
    for (let i = 0; i < words.length; i += 2) {
      s1 = (s1 + words[i]! + s2) >>> 0;
      s2 = (s2 + words[i + 1]! + s1) >>> 0;
    }
  } else {
    for (let at = start; at < end; at += 8) {
      s1 = (s1 + word(buffer, at) + s2) >>> 0;
      s2 = (s2 + word(buffer, at + 4) + s1) >>> 0;
    }
  }
  s[0] = s1;
  s[1] = s2;
}

interface WalHeader {
  pageSize: number;
  salt1: number;
  salt2: number;
  checksum1: number;
  checksum2: number;
  word: Words;
}

function parseHeader(header: Buffer): WalHeader | undefined {
  const magic = header.readUInt32BE(0);
  if (magic !== 0x377f0682 && magic !== 0x377f0683) return undefined;
  if (header.readUInt32BE(4) !== 3007000) return undefined;
  const word = magic & 1 ? bigEndian : littleEndian;
  const s: [number, number] = [0, 0];
  checksum(header, 0, 24, s, word);
  if (s[0] !== header.readUInt32BE(24) || s[1] !== header.readUInt32BE(28)) return undefined;
  return { pageSize: header.readUInt32BE(8), salt1: header.readUInt32BE(16), salt2: header.readUInt32BE(20), checksum1: s[0], checksum2: s[1], word };
}

/**
 * Follows one database's `-wal` file. Only the owner of the log may checkpoint the database, and
 * only after capturing: frames checkpointed away before capture are lost to the log.
 */
export class WalReader {
  private fd: number | undefined;
  position: WalPosition;
  /** The first chunk of every read, kept: most reads find one commit of a few frames. */
  private firstChunk: Buffer | undefined;
  /** Counts reads and closes: the pages of a large transaction are read from the WAL only in the generation that found them. */
  private generation = 0;
  private readonly idle = new IdleCloser(() => {
    this.close();
    return true;
  });

  constructor(
    private readonly walFile: string,
    position: WalPosition = NO_POSITION,
  ) {
    this.position = { ...position };
  }

  /**
   * Every transaction committed since the last call, oldest first; their page images are valid until
   * the next call (the first chunk's buffer is read into again). The file stays open while commits
   * keep coming and is closed once idle (IdleCloser). SQLite locks the database and its -shm, never
   * the -wal, so closing this descriptor drops no lock. The descriptor is never stale: SQLite deletes
   * the -wal only when the last connection closes, and the owner closes its engine only after
   * close() or before reopen().
   */
  read(): CapturedCommit[] {
    this.generation++;
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.walFile, 'r');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw e;
      }
    }
    this.idle.touch();
    return this.readFrom(this.fd);
  }

  /**
   * Reads frames until the first that is short, not of this generation, or fails its checksum. The
   * file's size is never asked (no fstat): on Linux, asking for a file's times makes its next write
   * stamp a fine-grained time, which dirties the inode on every commit; with ext4 that turns each
   * sync of the log into a sync of the inode table as well (measured: 125 → 185 µs per sync).
   */
  private readFrom(fd: number): CapturedCommit[] {
    const headerBytes = Buffer.alloc(WAL_HEADER_BYTES);
    if (readFully(fd, headerBytes, 0) < WAL_HEADER_BYTES) return [];
    const header = parseHeader(headerBytes);
    if (!header) return [];
    let { offset, checksum1, checksum2 } = this.position;
    if (header.salt1 !== this.position.salt1 || header.salt2 !== this.position.salt2 || offset === 0) {
      // A new generation of the WAL (after a checkpoint): it starts after its header.
      offset = WAL_HEADER_BYTES;
      checksum1 = header.checksum1;
      checksum2 = header.checksum2;
    }
    const frameBytes = FRAME_HEADER_BYTES + header.pageSize;
    const commits: CapturedCommit[] = [];
    let images = new Map<number, Buffer>();
    // Where each page's last frame in the transaction is (the pages of a large one are read from there).
    let offsets = new Map<number, number>();
    let lazy = false;
    const s: [number, number] = [checksum1, checksum2];
    // After a checkpoint the file keeps old frames past the new ones: read a little at a time and
    // stop at the first frame that is not of this generation, instead of reading the whole file.
    let chunkFrames = FIRST_CHUNK_FRAMES;
    let at = offset;
    for (;;) {
      const wanted = chunkFrames * frameBytes;
      // Not from Buffer's shared pool, so the checksum can view the bytes as aligned 32-bit words.
      let bytes: Buffer;
      if (at !== offset) bytes = Buffer.allocUnsafeSlow(wanted);
      else {
        if (this.firstChunk?.length !== wanted) this.firstChunk = Buffer.allocUnsafeSlow(wanted);
        bytes = this.firstChunk;
      }
      const got = readFully(fd, bytes, at);
      let valid = true;
      for (let f = 0; f + frameBytes <= got; f += frameBytes) {
        if (bytes.readUInt32BE(f + 8) !== header.salt1 || bytes.readUInt32BE(f + 12) !== header.salt2) {
          valid = false;
          break;
        }
        checksum(bytes, f, 8, s, header.word);
        checksum(bytes, f + FRAME_HEADER_BYTES, header.pageSize, s, header.word);
        if (s[0] !== bytes.readUInt32BE(f + 16) || s[1] !== bytes.readUInt32BE(f + 20)) {
          valid = false;
          break;
        }
        const page = bytes.readUInt32BE(f);
        offsets.set(page, at + f + FRAME_HEADER_BYTES);
        if (!lazy) {
          images.set(page, bytes.subarray(f + FRAME_HEADER_BYTES, f + frameBytes));
          if (images.size * header.pageSize > KEEP_IMAGES_BYTES) {
            lazy = true;
            images.clear();
          }
        }
        const pagesAfterCommit = bytes.readUInt32BE(f + 4);
        if (pagesAfterCommit !== 0) {
          const position = { salt1: header.salt1, salt2: header.salt2, offset: at + f + frameBytes, checksum1: s[0], checksum2: s[1] };
          commits.push({ pageSize: header.pageSize, pages: pagesAfterCommit, images: lazy ? new WalPages(this, this.generation, fd, offsets, header.pageSize) : images, position });
          this.position = position;
          images = new Map();
          if (lazy) offsets = new Map();
          else offsets.clear();
          lazy = false;
        }
      }
      if (!valid || got < wanted) break;
      at += got;
      chunkFrames = Math.max(1, Math.min(chunkFrames * 4, Math.floor(MAX_CHUNK_BYTES / frameBytes)));
    }
    return commits;
  }

  /** The WAL file may have been replaced (the database was closed, swapped, reopened). */
  reopen(position: WalPosition = NO_POSITION): void {
    this.close();
    this.position = { ...position };
  }

  /** Whether what read() returned in `generation` can still be read from the WAL. */
  holds(generation: number): boolean {
    return generation === this.generation && this.fd !== undefined;
  }

  close(): void {
    this.generation++;
    this.idle.stop();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
