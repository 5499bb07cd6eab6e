/**
 * The options mechanism (src/common/options.ts): unknown keys with the nearest known one
 * suggested, and values that say what they must be — the type first — and what they got.
 */
import { expect } from 'chai';
import { InvalidOptionError } from '../../../src/common/errors.js';
import {
  bool,
  checkOptions,
  describeValue,
  fnOption,
  intOption,
  msOption,
  nearestKey,
  numberOption,
  type OptionKeys,
  oneOf,
  pickOptions,
  SharedResolutions,
} from '../../../src/common/options.js';
import { thrownBy } from '../../support.js';

interface Sample {
  readonly port?: number;
  readonly host?: string;
  readonly maxBodySize?: number;
  readonly keepAliveTimeout?: number;
}
const SAMPLE_KEYS = {
  port: true,
  host: true,
  maxBodySize: true,
  keepAliveTimeout: true,
} as const satisfies OptionKeys<Sample>;

function invalid(fn: () => unknown): InvalidOptionError {
  const err = thrownBy(fn);
  expect(err).to.be.instanceOf(InvalidOptionError);
  expect((err as InvalidOptionError).code).to.equal('ERR_INVALID_OPTION');
  return err as InvalidOptionError;
}

describe('common/options: checkOptions', () => {
  it('returns the options when every key is known; undefined stands for {}', () => {
    const o = { port: 1, host: 'h' };
    expect(checkOptions('Thing', o, SAMPLE_KEYS)).to.equal(o);
    expect(checkOptions('Thing', undefined, SAMPLE_KEYS)).to.deep.equal({});
    expect(checkOptions('Thing', {}, SAMPLE_KEYS)).to.deep.equal({});
  });

  it("names an unknown key and the nearest known one: unknown option 'prot' (did you mean 'port'?)", () => {
    const err = invalid(() => checkOptions('Server.listen', { prot: 80 }, SAMPLE_KEYS));
    expect(err.message).to.equal("Server.listen: unknown option 'prot' (did you mean 'port'?)");
    expect(err.option).to.equal('prot');
  });

  it('suggests the option a shortened name is part of (maxBody → maxBodySize), and ignores case', () => {
    expect(invalid(() => checkOptions('http', { maxBody: 10 }, SAMPLE_KEYS)).message).to.contain(
      "unknown option 'maxBody' (did you mean 'maxBodySize'?)",
    );
    expect(invalid(() => checkOptions('http', { keepalivetimeout: 10 }, SAMPLE_KEYS)).message).to.contain(
      "(did you mean 'keepAliveTimeout'?)",
    );
  });

  it('without a near one, lists what a short list takes', () => {
    const err = invalid(() => checkOptions('Thing', { zzzzzzzz: 1 }, SAMPLE_KEYS));
    expect(err.message).to.equal(
      "Thing: unknown option 'zzzzzzzz' (Thing takes 'port', 'host', 'maxBodySize', 'keepAliveTimeout')",
    );
  });

  it('a key whose value is undefined is still unknown; inherited enumerable keys are checked too', () => {
    invalid(() => checkOptions('Thing', { prot: undefined }, SAMPLE_KEYS));
    const inherited = Object.create({ prot: 80 }) as object;
    invalid(() => checkOptions('Thing', inherited, SAMPLE_KEYS));
  });

  it('nested options carry their path', () => {
    const err = invalid(() => checkOptions('Server.listen', { idel: 1 }, { idle: true, count: true }, 'keepAlive.'));
    expect(err.message).to.equal("Server.listen: unknown option 'keepAlive.idel' (did you mean 'keepAlive.idle'?)");
    expect(err.option).to.equal('keepAlive.idel');
  });

  it('rejects options that are not an object', () => {
    for (const bad of [null, 5, 'port', [1], () => {}]) {
      const err = invalid(() => checkOptions('Thing', bad as unknown as object, SAMPLE_KEYS));
      expect(err.message).to.match(/^Thing: options must be an object, got /);
    }
  });

  it('pickOptions keeps the listed keys that are defined', () => {
    expect(pickOptions<Sample>({ port: 1, host: undefined, other: 2 }, SAMPLE_KEYS)).to.deep.equal({ port: 1 });
  });
});

describe('common/options: nearestKey', () => {
  const known = ['port', 'host', 'backlog', 'workers', 'readerIdle', 'maxConnections'];
  for (const [typo, want] of [
    ['prot', 'port'],
    ['prt', 'port'],
    ['Port', 'port'],
    ['hots', 'host'],
    ['workres', 'workers'],
    ['readerIdel', 'readerIdle'],
    ['maxConnection', 'maxConnections'],
    ['backlog_', 'backlog'],
  ] as const) {
    it(`${typo} → ${want}`, () => expect(nearestKey(typo, known)).to.equal(want));
  }
  it('suggests nothing for a word unlike every key', () => {
    expect(nearestKey('colour', known)).to.equal(undefined);
    expect(nearestKey('x', known)).to.equal(undefined);
  });
});

describe('common/options: values say what they must be and what they got', () => {
  it('describeValue shows the type where it is what is wrong', () => {
    expect(describeValue('8080')).to.equal("the string '8080'");
    expect(describeValue('')).to.equal("the string ''");
    expect(describeValue("it's")).to.equal('the string "it\'s"');
    expect(describeValue(1.5)).to.equal('1.5');
    expect(describeValue(Number.NaN)).to.equal('NaN');
    expect(describeValue(null)).to.equal('null');
    expect(describeValue(undefined)).to.equal('undefined');
    expect(describeValue([1])).to.equal('an array');
    expect(describeValue({})).to.equal('an object');
    expect(describeValue(new Date(0))).to.equal('a Date');
    expect(describeValue(() => 1)).to.equal('a function');
    expect(describeValue(10n)).to.equal('the bigint 10n');
  });

  it("port: '8080' must be a number, not an integer from 0 to 65535 'got 8080'", () => {
    const err = invalid(() => intOption('port', '8080', 0, 65535));
    expect(err.message).to.equal("option port: must be a number, got the string '8080'");
    expect(invalid(() => intOption('port', Number.NaN, 0, 65535)).message).to.equal(
      'option port: must be a number, got NaN',
    );
    expect(invalid(() => intOption('port', 70000, 0, 65535)).message).to.equal(
      'option port: must be an integer from 0 to 65535, got 70000',
    );
  });

  it('every validator checks the type first', () => {
    expect(invalid(() => msOption('timeout', '5s')).message).to.equal(
      "option timeout: must be a number of milliseconds, got the string '5s'",
    );
    expect(invalid(() => msOption('timeout', 0, true)).message).to.equal(
      'option timeout: must be a positive number of milliseconds, got 0',
    );
    expect(invalid(() => numberOption('jitter', null, 0, 1)).message).to.equal(
      'option jitter: must be a number, got null',
    );
    expect(invalid(() => bool('allowHalfOpen', 'true', false)).message).to.equal(
      "option allowHalfOpen: must be a boolean, got the string 'true'",
    );
    expect(invalid(() => oneOf('mode', 1, ['a', 'b'], 'a')).message).to.equal(
      "option mode: must be one of 'a', 'b', got 1",
    );
    expect(invalid(() => fnOption('lookup', 'dns')).message).to.equal(
      "option lookup: must be a function, got the string 'dns'",
    );
  });
});

describe('common/options: SharedResolutions', () => {
  /** Resolves Sample options, counting how often it had to. */
  function counting() {
    const calls: unknown[] = [];
    const cache = new SharedResolutions<Sample, { port: number; host: string }>((o) => {
      calls.push(o);
      const options = checkOptions('Sample', o, SAMPLE_KEYS);
      return { port: intOption('port', options.port ?? 80, 0, 65535), host: options.host ?? 'localhost' };
    });
    return { cache, calls };
  }

  it('equal options share one resolution: the same object, inline literals and undefined alike', () => {
    const { cache, calls } = counting();
    const a = cache.get({ port: 8080 });
    const b = cache.get({ port: 8080 });
    expect(b).to.equal(a);
    expect(calls).to.have.length(1);
    const none = cache.get(undefined);
    expect(cache.get({})).to.equal(none);
    expect(none).to.deep.equal({ port: 80, host: 'localhost' });
    expect(calls).to.have.length(2);
  });

  it('different values, an extra key, or an object changed since are resolved again', () => {
    const { cache, calls } = counting();
    const options: { port: number; host?: string } = { port: 1 };
    const first = cache.get(options);
    expect(cache.get({ port: 2 })).to.deep.equal({ port: 2, host: 'localhost' });
    expect(cache.get({ port: 1, host: 'x' })).to.deep.equal({ port: 1, host: 'x' });
    expect(cache.get({ port: 1, host: undefined } as unknown as Sample)).to.not.equal(first);
    options.port = 3;
    expect(cache.get(options)).to.deep.equal({ port: 3, host: 'localhost' });
    expect(calls).to.have.length(5);
  });

  it('invalid options throw every time and are not remembered', () => {
    const { cache, calls } = counting();
    expect(() => cache.get({ port: -1 })).to.throw(InvalidOptionError);
    expect(() => cache.get({ port: -1 })).to.throw(InvalidOptionError);
    expect(() => cache.get({ prot: 1 } as Sample)).to.throw(/did you mean 'port'/);
    expect(() => cache.get(null as unknown as Sample)).to.throw(InvalidOptionError);
    expect(calls).to.have.length(4);
  });

  it('remembers the last few resolutions only', () => {
    const calls: unknown[] = [];
    const cache = new SharedResolutions<{ n: number }, number>((o) => {
      calls.push(o);
      return o?.n ?? 0;
    }, 2);
    cache.get({ n: 1 });
    cache.get({ n: 2 });
    cache.get({ n: 1 });
    expect(calls).to.have.length(2);
    cache.get({ n: 3 }); // forgets n: 1
    cache.get({ n: 1 });
    expect(calls).to.have.length(4);
  });
});
