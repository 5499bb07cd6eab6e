import { expect } from 'chai';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { intOption, oneOf } from '../../../src/common/options.js';
import {
  type ConnectionOptions,
  type LoopOptions,
  resolveConnectionOptions,
  resolveLoopOptions,
} from '../../../src/worker/options.js';
import { thrownBy } from '../../support.js';

/** Asserts that resolving `o` fails with an InvalidOptionError naming `name`; returns the message. */
function rejectsConnection(o: unknown, name: string): string {
  const err = thrownBy(() => resolveConnectionOptions(o as ConnectionOptions));
  expect(err, JSON.stringify(o)).to.be.instanceOf(InvalidOptionError);
  const e = err as InvalidOptionError;
  expect(e.code).to.equal('ERR_INVALID_OPTION');
  expect(e.message, JSON.stringify(o)).to.contain(`option ${name}:`);
  return e.message;
}

function rejectsLoop(o: unknown, name: string): string {
  const err = thrownBy(() => resolveLoopOptions(o as LoopOptions));
  expect(err, JSON.stringify(o)).to.be.instanceOf(InvalidOptionError);
  const e = err as InvalidOptionError;
  expect(e.message).to.contain(`option ${name}:`);
  return e.message;
}

describe('worker/options: resolveConnectionOptions', () => {
  it('has the documented defaults', () => {
    expect(resolveConnectionOptions()).to.deep.equal({
      allowHalfOpen: false,
      highWaterMark: 65536,
      lowWaterMark: 32768,
      maxReadPerWakeup: 262144,
      minReadSize: 64,
      initialReadSize: 2048,
      maxReadSize: 65536,
      closeTimeout: 30000,
      decoderErrors: 'continue',
      lingerTimeout: 5000,
      socket: { noDelay: true },
      readSizes: [64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536],
      initialReadIndex: 5,
    });
    expect(resolveConnectionOptions({})).to.deep.equal(resolveConnectionOptions());
  });

  it('the default socket options carry no undefined keys', () => {
    expect(Object.keys(resolveConnectionOptions().socket)).to.deep.equal(['noDelay']);
  });

  it('passes given values through', () => {
    const r = resolveConnectionOptions({
      allowHalfOpen: true,
      highWaterMark: 1000,
      lowWaterMark: 10,
      maxReadPerWakeup: 1,
      minReadSize: 16,
      initialReadSize: 100,
      maxReadSize: 200,
      closeTimeout: 0,
      decoderErrors: 'close',
      lingerTimeout: 0,
      noDelay: false,
      keepAlive: { idle: 30, interval: 5, count: 3 },
      userTimeout: 1000,
      sendBufferSize: 4096,
      receiveBufferSize: 8192,
    });
    expect(r).to.deep.equal({
      allowHalfOpen: true,
      highWaterMark: 1000,
      lowWaterMark: 10,
      maxReadPerWakeup: 1,
      minReadSize: 16,
      initialReadSize: 100,
      maxReadSize: 200,
      closeTimeout: 0,
      decoderErrors: 'close',
      lingerTimeout: 0,
      socket: {
        noDelay: false,
        keepAlive: { idle: 30, interval: 5, count: 3 },
        userTimeout: 1000,
        sendBufferSize: 4096,
        receiveBufferSize: 8192,
      },
      readSizes: [16, 25, 50, 100, 200],
      initialReadIndex: 3,
    });
  });

  it('keepAlive false is kept (it turns keep-alive off)', () => {
    expect(resolveConnectionOptions({ keepAlive: false }).socket).to.deep.equal({ noDelay: true, keepAlive: false });
  });

  it('derives lowWaterMark from a small highWaterMark', () => {
    const r = resolveConnectionOptions({ highWaterMark: 1000 });
    expect(r.highWaterMark).to.equal(1000);
    expect(r.lowWaterMark).to.equal(1000);
  });

  it('accepts lowWaterMark equal to highWaterMark, and 0', () => {
    expect(resolveConnectionOptions({ highWaterMark: 10, lowWaterMark: 10 }).lowWaterMark).to.equal(10);
    expect(resolveConnectionOptions({ lowWaterMark: 0 }).lowWaterMark).to.equal(0);
  });

  it('lowWaterMark above highWaterMark throws naming lowWaterMark', () => {
    const msg = rejectsConnection({ highWaterMark: 100, lowWaterMark: 101 }, 'lowWaterMark');
    expect(msg).to.contain('highWaterMark (100)');
    expect(msg).to.contain('101');
    rejectsConnection({ lowWaterMark: 70000 }, 'lowWaterMark'); // above the default highWaterMark
  });

  it('derives the read sizes from maxReadSize and minReadSize', () => {
    const small = resolveConnectionOptions({ maxReadSize: 128 });
    expect(small.minReadSize).to.equal(64);
    expect(small.initialReadSize).to.equal(128);
    const tiny = resolveConnectionOptions({ maxReadSize: 64 });
    expect(tiny.minReadSize).to.equal(64);
    expect(tiny.initialReadSize).to.equal(64);
    const bigMin = resolveConnectionOptions({ minReadSize: 4096 });
    expect(bigMin.initialReadSize).to.equal(4096);
    expect(bigMin.maxReadSize).to.equal(65536);
  });

  const bad: ReadonlyArray<readonly [string, unknown]> = [
    ['highWaterMark', -1],
    ['highWaterMark', 0],
    ['highWaterMark', 1.5],
    ['highWaterMark', Number.NaN],
    ['highWaterMark', Number.POSITIVE_INFINITY],
    ['highWaterMark', '65536'],
    ['lowWaterMark', -1],
    ['lowWaterMark', 0.5],
    ['maxReadPerWakeup', 0],
    ['maxReadPerWakeup', -100],
    ['maxReadPerWakeup', 2.5],
    ['maxReadSize', 63],
    ['maxReadSize', 16 * 1024 * 1024 + 1],
    ['maxReadSize', 1000.5],
    ['minReadSize', 15],
    ['minReadSize', -64],
    ['minReadSize', 70000], // above the default maxReadSize
    ['initialReadSize', 32], // below the default minReadSize
    ['initialReadSize', 65537], // above the default maxReadSize
    ['initialReadSize', 2048.5],
    ['closeTimeout', -1],
    ['closeTimeout', 0.5],
    ['allowHalfOpen', 'yes'],
    ['allowHalfOpen', 1],
  ];
  for (const [name, value] of bad) {
    it(`rejects ${name} = ${String(value)} naming the option`, () => {
      const msg = rejectsConnection({ [name]: value }, name);
      expect(msg).to.contain(String(value));
    });
  }

  it('says what range an integer option must be in', () => {
    expect(rejectsConnection({ maxReadSize: 1 }, 'maxReadSize')).to.contain('from 64 to 16777216');
    expect(rejectsConnection({ closeTimeout: -5 }, 'closeTimeout')).to.contain('>= 0');
  });

  it('validates the socket options too', () => {
    rejectsConnection({ keepAlive: { idle: -1, interval: 1, count: 1 } }, 'keepAlive.idle');
    rejectsConnection({ userTimeout: 0 }, 'userTimeout');
    rejectsConnection({ noDelay: 'no' }, 'noDelay');
  });
});

describe('worker/options: resolveLoopOptions', () => {
  it('has the documented defaults', () => {
    expect(resolveLoopOptions()).to.deep.equal({
      poller: 'epoll',
      trigger: 'level',
      maxEventsPerWait: 1024,
      maxWaitsPerWakeup: 8,
      timerTickMs: 20,
    });
  });

  it('passes valid values through', () => {
    expect(
      resolveLoopOptions({
        poller: 'poll',
        trigger: 'edge',
        maxEventsPerWait: 1,
        maxWaitsPerWakeup: 1,
        timerTickMs: 1000,
      }),
    ).to.deep.equal({ poller: 'poll', trigger: 'edge', maxEventsPerWait: 1, maxWaitsPerWakeup: 1, timerTickMs: 1000 });
  });

  it("rejects poller 'kqueue' listing the allowed values", () => {
    const msg = rejectsLoop({ poller: 'kqueue' }, 'poller');
    expect(msg).to.contain("'epoll', 'poll'");
    expect(msg).to.contain('kqueue');
  });

  it("rejects trigger 'both' listing the allowed values", () => {
    const msg = rejectsLoop({ trigger: 'both' }, 'trigger');
    expect(msg).to.contain("'level', 'edge'");
    expect(msg).to.contain('both');
  });

  it('rejects non-string enum values', () => {
    rejectsLoop({ poller: 1 }, 'poller');
    rejectsLoop({ trigger: null }, 'trigger');
  });

  for (const [name, value] of [
    ['maxEventsPerWait', 0],
    ['maxEventsPerWait', 65537],
    ['maxEventsPerWait', 1.5],
    ['maxWaitsPerWakeup', 0],
    ['maxWaitsPerWakeup', 1025],
    ['maxWaitsPerWakeup', 2.5],
    ['timerTickMs', 0],
    ['timerTickMs', 1001],
    ['timerTickMs', 2.5],
  ] as const) {
    it(`rejects ${name} = ${value}`, () => {
      rejectsLoop({ [name]: value }, name);
    });
  }
});

describe('common/options: validators', () => {
  it('intOption returns the value in range and names the option otherwise', () => {
    expect(intOption('x', 5, 0, 10)).to.equal(5);
    expect(intOption('x', 0, 0)).to.equal(0);
    const err = thrownBy(() => intOption('myOption', 11, 0, 10));
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as InvalidOptionError).message).to.equal('option myOption: must be an integer from 0 to 10, got 11');
  });

  it('oneOf falls back on undefined and rejects anything else outside the list', () => {
    expect(oneOf('mode', undefined, ['a', 'b'], 'b')).to.equal('b');
    expect(oneOf('mode', 'a', ['a', 'b'], 'b')).to.equal('a');
    const err = thrownBy(() => oneOf('mode', 'c', ['a', 'b'], 'a'));
    expect((err as InvalidOptionError).message).to.equal("option mode: must be one of 'a', 'b', got 'c'");
  });
});
