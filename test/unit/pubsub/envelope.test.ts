/**
 * The header every message carries between processes, and the sequence numbers that count what
 * was missed.
 */
import { Buffer } from 'node:buffer';
import { expect } from 'chai';
import {
  envelopeBinary,
  envelopeData,
  envelopeOrigin,
  envelopeSeq,
  GapTracker,
  HEADER_SIZE,
  isEnvelope,
  newOrigin,
  TopicCounters,
  TopicGapTrackers,
  writeHeader,
} from '../../../src/pubsub/envelope.js';

describe('pubsub: envelope', () => {
  it('round-trips origin (48 bits), sequence (32 bits) and the binary flag', () => {
    for (const [origin, seq, binary] of [
      [0, 0, false],
      [2 ** 48 - 1, 2 ** 32 - 1, true],
      [0x1234_5678_9abc, 0x8000_0001, false],
      [newOrigin(), 7, true],
    ] as const) {
      const b = Buffer.alloc(HEADER_SIZE + 3);
      writeHeader(b, 0, binary, origin, seq);
      b.write('abc', HEADER_SIZE);
      expect(isEnvelope(b)).to.equal(true);
      expect(envelopeOrigin(b)).to.equal(origin);
      expect(envelopeSeq(b)).to.equal(seq);
      expect(envelopeBinary(b)).to.equal(binary);
      expect(envelopeData(b).toString()).to.equal('abc');
    }
  });

  it('tells foreign messages apart: text never starts with 0xFF', () => {
    expect(isEnvelope(Buffer.from('hello, this is longer than a header'))).to.equal(false);
    expect(isEnvelope(Buffer.from([0xff, 0x6d, 1]))).to.equal(false); // too short
    const b = Buffer.alloc(HEADER_SIZE);
    writeHeader(b, 0, false, 1, 1);
    b[2] = 2; // a version we do not know
    expect(isEnvelope(b)).to.equal(false);
  });

  it('origins are random 48-bit integers', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 100; i++) {
      const o = newOrigin();
      expect(Number.isSafeInteger(o) && o >= 0 && o < 2 ** 48).to.equal(true);
      seen.add(o);
    }
    expect(seen.size).to.equal(100);
  });
});

describe('pubsub: counting what was missed', () => {
  it('a gap is the numbers skipped between two messages of one origin', () => {
    const g = new GapTracker();
    expect(g.seen(1, 5)).to.equal(0); // the first one: nothing to compare with
    expect(g.seen(1, 6)).to.equal(0);
    expect(g.seen(1, 9)).to.equal(2);
    expect(g.seen(2, 100)).to.equal(0); // another origin, its own count
    expect(g.seen(1, 10)).to.equal(0);
    expect(g.seen(1, 10)).to.equal(0); // the same again: no gap
    expect(g.seen(1, 1)).to.equal(0); // went back: the publisher started again
    expect(g.seen(1, 3)).to.equal(1);
  });

  it('wraps at 2^32', () => {
    const g = new GapTracker();
    g.seen(1, 2 ** 32 - 2);
    expect(g.seen(1, 1)).to.equal(2); // -1 (2^32-1) and 0 missed
  });

  it('forgets the oldest origin past 1,024, never more', () => {
    const g = new GapTracker();
    for (let o = 0; o < 1030; o++) g.seen(o, 1);
    expect(g.seen(1029, 3)).to.equal(1); // still remembered
    expect(g.seen(0, 5)).to.equal(0); // forgotten: a new baseline
  });

  it('a pattern counts per topic', () => {
    const t = new TopicGapTrackers();
    t.seen('a', 1, 1);
    t.seen('b', 1, 10);
    expect(t.seen('a', 1, 2)).to.equal(0);
    expect(t.seen('b', 1, 12)).to.equal(1);
  });

  it('a publisher numbers each topic from 1', () => {
    const c = new TopicCounters();
    expect([c.next('a'), c.next('a'), c.next('b'), c.next('a')]).to.deep.equal([1, 2, 1, 3]);
  });
});
