/**
 * The options of `PubSub` and the Redis URL, checked when the `PubSub` is made: an unknown key,
 * a value out of range or a malformed URL throws `InvalidOptionError` naming the option, before
 * anything connects.
 */
import { InvalidOptionError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import {
  checkOptions,
  describeValue,
  intOption,
  msOption,
  numberOption,
  type OptionKeys,
  optionalInt,
} from '../common/options.js';
import type { TlsClientOptions } from '../tls/options.js';
import { resolveTlsClientOptions } from '../tls/options.js';
import type { EventLoop } from '../worker/loop.js';

/** Backoff between attempts to reach Redis: `initialDelay × factor^(n-1)`, capped, ± jitter (the pool's rule). */
export interface PubSubReconnectOptions {
  /** ms before the first retry. Default 100. */
  readonly initialDelay?: number;
  /** Largest delay, ms. Default 5 000. */
  readonly maxDelay?: number;
  /** Growth per failure. Default 2. */
  readonly factor?: number;
  /** Random spread, a fraction of the delay. Default 0.2. */
  readonly jitter?: number;
}

/**
 * The Redis broker of a `PubSub` (`redis: { url, … }`, or just the URL string): how to reach it
 * (URL, TLS), how channels are named (`prefix`), and how a lost connection is found (PING) and
 * re-made (backoff). Checked when the `PubSub` is built: a malformed URL or an unknown key throws
 * `InvalidOptionError`.
 */
export interface RedisOptions {
  /** `redis://[user:password@]host[:port][/db]` or `rediss://…` (TLS). Port 6379 when left out. */
  readonly url: string;
  /** TLS options for a `rediss://` URL (a private CA: `ca`; `servername`…). Default: Node's root CAs, the host checked. */
  readonly tls?: TlsClientOptions;
  /**
   * Prepended to every topic to make its Redis channel (and escaped into every pattern), so that
   * applications sharing a Redis do not hear each other. Redis's channels ignore the database
   * number: a prefix is the way to keep them apart. Default '' (a topic is its channel).
   */
  readonly prefix?: string;
  /** ms to connect (resolve, connect, TLS) before an attempt counts as failed. Default 5 000. */
  readonly connectTimeout?: number;
  /** Backoff between attempts while Redis cannot be reached. */
  readonly reconnect?: PubSubReconnectOptions;
  /**
   * ms of silence after which a connection PINGs Redis; two unanswered pings in a row close it
   * (then it reconnects): finds a Redis that vanished without a FIN — a partition, a dead host.
   * 0: never. Default 10 000.
   */
  readonly pingInterval?: number;
  /** Names the connections (`CLIENT SETNAME`, seen in `CLIENT LIST`): `NAME-sub-PID`, `NAME-pub-PID`. Default 'multireactor'; '' sends none. */
  readonly clientName?: string;
}

/**
 * Options of `new PubSub(options)`. Without `redis`, processes forked by the same master exchange
 * messages through the master's relay (in-cluster mode) and a process without a master keeps them
 * local; with it, every process of every server sharing that Redis hears them. Unknown keys throw
 * `InvalidOptionError` naming the nearest known one.
 */
export interface PubSubOptions {
  /**
   * The broker between processes and machines: a Redis URL, or Redis options. Without it, the
   * workers of one master relay through their master (in-cluster mode), and a process that is not
   * a worker delivers within itself only.
   */
  readonly redis?: string | RedisOptions;
  /** Largest message published or received, bytes. Default 1 MiB. */
  readonly maxMessageSize?: number;
  /**
   * Bytes of published messages that may wait for the broker — while Redis is away, or while the
   * connection is slow to take them — before messages are dropped (counted: `dropped`). While
   * the broker is away the oldest go first; once handed to a slow connection, the newest. Default 8 MiB.
   */
  readonly maxQueuedBytes?: number;
  /** The loop the connections run on. Default: the loop serving in this process, else a standalone one. */
  readonly loop?: EventLoop;
  /** Where failures and reconnects are logged. Default: the loop's logger. */
  readonly logger?: Logger;
}

export const PUBSUB_OPTIONS = {
  redis: true,
  maxMessageSize: true,
  maxQueuedBytes: true,
  loop: true,
  logger: true,
} as const satisfies OptionKeys<PubSubOptions>;

export const REDIS_OPTIONS = {
  url: true,
  tls: true,
  prefix: true,
  connectTimeout: true,
  reconnect: true,
  pingInterval: true,
  clientName: true,
} as const satisfies OptionKeys<RedisOptions>;

const RECONNECT_OPTIONS = {
  initialDelay: true,
  maxDelay: true,
  factor: true,
  jitter: true,
} as const satisfies OptionKeys<PubSubReconnectOptions>;

/** A Redis URL taken apart. */
export interface RedisAddress {
  readonly tls: boolean;
  /** A name, an IPv4 address, or an IPv6 address (without its brackets). */
  readonly host: string;
  readonly port: number;
  readonly db: number | undefined;
  readonly username: string | undefined;
  readonly password: string | undefined;
}

export interface ResolvedRedisOptions {
  readonly address: RedisAddress;
  readonly tls: TlsClientOptions | true | undefined;
  readonly prefix: string;
  readonly connectTimeout: number;
  readonly reconnect: Required<PubSubReconnectOptions>;
  readonly pingInterval: number;
  readonly clientName: string;
}

export interface ResolvedPubSubOptions {
  readonly redis: ResolvedRedisOptions | undefined;
  readonly maxMessageSize: number;
  readonly maxQueuedBytes: number;
  readonly loop: EventLoop | undefined;
  readonly logger: Logger | undefined;
}

// Labels of letters, digits, '-' and '_' (not DNS's rule, but what resolvers and Docker's service
// names accept), not starting or ending with '-'.
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;
const IPV4 = /^(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;
// scheme :// [userinfo @] host [: port] [/ db]; anything else (a query, a fragment, a path) is refused.
const URL_SHAPE = /^(rediss?):\/\/(?:([^@/?#]*)@)?(\[[^\]/?#@]*\]|[^:/?#@[\]]*)(?::([^/?#]*))?(?:\/([^?#]*))?$/;

/**
 * Parses `redis://[user:password@]host[:port][/db]` (or `rediss://` for TLS) strictly: the
 * scheme, a host name, IPv4 address or bracketed IPv6 address, a port of 1–65535 in decimal
 * (6379 when left out), a database of decimal digits, user and password percent-decoded. A
 * query, a fragment, a path beyond the database, an empty host, a user without a password, or a
 * stray character throws `InvalidOptionError` (option `redis`) saying what is wrong.
 */
export function parseRedisUrl(url: unknown, option = 'redis'): RedisAddress {
  if (typeof url !== 'string')
    throw new InvalidOptionError(option, `must be a redis:// URL, got ${describeValue(url)}`);
  const bad = (why: string) => new InvalidOptionError(option, `${why} in ${JSON.stringify(redactUrl(url))}`);
  const m = URL_SHAPE.exec(url);
  if (m === null) {
    if (!/^rediss?:\/\//.test(url)) throw bad('must start with redis:// or rediss://');
    throw bad('a query, a fragment or a stray character is not allowed (redis://[user:password@]host[:port][/db])');
  }
  const [, scheme, userinfo, rawHost = '', rawPort, rawDb] = m;
  let host = rawHost;
  if (host.startsWith('[')) {
    host = host.slice(1, -1);
    if (!isIPv6(host)) throw bad(`${JSON.stringify(rawHost)} is not an IPv6 address`);
  } else if (host === '') {
    throw bad('the host is missing');
  } else if (/^[0-9.]+$/.test(host)) {
    if (!IPV4.test(host)) throw bad(`${JSON.stringify(host)} is not an IPv4 address`);
  } else if (!HOST_NAME.test(host)) {
    throw bad(`${JSON.stringify(host)} is not a host name`);
  }
  let port = 6379;
  if (rawPort !== undefined) {
    if (!/^[0-9]{1,5}$/.test(rawPort) || Number(rawPort) < 1 || Number(rawPort) > 65535) {
      throw bad(`the port must be 1-65535 in decimal, got ${JSON.stringify(rawPort)}`);
    }
    port = Number(rawPort);
  }
  let db: number | undefined;
  if (rawDb !== undefined && rawDb !== '') {
    if (!/^[0-9]{1,9}$/.test(rawDb)) throw bad(`the database must be a number, got ${JSON.stringify(rawDb)}`);
    db = Number(rawDb);
  }
  let username: string | undefined;
  let password: string | undefined;
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    if (colon < 0) throw bad('a user needs a password (redis://user:password@host, or redis://:password@host)');
    username = decode(userinfo.slice(0, colon), 'the user', bad);
    password = decode(userinfo.slice(colon + 1), 'the password', bad);
    if (password === '') throw bad('the password is empty');
    if (username === '') username = undefined;
  }
  return { tls: scheme === 'rediss', host, port, db, username, password };
}

/** The URL with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
}

/** `host:port` as logs show it (IPv6 in brackets). */
export function describeRedis(a: RedisAddress): string {
  return `${a.tls ? 'rediss' : 'redis'}://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
}

function decode(s: string, what: string, bad: (why: string) => InvalidOptionError): string {
  if (/%(?![0-9A-Fa-f]{2})/.test(s)) throw bad(`${what} has a malformed %-escape`);
  try {
    return decodeURIComponent(s);
  } catch {
    throw bad(`${what} is not UTF-8 once %-decoded`);
  }
}

function isIPv6(s: string): boolean {
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || s.length < 2) return false;
  // Let the platform judge the shape (`::`, an embedded IPv4 tail): URL parses bracketed IPv6 strictly.
  try {
    return new URL(`http://[${s}]/`).hostname !== '';
  } catch {
    return false;
  }
}

/** Checks every option (see `PubSubOptions`); throws `InvalidOptionError` naming the first bad one. */
export function resolvePubSubOptions(options: PubSubOptions | undefined): ResolvedPubSubOptions {
  const o = checkOptions('PubSub', options, PUBSUB_OPTIONS);
  const loop = o.loop;
  if (loop !== undefined && (typeof loop !== 'object' || loop === null || typeof loop.register !== 'function')) {
    throw new InvalidOptionError('loop', `must be an EventLoop, got ${describeValue(loop)}`);
  }
  const logger = o.logger;
  if (logger !== undefined && (typeof logger !== 'object' || logger === null || typeof logger.warn !== 'function')) {
    throw new InvalidOptionError('logger', `must be a Logger (info, warn, error, debug), got ${describeValue(logger)}`);
  }
  return {
    redis: o.redis === undefined ? undefined : resolveRedisOptions(o.redis),
    maxMessageSize: optionalInt('maxMessageSize', o.maxMessageSize, 1024 * 1024, 1, 512 * 1024 * 1024),
    maxQueuedBytes: optionalInt('maxQueuedBytes', o.maxQueuedBytes, 8 * 1024 * 1024, 0),
    loop,
    logger,
  };
}

function resolveRedisOptions(v: string | RedisOptions): ResolvedRedisOptions {
  const r: RedisOptions =
    typeof v === 'string' ? { url: v } : checkOptions('PubSub', v as RedisOptions, REDIS_OPTIONS, 'redis.');
  const address = parseRedisUrl(r.url, typeof v === 'string' ? 'redis' : 'redis.url');
  if (r.tls !== undefined) {
    if (!address.tls) throw new InvalidOptionError('redis.tls', 'is for a rediss:// URL');
    resolveTlsClientOptions(r.tls, 'redis.tls');
  }
  const prefix = r.prefix ?? '';
  if (typeof prefix !== 'string')
    throw new InvalidOptionError('redis.prefix', `must be a string, got ${describeValue(prefix)}`);
  const clientName = r.clientName ?? 'multireactor';
  // CLIENT SETNAME refuses spaces and newlines (they would break CLIENT LIST's format).
  if (typeof clientName !== 'string' || !/^[\x21-\x7e]{0,64}$/.test(clientName)) {
    throw new InvalidOptionError(
      'redis.clientName',
      `must be up to 64 printable ASCII characters without spaces, got ${describeValue(clientName)}`,
    );
  }
  const b = checkOptions('PubSub', r.reconnect, RECONNECT_OPTIONS, 'redis.reconnect.');
  const initialDelay = numberOption('redis.reconnect.initialDelay', b.initialDelay ?? 100, 0, 3_600_000);
  return {
    address,
    tls: address.tls ? (r.tls ?? true) : undefined,
    prefix,
    connectTimeout: intOption('redis.connectTimeout', r.connectTimeout ?? 5000, 1),
    reconnect: {
      initialDelay,
      maxDelay: numberOption(
        'redis.reconnect.maxDelay',
        b.maxDelay ?? Math.max(5000, initialDelay),
        initialDelay,
        3_600_000,
      ),
      factor: numberOption('redis.reconnect.factor', b.factor ?? 2, 1, 100),
      jitter: numberOption('redis.reconnect.jitter', b.jitter ?? 0.2, 0, 1),
    },
    pingInterval: msOption('redis.pingInterval', r.pingInterval ?? 10_000),
    clientName,
  };
}
