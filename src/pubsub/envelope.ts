/**
 * What a message carries between processes, in front of its bytes — the same through Redis and
 * through a master's relay:
 *
 * ```
 *  0      1      2        3       4 … 9           10 … 13          14 …
 * +------+------+--------+-------+---------------+----------------+-------------+
 * | 0xFF | 0x6D | vers 1 | flags | origin (48 b) | seq (u32, BE)  | the message |
 * +------+------+--------+-------+---------------+----------------+-------------+
 *   flags: bit 0 = binary (else text, UTF-8)
 * ```
 *
 * - **0xFF** never starts UTF-8 text, so a message published into the channel by anything else —
 *   `redis-cli PUBLISH room hello`, another service — is told apart and delivered as it is (text
 *   when it is valid UTF-8, binary otherwise): `foreign` in the counters.
 * - **origin** is random per `PubSub`: a process skips its own messages when Redis hands them back
 *   (it delivered them to its own members when they were published).
 * - **seq** counts the messages of one origin on one topic: a subscriber that sees 7 after 4 knows
 *   it missed 2 — Redis pub/sub delivers at most once, and this is how the loss is counted
 *   (`missed`). A gap is seen when the next message of that origin on that topic arrives.
 */
import type { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { bufferView } from '../common/buffer-view.js';

export const HEADER_SIZE = 14;
const MAGIC0 = 0xff;
const MAGIC1 = 0x6d;
const VERSION = 1;
const F_BINARY = 1;

/** A fresh origin: 48 random bits (a safe integer, usable as a Map key without an allocation). */
export function newOrigin(): number {
  return randomBytes(6).readUIntBE(0, 6);
}

/** Writes the header at `buf[at …]`. */
export function writeHeader(buf: Uint8Array, at: number, binary: boolean, origin: number, seq: number): void {
  buf[at] = MAGIC0;
  buf[at + 1] = MAGIC1;
  buf[at + 2] = VERSION;
  buf[at + 3] = binary ? F_BINARY : 0;
  const hi = Math.floor(origin / 0x1_0000_0000);
  const lo = origin >>> 0;
  buf[at + 4] = hi >>> 8;
  buf[at + 5] = hi & 0xff;
  buf[at + 6] = lo >>> 24;
  buf[at + 7] = (lo >>> 16) & 0xff;
  buf[at + 8] = (lo >>> 8) & 0xff;
  buf[at + 9] = lo & 0xff;
  buf[at + 10] = seq >>> 24;
  buf[at + 11] = (seq >>> 16) & 0xff;
  buf[at + 12] = (seq >>> 8) & 0xff;
  buf[at + 13] = seq & 0xff;
}

/** Whether `p` starts with our header (else it is a foreign message, delivered as it is). */
export function isEnvelope(p: Uint8Array): boolean {
  return p.length >= HEADER_SIZE && p[0] === MAGIC0 && p[1] === MAGIC1 && p[2] === VERSION;
}

export function envelopeBinary(p: Uint8Array): boolean {
  return ((p[3] as number) & F_BINARY) !== 0;
}

export function envelopeOrigin(p: Uint8Array): number {
  return (((p[4] as number) << 8) | (p[5] as number)) * 0x1_0000_0000 + readU32(p, 6);
}

export function envelopeSeq(p: Uint8Array): number {
  return readU32(p, 10);
}

/** The message bytes behind the header: a view, no copy. */
export function envelopeData(p: Uint8Array): Buffer {
  return bufferView(p.buffer, p.byteOffset + HEADER_SIZE, p.length - HEADER_SIZE);
}

function readU32(p: Uint8Array, at: number): number {
  return (
    (((p[at] as number) << 24) |
      ((p[at + 1] as number) << 16) |
      ((p[at + 2] as number) << 8) |
      (p[at + 3] as number)) >>>
    0
  );
}

/** Most origins (or topics, for a pattern) a tracker remembers; past it, the oldest is forgotten. */
const MAX_TRACKED = 1024;

/**
 * The last sequence number seen from each origin (for one subscription and topic): turns the
 * numbers into a count of messages that never arrived.
 */
export class GapTracker {
  private readonly last = new Map<number, number>();

  /**
   * Records `seq` from `origin`; returns how many of that origin's messages were skipped since
   * the last one seen — 0 for the first one seen (nothing to compare with), and 0 when the number
   * went back (the publisher's counter restarted: a new baseline). Numbers wrap at 2^32.
   */
  seen(origin: number, seq: number): number {
    const last = this.last;
    const prev = last.get(origin);
    if (prev === undefined) {
      if (last.size >= MAX_TRACKED) last.delete(last.keys().next().value as number);
      last.set(origin, seq);
      return 0;
    }
    last.set(origin, seq);
    const d = (seq - prev) >>> 0;
    // d = 0: the same number again; above 2^31: it went back. Neither is a gap.
    return d === 0 || d >= 0x8000_0000 ? 0 : d - 1;
  }
}

/** Gap trackers per topic, for a pattern subscription (which hears many topics). */
export class TopicGapTrackers {
  private readonly topics = new Map<string, GapTracker>();

  seen(topic: string, origin: number, seq: number): number {
    let t = this.topics.get(topic);
    if (t === undefined) {
      if (this.topics.size >= MAX_TRACKED) this.topics.delete(this.topics.keys().next().value as string);
      t = new GapTracker();
      this.topics.set(topic, t);
    }
    return t.seen(origin, seq);
  }
}

/** The next sequence number per topic, for one publisher. */
export class TopicCounters {
  private readonly seq = new Map<string, number>();

  /** 1, 2, 3 … per topic (wrapping at 2^32). A forgotten topic (past 64 Ki of them) starts again at 1. */
  next(topic: string): number {
    const seq = this.seq;
    const n = ((seq.get(topic) ?? 0) + 1) >>> 0;
    if (n === 1 && seq.size >= 65536) seq.delete(seq.keys().next().value as string);
    seq.set(topic, n);
    return n;
  }
}
