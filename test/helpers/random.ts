import { randomBytes } from 'node:crypto';

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence, for replayable tests. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A fuzz test's seed: DIONE_FUZZ_SEED when given (to replay a run), else a random one. */
export function fuzzSeed(text: string | undefined = process.env.DIONE_FUZZ_SEED): number {
  if (text === undefined || text.trim() === '') return randomBytes(4).readUInt32LE(0);
  const n = Number(text.trim());
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`DIONE_FUZZ_SEED must be an integer 0..4294967295, got ${text}`);
  return n;
}
