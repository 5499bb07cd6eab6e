/**
 * `ProxyProtocolDecoder`: the first stage of a connection accepted behind HAProxy or an L4 load
 * balancer (AWS NLB, …) that prepends a PROXY protocol header (haproxy's doc/proxy-protocol.txt).
 *
 * It reads the header — v1 text or v2 binary, split across reads however the network cut it —
 * reports the client's real endpoints on the channel (`channel.setProxiedAddresses(header)`:
 * `remoteAddress` is the client from then on, `socketRemoteAddress` still the proxy), removes
 * itself and hands the bytes that followed the header to the next stage, in the same read.
 *
 * ```
 *  socket ─▶ [proxy-protocol] ─▶ [tls] ─▶ user's handlers          until the header is complete
 *  socket ─────────────────────▶ [tls] ─▶ user's handlers          after: the stage is gone
 * ```
 *
 * Trust (spec §5: "accepting the header only from a number of known sources should be safe"):
 * only peers in `trusted` may send a header. A header from any other peer, a malformed one, or —
 * when `required` — a connection that does not start with one or does not complete it within
 * `timeout` is closed at once (spec §2.1: "abort the connection as soon as possible"), counted
 * (`proxyProtocolStats()`) and logged at debug level. A v2 `LOCAL` header (the proxy's own health
 * check) keeps the socket's addresses.
 *
 * `onActive` is held back until the header is in (spec §2: "The receiver MUST NOT start
 * processing the connection before it receives a complete and valid PROXY protocol header"), so
 * the handlers after this one see the client's address from their first event on. `onInactive`
 * always reaches them, also for a connection closed before it became active for them: they
 * release there what `handlerAdded` set up.
 */
import { Buffer } from 'node:buffer';
import { formatHostPort, InvalidOptionError } from '../common/errors.js';
import { consoleLogger, type Logger } from '../common/logger.js';
import { bool, checkOptions, type KnownKeys, msOption, type OptionKeys } from '../common/options.js';
import type { Timeout } from '../common/timing-wheel.js';
import { DRAINING } from '../pipeline/events.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { AddressBlocks } from '../syscalls/sockaddr.js';
import type { ProxyHeader } from './proxy-header.js';
import { detectSignature, parseProxyHeader, Signature, V2_MAX_LENGTH } from './proxy-parse.js';

/**
 * What `ProxyProtocolDecoder` takes: whom to trust and how strictly. On a server, use
 * `ServerOptions.proxyProtocol` instead (the server supplies the logger and counters).
 */
export interface ProxyProtocolOptions {
  /**
   * The proxies allowed to send a header: addresses and CIDR blocks, IPv4 and IPv6
   * (`['10.0.0.0/8', '127.0.0.1', '::1']`). IPv4 entries also match IPv4 peers that reach a
   * dual-stack socket as `::ffff:a.b.c.d`. Required, and not empty.
   */
  readonly trusted: readonly string[];
  /**
   * Every connection must start with a header (default true): a trusted peer that sends anything
   * else is closed, and so is every connection from an untrusted peer. `false` (migrations, a port
   * shared with direct clients): connections without a header go on with the socket's addresses —
   * but a header from an untrusted peer still closes its connection.
   */
  readonly required?: boolean;
  /**
   * ms from the connection's start to a complete header; 0 for none. Default 5000 (spec §2: "at
   * least 3 seconds to cover a TCP retransmit"). When it runs out the connection is closed — or,
   * with `required: false` and no header begun, goes on without one.
   */
  readonly timeout?: number;
  /** Where rejections are logged (at debug level). Default: the console logger. */
  readonly logger?: Logger;
  /** Counters to add to; default the process's own (`proxyProtocolStats()`). */
  readonly stats?: ProxyProtocolStats;
}

/** What the PROXY protocol stage did, per connection. */
export interface ProxyProtocolStats {
  /** Connections that sent a v1 header. */
  v1: number;
  /** Connections that sent a v2 `PROXY` header. */
  v2: number;
  /** Connections that sent a v2 `LOCAL` header (health checks): socket addresses kept. */
  local: number;
  /** Connections that went on without a header (`required: false`). */
  withoutHeader: number;
  /** Closed: the peer is not trusted (and sent a header, or one was required). */
  untrusted: number;
  /** Closed: a header that breaks the spec (bad signature version, syntax, lengths, checksum). */
  malformed: number;
  /** Closed: a trusted peer started with something else, or ended before a header. */
  missing: number;
  /** Closed: no complete header within `timeout`. */
  timeout: number;
}

function newStats(): ProxyProtocolStats {
  return { v1: 0, v2: 0, local: 0, withoutHeader: 0, untrusted: 0, malformed: 0, missing: 0, timeout: 0 };
}

const processStats = newStats();

/** The process's PROXY protocol counters (every server's and decoder's that did not bring its own). */
export function proxyProtocolStats(): ProxyProtocolStats {
  return { ...processStats };
}

/** The keys of `ProxyProtocolOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const PROXY_PROTOCOL_OPTIONS = {
  trusted: true,
  required: true,
  timeout: true,
  logger: true,
  stats: true,
} as const satisfies OptionKeys<ProxyProtocolOptions>;

/**
 * `ProxyProtocolOptions`, checked once and shared by every connection's decoder (CIDR blocks
 * parsed, defaults applied). `name` prefixes option names in errors (`proxyProtocol`); `keys` are
 * the keys allowed (a server's option takes neither `logger` nor `stats`: it passes its own logger).
 */
export class ProxyProtocolConfig {
  readonly trusted: AddressBlocks;
  readonly required: boolean;
  readonly timeout: number;
  readonly logger: Logger;
  readonly stats: ProxyProtocolStats;

  constructor(
    options: ProxyProtocolOptions,
    name = 'proxyProtocol',
    keys: KnownKeys = PROXY_PROTOCOL_OPTIONS,
    defaultLogger?: Logger,
  ) {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new InvalidOptionError(
        name,
        `must be an object such as { trusted: ['10.0.0.0/8'] }, got ${String(options)}`,
      );
    }
    checkOptions(name, options, keys, `${name}.`);
    if (options.trusted === undefined || (Array.isArray(options.trusted) && options.trusted.length === 0)) {
      throw new InvalidOptionError(
        `${name}.trusted`,
        "must list the proxies allowed to send a header (addresses or CIDR blocks, e.g. ['10.0.0.0/8'])",
      );
    }
    this.trusted = AddressBlocks.parse(options.trusted, `${name}.trusted`);
    this.required = bool(`${name}.required`, options.required, true);
    this.timeout = options.timeout === undefined ? 5000 : msOption(`${name}.timeout`, options.timeout);
    const logger: unknown = options.logger;
    if (logger !== undefined && (logger === null || typeof (logger as Logger).debug !== 'function')) {
      throw new InvalidOptionError(`${name}.logger`, 'must be a Logger');
    }
    this.logger = options.logger ?? defaultLogger ?? consoleLogger();
    this.stats = options.stats ?? processStats;
  }
}

type Rejection = 'untrusted' | 'malformed' | 'missing' | 'timeout';

const EMPTY = Buffer.alloc(0);

/** The PROXY protocol stage (see the module comment). One per connection. */
export class ProxyProtocolDecoder extends ChannelInboundHandler {
  private readonly config: ProxyProtocolConfig;
  /** Bytes of a header split across reads (made only then). */
  private cum: Buffer | null = null;
  private cumLength = 0;
  private timer: Timeout | undefined;
  private ctx: HandlerContext | undefined;
  private started = false;
  private done = false;
  private trusted = false;
  /** We took `onActive`: the next handlers hear it once the header is in. */
  private heldActive = false;
  /** Decided by the caller (the server, from accept(2)'s packed peer), or undefined: decide here. */
  private readonly trustedPeer: boolean | undefined;

  /**
   * @param options validated here, or a `ProxyProtocolConfig` shared by many connections
   * @param trustedPeer whether the socket's peer is in `trusted`, when the caller knows (the server
   *   decides from the packed peer of accept(2)); otherwise the decoder checks `socketRemoteAddress`
   */
  constructor(options: ProxyProtocolOptions | ProxyProtocolConfig, trustedPeer?: boolean) {
    super();
    this.config = options instanceof ProxyProtocolConfig ? options : new ProxyProtocolConfig(options, 'options');
    this.trustedPeer = trustedPeer;
  }

  handlerRemoved(): void {
    this.release();
  }

  override onActive(ctx: HandlerContext): void {
    this.heldActive = true;
    this.start(ctx);
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    if (this.done || !(msg instanceof Uint8Array)) {
      ctx.fireRead(msg);
      return;
    }
    if (!this.started && !this.start(ctx)) return;
    const prior = this.cumLength;
    if (prior === 0) {
      this.examine(ctx, msg, msg.length);
      if (!this.done && this.cumLength === 0) this.keep(msg);
      return;
    }
    this.keep(msg);
    this.examine(ctx, this.cum as Buffer, this.cumLength);
  }

  override onInputShutdown(ctx: HandlerContext): void {
    if (!this.done) {
      // The peer will send nothing more (half-open): what we have is all there is.
      if (this.cumLength > 0 && this.trusted)
        this.reject(ctx, 'malformed', 'the peer ended in the middle of the header');
      else if (this.config.required) this.reject(ctx, 'missing', 'the peer ended before sending a header');
      else {
        this.finish(ctx, undefined, this.cum ?? EMPTY, 0, this.cumLength, false);
        ctx.fireInputShutdown();
      }
      return;
    }
    ctx.fireInputShutdown();
  }

  override onUserEvent(ctx: HandlerContext, event: unknown): void {
    // The server stops: a connection that never began has nothing to finish.
    if (event === DRAINING && !this.done) {
      this.done = true;
      this.release();
      ctx.close('shutdown');
      return;
    }
    ctx.fireUserEvent(event);
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.done = true;
    this.release();
    ctx.fireInactive(reason);
  }

  /** Decides trust and starts the header timeout; false when the connection was closed for it. */
  private start(ctx: HandlerContext): boolean {
    if (this.started) return !this.done;
    this.started = true;
    this.ctx = ctx;
    const cfg = this.config;
    this.trusted = this.trustedPeer ?? cfg.trusted.contains(ctx.channel.socketRemoteAddress);
    if (!this.trusted && cfg.required) {
      this.reject(ctx, 'untrusted', 'not a trusted source, and a header is required');
      return false;
    }
    if (cfg.timeout > 0) this.timer = ctx.channel.timers.schedule(cfg.timeout, this.onTimeout);
    return true;
  }

  /**
   * Looks at the first `end` bytes of the connection (`buf`, the read itself or the cumulation),
   * during a read; finishes or rejects when it can tell, else leaves them to be kept.
   */
  private examine(ctx: HandlerContext, buf: Uint8Array, end: number): void {
    const sig = detectSignature(buf, 0, end);
    if (sig === Signature.None) {
      if (this.trusted && this.config.required) {
        this.reject(ctx, 'missing', 'the connection does not start with a PROXY protocol header');
      } else {
        this.finish(ctx, undefined, buf, 0, end, true);
      }
      return;
    }
    if (sig === Signature.Partial) return;
    if (!this.trusted) {
      this.reject(ctx, 'untrusted', 'sent a PROXY protocol header but is not a trusted source');
      return;
    }
    let parsed: ReturnType<typeof parseProxyHeader>;
    try {
      parsed = parseProxyHeader(buf, 0, end, sig);
    } catch (err) {
      this.reject(ctx, 'malformed', (err as Error).message);
      return;
    }
    if (parsed !== undefined) this.finish(ctx, parsed.header, buf, parsed.length, end, true);
  }

  /** Keeps a piece of an incomplete header (at most a v2 header's maximum: the parser bounds v1). */
  private keep(bytes: Uint8Array): void {
    const n = bytes.length;
    const need = this.cumLength + n;
    let cum = this.cum;
    if (cum === null || need > cum.length) {
      const bigger = Buffer.allocUnsafe(Math.min(Math.max(need, 2 * (cum?.length ?? 0), 128), V2_MAX_LENGTH + n));
      if (cum !== null) cum.copy(bigger, 0, 0, this.cumLength);
      cum = this.cum = bigger;
    }
    cum.set(bytes, this.cumLength);
    this.cumLength = need;
  }

  /**
   * The header is in (or, optional, absent): report it, leave the pipeline, let the next handlers
   * start, and give them the bytes after the header — in this read when called from one.
   */
  private finish(
    ctx: HandlerContext,
    header: ProxyHeader | undefined,
    buf: Uint8Array,
    length: number,
    end: number,
    inRead: boolean,
  ): void {
    this.done = true;
    const stats = this.config.stats;
    const channel = ctx.channel;
    if (header === undefined) stats.withoutHeader++;
    else {
      if (header.command === 'LOCAL') stats.local++;
      else if (header.version === 1) stats.v1++;
      else stats.v2++;
      channel.setProxiedAddresses(header);
    }
    // A view: of the loop's read buffer (valid during this read, as for any handler) or of our
    // cumulation, which we let go of here.
    const rest = end > length ? buf.subarray(length, end) : undefined;
    this.release();
    ctx.pipeline.remove(ctx);
    if (this.heldActive) {
      this.heldActive = false;
      ctx.fireActive();
    }
    if (rest !== undefined && channel.isActive) {
      ctx.fireRead(rest);
      // From a timer, not a read: nobody else will say the read is complete (and flush).
      if (!inRead) ctx.fireReadComplete();
    }
  }

  private reject(ctx: HandlerContext, why: Rejection, detail: string): void {
    this.done = true;
    this.release();
    this.config.stats[why]++;
    const channel = ctx.channel;
    const peer = channel.socketRemoteAddress;
    this.config.logger.debug(
      `PROXY protocol: closing connection ${channel.id}${peer === undefined ? '' : ` from ${formatHostPort(peer.address, peer.port)}`} (${why}): ${detail}`,
    );
    // Nothing was sent and nothing will be: close now (spec §2.1, "abort the connection as soon as
    // possible so that the sender gets a chance to notice the anomaly and log it").
    channel.abort('protocol-error');
  }

  private readonly onTimeout = (): void => {
    this.timer = undefined;
    const ctx = this.ctx;
    if (this.done || ctx === undefined) return;
    if (this.config.required) {
      this.reject(ctx, 'timeout', `no complete header within ${this.config.timeout} ms`);
    } else if (this.cumLength > 0 && detectSignature(this.cum as Buffer, 0, this.cumLength) !== Signature.Partial) {
      // A trusted peer's header begun and never completed.
      this.reject(ctx, 'timeout', `no complete header within ${this.config.timeout} ms`);
    } else {
      // Optional, and what came (if anything) is too short to be a header: go on without one.
      this.finish(ctx, undefined, this.cum ?? EMPTY, 0, this.cumLength, false);
    }
  };

  private release(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.cum = null;
    this.cumLength = 0;
  }
}
