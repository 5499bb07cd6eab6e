import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect } from 'chai';
import {
  RespDecoder,
  type RespDecoderOptions,
  RespEncoder,
  RespError,
  RespProtocolError,
  RespSimpleString,
} from '../../../src/codec/resp.js';
import { InvalidOptionError, TooLongFrameError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { ChannelInboundHandler } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';
import { byteByByte, FIXTURES, prng, splitChunks, thrownBy } from '../../support.js';

/** Decoded values in a comparable form: Buffers as `<text>`, errors as `ERR(...)`, bigints as `123n`. */
function show(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return `<${v.toString('latin1')}>`;
  if (v instanceof RespError) return `ERR(${v.message})`;
  if (typeof v === 'bigint') return `${v}n`;
  if (Array.isArray(v)) return v.map(show);
  return v;
}

class Events extends ChannelInboundHandler {
  readonly log: unknown[] = [];
  readonly errors: unknown[] = [];
  override onRead(_ctx: HandlerContext, msg: unknown): void {
    this.log.push(show(msg));
  }
  override onError(_ctx: HandlerContext, error: unknown): void {
    this.errors.push(error);
    this.log.push(
      error instanceof TooLongFrameError
        ? `tooLong:${error.length}/${error.maxLength}@${error.offset}`
        : error instanceof RespProtocolError
          ? `protocol@${error.offset}`
          : `error:${String(error)}`,
    );
  }
}

function decode(chunks: Buffer[], options: RespDecoderOptions = {}): Events {
  const events = new Events();
  const ch = new EmbeddedChannel([new RespDecoder(options), events]);
  for (const c of chunks) ch.writeInbound(c);
  ch.finish();
  return events;
}

/** Decodes `text` whole, byte by byte and in random splits: all must agree; returns the log. */
function all(text: string | Buffer, options: RespDecoderOptions = {}): unknown[] {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const whole = decode([bytes], options).log;
  expect(decode(byteByByte(bytes), options).log, 'byte by byte').to.deep.equal(whole);
  const rnd = prng(bytes.length);
  for (let i = 0; i < 10; i++) {
    expect(decode(splitChunks(bytes, rnd, 1 + Math.floor(rnd() * 12)), options).log, 'random splits').to.deep.equal(
      whole,
    );
  }
  return whole;
}

describe('RespDecoder', () => {
  it('decodes every RESP2 type, several values per read', () => {
    expect(
      all('+OK\r\n-ERR unknown command\r\n:1000\r\n:-42\r\n$6\r\nfoobar\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n'),
    ).to.deep.equal(['OK', 'ERR(ERR unknown command)', 1000, -42, '<foobar>', '<>', null, null, []]);
  });

  it('decodes commands as arrays of bulk strings, and nested arrays with nulls inside', () => {
    expect(
      all('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nhi\r\n*2\r\n*3\r\n:1\r\n:2\r\n:3\r\n*2\r\n+Foo\r\n$-1\r\n'),
    ).to.deep.equal([
      ['<SET>', '<k>', '<hi>'],
      [
        [1, 2, 3],
        ['Foo', null],
      ],
    ]);
  });

  it('bulk strings are binary-safe: CR, LF and any byte inside', () => {
    const body = Buffer.from([0, 13, 10, 255, 42, 13, 10]);
    const bytes = Buffer.concat([Buffer.from(`$${body.length}\r\n`), body, Buffer.from('\r\n')]);
    const [v] = decode([bytes]).log;
    expect(v).to.equal(`<${body.toString('latin1')}>`);
    expect(all(bytes)).to.have.length(1);
  });

  it('integers beyond 2^53 are bigints; beyond 64 bits a protocol error', () => {
    expect(all(':9007199254740993\r\n:-9223372036854775808\r\n')).to.deep.equal([
      '9007199254740993n',
      '-9223372036854775808n',
    ]);
    expect(all(':9223372036854775808\r\n')).to.deep.equal(['protocol@1']);
  });

  it('inline commands (telnet, nc): words split at spaces, CRLF or bare LF, blank lines skipped', () => {
    expect(all('PING\r\n\r\nSET  k   v\n\nGET k\r\n')).to.deep.equal([
      ['<PING>'],
      ['<SET>', '<k>', '<v>'],
      ['<GET>', '<k>'],
    ]);
  });

  it('without inline, a line without a type byte is a protocol error; inside an array always', () => {
    expect(all('PING\r\n', { inline: false })).to.deep.equal(['protocol@0']);
    expect(all('*2\r\n:1\r\nPING\r\n')).to.deep.equal(['protocol@8']);
  });

  it('malformed input is a RespProtocolError at its offset, then nothing more is read', () => {
    const cases: Array<[string, number]> = [
      [':12a\r\n', 3],
      [':\r\n', 1],
      ['$x\r\n', 1],
      ['$3\r\nabcde\r\n', 7],
      ['*1x\r\n', 2],
      ['+OK\n', 3], // a typed line needs CRLF
      ['$-2\r\n', 1],
    ];
    for (const [text, offset] of cases) {
      expect(all(`:1\r\n${text}:2\r\n`), JSON.stringify(text)).to.deep.equal([1, `protocol@${offset + 4}`]);
    }
  });

  it('limits: a longer bulk string, array or line is a TooLongFrameError naming both lengths', () => {
    expect(all('$11\r\nhello world\r\n', { maxBulkLength: 10 })).to.deep.equal(['tooLong:11/10@0']);
    expect(all(':1\r\n*3\r\n:1\r\n:2\r\n:3\r\n', { maxArrayLength: 2 })).to.deep.equal([1, 'tooLong:3/2@4']);
    // A line's length counts its type byte, not its CRLF; the error says "over the maximum" (17),
    // the same however the reads cut the line.
    expect(all(`+${'x'.repeat(20)}\r\n`, { maxLineLength: 16 })).to.deep.equal(['tooLong:17/16@0']);
    expect(all(`+${'x'.repeat(16)}\r\n`, { maxLineLength: 16 })).to.deep.equal(['tooLong:17/16@0']);
    expect(all(`+${'x'.repeat(15)}\r\n`, { maxLineLength: 16 })).to.deep.equal(['x'.repeat(15)]);
    expect(all(`${'y'.repeat(16)}\n${'z'.repeat(17)}\n`, { maxLineLength: 16 })).to.deep.equal([
      [`<${'y'.repeat(16)}>`],
      'tooLong:17/16@17',
    ]);
    // A line with no end yet is refused as soon as it is longer than the limit.
    const events = decode([Buffer.from(`+${'x'.repeat(40)}`)], { maxLineLength: 16 });
    expect(events.errors[0]).to.be.instanceOf(TooLongFrameError);
    // Nesting.
    expect(all('*1\r\n*1\r\n*1\r\n:1\r\n', { maxDepth: 2 })).to.deep.equal(['protocol@8']);
    expect(all('*1\r\n*1\r\n:1\r\n', { maxDepth: 2 })).to.deep.equal([[[1]]]);
  });

  it('a deep array is decoded without recursion', () => {
    const depth = 100_000;
    const got: unknown[] = [];
    const ch = new EmbeddedChannel([
      new RespDecoder({ maxDepth: depth }),
      new (class extends ChannelInboundHandler {
        override onRead(_ctx: HandlerContext, msg: unknown): void {
          got.push(msg);
        }
      })(),
    ]);
    ch.writeInbound(Buffer.from(`${'*1\r\n'.repeat(depth)}:7\r\n`));
    let v = got[0];
    for (let i = 0; i < depth; i++) v = (v as unknown[])[0];
    expect(v).to.equal(7);
  });

  it('bulk strings taken from a read stay intact after the read buffer is reused', () => {
    const buf = Buffer.from('*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n');
    const seen: unknown[] = [];
    const ch = new EmbeddedChannel([
      new RespDecoder(),
      new (class extends ChannelInboundHandler {
        override onRead(_ctx: HandlerContext, msg: unknown): void {
          seen.push(msg);
        }
      })(),
    ]);
    ch.writeInbound(buf);
    buf.fill(0x58);
    expect(show(seen[0])).to.deep.equal(['<hello>', '<world>']);
  });

  it('2,000 random inputs: only RESP errors, and the same outcome whole as split', () => {
    const rnd = prng(2026);
    const pieces = [
      '*2\r\n',
      '*1\r\n',
      '*0\r\n',
      '*-1\r\n',
      '$3\r\nabc\r\n',
      '$-1\r\n',
      '$0\r\n\r\n',
      ':12\r\n',
      ':-3\r\n',
      '+OK\r\n',
      '-ERR x\r\n',
      'PING\r\n',
      'GET k\n',
      '\r\n',
      '$5\r\nab',
      '*',
      '$',
      ':',
      '\r',
      '\n',
      'x',
    ];
    for (let i = 0; i < 2000; i++) {
      let text = '';
      const n = 1 + Math.floor(rnd() * 12);
      for (let j = 0; j < n; j++) {
        text +=
          rnd() < 0.9
            ? (pieces[Math.floor(rnd() * pieces.length)] as string)
            : String.fromCharCode(Math.floor(rnd() * 256));
      }
      const log = all(text, { maxDepth: 3, maxLineLength: 64 });
      for (const entry of log) {
        if (typeof entry === 'string' && /^(error|tooLong|protocol)/.test(entry)) {
          expect(entry, JSON.stringify(text)).to.match(/^(tooLong|protocol)/);
        }
      }
    }
  });

  it('validates its options', () => {
    for (const [options, name] of [
      [{ maxBulkLength: -1 }, 'maxBulkLength'],
      [{ maxArrayLength: 1.5 }, 'maxArrayLength'],
      [{ maxDepth: 0 }, 'maxDepth'],
      [{ maxLineLength: 0 }, 'maxLineLength'],
      [{ inline: 'yes' }, 'inline'],
    ] as const) {
      const err = thrownBy(() => new RespDecoder(options as unknown as RespDecoderOptions));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.contain(name);
    }
  });
});

interface NettyCase {
  readonly id: string;
  readonly writes: string[];
  readonly expect: unknown[] | string;
  readonly decoder_option?: string;
}

/** Netty's aggregated messages in this decoder's terms (see `show`). */
function expected(m: Record<string, unknown>): unknown {
  if ('simple' in m) return m.simple;
  if ('error' in m) return `ERR(${m.error})`;
  if ('integer' in m) return m.integer;
  if ('bulk' in m) return m.bulk === null ? null : `<${m.bulk}>`;
  if ('inline' in m) return (m.inline as string).split(' ').map((w) => `<${w}>`);
  return (m.array as Record<string, unknown>[]).map(expected);
}

describe("RespDecoder against Netty's RedisDecoderTest vectors", () => {
  const file = resolve(FIXTURES, 'netty-frames', 'resp-decoder.json');
  const cases = (JSON.parse(readFileSync(file, 'utf8')) as { cases: NettyCase[] }).cases;

  it('has the 14 cases', () => {
    expect(cases).to.have.length(14);
  });

  for (const c of cases) {
    it(`${c.id}: whole, byte by byte, in random splits`, () => {
      // Netty decodes inline commands only when asked; a Redis server (our default) always does.
      const inline = c.decoder_option === 'decodeInlineCommands=true';
      const writes = c.writes.map((w) => Buffer.from(w, 'latin1'));
      const whole = decode(writes, { inline }).log;
      if (typeof c.expect === 'string') {
        expect(whole, c.expect).to.have.length(1);
        expect(whole[0]).to.match(/^protocol@/);
      } else {
        expect(whole).to.deep.equal(c.expect.map((m) => expected(m as Record<string, unknown>)));
      }
      expect(all(Buffer.concat(writes), { inline })).to.deep.equal(whole);
    });
  }
});

describe('RespEncoder', () => {
  function encode(msg: unknown): string {
    const ch = new EmbeddedChannel([new RespEncoder()]);
    ch.writeOutbound(msg);
    ch.checkException(); // an encoder's error is the pipeline's: rethrown here
    return ch.readOutboundBytes().toString('latin1');
  }

  it('encodes every value the decoder gives, and the decoder reads it back', () => {
    const msg = [
      new RespSimpleString('OK'),
      new RespError('WRONGTYPE Operation against a key holding the wrong kind of value'),
      42,
      -7n,
      'héllo',
      Buffer.from([0, 13, 10]),
      null,
      [],
      [1, [true, false]],
    ];
    const bytes = encode(msg);
    expect(bytes).to.equal(
      '*9\r\n+OK\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:42\r\n:-7\r\n' +
        '$6\r\nh\xc3\xa9llo\r\n$3\r\n\x00\r\n\r\n$-1\r\n*0\r\n*2\r\n:1\r\n*2\r\n:1\r\n:0\r\n',
    );
    expect(decode([Buffer.from(bytes, 'latin1')]).log).to.deep.equal([
      [
        'OK',
        'ERR(WRONGTYPE Operation against a key holding the wrong kind of value)',
        42,
        -7,
        `<${Buffer.from('héllo').toString('latin1')}>`,
        '<\x00\r\n>',
        null,
        [],
        [1, [1, 0]],
      ],
    ]);
    expect(new RespError('WRONGTYPE x').kind).to.equal('WRONGTYPE');
  });

  it('non-integer numbers are bulk strings; undefined is the null bulk string', () => {
    expect(encode(1.5)).to.equal('$3\r\n1.5\r\n');
    expect(encode(undefined)).to.equal('$-1\r\n');
  });

  it('refuses what RESP cannot carry: CR/LF in a simple string or error, objects, cycles', () => {
    expect(() => encode(new RespSimpleString('a\r\nb'))).to.throw(TypeError);
    expect(() => encode(new RespError('x\ny'))).to.throw(TypeError);
    expect(() => encode({ a: 1 })).to.throw(TypeError);
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(() => encode(cycle)).to.throw(TypeError, /deeper/);
  });
});
