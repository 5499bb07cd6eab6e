/**
 * The load generator's option handling: durations as wrk spells them, and validation before any
 * socket or loop is opened.
 */
import { expect } from 'chai';
import { InvalidOptionError, parseDuration, runLoad } from '../../../src/index.js';

describe('load options', () => {
  it('parses durations: ms, s, m, h, and bare seconds', () => {
    expect(parseDuration('d', '250ms')).to.equal(250);
    expect(parseDuration('d', '10s')).to.equal(10_000);
    expect(parseDuration('d', '1.5s')).to.equal(1500);
    expect(parseDuration('d', '2m')).to.equal(120_000);
    expect(parseDuration('d', '1h')).to.equal(3_600_000);
    expect(parseDuration('d', '3')).to.equal(3000);
    for (const bad of ['', 'ten', '-1s', '5x', '0', '0.0001s']) {
      expect(() => parseDuration('duration', bad), bad).to.throw(InvalidOptionError, /duration/);
    }
  });

  it('runLoad validates every option before opening anything', async () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ url: 'http://127.0.0.1:1/', connections: 0 }, /connections/],
      [{ url: 'http://127.0.0.1:1/', connections: 10_001 }, /connections/],
      [{ url: 'http://127.0.0.1:1/', duration: 0 }, /duration/],
      [{ url: 'http://127.0.0.1:1/', pipeline: 1025 }, /pipeline/],
      [{ url: 'http://127.0.0.1:1/', timeout: 0 }, /timeout/],
      [{ url: 'http://127.0.0.1:1/', mode: 'echo', size: 70_000 }, /size/],
      [{ url: 'http://127.0.0.1:1/', mode: 'udp' }, /mode/],
      [{ url: 'http://127.0.0.1:1/', mode: 'ws' }, /url/],
      [{ url: 'ws://127.0.0.1:1/', mode: 'ws', size: 17 * 1024 * 1024 }, /size/],
      [{ url: 'http://127.0.0.1:1/', method: 'GE T' }, /method/],
      [{ url: 'http://127.0.0.1:1/', headers: { 'X-A': 'a\r\nb' } }, /headers/],
      [{ url: 'ftp://127.0.0.1:1/' }, /url/],
      [{ url: 'tcp://127.0.0.1/', mode: 'echo' }, /port/],
    ];
    for (const [options, name] of bad) {
      const err = await runLoad(options as never).catch((e: unknown) => e);
      expect(err, JSON.stringify(options)).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.match(name);
    }
  });
});
