/**
 * Netty's LineBasedFrameDecoderTest cases (test/fixtures/netty-frames, see its README), each fed
 * whole (the steps' writes, checked step by step), byte by byte, and in random splits.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect } from 'chai';
import { LineFrameDecoder } from '../../../src/codec/line.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { byteByByte, FIXTURES, feedWrites, randomSplit } from '../../support.js';
import { VectorEvents } from './netty-events.js';

// Compiled to dist/test/unit/codec/: the fixtures stay in the source tree.

interface Step {
  /** latin1: one character per byte. */
  readonly write: string;
  readonly frames: readonly string[];
  readonly exception?: 'TooLongFrame';
  /** Frames the same write produces after the exception. */
  readonly then_frames?: readonly string[];
}

interface Case {
  readonly id: string;
  readonly params: { readonly maxLength: number; readonly stripDelimiter: boolean; readonly failFast: boolean };
  readonly steps: readonly Step[];
}

const vectors = JSON.parse(
  readFileSync(resolve(FIXTURES, 'netty-frames', 'line-based-frame-decoder.json'), 'utf8'),
) as {
  readonly commit: string;
  readonly cases: readonly Case[];
};

const hex = (latin1: string): string => Buffer.from(latin1, 'latin1').toString('hex');

/** What a step must produce, in order: its frames, its exception, the frames after it. */
function expectedOf(step: Step): string[] {
  const out = step.frames.map((f) => `frame:${hex(f)}`);
  if (step.exception !== undefined) out.push(`error:${step.exception}`);
  for (const f of step.then_frames ?? []) out.push(`frame:${hex(f)}`);
  return out;
}

interface Run {
  perWrite: string[][];
  atClose: string[];
  tooLongLengths: number[];
}

function feed(c: Case, writes: readonly Buffer[]): Run {
  const events = new VectorEvents();
  const ch = new EmbeddedChannel([new LineFrameDecoder(c.params), events]);
  return { ...feedWrites(ch, events.log, writes), tooLongLengths: events.tooLongLengths };
}

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

describe(`Netty LineBasedFrameDecoder vectors (netty@${vectors.commit.slice(0, 10)})`, () => {
  it('the fixture holds the 9 LineBasedFrameDecoderTest cases', () => {
    expect(vectors.cases).to.have.length(9);
  });

  for (const c of vectors.cases) {
    describe(`${c.id} (maxLength ${c.params.maxLength}, strip ${c.params.stripDelimiter}, failFast ${c.params.failFast})`, () => {
      const writes = c.steps.map((s) => Buffer.from(s.write, 'latin1'));
      const all = Buffer.concat(writes);
      // Netty's line decoder fires TooLongFrameException down the pipeline and goes on decoding
      // (it does not throw), so every step's expectation holds as is, then_frames included.
      const expected = c.steps.flatMap(expectedOf);
      // Without failFast, the length reported for a discarded line does not depend on how the
      // reads split it (with failFast it is the bytes seen so far, which does).
      const wholeLengths = (): number[] => feed(c, writes).tooLongLengths;

      it(`whole: ${c.steps.length} write(s) as given, per step`, () => {
        const { perWrite, atClose } = feed(c, writes);
        c.steps.forEach((step, i) => {
          expect(perWrite[i], `step ${i + 1} (${JSON.stringify(step.write)})`).to.deep.equal(expectedOf(step));
        });
        // A last line without a delimiter is not emitted at close (Netty: "third" is discarded).
        expect(atClose, 'at close').to.deep.equal([]);
      });

      it('byte by byte', () => {
        const { perWrite, atClose, tooLongLengths } = feed(c, byteByByte(all));
        expect([...perWrite.flat(), ...atClose]).to.deep.equal(expected);
        if (!c.params.failFast) expect(tooLongLengths, 'TooLongFrameError.length').to.deep.equal(wholeLengths());
      });

      it(`random splits (${SEEDS.length} seeds)`, () => {
        for (const seed of SEEDS) {
          const { perWrite, atClose, tooLongLengths } = feed(c, randomSplit(all, seed));
          expect([...perWrite.flat(), ...atClose], `seed ${seed}`).to.deep.equal(expected);
          if (!c.params.failFast) expect(tooLongLengths, `seed ${seed}: lengths`).to.deep.equal(wholeLengths());
        }
      });
    });
  }

  it('reports the lengths Netty reports for the discarded lines', () => {
    const lengths = (id: string): number[] => {
      const c = vectors.cases.find((x) => x.id === id) as Case;
      return feed(
        c,
        c.steps.map((s) => Buffer.from(s.write, 'latin1')),
      ).tooLongLengths;
    };
    expect(lengths('line-testTooLongLine1')).to.deep.equal([20]); // "12345678901234567890"
    expect(lengths('line-testTooLongLine2')).to.deep.equal([20]); // the same line in two writes
    expect(lengths('line-testNotFailFast')).to.deep.equal([5]); // 00 01 02 03 04
    // failFast: raised when the 17th byte arrives without a delimiter, with what it had seen.
    expect(lengths('line-testTooLongLineWithFailFast')).to.deep.equal([17]);
  });
});
