/**
 * PubSub against a real redis-server (started here on a free port, stopped after each test): two
 * PubSubs in this process stand for two servers — each has its own subscriber and publisher
 * connections on the client's loop. Topics, patterns (checked against Redis's own matching),
 * binary and text, order per publisher, foreign publishers, the handshake (AUTH, SELECT, a wrong
 * password), one subscriber connection per PubSub whatever the number of topics, TLS, and Redis
 * killed and restarted while messages flow: both sides reconnect and resubscribe by themselves,
 * and every message published is either received or counted as missed.
 */
import { Buffer } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { GlobPattern } from '../../src/common/glob.js';
import { type Logger, silentLogger } from '../../src/common/logger.js';
import { PubSub } from '../../src/pubsub/pubsub.js';
import { tlsCertificates, writePemFiles } from '../tls-support.js';
import { waitFor } from './helpers.js';
import { freePort, RedisServer, requireRedis, stopAll } from './redis-support.js';

/** Subscribers of `channel` in Redis now (PUBSUB NUMSUB). */
function numsub(redis: RedisServer, channel: string): number {
  return Number(redis.cli('PUBSUB', 'NUMSUB', channel).trim().split('\n')[1]);
}

describe('pubsub through a real Redis', function () {
  this.timeout(30_000);
  const open: PubSub[] = [];

  beforeEach(function () {
    requireRedis(this);
  });

  afterEach(async () => {
    await Promise.all(open.splice(0).map((p) => p.close()));
    await stopAll();
  });

  function pubsub(redis: ConstructorParameters<typeof PubSub>[0] = {}): PubSub {
    const p = new PubSub({ logger: silentLogger, ...redis });
    open.push(p);
    return p;
  }

  it('two processes’ worth: topics, patterns, text and binary, in order per publisher; own messages not twice', async () => {
    const redis = await RedisServer.start();
    const a = pubsub({ redis: redis.url });
    const b = pubsub({ redis: redis.url });
    const heardA: string[] = [];
    const heardB: string[] = [];
    a.subscribe('room:1', (m, t, bin) => heardA.push(`${t} ${bin ? m.toString('hex') : m.toString()}`));
    b.subscribe('room:1', (m, t, bin) => heardB.push(`${t} ${bin ? m.toString('hex') : m.toString()}`));
    b.psubscribe('room:*', (m, t) => heardB.push(`* ${t} ${m.toString()}`));
    await Promise.all([a.connected(), b.connected()]);
    await sleep(50); // the SUBSCRIBE confirmations
    for (let i = 0; i < 200; i++) a.publish('room:1', `m${i}`);
    a.publish('room:2', 'two');
    a.publish('room:1', Buffer.from([0, 1, 255]));
    await waitFor(() => heardB.length === 200 * 2 + 1 + 2, 'b to hear everything');
    expect(heardB.filter((l) => l.startsWith('room:1 '))).to.deep.equal([
      ...Array.from({ length: 200 }, (_, i) => `room:1 m${i}`),
      'room:1 0001ff',
    ]);
    expect(heardB.filter((l) => l.startsWith('* room:2'))).to.deep.equal(['* room:2 two']);
    // a delivered its own messages when it published them; Redis hands them back, it skips them.
    expect(heardA.length).to.equal(201);
    await sleep(50);
    expect(heardA.length).to.equal(201);
    expect(a.stats()).to.include({ published: 202, forwarded: 202, received: 0, unconfirmed: 0, dropped: 0 });
    // Through Redis a message reaches each matching subscription as a push of its own: 201 + 202.
    expect(b.stats()).to.include({ received: 403, missed: 0, foreign: 0 });
  });

  it('delivers what another Redis client publishes (foreign messages), as text or binary', async () => {
    const redis = await RedisServer.start();
    const a = pubsub({ redis: { url: redis.url, prefix: 'app:' } });
    const heard: Array<[string, boolean]> = [];
    a.subscribe('news', (m, _t, bin) => heard.push([m.toString(), bin]));
    await a.connected();
    await waitFor(() => numsub(redis, 'app:news') === 1, 'the subscription');
    redis.cli('PUBLISH', 'app:news', 'from redis-cli');
    redis.cli('PUBLISH', 'news', 'not our prefix');
    await waitFor(() => heard.length === 1, 'the message');
    expect(heard).to.deep.equal([['from redis-cli', false]]);
    expect(a.stats()).to.include({ foreign: 1, received: 1 });
  });

  it('matches patterns as Redis does (the glob matcher against PSUBSCRIBE)', async () => {
    const redis = await RedisServer.start();
    const sub = pubsub({ redis: redis.url });
    const pub = pubsub({ redis: redis.url });
    const patterns = [
      '*',
      'room:*',
      'h?llo',
      'h[ae]llo',
      'h[^e]llo',
      'h[b-a]llo',
      '[ab',
      '[a-]',
      '\\*',
      'a*b*c',
      'caf?',
      '??',
    ];
    const topics = ['hello', 'hallo', 'hxllo', 'room:1', 'room:', 'a', ']', '^', '*', 'aXbYc', 'café', 'é', 'ab'];
    const got = new Set<string>();
    for (const p of patterns) sub.psubscribe(p, (_m, t) => got.add(`${p} ${t}`));
    await Promise.all([sub.connected(), pub.connected()]);
    await waitFor(() => redis.cli('PUBSUB', 'NUMPAT').trim() === String(patterns.length), 'the patterns');
    for (const t of topics) pub.publish(t, 'x');
    pub.publish('end', 'x');
    await waitFor(() => got.has('* end'), 'the last message');
    for (const p of patterns) {
      const g = new GlobPattern(p);
      for (const t of topics) {
        expect(
          got.has(`${p} ${t}`),
          `Redis says ${JSON.stringify(p)} ${got.has(`${p} ${t}`) ? 'matches' : 'does not match'} ${JSON.stringify(t)}`,
        ).to.equal(g.matches(t));
      }
    }
  });

  it('one subscriber and one publisher connection per PubSub, whatever the topics; UNSUBSCRIBE after the last', async () => {
    const redis = await RedisServer.start();
    const a = pubsub({ redis: { url: redis.url, clientName: 'mrtest' } });
    const subs = Array.from({ length: 50 }, (_, i) => a.subscribe(`t${i}`, () => {}));
    await a.connected();
    await waitFor(() => redis.cli('PUBSUB', 'CHANNELS', 't*').trim().split('\n').length === 50, '50 channels');
    const clients = redis
      .cli('CLIENT', 'LIST')
      .split('\n')
      .filter((l) => l.includes('name=mrtest-'));
    expect(clients.map((l) => /name=(\S+)/.exec(l)?.[1]).sort()).to.deep.equal([
      `mrtest-pub-${process.pid}`,
      `mrtest-sub-${process.pid}`,
    ]);
    expect(clients.find((l) => l.includes('-sub-'))).to.match(/ sub=50 /);
    for (const s of subs) s.unsubscribe();
    await waitFor(() => redis.cli('PUBSUB', 'CHANNELS', 't*').trim() === '', 'no channel left');
  });

  it('AUTH and SELECT from the URL; a wrong password is refused, logged, retried with backoff', async () => {
    const redis = await RedisServer.start(['--requirepass', 'pa ss:w@rd']);
    const good = pubsub({ redis: `redis://:${encodeURIComponent('pa ss:w@rd')}@127.0.0.1:${redis.port}/3` });
    const heard: string[] = [];
    good.subscribe('t', (m) => heard.push(m.toString()));
    await good.connected();
    const lines: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (m) => lines.push(m) };
    const bad = new PubSub({
      redis: { url: `redis://:wrong@127.0.0.1:${redis.port}`, reconnect: { initialDelay: 20, maxDelay: 40 } },
      logger,
    });
    open.push(bad);
    bad.subscribe('t', () => {});
    bad.publish('t', 'never sent');
    await waitFor(() => lines.length > 0, 'the warning');
    expect(lines[0], lines.join('\n')).to.match(
      /cannot reach redis:\/\/127\.0\.0\.1:\d+ \((subscriber|publisher): the handshake was refused: WRONGPASS/,
    );
    expect(lines.join('\n')).to.not.include('wrong');
    await sleep(200);
    expect(bad.stats()).to.include({ connected: false, queued: 1 });
    good.publish('t', 'fine');
    const other = pubsub({ redis: `redis://:${encodeURIComponent('pa ss:w@rd')}@127.0.0.1:${redis.port}/3` });
    other.publish('t', 'from other');
    await waitFor(() => heard.includes('from other'), 'the message through an authenticated connection');
  });

  it('Redis killed and restarted: both sides reconnect by themselves; each message is received or counted missed', async () => {
    const redis = await RedisServer.start();
    // b comes back later than a, so that a publishes into a Redis that b has not subscribed again yet.
    const a = pubsub({ redis: { url: redis.url, reconnect: { initialDelay: 20, maxDelay: 50, jitter: 0 } } });
    const b = pubsub({ redis: { url: redis.url, reconnect: { initialDelay: 600, maxDelay: 600, jitter: 0 } } });
    const got: number[] = [];
    b.subscribe('ticks', (m) => got.push(Number(m.toString())));
    await Promise.all([a.connected(), b.connected()]);
    await sleep(50);
    let n = 0;
    const timer = setInterval(() => a.publish('ticks', String(++n)), 3);
    try {
      await waitFor(() => got.length >= 50, 'ticks before the restart');
      await redis.restart();
      await waitFor(() => b.stats().reconnects >= 1, 'b to reconnect', 10_000);
      const after = got.length;
      await waitFor(() => got.length >= after + 50, 'ticks after the restart', 10_000);
    } finally {
      clearInterval(timer);
    }
    const published = n;
    await waitFor(() => got.at(-1) === published, 'the last tick');
    const sa = a.stats();
    const sb = b.stats();
    // The order of what arrived is the order of publishing.
    expect(got.every((v, i) => i === 0 || v > (got[i - 1] as number))).to.equal(true);
    expect(sb.missed).to.be.greaterThan(0);
    // Exact accounting: every tick from the first one b heard to the last is received or missed.
    expect(sb.received + sb.missed).to.equal(published - (got[0] as number) + 1);
    expect(sb.missed).to.equal(published - (got[0] as number) + 1 - got.length);
    expect(sa.reconnects).to.be.at.least(2); // both of its connections
    expect(sb.reconnects).to.be.at.least(2);
    expect(sb.resubscribed).to.be.at.least(1);
    expect(sa.connected && sb.connected).to.equal(true);
  });

  it('rediss:// (TLS), with the CA given', async function () {
    const certs = tlsCertificates(this);
    const files = writePemFiles({ 'ca.pem': certs.ca, 'cert.pem': certs.server.cert, 'key.pem': certs.server.key });
    try {
      const tlsPort = await freePort();
      const redis = await RedisServer.start([
        '--tls-port',
        String(tlsPort),
        '--tls-cert-file',
        `${files.dir}/cert.pem`,
        '--tls-key-file',
        `${files.dir}/key.pem`,
        '--tls-ca-cert-file',
        `${files.dir}/ca.pem`,
        '--tls-auth-clients',
        'no',
      ]);
      const url = `rediss://localhost:${tlsPort}`;
      const a = pubsub({ redis: { url, tls: { ca: certs.ca } } });
      const b = pubsub({ redis: { url, tls: { ca: certs.ca } } });
      const heard: string[] = [];
      b.subscribe('secure', (m) => heard.push(m.toString()));
      await Promise.all([a.connected(), b.connected()]);
      await waitFor(() => numsub(redis, 'secure') === 1, 'the subscription');
      a.publish('secure', 'over TLS');
      await waitFor(() => heard.length === 1, 'the message');
      expect(heard).to.deep.equal(['over TLS']);
      // Without the CA, the server's certificate does not verify: refused and retried, never connected.
      const lines: string[] = [];
      const untrusting = new PubSub({
        redis: { url, reconnect: { initialDelay: 50 } },
        logger: { ...silentLogger, warn: (m) => lines.push(m) },
      });
      open.push(untrusting);
      untrusting.subscribe('secure', () => {});
      await waitFor(() => lines.length > 0, 'the failure');
      expect(lines[0]).to.match(/cannot reach rediss:\/\/localhost:\d+/);
      expect(untrusting.stats().connected).to.equal(false);
    } finally {
      files.remove();
    }
  });
});
