/**
 * Redis mode: two connections per process, on its loop, through the project's client — one
 * subscriber for every topic and pattern with local subscribers (SUBSCRIBE on the first, UNSUBSCRIBE
 * after the last), one for PUBLISH (a subscribed RESP2 connection may not publish). Each is kept
 * open: a connection lost (Redis restarted, a network cut found by the PING heartbeat) is made
 * again with exponential backoff and jitter, runs its handshake (AUTH, SELECT, CLIENT SETNAME),
 * and the subscriber subscribes everything again.
 *
 * Publishing never waits for Redis. While the publisher connection is down, PUBLISH commands wait
 * in a queue bounded by `maxQueuedBytes` — the oldest dropped first, for live data the newest
 * matters most — and go out in order once it is back. While it is up but Redis is slow to read,
 * commands wait in the connection, up to the same bound, past which the new message is dropped.
 * Every loss is counted: `dropped` (never sent), `unconfirmed` (written, then the connection broke
 * before Redis answered), and on the subscribers' side `missed` (pubsub.ts, from the sequence
 * numbers). Redis pub/sub itself is at most once: a subscriber that is reconnecting misses what
 * is published meanwhile, and Redis closes a subscriber whose output buffer passes
 * `client-output-buffer-limit pubsub` (32 MiB by default) — found here as a lost connection.
 */
import type { Buffer } from 'node:buffer';
import { openConnection, resolveClientOptions } from '../client/client.js';
import { acquireLoop, type LoopLease } from '../client/loops.js';
import { RespDecoder, type RespError } from '../codec/resp.js';
import type { Logger } from '../common/logger.js';
import { Queue } from '../common/queue.js';
import type { Timeout, Timers } from '../common/timing-wheel.js';
import { HeartbeatHandler } from '../handlers/heartbeat.js';
import { Pipeline } from '../pipeline/pipeline.js';
import type { EventLoop } from '../worker/loop.js';
import { HEADER_SIZE } from './envelope.js';
import { describeRedis, type ResolvedRedisOptions } from './options.js';
import {
  isPong,
  PING,
  type PublisherEvents,
  publishCommand,
  RedisPublisher,
  RedisSubscriber,
  respCommand,
  type SubscriberEvents,
  subscribeCommands,
} from './redis-handlers.js';
import { newTransportStats, type Transport, type TransportHost, type TransportStats } from './transport.js';

export interface RedisTransportOptions {
  readonly loop: EventLoop | undefined;
  readonly logger: Logger | undefined;
  readonly maxMessageSize: number;
  readonly maxQueuedBytes: number;
  /** How to reach Redis; default: the client on the loop (`clientDialer`). */
  readonly dialer?: RedisDialer | undefined;
}

/** A connection as the links need it. */
export interface DialedConnection {
  close(): Promise<unknown>;
  abort(): Promise<unknown>;
}

/**
 * How the links reach Redis and keep time: the project's client on a loop (`clientDialer`), or —
 * in the unit tests — EmbeddedChannels and a fake clock, so that the whole transport runs without
 * a socket.
 */
export interface RedisDialer {
  readonly timers: Timers;
  readonly logger: Logger;
  /** Opens a connection whose pipeline `pipeline()` builds; resolves once it is active. */
  dial(address: ResolvedRedisOptions, pipeline: () => Pipeline, signal: AbortSignal): Promise<DialedConnection>;
  /** Calls `fn` when the connections' loop closes (the server stopped); returns the unregistration. */
  onClose(fn: () => void): () => void;
  /** The transport is done with it. */
  release(): void;
}

/** The client on `loop` (default: the serving loop, else a standalone one, held until `release`). */
export function clientDialer(loop: EventLoop | undefined, logger: Logger | undefined): RedisDialer {
  const lease = acquireLoop(loop);
  const connLease: LoopLease = { loop: lease.loop, release: () => {} };
  return {
    timers: lease.loop.timers,
    logger: logger ?? lease.loop.logger,
    dial: (r, pipeline, signal) => {
      const a = r.address;
      const o = resolveClientOptions(
        {
          host: a.host,
          port: a.port,
          connectTimeout: r.connectTimeout,
          pipeline,
          ...(r.tls !== undefined ? { tls: r.tls } : {}),
        },
        'PubSub (redis)',
      );
      return openConnection(o, connLease, signal);
    },
    onClose: (fn) => lease.loop.onClose(fn),
    release: () => lease.release(),
  };
}

/** How long `close()` lets the publisher flush before it cuts the connection. */
const CLOSE_GRACE_MS = 2000;
/** While Redis stays away, a warning at most this often (ms). */
const WARN_EVERY_MS = 30_000;

export class RedisTransport implements Transport {
  readonly kind = 'redis';
  readonly where: string;
  readonly dialer: RedisDialer;
  readonly logger: Logger;
  readonly counts: TransportStats = newTransportStats();
  private readonly sub: Link;
  private readonly pub: Link;
  private readonly queue = new Queue<Buffer>();
  private queuedBytes = 0;
  /** PUBLISH commands written on the current connection and not yet answered. */
  private inFlight = 0;
  private flushQueued = false;
  closed = false;
  private waiters: Array<() => void> = [];
  /** With a prefix: the pattern as sent to Redis → the pattern as subscribed here. */
  private readonly patternNames = new Map<string, string>();
  private readonly prefix: string;
  private readonly patternPrefix: string;
  private readonly removeLoopHook: () => void;
  private publishErrorLogged = false;

  constructor(
    private readonly host: TransportHost,
    readonly r: ResolvedRedisOptions,
    private readonly o: RedisTransportOptions,
  ) {
    this.dialer = o.dialer ?? clientDialer(o.loop, o.logger);
    this.logger = o.logger ?? this.dialer.logger;
    this.where = describeRedis(r.address);
    this.prefix = r.prefix;
    // A prefix goes in front of patterns too, its own glob characters escaped.
    this.patternPrefix = r.prefix.replace(/[*?[\]\\]/g, '\\$&');
    this.sub = new Link(
      this,
      'subscriber',
      (events) =>
        new RedisSubscriber(events as SubscriberEvents, this.handshake('sub'), () => this.initialSubscriptions()),
    );
    this.pub = new Link(
      this,
      'publisher',
      (events) => new RedisPublisher(events as PublisherEvents, this.handshake('pub')),
    );
    this.removeLoopHook = this.dialer.onClose(() => {
      // The server stopped: its loop takes the connections with it; nothing reconnects.
      this.closed = true;
      this.sub.stop();
      this.pub.stop();
    });
    this.sub.start();
    this.pub.start();
  }

  /** The stages of a connection: RESP replies in, a PING after a silence, then `handler`. */
  pipeline(handler: RedisSubscriber | RedisPublisher): Pipeline {
    const p = new Pipeline().addLast(
      'resp',
      new RespDecoder({
        inline: false,
        maxBulkLength: Math.max(64 * 1024, this.o.maxMessageSize + HEADER_SIZE),
      }),
    );
    if (this.r.pingInterval > 0) {
      p.addLast(
        'heartbeat',
        new HeartbeatHandler({ interval: this.r.pingInterval, missed: 2, ping: () => PING, isPong }),
      );
    }
    return p.addLast('redis', handler);
  }

  /** AUTH, SELECT and CLIENT SETNAME, as the URL and options ask: each is answered +OK. */
  private handshake(role: 'sub' | 'pub'): Buffer[] {
    const a = this.r.address;
    const out: Buffer[] = [];
    if (a.password !== undefined) {
      out.push(respCommand(a.username !== undefined ? ['AUTH', a.username, a.password] : ['AUTH', a.password]));
    }
    if (a.db !== undefined && a.db !== 0) out.push(respCommand(['SELECT', String(a.db)]));
    if (this.r.clientName !== '') {
      out.push(respCommand(['CLIENT', 'SETNAME', `${this.r.clientName}-${role}-${process.pid}`]));
    }
    return out;
  }

  /** SUBSCRIBE and PSUBSCRIBE for every local subscription, on a new subscriber connection. */
  private initialSubscriptions(): Buffer[] {
    const { topics, patterns } = this.host.subscriptions();
    const t = [...topics].map((n) => this.channel(n));
    const p = [...patterns].map((n) => this.pattern(n));
    if (this.sub.wasUp) this.counts.resubscribed += t.length + p.length;
    return [...subscribeCommands('SUBSCRIBE', t), ...subscribeCommands('PSUBSCRIBE', p)];
  }

  private channel(topic: string): string {
    return this.prefix === '' ? topic : this.prefix + topic;
  }

  private pattern(name: string): string {
    if (this.prefix === '') return name;
    const p = this.patternPrefix + name;
    this.patternNames.set(p, name);
    return p;
  }

  // ---- Transport ----

  subscribe(name: string, pattern: boolean): void {
    const h = this.sub.handler as RedisSubscriber | undefined;
    if (h === undefined || !h.active) return; // sent with the others once connected
    // Flushed now, not at the end of the turn: it leaves before whatever the process writes next
    // (a welcome to the client that joined), so a reply to that finds the subscription at Redis.
    h.send(respCommand([pattern ? 'PSUBSCRIBE' : 'SUBSCRIBE', pattern ? this.pattern(name) : this.channel(name)]));
    h.flushNow();
  }

  unsubscribe(name: string, pattern: boolean): void {
    let redisName: string;
    if (pattern) {
      redisName = this.prefix === '' ? name : this.patternPrefix + name;
      this.patternNames.delete(redisName);
    } else redisName = this.channel(name);
    const h = this.sub.handler as RedisSubscriber | undefined;
    if (h === undefined || !h.active) return;
    h.send(respCommand([pattern ? 'PUNSUBSCRIBE' : 'UNSUBSCRIBE', redisName]));
    h.flushNow();
  }

  publish(topic: string, data: string | Uint8Array, binary: boolean, origin: number, seq: number): void {
    if (this.closed) return;
    const cmd = publishCommand(this.prefix, topic, data, binary, origin, seq);
    const max = this.o.maxQueuedBytes;
    const h = this.pub.handler as RedisPublisher | undefined;
    if (h?.active && h.up) {
      // Up, but Redis (or the network) may be slow to take them: bounded there too; the newest goes.
      if (h.pendingBytes + cmd.length > max) {
        this.counts.dropped++;
        return;
      }
      h.send(cmd);
      this.inFlight++;
      this.counts.forwarded++;
      this.flushSoon();
      return;
    }
    // Away: wait in the queue, the oldest dropped first.
    if (cmd.length > max) {
      this.counts.dropped++;
      return;
    }
    while (this.queuedBytes + cmd.length > max) {
      const old = this.queue.shift() as Buffer;
      this.queuedBytes -= old.length;
      this.counts.dropped++;
    }
    this.queue.push(cmd);
    this.queuedBytes += cmd.length;
  }

  private flushSoon(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(this.flush);
  }

  private readonly flush = (): void => {
    this.flushQueued = false;
    (this.sub.handler as RedisSubscriber | undefined)?.flushNow();
    (this.pub.handler as RedisPublisher | undefined)?.flushNow();
  };

  connected(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('PubSub: closed'));
    if (this.counts.connected) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  stats(): TransportStats {
    return { ...this.counts, queued: this.queue.size, queuedBytes: this.queuedBytes };
  }

  async close(): Promise<void> {
    if (this.closed && this.sub.stopped && this.pub.stopped) return;
    this.closed = true;
    this.removeLoopHook();
    this.waiters = [];
    await Promise.all([this.sub.close(0), this.pub.close(CLOSE_GRACE_MS)]);
    this.counts.connected = false;
    this.dialer.release();
  }

  // ---- what the links report ----

  linkUp(link: Link): void {
    if (link === this.pub) {
      const h = link.handler as RedisPublisher;
      this.publishErrorLogged = false;
      // What waited while Redis was away, in order.
      while (this.queue.size > 0) {
        const cmd = this.queue.shift() as Buffer;
        this.queuedBytes -= cmd.length;
        h.send(cmd);
        this.inFlight++;
        this.counts.forwarded++;
      }
      h.flushNow();
    }
    this.counts.connected = this.sub.isUp && this.pub.isUp;
    if (this.counts.connected) for (const w of this.waiters.splice(0)) w();
  }

  linkDown(link: Link): void {
    this.counts.connected = false;
    if (link === this.pub) {
      this.counts.unconfirmed += this.inFlight;
      this.inFlight = 0;
    }
  }

  confirmed(): void {
    if (this.inFlight > 0) this.inFlight--;
  }

  errorReply(link: Link, err: RespError): void {
    this.counts.errors++;
    if (link === this.pub) {
      if (this.inFlight > 0) this.inFlight--;
      if (!this.publishErrorLogged) {
        this.publishErrorLogged = true;
        this.logger.error(`pubsub: ${this.where} refused a PUBLISH: ${err.message}`);
      }
    } else this.logger.error(`pubsub: ${this.where} (subscriber): ${err.message}`);
  }

  message(channel: Buffer, payload: Buffer): void {
    const topic = this.topicOf(channel);
    if (topic !== undefined) this.host.onMessage(topic, payload);
  }

  pmessage(pattern: Buffer, channel: Buffer, payload: Buffer): void {
    const topic = this.topicOf(channel);
    if (topic === undefined) return;
    const p = pattern.toString('utf8');
    const name = this.prefix === '' ? p : this.patternNames.get(p);
    if (name !== undefined) this.host.onPatternMessage(name, topic, payload);
  }

  private topicOf(channel: Buffer): string | undefined {
    const c = channel.toString('utf8');
    if (this.prefix === '') return c;
    return c.startsWith(this.prefix) ? c.slice(this.prefix.length) : undefined;
  }

  /** ms before the next attempt after `n` failures in a row: the pool's rule. */
  delayAfter(n: number): number {
    const b = this.r.reconnect;
    const base = Math.min(b.maxDelay, b.initialDelay * b.factor ** (n - 1));
    return Math.max(0, base * (1 + b.jitter * (2 * Math.random() - 1)));
  }
}

/** One attempt to connect: events from an attempt that is over are ignored. */
interface Attempt {
  done: boolean;
  up: boolean;
}

/** One of the two connections, kept open: connects, reports, reconnects with backoff. */
class Link {
  handler: RedisSubscriber | RedisPublisher | undefined;
  private conn: DialedConnection | undefined;
  private readonly aborter = new AbortController();
  private timer: Timeout | undefined;
  /** Attempts that failed in a row (a lost connection counts as the first). */
  private failures = 0;
  /** When it went down (the dialer's clock), or -1 while up. */
  private downSince = -1;
  private lastWarning = 0;
  private lastError = '';
  /** It reached `up` at least once (a later `up` is a reconnect). */
  wasUp = false;
  isUp = false;
  stopped = false;

  constructor(
    private readonly t: RedisTransport,
    readonly role: 'subscriber' | 'publisher',
    private readonly makeHandler: (events: SubscriberEvents | PublisherEvents) => RedisSubscriber | RedisPublisher,
  ) {}

  /** A fresh stage per connection, bound to its attempt (one attempt runs at a time). */
  private readonly pipeline = (): Pipeline => {
    const h = this.makeHandler(this.events(this.current));
    this.handler = h;
    return this.t.pipeline(h);
  };

  private current: Attempt = { done: true, up: false };

  start(): void {
    if (this.stopped) return;
    this.timer = undefined;
    const attempt: Attempt = { done: false, up: false };
    this.current = attempt;
    this.t.dialer.dial(this.t.r, this.pipeline, this.aborter.signal).then(
      (conn) => {
        if (attempt.done || this.stopped) {
          void conn.abort();
          return;
        }
        this.conn = conn;
      },
      (err: unknown) => this.finish(attempt, err),
    );
  }

  private events(attempt: Attempt): SubscriberEvents & PublisherEvents {
    const t = this.t;
    return {
      up: () => {
        if (attempt.done) return;
        attempt.up = true;
        this.isUp = true;
        if (this.failures > 0 || this.wasUp) {
          const after = this.failures > 1 ? ` after ${this.failures} attempts` : '';
          const down =
            this.downSince >= 0 ? `, ${Math.round(t.dialer.timers.now() - this.downSince)} ms without it` : '';
          t.logger.info(
            `pubsub: ${t.where} (${this.role}) ${this.wasUp ? 'connected again' : 'connected'}${after}${down}`,
          );
        }
        if (this.wasUp) t.counts.reconnects++;
        this.wasUp = true;
        this.failures = 0;
        this.downSince = -1;
        t.linkUp(this);
      },
      refused: (reply) => {
        this.lastError = `the handshake was refused: ${describeReply(reply)}`;
      },
      errorReply: (err) => t.errorReply(this, err),
      down: (reason) => this.finish(attempt, reason),
      message: (channel, payload) => t.message(channel, payload),
      pmessage: (pattern, channel, payload) => t.pmessage(pattern, channel, payload),
      confirmed: () => t.confirmed(),
    };
  }

  /** The attempt is over (failed to connect, or the connection closed): back off and try again. */
  private finish(attempt: Attempt, why: unknown): void {
    if (attempt.done) return;
    attempt.done = true;
    this.conn = undefined;
    this.handler = undefined;
    const wasUp = attempt.up;
    if (wasUp) {
      this.isUp = false;
      this.t.linkDown(this);
    }
    if (this.stopped || this.t.closed) return;
    const reason = this.lastError !== '' ? this.lastError : describeWhy(why);
    this.lastError = '';
    const now = this.t.dialer.timers.now();
    if (wasUp) {
      this.failures = 1;
      this.downSince = now;
      this.lastWarning = now;
      this.t.logger.warn(`pubsub: lost ${this.t.where} (${this.role}: ${reason}); reconnecting`);
    } else {
      this.failures++;
      if (this.downSince < 0) this.downSince = now;
      if (this.failures === 1 || now - this.lastWarning >= WARN_EVERY_MS) {
        this.lastWarning = now;
        this.t.logger.warn(
          `pubsub: cannot reach ${this.t.where} (${this.role}: ${reason}); retrying with backoff (attempt ${this.failures})`,
        );
      }
    }
    this.timer = this.t.dialer.timers.schedule(this.t.delayAfter(this.failures), () => this.start());
  }

  /** No more attempts (the loop is closing). */
  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = undefined;
    this.aborter.abort();
  }

  /** Stops, and closes the connection: gracefully within `graceMs` (what is queued is flushed), else cut. */
  async close(graceMs: number): Promise<void> {
    this.stop();
    const conn = this.conn;
    this.conn = undefined;
    if (conn === undefined) return;
    if (graceMs <= 0) {
      await conn.abort();
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      conn.close(),
      new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          void conn.abort();
          resolve();
        }, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }
}

function describeWhy(why: unknown): string {
  if (why instanceof Error) return why.message;
  return typeof why === 'string' ? `closed: ${why}` : String(why);
}

function describeReply(reply: unknown): string {
  if (reply !== null && typeof reply === 'object' && 'message' in reply) return String((reply as RespError).message);
  return JSON.stringify(reply);
}
