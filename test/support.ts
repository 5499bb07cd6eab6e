/**
 * Helpers shared by unit and integration tests.
 */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EmbeddedChannel } from '../src/pipeline/embedded.js';

/** test/fixtures/ in the source tree (this file runs from dist/test/). */
export const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../test/fixtures');

/** mulberry32: small, fast, seedable; the same seed gives the same sequence on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What `fn` throws; fails the test when it does not throw. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}

/** Cuts `bytes` into chunks of 1 to `maxChunk` bytes, drawn from `rnd` (maxChunk 1: byte by byte). */
export function splitChunks(bytes: Buffer, rnd: () => number, maxChunk: number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; ) {
    const n = Math.min(bytes.length - at, 1 + Math.floor(rnd() * maxChunk));
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Cuts `bytes` at random points (seeded): chunks of 1 to a random maximum of bytes. */
export function randomSplit(bytes: Buffer, seed: number): Buffer[] {
  const rnd = prng(seed);
  return splitChunks(bytes, rnd, 1 + Math.floor(rnd() * Math.max(1, bytes.length / 2)));
}

/** One Buffer per byte. */
export function byteByByte(bytes: Buffer): Buffer[] {
  return [...bytes].map((b) => Buffer.from([b]));
}

/**
 * Writes each chunk into `ch` and then closes it; returns the entries `log` gained during each
 * write and during the close (a handler in `ch` appends to `log`).
 */
export function feedWrites(
  ch: EmbeddedChannel,
  log: readonly string[],
  writes: readonly Buffer[],
): { perWrite: string[][]; atClose: string[] } {
  const perWrite: string[][] = [];
  for (const w of writes) {
    const before = log.length;
    ch.writeInbound(w);
    perWrite.push(log.slice(before));
  }
  const before = log.length;
  ch.finish();
  return { perWrite, atClose: log.slice(before) };
}
