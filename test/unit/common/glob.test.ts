/**
 * Glob patterns as Redis matches them (src/util.c `stringmatchlen`): the vectors below were worked
 * out from that function's code, quirks included; test/integration/pubsub-redis.test.ts checks a
 * table of them against a real redis-server's PSUBSCRIBE.
 */
import { Buffer } from 'node:buffer';
import { expect } from 'chai';
import { GlobPattern, globMatch } from '../../../src/common/glob.js';

const CASES: ReadonlyArray<readonly [string, string, boolean]> = [
  ['*', 'anything', true],
  ['*', '', false], // Redis: the empty text matches the empty pattern only
  ['', '', true],
  ['', 'a', false],
  ['room:*', 'room:lobby', true],
  ['room:*', 'room:', true],
  ['room:*', 'rooms:x', false],
  ['*:lobby', 'room:lobby', true],
  ['a*b*c', 'aXXbYYc', true],
  ['a*b*c', 'aXXbYY', false],
  ['a**b', 'ab', true],
  ['h?llo', 'hello', true],
  ['h?llo', 'hllo', false],
  ['h?llo', 'heello', false],
  ['h[ae]llo', 'hallo', true],
  ['h[ae]llo', 'hillo', false],
  ['h[^e]llo', 'hallo', true],
  ['h[^e]llo', 'hello', false],
  ['h[a-b]llo', 'hbllo', true],
  ['h[b-a]llo', 'hallo', true], // a range either way round
  ['h[a-b]llo', 'hcllo', false],
  ['[]', ']', false], // `]` right after `[` closes an empty class
  ['[]a', 'a', false],
  ['[^]', 'x', true], // the negated empty class: any byte
  ['[^]x', 'ax', true],
  ['[ab', 'a', true], // a class left open runs to the end
  ['[ab', 'c', false],
  ['[a-]', ']', true], // `a-]`: a range from ']' (0x5d) to 'a' (0x61)
  ['[a-]', '^', true],
  ['[a-]', '-', false],
  ['[\\]]', ']', true],
  ['[\\-]', '-', true],
  ['\\*', '*', true],
  ['\\*', 'x', false],
  ['\\?', '?', true],
  ['a\\', 'a\\', true], // a backslash at the end is itself
  ['*.txt', 'notes.txt', true],
  ['*a', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaab', false],
  ['a*a*a*a*a*a*a*b', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', false],
  ['?', 'é', false], // `?` is one byte; é is two in UTF-8
  ['??', 'é', true],
  ['caf?', 'café', false],
  ['caf*', 'café', true],
];

describe('common/glob: Redis PSUBSCRIBE patterns', () => {
  for (const [pattern, text, expected] of CASES) {
    it(`${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(text)}`, () => {
      expect(globMatch(pattern, text)).to.equal(expected);
      expect(new GlobPattern(Buffer.from(pattern)).matches(Buffer.from(text))).to.equal(expected);
    });
  }

  it('a pattern without special bytes is literal, and still compares bytes', () => {
    const p = new GlobPattern('room:lobby');
    expect(p.isLiteral).to.equal(true);
    expect(p.matches('room:lobby')).to.equal(true);
    expect(p.matches('room:lobbyx')).to.equal(false);
    expect(new GlobPattern('room:*').isLiteral).to.equal(false);
    expect(new GlobPattern('a\\*').isLiteral).to.equal(true);
    expect(new GlobPattern('a\\*').matches('a*')).to.equal(true);
  });

  it('answers patterns that make a recursive matcher exponential (one backtracking point)', () => {
    // 40 stars against 5,000 bytes: a recursive matcher would not finish within the test's timeout.
    expect(globMatch(`${'a*'.repeat(40)}b`, 'a'.repeat(5000))).to.equal(false);
    expect(globMatch(`${'a*'.repeat(40)}b`, `${'a'.repeat(5000)}b`)).to.equal(true);
  });
});
