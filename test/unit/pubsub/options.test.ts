/**
 * PubSub's options and the Redis URL, checked when the PubSub is made: unknown keys, values out
 * of range, and every way a URL can be malformed, each with an InvalidOptionError naming it.
 */
import { expect } from 'chai';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { parseRedisUrl, redactUrl } from '../../../src/pubsub/options.js';
import { PubSub } from '../../../src/pubsub/pubsub.js';
import { thrownBy } from '../../support.js';

describe('pubsub: the Redis URL', () => {
  const ok: ReadonlyArray<readonly [string, object]> = [
    ['redis://127.0.0.1:6379', { tls: false, host: '127.0.0.1', port: 6379 }],
    ['redis://localhost', { host: 'localhost', port: 6379, db: undefined }],
    ['redis://redis.internal.example:7000/3', { host: 'redis.internal.example', port: 7000, db: 3 }],
    ['redis://[::1]:6380', { host: '::1', port: 6380 }],
    ['redis://redis_cache:6379', { host: 'redis_cache' }],
    ['redis://:s3cret@host:1', { username: undefined, password: 's3cret', port: 1 }],
    ['redis://app:p%40ss%2Fw0rd@host:6379/0', { username: 'app', password: 'p@ss/w0rd', db: 0 }],
    ['rediss://cache.example:6380', { tls: true, host: 'cache.example', port: 6380 }],
    ['redis://host:6379/', { db: undefined }],
  ];
  for (const [url, want] of ok) {
    it(`parses ${url}`, () => {
      expect(parseRedisUrl(url)).to.include(want);
    });
  }

  const bad: ReadonlyArray<readonly [unknown, RegExp]> = [
    ['http://host:6379', /must start with redis:\/\/ or rediss:\/\//],
    ['redis:/host', /must start with redis/],
    ['redis://', /the host is missing/],
    ['redis://:6379', /the host is missing/],
    ['redis://host:0', /the port must be 1-65535/],
    ['redis://host:65536', /the port must be 1-65535/],
    ['redis://host:63 79', /port must be|stray character/],
    ['redis://host:0x1F', /the port must be 1-65535/],
    ['redis://host:', /the port must be 1-65535/],
    ['redis://host:6379/db1', /the database must be a number/],
    ['redis://host:6379/1/2', /the database must be a number/],
    ['redis://host:6379?timeout=1', /a query, a fragment/],
    ['redis://host:6379#x', /a query, a fragment/],
    ['redis://user@host', /a user needs a password/],
    ['redis://user:@host', /the password is empty/],
    ['redis://:%zz@host', /malformed %-escape/],
    ['redis://999.1.1.1', /not an IPv4 address/],
    ['redis://[nope]:1', /not an IPv6 address/],
    ['redis://host..example', /not a host name/],
    ['redis://ho st', /not a host name|stray character/],
    ['redis://-host', /not a host name/],
    [6379, /must be a redis:\/\/ URL, got 6379/],
  ];
  for (const [url, message] of bad) {
    it(`refuses ${JSON.stringify(url)}`, () => {
      const err = thrownBy(() => parseRedisUrl(url));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).option).to.equal('redis');
      expect((err as Error).message).to.match(message);
    });
  }

  it('never shows the password in its messages', () => {
    const err = thrownBy(() => parseRedisUrl('redis://app:hunter2@host:6379?x'));
    expect((err as Error).message).to.not.include('hunter2');
    expect(redactUrl('redis://app:hunter2@host')).to.equal('redis://app:***@host');
  });
});

describe('pubsub: options', () => {
  const cases: ReadonlyArray<readonly [unknown, string, RegExp]> = [
    [{ redsi: 'redis://h' }, 'redsi', /unknown option 'redsi' \(did you mean 'redis'\?\)/],
    [{ redis: { url: 'redis://h', prefx: 'a' } }, 'redis.prefx', /did you mean 'redis.prefix'/],
    [{ redis: { url: 'redis://h', reconnect: { initalDelay: 1 } } }, 'redis.reconnect.initalDelay', /unknown option/],
    [{ redis: { url: 'redis://h', reconnect: { factor: 0.5 } } }, 'redis.reconnect.factor', /from 1 to 100/],
    [
      { redis: { url: 'redis://h', reconnect: { initialDelay: 500, maxDelay: 100 } } },
      'redis.reconnect.maxDelay',
      /from 500/,
    ],
    [{ redis: { url: 'redis://h', pingInterval: -1 } }, 'redis.pingInterval', /non-negative/],
    [{ redis: { url: 'redis://h', connectTimeout: 0 } }, 'redis.connectTimeout', />= 1/],
    [{ redis: { url: 'redis://h', clientName: 'has space' } }, 'redis.clientName', /printable ASCII/],
    [{ redis: { url: 'redis://h', tls: {} } }, 'redis.tls', /is for a rediss:\/\/ URL/],
    [{ redis: { url: 'redis://h:x' } }, 'redis.url', /the port must be/],
    [{ redis: 'nope' }, 'redis', /must start with redis/],
    [{ maxMessageSize: 0 }, 'maxMessageSize', /from 1 to/],
    [{ maxMessageSize: 1.5 }, 'maxMessageSize', /integer/],
    [{ maxQueuedBytes: -1 }, 'maxQueuedBytes', />= 0/],
    [{ loop: {} }, 'loop', /must be an EventLoop/],
    [{ logger: 'console' }, 'logger', /must be a Logger/],
    ['redis://h', 'options', /must be an object/],
  ];
  for (const [options, option, message] of cases) {
    it(`refuses ${JSON.stringify(options)} naming ${option}`, () => {
      const err = thrownBy(() => new PubSub(options as never));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).option).to.equal(option);
      expect((err as Error).message).to.match(message);
    });
  }

  it('takes every documented option, and connects nothing until used', async () => {
    const ps = new PubSub({
      redis: {
        url: 'rediss://:pw@cache.example:6380/2',
        tls: { servername: 'cache.example' },
        prefix: 'app1:',
        connectTimeout: 1000,
        reconnect: { initialDelay: 10, maxDelay: 1000, factor: 3, jitter: 0 },
        pingInterval: 0,
        clientName: 'chat',
      },
      maxMessageSize: 4096,
      maxQueuedBytes: 1 << 20,
    });
    expect(ps.mode).to.equal('redis');
    expect(ps.stats()).to.include({ mode: 'redis', connected: false, published: 0 });
    await ps.close();
    // A process that is not a worker of a master, without Redis: this process only.
    expect(new PubSub().mode).to.equal('local');
  });
});
