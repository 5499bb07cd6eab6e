/**
 * PubSub without a socket: the subscription bookkeeping (SUBSCRIBE on the first local subscriber,
 * UNSUBSCRIBE after the last, patterns, WebSocket members that close), the Redis transport's
 * handshake, resubscription after a reconnect, the publisher's queue while Redis is away and its
 * drop policy, what the counters say — all with the real transport and stages, its connections
 * EmbeddedChannels and its clock a fake one. WebSocket members are real WebSocket stages on
 * EmbeddedChannels too.
 */
import { Buffer } from 'node:buffer';
import { expect } from 'chai';
import { RespDecoder } from '../../../src/codec/resp.js';
import type { Logger } from '../../../src/common/logger.js';
import { TimingWheel } from '../../../src/common/timing-wheel.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import type { Pipeline } from '../../../src/pipeline/pipeline.js';
import { HEADER_SIZE, writeHeader } from '../../../src/pubsub/envelope.js';
import type { PubSubOptions, RedisOptions } from '../../../src/pubsub/options.js';
import { PubSub } from '../../../src/pubsub/pubsub.js';
import type { DialedConnection, RedisDialer } from '../../../src/pubsub/redis.js';
import { RedisPublisher, RedisSubscriber, respCommand } from '../../../src/pubsub/redis-handlers.js';
import { WebSocketConfig, type WebSocketOptions } from '../../../src/websocket/options.js';
import { WebSocket, WebSocketHandler } from '../../../src/websocket/websocket.js';
import { workerReports } from '../../../src/worker/serving.js';
import { parseFrames } from '../../ws-frames.js';

/** Reaches "Redis" through EmbeddedChannels: each dial is a new channel; time is a fake clock. */
class EmbeddedRedis implements RedisDialer {
  now = 0;
  readonly timers = new TimingWheel({ tickMs: 1, clock: () => this.now });
  readonly lines: string[] = [];
  readonly logger: Logger = {
    debug: () => {},
    info: (m) => this.lines.push(`info: ${m}`),
    warn: (m) => this.lines.push(`warn: ${m}`),
    error: (m) => this.lines.push(`error: ${m}`),
  };
  readonly channels: EmbeddedChannel[] = [];
  released = false;

  dial(_r: unknown, pipeline: () => Pipeline): Promise<DialedConnection> {
    const ch = new EmbeddedChannel(pipeline);
    this.channels.push(ch);
    return Promise.resolve({
      close: async () => ch.close(),
      abort: async () => ch.abort(),
    });
  }

  onClose(): () => void {
    return () => {};
  }

  release(): void {
    this.released = true;
  }

  advance(ms: number): void {
    this.now += ms;
    this.timers.advance(this.now);
  }

  /** The latest subscriber and publisher connections. */
  get sub(): EmbeddedChannel {
    return this.channels.filter((c) => c.pipeline.get('redis') instanceof RedisSubscriber).at(-1) as EmbeddedChannel;
  }
  get pub(): EmbeddedChannel {
    return this.channels.filter((c) => c.pipeline.get('redis') instanceof RedisPublisher).at(-1) as EmbeddedChannel;
  }
}

/** The commands a connection wrote since the last call, as arrays of strings. */
function commands(ch: EmbeddedChannel): string[][] {
  const bytes = ch.readOutboundBytes();
  const d = new EmbeddedChannel([new RespDecoder()]);
  d.writeInbound(bytes);
  const out: string[][] = [];
  for (let m = d.readInbound<Buffer[]>(); m !== undefined; m = d.readInbound<Buffer[]>()) {
    out.push(m.map((b) => b.toString('latin1')));
  }
  return out;
}

/** What Redis pushes to a subscriber: an array of bulk strings. */
const push = (...parts: (string | Buffer)[]) => respCommand(parts);

/** A message as another process publishes it: envelope + data. */
function envelope(data: string | Buffer, origin: number, seq: number, binary = typeof data !== 'string'): Buffer {
  const d = typeof data === 'string' ? Buffer.from(data) : data;
  const b = Buffer.alloc(HEADER_SIZE + d.length);
  writeHeader(b, 0, binary, origin, seq);
  d.copy(b, HEADER_SIZE);
  return b;
}

function member(options: WebSocketOptions = {}, highWaterMark?: number): { ws: WebSocket; ch: EmbeddedChannel } {
  const ws = new WebSocket(new WebSocketConfig(false, options));
  const ch = new EmbeddedChannel([new WebSocketHandler(ws)], highWaterMark !== undefined ? { highWaterMark } : {});
  return { ws, ch };
}

/** The text of the frames a member was sent. */
const texts = (ch: EmbeddedChannel) => parseFrames(ch.readOutboundBytes()).map((f) => f.payload.toString());

const REDIS: RedisOptions = { url: 'redis://127.0.0.1:6379', clientName: '', pingInterval: 0 };

function redisPubSub(redis: Partial<RedisOptions> = {}, more: PubSubOptions = {}) {
  const dialer = new EmbeddedRedis();
  const ps = new PubSub({ redis: { ...REDIS, ...redis }, ...more }, dialer);
  return { ps, dialer };
}

const OTHER = 0x0102_0304_0506;

describe('pubsub: subscriptions with Redis (EmbeddedChannel)', () => {
  it('connects on first use only, then subscribes a topic on its first member and unsubscribes after its last', () => {
    const { ps, dialer } = redisPubSub();
    expect(dialer.channels.length).to.equal(0);
    const a = member();
    const b = member();
    expect(ps.join('room:a', a.ws)).to.equal(true);
    expect(dialer.channels.length).to.equal(2); // one subscriber, one publisher
    expect(commands(dialer.sub)).to.deep.equal([['SUBSCRIBE', 'room:a']]);
    expect(ps.join('room:a', b.ws)).to.equal(true);
    expect(ps.join('room:a', b.ws)).to.equal(false); // already a member
    expect(ps.members('room:a')).to.equal(2);
    ps.join('room:b', a.ws);
    dialer.sub.flush();
    expect(commands(dialer.sub)).to.deep.equal([['SUBSCRIBE', 'room:b']]);
    expect(ps.leave('room:a', a.ws)).to.equal(true);
    expect(ps.leave('room:a', a.ws)).to.equal(false);
    b.ch.finish(); // the last member of room:a closes: it leaves by itself
    a.ch.finish();
    dialer.sub.flush();
    expect(commands(dialer.sub)).to.deep.equal([
      ['UNSUBSCRIBE', 'room:a'],
      ['UNSUBSCRIBE', 'room:b'],
    ]);
    expect(ps.stats()).to.include({ topics: 0, patterns: 0 });
  });

  it('patterns and listeners count as subscribers too; a closed WebSocket is not added', () => {
    const { ps, dialer } = redisPubSub();
    const l1 = ps.subscribe('news', () => {});
    const l2 = ps.subscribe('news', () => {});
    const p = ps.psubscribe('room:*', () => {});
    const m = member();
    ps.joinPattern('room:*', m.ws);
    // The first on the connection as it opened, the second flushed at once (not deferred).
    expect(commands(dialer.sub)).to.deep.equal([
      ['SUBSCRIBE', 'news'],
      ['PSUBSCRIBE', 'room:*'],
    ]);
    expect(l1.unsubscribe()).to.equal(true);
    expect(l1.unsubscribe()).to.equal(false);
    l2.unsubscribe();
    p.unsubscribe();
    dialer.sub.flush();
    expect(commands(dialer.sub)).to.deep.equal([['UNSUBSCRIBE', 'news']]); // the pattern still has a member
    ps.leavePattern('room:*', m.ws);
    dialer.sub.flush();
    expect(commands(dialer.sub)).to.deep.equal([['PUNSUBSCRIBE', 'room:*']]);
    const closed = member();
    closed.ch.finish();
    expect(ps.join('gone', closed.ws)).to.equal(false);
    dialer.sub.flush();
    expect(commands(dialer.sub)).to.deep.equal([]);
    expect(ps.stats()).to.include({ topics: 0, patterns: 0 });
  });

  it('runs the handshake (AUTH, SELECT, CLIENT SETNAME) and serves once every reply is +OK', async () => {
    const { ps, dialer } = redisPubSub({ url: 'redis://app:pw@127.0.0.1:6379/2', clientName: 'chat' });
    ps.subscribe('t', () => {});
    expect(commands(dialer.sub)).to.deep.equal([
      ['AUTH', 'app', 'pw'],
      ['SELECT', '2'],
      ['CLIENT', 'SETNAME', `chat-sub-${process.pid}`],
      ['SUBSCRIBE', 't'],
    ]);
    expect(commands(dialer.pub)).to.deep.equal([
      ['AUTH', 'app', 'pw'],
      ['SELECT', '2'],
      ['CLIENT', 'SETNAME', `chat-pub-${process.pid}`],
    ]);
    let ready = false;
    const connected = ps.connected().then(() => {
      ready = true;
    });
    dialer.sub.writeInbound(Buffer.from('+OK\r\n+OK\r\n+OK\r\n'));
    await Promise.resolve();
    expect(ready).to.equal(false);
    expect(ps.stats().connected).to.equal(false);
    dialer.pub.writeInbound(Buffer.from('+OK\r\n+OK\r\n+OK\r\n'));
    await connected;
    expect(ps.stats().connected).to.equal(true);
  });

  it('a refused handshake closes the connection, logs why, and tries again with backoff', () => {
    const { ps, dialer } = redisPubSub({
      url: 'redis://:wrong@127.0.0.1:6379',
      reconnect: { initialDelay: 100, factor: 2, jitter: 0 },
    });
    ps.subscribe('t', () => {});
    const first = dialer.sub;
    first.writeInbound(Buffer.from('-WRONGPASS invalid username-password pair\r\n'));
    expect(first.isActive).to.equal(false);
    expect(dialer.lines.join('\n')).to.match(
      /cannot reach redis:\/\/127\.0\.0\.1:6379 \(subscriber: the handshake was refused: WRONGPASS/,
    );
    expect(dialer.lines.join('\n')).to.not.include('wrong');
    const dials = dialer.channels.length;
    dialer.advance(99);
    expect(dialer.channels.length).to.equal(dials);
    dialer.advance(1);
    expect(dialer.channels.length).to.equal(dials + 1); // the subscriber again, after 100 ms
    dialer.sub.writeInbound(Buffer.from('-WRONGPASS again\r\n'));
    dialer.advance(199);
    expect(dialer.channels.length).to.equal(dials + 1);
    dialer.advance(1);
    expect(dialer.channels.length).to.equal(dials + 2); // then after 200 ms
  });

  it('after a lost connection: reconnects, subscribes everything again, and counts it', () => {
    const { ps, dialer } = redisPubSub({ reconnect: { initialDelay: 50, jitter: 0 } });
    const a = member();
    ps.join('room:a', a.ws);
    ps.subscribe('room:b', () => {});
    ps.psubscribe('room:*', () => {});
    dialer.sub.flush();
    commands(dialer.sub);
    expect(ps.stats()).to.include({ connected: true, reconnects: 0, resubscribed: 0 });
    dialer.sub.close('peer-closed'); // Redis went away
    expect(ps.stats().connected).to.equal(false);
    expect(dialer.lines.join('\n')).to.match(
      /lost redis:\/\/127\.0\.0\.1:6379 \(subscriber: closed: peer-closed\); reconnecting/,
    );
    // Changes while it is away are simply part of what is sent on the next connection.
    ps.subscribe('room:c', () => {});
    dialer.advance(50);
    expect(commands(dialer.sub)).to.deep.equal([
      ['SUBSCRIBE', 'room:a', 'room:b', 'room:c'],
      ['PSUBSCRIBE', 'room:*'],
    ]);
    expect(ps.stats()).to.include({ connected: true, reconnects: 1, resubscribed: 4 });
    expect(dialer.lines.at(-1), dialer.lines.join('\n')).to.match(/\(subscriber\) connected again, 50 ms without it/);
  });

  it('delivers what Redis pushes: one frame for every member, listeners, patterns; skips its own; counts gaps', () => {
    const { ps, dialer } = redisPubSub();
    const a = member();
    const b = member();
    const heard: string[] = [];
    ps.join('room:a', a.ws);
    ps.join('room:a', b.ws);
    ps.subscribe('room:a', (m, topic, binary) => heard.push(`${topic} ${m.toString()} ${binary}`));
    ps.psubscribe('room:*', (m, topic) => heard.push(`* ${topic} ${m.toString()}`));
    const sub = dialer.sub;
    sub.writeInbound(push('subscribe', 'room:a', ':1'));
    sub.writeInbound(
      Buffer.concat([
        push('message', 'room:a', envelope('one', OTHER, 1)),
        push('message', 'room:a', envelope('two', OTHER, 2)),
        push('message', 'room:a', envelope('five', OTHER, 5)), // 3 and 4 never came
        push('pmessage', 'room:*', 'room:z', envelope('zed', OTHER, 1)),
      ]),
    );
    // Each message encoded once: both members were handed the very same frames.
    const fa = a.ch.outbound.splice(0) as Buffer[];
    const fb = b.ch.outbound.splice(0) as Buffer[];
    expect(fa.length).to.equal(3);
    for (const [i, f] of fa.entries()) expect(f).to.equal(fb[i]);
    expect(parseFrames(Buffer.concat(fa)).map((f) => f.payload.toString())).to.deep.equal(['one', 'two', 'five']);
    expect(heard).to.deep.equal(['room:a one false', 'room:a two false', 'room:a five false', '* room:z zed']);
    expect(ps.stats()).to.include({ received: 4, missed: 2, delivered: 10, foreign: 0 });
    // Our own message, handed back by Redis: already delivered here when it was published.
    ps.publish('room:a', 'mine');
    expect(texts(a.ch)).to.deep.equal(['mine']);
    dialer.pub.flush();
    const own = commands(dialer.pub).at(-1) as string[];
    sub.writeInbound(push('message', 'room:a', Buffer.from(own[2] as string, 'latin1')));
    expect(texts(a.ch)).to.deep.equal([]);
    expect(ps.stats().received).to.equal(4);
  });

  it('delivers a foreign message (published by something else) as it is: text if UTF-8, else binary', () => {
    const { ps, dialer } = redisPubSub();
    const a = member();
    ps.join('feed', a.ws);
    dialer.sub.writeInbound(push('message', 'feed', 'plain text'));
    dialer.sub.writeInbound(push('message', 'feed', Buffer.from([0xff, 0xfe, 0x00])));
    const frames = parseFrames(a.ch.readOutboundBytes());
    expect(frames.map((f) => [f.opcode, f.payload.toString('hex')])).to.deep.equal([
      [1, Buffer.from('plain text').toString('hex')],
      [2, 'fffe00'],
    ]);
    expect(ps.stats()).to.include({ foreign: 2, received: 2 });
  });

  it('publishes: local members at once, one PUBLISH per message with the envelope; numbered per topic', () => {
    const { ps, dialer } = redisPubSub();
    const a = member();
    const sender = member();
    ps.join('room:a', a.ws);
    ps.join('room:a', sender.ws);
    dialer.pub.writeInbound(Buffer.from(''));
    expect(ps.publish('room:a', 'hi', { except: sender.ws })).to.deep.equal({ sent: 1, skipped: 0 });
    expect(ps.publish('room:b', Buffer.from([1, 2]))).to.deep.equal({ sent: 0, skipped: 0 });
    ps.publish('room:a', 'again');
    expect(texts(a.ch)).to.deep.equal(['hi', 'again']);
    expect(texts(sender.ch)).to.deep.equal(['again']);
    dialer.pub.flush();
    const sent = commands(dialer.pub);
    expect(sent.map((c) => [c[0], c[1]])).to.deep.equal([
      ['PUBLISH', 'room:a'],
      ['PUBLISH', 'room:b'],
      ['PUBLISH', 'room:a'],
    ]);
    const payloads = sent.map((c) => Buffer.from(c[2] as string, 'latin1'));
    expect(payloads.map((p) => [p.readUInt32BE(10), p[3], p.subarray(HEADER_SIZE).toString('hex')])).to.deep.equal([
      [1, 0, Buffer.from('hi').toString('hex')],
      [1, 1, '0102'],
      [2, 0, Buffer.from('again').toString('hex')],
    ]);
    dialer.pub.writeInbound(Buffer.from(':2\r\n:0\r\n:1\r\n'));
    expect(ps.stats()).to.include({ published: 3, forwarded: 3, unconfirmed: 0, dropped: 0 });
  });

  it('while Redis is away: publishes wait in a bounded queue (the oldest dropped first) and go out in order once it is back', () => {
    const { ps, dialer } = redisPubSub({ reconnect: { initialDelay: 10, jitter: 0 } }, { maxQueuedBytes: 400 });
    ps.publish('t', 'first');
    dialer.pub.flush();
    commands(dialer.pub);
    // Written, then the connection breaks before Redis answered: maybe delivered, maybe not.
    ps.publish('t', 'in flight');
    dialer.pub.flush();
    dialer.pub.writeInbound(Buffer.from(':1\r\n')); // the answer to 'first'
    dialer.pub.close('peer-closed');
    expect(ps.stats()).to.include({ unconfirmed: 1, connected: false });
    for (let i = 0; i < 10; i++) ps.publish('t', `queued ${i}`); // ~60 bytes each
    const s = ps.stats();
    expect(s.queued).to.be.within(5, 7);
    expect(s.queuedBytes).to.be.at.most(400);
    expect(s.dropped).to.equal(10 - s.queued);
    expect(() => ps.publish('t', 'x'.repeat(2 << 20))).to.throw(RangeError, /maxMessageSize/);
    dialer.advance(10);
    const resent = commands(dialer.pub).map((c) =>
      Buffer.from(c[2] as string, 'latin1')
        .subarray(HEADER_SIZE)
        .toString(),
    );
    expect(resent).to.deep.equal(Array.from({ length: s.queued }, (_, i) => `queued ${10 - s.queued + i}`));
    expect(ps.stats()).to.include({ queued: 0, queuedBytes: 0, reconnects: 1 });
  });

  it('a prefix keeps applications apart: channels prefixed, patterns escaped, names mapped back', () => {
    const { ps, dialer } = redisPubSub({ prefix: 'app[1]:' });
    const heard: string[] = [];
    ps.subscribe('room:a', (m, t) => heard.push(`${t}=${m}`));
    ps.psubscribe('room:*', (m, t) => heard.push(`*${t}=${m}`));
    dialer.sub.flush();
    expect(commands(dialer.sub)).to.deep.equal([
      ['SUBSCRIBE', 'app[1]:room:a'],
      ['PSUBSCRIBE', 'app\\[1\\]:room:*'],
    ]);
    dialer.sub.writeInbound(push('message', 'app[1]:room:a', envelope('x', OTHER, 1)));
    dialer.sub.writeInbound(push('pmessage', 'app\\[1\\]:room:*', 'app[1]:room:b', envelope('y', OTHER, 1)));
    dialer.sub.writeInbound(push('message', 'other:room:a', envelope('z', OTHER, 1)));
    expect(heard).to.deep.equal(['room:a=x', '*room:b=y']);
    ps.publish('room:a', 'out');
    dialer.pub.flush();
    expect(commands(dialer.pub).map((c) => c[1])).to.deep.equal(['app[1]:room:a']);
  });

  it('answers pings in both modes, and closes a connection whose pongs stop coming', () => {
    const { ps, dialer } = redisPubSub({ pingInterval: 1000 });
    ps.subscribe('t', () => {});
    const sub = dialer.sub;
    commands(sub);
    sub.advanceTime(1000);
    expect(commands(sub)).to.deep.equal([['PING']]);
    sub.writeInbound(push('pong', ''));
    sub.advanceTime(1000);
    expect(commands(sub)).to.deep.equal([['PING']]);
    sub.advanceTime(1000);
    sub.advanceTime(1000);
    expect(sub.isActive).to.equal(false); // two pings unanswered
    expect(sub.closeReason).to.equal('heartbeat');
  });

  it('close(): members leave their topics, the connections close, publishing throws', async () => {
    const { ps, dialer } = redisPubSub();
    const a = member();
    ps.join('room:a', a.ws);
    await ps.close();
    expect(ps.members('room:a')).to.equal(0);
    expect(dialer.channels.every((c) => !c.isActive)).to.equal(true);
    expect(dialer.released).to.equal(true);
    expect(() => ps.publish('room:a', 'x')).to.throw(/closed/);
    expect(() => ps.join('room:a', a.ws)).to.throw(/closed/);
    expect(a.ws.readyState).to.equal('open'); // the WebSocket itself is not closed
  });
});

describe('pubsub: in this process only (local mode)', () => {
  it('delivers to members, listeners and matching patterns at once; `except` skips the sender', () => {
    const ps = new PubSub();
    expect(ps.mode).to.equal('local');
    const a = member();
    const b = member();
    const heard: string[] = [];
    ps.join('room:a', a.ws);
    ps.join('room:a', b.ws);
    ps.joinPattern('room:*', b.ws);
    ps.subscribe('room:a', (m) => heard.push(`exact ${m}`));
    ps.psubscribe('*', (m, t) => heard.push(`all ${t} ${m}`));
    expect(ps.publish('room:a', 'hi', { except: a.ws })).to.deep.equal({ sent: 4, skipped: 0 });
    expect(texts(a.ch)).to.deep.equal([]);
    // b is in the topic and the pattern: it hears the message twice, as Redis would deliver it.
    expect(texts(b.ch)).to.deep.equal(['hi', 'hi']);
    expect(heard).to.deep.equal(['exact hi', 'all room:a hi']);
    ps.publish('other', Buffer.from('bin'));
    expect(heard.at(-1)).to.equal('all other bin');
    expect(ps.stats()).to.include({ mode: 'local', connected: true, published: 2, delivered: 5, received: 0 });
  });

  it('a listener that throws is logged and counted; the others still hear; one may unsubscribe while called', () => {
    const errors: string[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (m) => errors.push(m) };
    const ps = new PubSub({ logger });
    const heard: string[] = [];
    ps.subscribe('t', () => {
      throw new Error('boom');
    });
    const self = ps.subscribe('t', () => {
      heard.push('self');
      self.unsubscribe();
    });
    ps.subscribe('t', () => heard.push('last'));
    ps.publish('t', '1');
    ps.publish('t', '2');
    expect(heard).to.deep.equal(['self', 'last', 'last']);
    expect(ps.stats().listenerErrors).to.equal(2);
    expect(errors[0]).to.match(/a listener of "t" threw/);
  });

  it('a slow member meets its backpressure policy; the others get the message', () => {
    const ps = new PubSub();
    const fast = member();
    const slow = member({ backpressure: 'close' }, 10);
    ps.join('t', fast.ws);
    ps.join('t', slow.ws);
    slow.ch.transportWrite(Buffer.alloc(20)); // a peer that does not read: above its watermark
    expect(ps.publish('t', 'news')).to.deep.equal({ sent: 1, skipped: 1 });
    expect(slow.ws.readyState).to.not.equal('open');
    expect(ps.members('t')).to.equal(1);
    expect(texts(fast.ch)).to.deep.equal(['news']);
  });

  it('is part of what the worker reports to its master (reports.pubsub), until closed', async () => {
    const ps = new PubSub();
    ps.publish('reported', 'x');
    const mine = () =>
      ((workerReports().pubsub ?? []) as Array<{ published: number; mode: string }>).filter((r) => r.published === 1);
    expect(mine().map((r) => r.mode)).to.include('local');
    const before = mine().length;
    await ps.close();
    expect(mine().length).to.equal(before - 1);
  });

  it('checks its arguments', () => {
    const ps = new PubSub({ maxMessageSize: 8 });
    expect(() => ps.publish('t', 'x'.repeat(9))).to.throw(RangeError, /maxMessageSize \(8 bytes\)/);
    expect(() => ps.publish('t', 'ééééé')).to.throw(RangeError); // 5 characters, 10 bytes of UTF-8
    expect(() => ps.publish('t', 'éééé')).to.not.throw();
    expect(() => ps.publish('t', 42 as never)).to.throw(TypeError);
    expect(() => ps.publish(7 as never, 'x')).to.throw(TypeError, /topic must be a string/);
    expect(() => ps.join('t', {} as never)).to.throw(TypeError, /must be a WebSocket/);
    expect(() => ps.subscribe('t', 'f' as never)).to.throw(TypeError, /must be a function/);
    expect(() => ps.subscribe('x'.repeat(16 * 1024 + 1), () => {})).to.throw(RangeError);
  });
});
