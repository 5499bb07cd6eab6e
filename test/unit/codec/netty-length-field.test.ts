/**
 * Netty's LengthFieldBasedFrameDecoder vectors (test/fixtures/netty-frames, see its README): the
 * 7 javadoc examples, the JUnit too-long-frame sequences and the derived edge cases, each fed
 * whole (the steps' writes, checked step by step), byte by byte, and in random splits.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect } from 'chai';
import { LengthFieldFrameDecoder, type LengthFieldFrameDecoderOptions } from '../../../src/codec/length-field.js';
import { TooLongFrameError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { byteByByte, FIXTURES, feedWrites, randomSplit } from '../../support.js';
import { VectorEvents } from './netty-events.js';

// Compiled to dist/test/unit/codec/: the fixtures stay in the source tree.

interface Params {
  readonly maxFrameLength: number;
  readonly lengthFieldOffset: number;
  readonly lengthFieldLength: number;
  readonly lengthAdjustment: number;
  readonly initialBytesToStrip: number;
  readonly failFast?: boolean;
  readonly byteOrder?: 'BIG_ENDIAN' | 'LITTLE_ENDIAN';
}

interface Step {
  readonly write_hex: string;
  readonly frames_hex: readonly string[];
  readonly exception?: 'TooLongFrame' | 'Corrupted';
  readonly note?: string;
}

interface Case {
  readonly id: string;
  readonly params: Params;
  readonly steps: readonly Step[];
  readonly note?: string;
}

interface JavadocExample {
  readonly id: string;
  readonly title: string;
  readonly params: Params;
  readonly input_hex: string;
  readonly expected_frames_hex: readonly string[];
}

interface Vectors {
  readonly commit: string;
  readonly javadoc_examples: readonly JavadocExample[];
  readonly junit_sequences: readonly Case[];
  readonly derived_edge_cases: readonly Case[];
}

const vectors = JSON.parse(
  readFileSync(resolve(FIXTURES, 'netty-frames', 'length-field-frame-decoder.json'), 'utf8'),
) as Vectors;

/** The javadoc examples are one write each. */
const cases: Case[] = [
  ...vectors.javadoc_examples.map((e) => ({
    id: e.id,
    params: e.params,
    steps: [{ write_hex: e.input_hex, frames_hex: e.expected_frames_hex }],
  })),
  ...vectors.junit_sequences,
  ...vectors.derived_edge_cases,
];

function options(p: Params): LengthFieldFrameDecoderOptions {
  const o: LengthFieldFrameDecoderOptions = {
    maxFrameLength: p.maxFrameLength,
    lengthFieldOffset: p.lengthFieldOffset,
    lengthFieldLength: p.lengthFieldLength as 1 | 2 | 3 | 4 | 8,
    lengthAdjustment: p.lengthAdjustment,
    initialBytesToStrip: p.initialBytesToStrip,
    byteOrder: p.byteOrder === 'LITTLE_ENDIAN' ? 'little' : 'big',
  };
  return p.failFast === undefined ? o : { ...o, failFast: p.failFast };
}

/** What a step must produce, in order: its frames, then its exception. */
function expectedOf(step: Step): string[] {
  const out = step.frames_hex.map((h) => `frame:${h}`);
  if (step.exception !== undefined) out.push(`error:${step.exception}`);
  return out;
}

/** Feeds `writes` one by one; returns the events of each write, and those of closing the channel. */
function feed(c: Case, writes: readonly Buffer[]): { perWrite: string[][]; atClose: string[] } {
  const events = new VectorEvents();
  const ch = new EmbeddedChannel([new LengthFieldFrameDecoder(options(c.params)), events]);
  return feedWrites(ch, events.log, writes);
}

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];

describe(`Netty LengthFieldBasedFrameDecoder vectors (netty@${vectors.commit.slice(0, 10)})`, () => {
  it('the fixture holds the 7 javadoc examples, 4 JUnit sequences and 5 derived cases', () => {
    expect(vectors.javadoc_examples).to.have.length(7);
    expect(vectors.junit_sequences).to.have.length(4);
    expect(vectors.derived_edge_cases).to.have.length(5);
  });

  for (const c of cases) {
    describe(c.id, () => {
      const writes = c.steps.map((s) => Buffer.from(s.write_hex, 'hex'));
      const all = Buffer.concat(writes);
      const expected = c.steps.flatMap(expectedOf);
      // Netty's decoder *throws* TooLongFrameException out of decode(); the bytes after the bad
      // frame stay in its cumulation until the next decode pass (channel.finish() in the JUnit
      // test, marked in the step's note). Ours reports the error and resumes decoding at once in
      // the same write, so those frames come one step earlier: for such cases the steps are
      // checked as one sequence (same events, same order).
      const deferred = c.steps.some((s) => s.note?.includes('channel.finish()') === true);

      it(`whole: ${c.steps.length} write(s) as given${deferred ? ' (frames of the next decode pass come at once)' : ''}`, () => {
        const { perWrite, atClose } = feed(c, writes);
        if (deferred) {
          expect(perWrite.flat(), 'all writes').to.deep.equal(expected);
          // …and the deferred frame is already there after the first write.
          expect(perWrite[0], 'first write').to.deep.equal(expected);
        } else {
          c.steps.forEach((step, i) => {
            expect(perWrite[i], `step ${i + 1} (${step.write_hex})`).to.deep.equal(expectedOf(step));
          });
        }
        expect(atClose, 'at close').to.deep.equal([]);
      });

      it('byte by byte', () => {
        const bytes = byteByByte(all);
        const { perWrite, atClose } = feed(c, bytes);
        expect([...perWrite.flat(), ...atClose]).to.deep.equal(expected);
      });

      it(`random splits (${SEEDS.length} seeds)`, () => {
        for (const seed of SEEDS) {
          const { perWrite, atClose } = feed(c, randomSplit(all, seed));
          expect([...perWrite.flat(), ...atClose], `seed ${seed}`).to.deep.equal(expected);
        }
      });
    });
  }

  it('TooLongFrameError carries the frame length Netty reports (header + 32 payload bytes = 36)', () => {
    const c = vectors.junit_sequences.find((s) => s.id === 'lfb-test-discardTooLongFrame2') as Case;
    const ch = new EmbeddedChannel([new LengthFieldFrameDecoder(options(c.params))]);
    ch.writeInbound(Buffer.from(c.steps[0]?.write_hex ?? '', 'hex'));
    const err = ch.errors[0] as TooLongFrameError;
    expect(err).to.be.instanceOf(TooLongFrameError);
    expect(err.length).to.equal(36);
    expect(err.maxLength).to.equal(16);
  });
});
