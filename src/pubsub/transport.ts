/**
 * What carries messages between processes: Redis (redis.ts) or a master's relay (cluster.ts). The
 * `PubSub` tells a transport which topics and patterns have local subscribers (on the first one,
 * and after the last one left), hands it what is published, and hears what arrives.
 */
import type { Buffer } from 'node:buffer';

/** What a transport calls back into (the `PubSub`). */
export interface TransportHost {
  /** A message for the exact subscription `topic` (Redis `message`). `payload`: envelope.ts. */
  onMessage(topic: string, payload: Buffer): void;
  /** A message for the pattern subscription `pattern` (Redis `pmessage`). */
  onPatternMessage(pattern: string, topic: string, payload: Buffer): void;
  /** A message for every local subscription it matches, exact or pattern (the master's relay). */
  onRelayed(topic: string, payload: Buffer): void;
  /** Every subscription now, to send again after a reconnect. */
  subscriptions(): { readonly topics: Iterable<string>; readonly patterns: Iterable<string> };
}

/** Counters every transport keeps (see docs/pubsub.md, "Counters"). */
export interface TransportStats {
  /** Connected to the broker now (Redis: both connections through their handshake). */
  connected: boolean;
  /** Messages handed to the broker's connection. */
  forwarded: number;
  /** Messages waiting for the broker now (while it is away), and their bytes. */
  queued: number;
  queuedBytes: number;
  /** Messages never handed to the broker: the queue was full (`maxQueuedBytes`). */
  dropped: number;
  /** Messages written to a connection that broke before Redis confirmed them: maybe delivered, maybe not. */
  unconfirmed: number;
  /** Error replies from Redis. */
  errors: number;
  /** Times a connection to the broker was established again after it was lost. */
  reconnects: number;
  /** Subscriptions sent again on a new connection. */
  resubscribed: number;
}

/**
 * A transport starts with the `PubSub`'s first use, and from then on sends every subscription of
 * `host.subscriptions()` itself whenever it (re)connects; after that, `subscribe` and `unsubscribe`
 * tell it the changes.
 */
export interface Transport {
  readonly kind: 'redis' | 'cluster';
  /** The first local subscriber of `name` (a topic, or a pattern) appeared. */
  subscribe(name: string, pattern: boolean): void;
  /** The last one left. */
  unsubscribe(name: string, pattern: boolean): void;
  /** Sends a message to the other processes (encoded once, into the transport's own framing). */
  publish(topic: string, data: string | Uint8Array, binary: boolean, origin: number, seq: number): void;
  /** Resolves once connected (at once if it is). */
  connected(): Promise<void>;
  stats(): TransportStats;
  /** Closes the connections; nothing is sent or received after it. */
  close(): Promise<void>;
}

export function newTransportStats(): TransportStats {
  return {
    connected: false,
    forwarded: 0,
    queued: 0,
    queuedBytes: 0,
    dropped: 0,
    unconfirmed: 0,
    errors: 0,
    reconnects: 0,
    resubscribed: 0,
  };
}
