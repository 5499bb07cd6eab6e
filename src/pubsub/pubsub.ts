/**
 * Publish/subscribe across workers and machines, on WebSocket groups (docs/pubsub.md).
 *
 * ```ts
 * const pubsub = new PubSub({ redis: 'redis://127.0.0.1:6379' }); // or new PubSub(): the master relays
 * websocketRoute((ws, req) => {
 *   pubsub.join('room:lobby', ws);
 *   ws.onMessage = (data, isBinary) => pubsub.publish('room:lobby', data, { binary: isBinary });
 * });
 * ```
 *
 * Each topic with local subscribers is a `WebSocketGroup` (its WebSocket members) and a list of
 * listeners (functions, for anything that is not a WebSocket — a TCP chat's connections, a cache
 * to invalidate). A message published is delivered to this process's subscribers at once — the
 * WebSocket frame encoded once and the same bytes written to every member, each member under its
 * own backpressure policy — and handed to the transport for the other processes: Redis (one
 * subscriber connection per process for every topic, one for publishing), or the master's relay
 * (`in-cluster` mode, the default without Redis). A process subscribes a topic with the broker
 * when its first local subscriber joins, and unsubscribes when the last one leaves.
 *
 * Delivery between processes is at most once: Redis pub/sub keeps nothing for a subscriber that
 * is disconnected, and a queue that overflows drops. Losses are counted (`missed`, from the
 * sequence numbers every message carries: envelope.ts; `dropped`, `unconfirmed`), never hidden.
 */
import { Buffer, isUtf8 } from 'node:buffer';
import { GlobPattern } from '../common/glob.js';
import { consoleLogger, type Logger } from '../common/logger.js';
import { WebSocketGroup } from '../websocket/group.js';
import { WebSocket } from '../websocket/websocket.js';
import { addWorkerReport } from '../worker/serving.js';
import { ClusterTransport, claimRelay } from './cluster.js';
import {
  envelopeBinary,
  envelopeData,
  envelopeOrigin,
  envelopeSeq,
  GapTracker,
  isEnvelope,
  newOrigin,
  TopicCounters,
  TopicGapTrackers,
} from './envelope.js';
import { type PubSubOptions, type ResolvedPubSubOptions, resolvePubSubOptions } from './options.js';
import { type RedisDialer, RedisTransport } from './redis.js';
import { newTransportStats, type Transport, type TransportHost, type TransportStats } from './transport.js';

/** A function subscribed to a topic or pattern: the message (bytes; text as UTF-8), its topic, and whether it is binary. */
export type PubSubListener = (message: Buffer, topic: string, isBinary: boolean) => void;

/** What `subscribe` and `psubscribe` return. */
export interface PubSubSubscription {
  /** The topic, or the pattern. */
  readonly name: string;
  readonly pattern: boolean;
  /** Stops this listener. Returns false if it had stopped already. */
  unsubscribe(): boolean;
}

/** Options of one `publish` call. */
export interface PubSubPublishOptions {
  /** Send bytes as text (false) or a string as binary (true). Default: a string is text, bytes are binary. */
  readonly binary?: boolean;
  /** A local WebSocket member not to send it to (the sender, typically). */
  readonly except?: WebSocket;
}

/** What a publish did in this process (the other processes are reached asynchronously). */
export interface PubSubPublishResult {
  /** Local deliveries: WebSocket members it was queued for, and listeners called. */
  readonly sent: number;
  /** Local WebSocket members it was not queued for (backpressure policy, closing). */
  readonly skipped: number;
}

/** The counters of a `PubSub` (docs/pubsub.md, "Counters"). */
export interface PubSubStats extends TransportStats {
  /** `redis`, `cluster` (the master's relay), or `local` (this process only). */
  readonly mode: 'redis' | 'cluster' | 'local';
  /** Topics and patterns with local subscribers now. */
  topics: number;
  patterns: number;
  /** `publish()` calls. */
  published: number;
  /** Local deliveries (WebSocket sends queued, listener calls), of local and remote messages. */
  delivered: number;
  /** Local WebSocket sends refused by the member's backpressure policy or because it was closing. */
  skipped: number;
  /**
   * Messages that came from other processes: from Redis, once per matching subscription (a topic
   * and a pattern that both match are two pushes); from the relay, once.
   */
  received: number;
  /** Messages of other processes that never arrived, found from the gaps in their sequence numbers. */
  missed: number;
  /** Messages received without our header (published by something else), delivered as they are. */
  foreign: number;
  /** Listeners that threw (each error is logged). */
  listenerErrors: number;
}

/** One topic or pattern with local subscribers: its WebSocket members (the group) and listeners. */
class Entry extends WebSocketGroup {
  listeners: readonly PubSubListener[] = NO_LISTENERS;
  /** Sequence numbers seen from other processes: per origin (a topic), per topic and origin (a pattern). */
  gaps: GapTracker | TopicGapTrackers | undefined = undefined;

  constructor(
    private readonly owner: PubSub,
    readonly name: string,
    /** The compiled pattern (a pattern subscription), or undefined (a topic). */
    readonly glob: GlobPattern | undefined,
  ) {
    super();
  }

  /** Local subscribers: members and listeners. */
  get count(): number {
    return this.size + this.listeners.length;
  }

  protected override emptied(): void {
    this.owner.released(this);
  }
}

const NO_LISTENERS: readonly PubSubListener[] = Object.freeze([]);

/** Longest topic or pattern, in UTF-16 units (at most 48 KiB of UTF-8, inside the relay's 16-bit length). */
const MAX_NAME = 16 * 1024;

/** Every PubSub of this process that has started, for the worker's report to its master. */
const live = new Set<PubSub>();
let reporting = false;

/**
 * Publish/subscribe on topics across this worker, the other workers of its master and — through
 * Redis — other servers. One per application per process: build it at startup (its options are
 * checked then), `join` WebSockets and `subscribe` listeners to topics, `publish` from anywhere.
 * Local subscribers hear a message at once (the frame encoded once for every member); other
 * processes at most once, with what was lost counted in `stats()`. `close()` unsubscribes
 * everything and closes its connections.
 *
 * @example
 * ```ts
 * import { http, PubSub, router, Server, websocketRoute } from 'multireactor';
 *
 * const pubsub = new PubSub(); // in-cluster: the master relays between workers
 * const app = router().get(
 *   '/chat',
 *   websocketRoute((ws) => {
 *     pubsub.join('lobby', ws);
 *     ws.onMessage = (data, isBinary) => pubsub.publish('lobby', data, { binary: isBinary, except: ws });
 *   }),
 * );
 * await Server.listen({ port: 8080, pipeline: http(app) });
 * ```
 */
export class PubSub implements TransportHost {
  readonly mode: 'redis' | 'cluster' | 'local';
  private readonly o: ResolvedPubSubOptions;
  private readonly exact = new Map<string, Entry>();
  private readonly patterns = new Map<string, Entry>();
  private readonly origin = newOrigin();
  private readonly seq = new TopicCounters();
  private transport: Transport | undefined;
  private started = false;
  private closed = false;
  /** Released with `close()`: the in-cluster relay of this worker, claimed at construction. */
  private relayClaimed = false;
  private logger: Logger;
  private readonly counts = {
    published: 0,
    delivered: 0,
    skipped: 0,
    received: 0,
    missed: 0,
    foreign: 0,
    listenerErrors: 0,
  };

  /**
   * Options are checked now (`InvalidOptionError`); nothing connects until the first
   * subscription or publish (or `connected()`), so a `PubSub` made at the top of a server's script
   * costs nothing in the master process, which never uses it.
   */
  constructor(
    options: PubSubOptions = {},
    /** @internal How Redis is reached (the unit tests run the transport on EmbeddedChannels). */
    private readonly dialer?: RedisDialer,
  ) {
    this.o = resolvePubSubOptions(options);
    this.logger = this.o.logger ?? this.o.loop?.logger ?? consoleLogger();
    if (this.o.redis !== undefined) this.mode = 'redis';
    else if (claimRelay()) {
      this.mode = 'cluster';
      this.relayClaimed = true;
    } else this.mode = 'local';
  }

  // ---- subscribing ----

  /** Makes `ws` a member of `topic`: it gets every message published to it, here or elsewhere. Returns false if it was one already, or is closed. */
  join(topic: string, ws: WebSocket): boolean {
    checkName(topic, 'topic');
    checkWebSocket(ws);
    const e = this.entry(topic, false);
    const first = e.count === 0;
    const joined = e.join(ws);
    if (first) this.firstOrDrop(e);
    return joined;
  }

  /** Removes `ws` from `topic`. Returns false if it was not a member. (A closing WebSocket leaves its topics by itself.) */
  leave(topic: string, ws: WebSocket): boolean {
    return this.exact.get(topic)?.leave(ws) ?? false;
  }

  /** Makes `ws` a member of every topic matching the glob `pattern` (Redis PSUBSCRIBE rules: `*`, `?`, `[a-z]`, `\`). */
  joinPattern(pattern: string, ws: WebSocket): boolean {
    checkName(pattern, 'pattern');
    checkWebSocket(ws);
    const e = this.entry(pattern, true);
    const first = e.count === 0;
    const joined = e.join(ws);
    if (first) this.firstOrDrop(e);
    return joined;
  }

  leavePattern(pattern: string, ws: WebSocket): boolean {
    return this.patterns.get(pattern)?.leave(ws) ?? false;
  }

  /** Calls `listener` with every message published to `topic`. */
  subscribe(topic: string, listener: PubSubListener): PubSubSubscription {
    checkName(topic, 'topic');
    return this.listen(topic, false, listener);
  }

  /** Calls `listener` with every message published to a topic matching `pattern`. */
  psubscribe(pattern: string, listener: PubSubListener): PubSubSubscription {
    checkName(pattern, 'pattern');
    return this.listen(pattern, true, listener);
  }

  /** Local WebSocket members of `topic` now (this process only). */
  members(topic: string): number {
    return this.exact.get(topic)?.size ?? 0;
  }

  private listen(name: string, pattern: boolean, listener: PubSubListener): PubSubSubscription {
    if (typeof listener !== 'function') throw new TypeError('PubSub: a listener must be a function');
    const e = this.entry(name, pattern);
    const first = e.count === 0;
    e.listeners = [...e.listeners, listener];
    if (first) this.firstOrDrop(e);
    let active = true;
    return {
      name,
      pattern,
      unsubscribe: () => {
        if (!active) return false;
        active = false;
        // A new array: a delivery in progress goes on over the old one.
        const i = e.listeners.indexOf(listener);
        if (i >= 0) e.listeners = e.listeners.length === 1 ? NO_LISTENERS : e.listeners.filter((_, j) => j !== i);
        this.released(e);
        return true;
      },
    };
  }

  private entry(name: string, pattern: boolean): Entry {
    if (this.closed) throw new Error('PubSub: closed');
    const map = pattern ? this.patterns : this.exact;
    let e = map.get(name);
    if (e === undefined) {
      e = new Entry(this, name, pattern ? new GlobPattern(name) : undefined);
      map.set(name, e);
    }
    return e;
  }

  /** `e` had no subscriber: if it has one now, subscribe with the broker; if not (a closed WebSocket), forget it. */
  private firstOrDrop(e: Entry): void {
    if (e.count === 0) {
      this.forget(e);
      return;
    }
    // A transport that starts now sends every subscription itself (this one included).
    if (this.started) this.transport?.subscribe(e.name, e.glob !== undefined);
    else this.start();
  }

  /** @internal A subscriber of `e` left: the last one takes the subscription with it. */
  released(e: Entry): void {
    if (e.count > 0 || !this.forget(e)) return;
    this.transport?.unsubscribe(e.name, e.glob !== undefined);
  }

  /** Removes `e` from its map (if it is still the entry there). */
  private forget(e: Entry): boolean {
    const map = e.glob === undefined ? this.exact : this.patterns;
    if (map.get(e.name) !== e) return false;
    map.delete(e.name);
    return true;
  }

  // ---- publishing ----

  /**
   * Publishes `message` to `topic`: delivered to this process's subscribers now, and handed to
   * the transport for the other processes (never blocking: while the broker is away or slow,
   * messages wait in a bounded queue, see `maxQueuedBytes`). Returns what was done locally.
   */
  publish(topic: string, message: string | Uint8Array, options?: PubSubPublishOptions): PubSubPublishResult {
    checkName(topic, 'topic');
    if (this.closed) throw new Error('PubSub: closed');
    const isString = typeof message === 'string';
    if (!isString && !(message instanceof Uint8Array)) {
      throw new TypeError('PubSub.publish: the message must be a string, a Buffer or a Uint8Array');
    }
    const max = this.o.maxMessageSize;
    if (message.length > max || (isString && message.length * 3 > max && Buffer.byteLength(message) > max)) {
      throw new RangeError(`PubSub.publish: the message is larger than maxMessageSize (${max} bytes)`);
    }
    const binary = options?.binary ?? !isString;
    this.counts.published++;
    const transport = this.start();
    const r = this.deliverLocal(topic, message, binary, options?.except);
    if (transport !== undefined) transport.publish(topic, message, binary, this.origin, this.seq.next(topic));
    return r;
  }

  /** To every local subscription `topic` reaches: its exact entry and every matching pattern. */
  private deliverLocal(
    topic: string,
    data: string | Uint8Array,
    binary: boolean,
    except: WebSocket | undefined,
  ): PubSubPublishResult {
    let sent = 0;
    let skipped = 0;
    let buf: Buffer | undefined;
    const e = this.exact.get(topic);
    if (e !== undefined) {
      if (e.size > 0) {
        const r = e.publish(data, binary, except);
        sent += r.sent;
        skipped += r.skipped;
      }
      if (e.listeners.length > 0) {
        buf = asBuffer(data);
        sent += this.callListeners(e, buf, topic, binary);
      }
    }
    if (this.patterns.size > 0) {
      const bytes = Buffer.from(topic);
      for (const p of this.patterns.values()) {
        if (!(p.glob as GlobPattern).matches(bytes)) continue;
        if (p.size > 0) {
          const r = p.publish(data, binary, except);
          sent += r.sent;
          skipped += r.skipped;
        }
        if (p.listeners.length > 0) {
          buf ??= asBuffer(data);
          sent += this.callListeners(p, buf, topic, binary);
        }
      }
    }
    this.counts.delivered += sent;
    this.counts.skipped += skipped;
    return { sent, skipped };
  }

  private callListeners(e: Entry, message: Buffer, topic: string, binary: boolean): number {
    const ls = e.listeners;
    for (let i = 0; i < ls.length; i++) {
      try {
        (ls[i] as PubSubListener)(message, topic, binary);
      } catch (err) {
        this.counts.listenerErrors++;
        this.logger.error(`pubsub: a listener of ${JSON.stringify(e.name)} threw`, err);
      }
    }
    return ls.length;
  }

  // ---- from other processes (TransportHost) ----

  /** @internal */
  onMessage(topic: string, payload: Buffer): void {
    const e = this.exact.get(topic);
    if (e === undefined) return; // unsubscribed while it was on its way
    this.fromRemote(topic, payload, e, undefined);
  }

  /** @internal */
  onPatternMessage(pattern: string, topic: string, payload: Buffer): void {
    const p = this.patterns.get(pattern);
    if (p === undefined) return;
    this.fromRemote(topic, payload, p, undefined);
  }

  /** @internal */
  onRelayed(topic: string, payload: Buffer): void {
    this.fromRemote(topic, payload, this.exact.get(topic), this.patterns.size > 0 ? Buffer.from(topic) : undefined);
  }

  /**
   * A message from another process: to `only` (an exact or a pattern entry), and with
   * `topicBytes` also to every matching pattern. Skipped when it is our own, come back.
   */
  private fromRemote(topic: string, payload: Buffer, only: Entry | undefined, topicBytes: Buffer | undefined): void {
    let data: Buffer;
    let binary: boolean;
    let origin = -1;
    let seq = 0;
    if (isEnvelope(payload)) {
      origin = envelopeOrigin(payload);
      if (origin === this.origin) return;
      seq = envelopeSeq(payload);
      binary = envelopeBinary(payload);
      data = envelopeData(payload);
    } else {
      this.counts.foreign++;
      data = payload;
      binary = !isUtf8(payload);
    }
    this.counts.received++;
    if (only !== undefined) this.deliverRemote(only, topic, data, binary, origin, seq);
    if (topicBytes !== undefined) {
      for (const p of this.patterns.values()) {
        if ((p.glob as GlobPattern).matches(topicBytes)) this.deliverRemote(p, topic, data, binary, origin, seq);
      }
    }
  }

  private deliverRemote(e: Entry, topic: string, data: Buffer, binary: boolean, origin: number, seq: number): void {
    if (origin >= 0) {
      let g = e.gaps;
      if (g === undefined) {
        g = e.glob === undefined ? new GapTracker() : new TopicGapTrackers();
        e.gaps = g;
      }
      this.counts.missed += g instanceof GapTracker ? g.seen(origin, seq) : g.seen(topic, origin, seq);
    }
    let sent = 0;
    if (e.size > 0) {
      const r = e.publish(data, binary);
      sent += r.sent;
      this.counts.skipped += r.skipped;
    }
    if (e.listeners.length > 0) sent += this.callListeners(e, data, topic, binary);
    this.counts.delivered += sent;
  }

  /** @internal Every subscription, for a transport that connected again. */
  subscriptions(): { readonly topics: Iterable<string>; readonly patterns: Iterable<string> } {
    return { topics: this.exact.keys(), patterns: this.patterns.keys() };
  }

  // ---- lifecycle ----

  /** Starts the transport (once): Redis connections, or the relay. Undefined in local mode. */
  private start(): Transport | undefined {
    if (this.started) return this.transport;
    this.started = true;
    const o = this.o;
    if (o.redis !== undefined) {
      this.transport = new RedisTransport(this, o.redis, {
        loop: o.loop,
        logger: this.o.logger,
        maxMessageSize: o.maxMessageSize,
        maxQueuedBytes: o.maxQueuedBytes,
        dialer: this.dialer,
      });
    } else if (this.mode === 'cluster') {
      this.transport = new ClusterTransport(this, { loop: o.loop, maxQueuedBytes: o.maxQueuedBytes });
    }
    live.add(this);
    if (!reporting) {
      reporting = true;
      // What a worker reports to its master (`multireactor status --json`, collectStats()).
      addWorkerReport('pubsub', () => [...live].map((p) => p.stats()));
    }
    return this.transport;
  }

  /**
   * Starts the transport if it has not started, and resolves once it is connected (Redis: both
   * connections through their handshake; in-cluster and local: at once). For tests and for a
   * server that wants Redis before it serves; publishing never needs to wait for it.
   */
  connected(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('PubSub: closed'));
    return this.start()?.connected() ?? Promise.resolve();
  }

  /** The counters now (a fresh object). */
  stats(): PubSubStats {
    const t = this.transport?.stats() ?? { ...newTransportStats(), connected: this.mode === 'local' };
    return {
      mode: this.mode,
      ...t,
      topics: this.exact.size,
      patterns: this.patterns.size,
      ...this.counts,
    };
  }

  /**
   * Removes every subscriber (WebSockets stay open, outside the topics), closes the transport's
   * connections, and releases this worker's relay for another `PubSub`. Publishing after it throws.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const map of [this.exact, this.patterns]) {
      for (const e of [...map.values()]) {
        e.listeners = NO_LISTENERS;
        for (const ws of [...e]) e.leave(ws);
      }
      map.clear();
    }
    live.delete(this);
    const t = this.transport;
    this.transport = undefined;
    if (t !== undefined) await t.close();
    if (this.relayClaimed) {
      this.relayClaimed = false;
      claimRelay(true);
    }
  }
}

function checkName(name: unknown, what: string): void {
  if (typeof name !== 'string') throw new TypeError(`PubSub: a ${what} must be a string`);
  if (name.length > MAX_NAME) throw new RangeError(`PubSub: a ${what} is at most ${MAX_NAME} characters`);
}

function checkWebSocket(ws: unknown): void {
  if (!(ws instanceof WebSocket)) throw new TypeError('PubSub: a member must be a WebSocket');
}

function asBuffer(data: string | Uint8Array): Buffer {
  if (typeof data === 'string') return Buffer.from(data);
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.length);
}
