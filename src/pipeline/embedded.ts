/**
 * A channel without a socket, for testing handlers and codecs (Netty's EmbeddedChannel).
 *
 * Inbound: `writeInbound(...)` fires reads into the pipeline; whatever reaches the tail is kept
 * for `readInbound()`. Outbound: messages that reach the head and are flushed are kept for
 * `readOutbound()` — as they are, so an encoder's output can be inspected. Errors that reach
 * the tail are kept in `errors` (and `checkException()` rethrows the first). Time is a fake clock
 * advanced by `advanceTime(ms)`, which runs the timers that became due.
 */
import { Buffer } from 'node:buffer';
import { type Logger, silentLogger } from '../common/logger.js';
import { bool, checkOptions, intOption, numberOption, type OptionKeys } from '../common/options.js';
import { TimingWheel } from '../common/timing-wheel.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import { type EffectiveSocketOptions, type SocketOptions, validateSocketOptions } from '../syscalls/socket.js';
import { type Channel, checkProxiedAddresses, type ProxiedAddresses, type Transport } from './channel.js';
import type { ChannelHandler, CloseReason } from './handler.js';
import { createPipeline, Pipeline, type PipelineSpec } from './pipeline.js';

/** The fake clock and the simulated socket of an {@link EmbeddedChannel}. */
export interface EmbeddedChannelOptions {
  /** Start time of the fake clock, in ms. Default 0. */
  readonly startTime?: number;
  /** Tick of the fake timing wheel, in ms. Default 1 (exact). */
  readonly tickMs?: number;
  /** High watermark for the (simulated) outbound queue. Default 64 KiB. */
  readonly highWaterMark?: number;
  /** Allow half-open (see ConnectionOptions.allowHalfOpen). Default false. */
  readonly allowHalfOpen?: boolean;
  /** The (simulated) socket's peer. Default `127.0.0.1` port 0. */
  readonly remoteAddress?: SocketAddress;
  /** The (simulated) socket's own address. Default `127.0.0.1` port 0. */
  readonly localAddress?: SocketAddress;
}

/** The keys of `EmbeddedChannelOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const EMBEDDED_CHANNEL_OPTIONS = {
  startTime: true,
  tickMs: true,
  highWaterMark: true,
  allowHalfOpen: true,
  remoteAddress: true,
  localAddress: true,
} as const satisfies OptionKeys<EmbeddedChannelOptions>;

const EMBEDDED_ADDRESS: SocketAddress = { address: '127.0.0.1', family: 'IPv4', port: 0 };

let nextId = 1;

/**
 * A channel without a socket, for testing handlers and codecs (Netty's `EmbeddedChannel`): it runs
 * a real pipeline on a fake transport and a fake clock, so a test needs no port, no process and
 * no sleeping. `writeInbound(...)` fires reads (then one read-complete) into the pipeline, and
 * whatever reaches the tail is kept for `readInbound()`; what handlers write and flush is kept for
 * `readOutbound()` as it reached the head (an encoder's output, before any byte conversion;
 * `readOutboundBytes()` joins it). Errors that reach the tail are kept in `errors`
 * (`checkException()` rethrows the first). `advanceTime(ms)` moves the clock and fires the
 * timers that came due (idle handlers, heartbeats, HTTP timeouts).
 *
 * @example
 * ```ts
 * import { EmbeddedChannel, LineEncoder, LineFrameDecoder, StringDecoder } from 'multireactor';
 *
 * const ch = new EmbeddedChannel([new LineFrameDecoder(), new StringDecoder(), new LineEncoder()]);
 * ch.writeInbound(Buffer.from('hel'), Buffer.from('lo\nworld\n'));
 * console.log(ch.readInbound(), ch.readInbound()); // 'hello' 'world'
 * ch.writeOutbound('bye');
 * console.log(ch.readOutboundBytes().toString()); // 'bye\n'
 * ch.finish(); // closes it; true when messages are left unread
 * ```
 */
export class EmbeddedChannel implements Channel, Transport {
  readonly id = nextId++;
  readonly pipeline: Pipeline;
  readonly timers: TimingWheel;
  readonly socketRemoteAddress: SocketAddress;
  readonly socketLocalAddress: SocketAddress;
  private proxiedRef: ProxiedAddresses | undefined;
  /** Where stages log (silent unless a test sets one, to see what they log). */
  logger: Logger = silentLogger;
  /** Messages that reached the tail. */
  readonly inbound: unknown[] = [];
  /** Messages flushed out of the head. */
  readonly outbound: unknown[] = [];
  /** Errors that reached the tail. */
  readonly errors: unknown[] = [];
  /** User events that reached the tail are not kept; these are the close reasons seen, in order. */
  closeReason: CloseReason | undefined;
  bytesRead = 0;
  bytesWritten = 0;
  autoRead = true;
  private now: number;
  private unflushed: unknown[] = [];
  private open = true;
  private inputShut = false;
  private outputShut = false;
  private writable = true;
  private readonly highWaterMark: number;
  private readonly allowHalfOpen: boolean;
  private socketOptions: EffectiveSocketOptions = {
    noDelay: true,
    keepAlive: false,
    userTimeout: 0,
    sendBufferSize: 0,
    receiveBufferSize: 0,
  };

  /**
   * @param spec a `Pipeline` (instance, subclass or factory), or the handlers to put in a plain one
   */
  constructor(spec: Pipeline | PipelineSpec | readonly ChannelHandler[] = [], options: EmbeddedChannelOptions = {}) {
    checkOptions('EmbeddedChannel', options, EMBEDDED_CHANNEL_OPTIONS);
    this.now = numberOption('startTime', options.startTime ?? 0, 0, Number.MAX_SAFE_INTEGER);
    this.highWaterMark = intOption('highWaterMark', options.highWaterMark ?? 64 * 1024, 0);
    this.allowHalfOpen = bool('allowHalfOpen', options.allowHalfOpen, false);
    this.socketRemoteAddress = options.remoteAddress ?? EMBEDDED_ADDRESS;
    this.socketLocalAddress = options.localAddress ?? EMBEDDED_ADDRESS;
    this.timers = new TimingWheel({ tickMs: intOption('tickMs', options.tickMs ?? 1, 1), clock: () => this.now });
    let pipeline: Pipeline;
    let handlers: readonly ChannelHandler[] = [];
    if (spec instanceof Pipeline) pipeline = spec;
    else if (typeof spec === 'function') pipeline = createPipeline(spec, this);
    else {
      pipeline = new Pipeline();
      handlers = spec;
    }
    this.pipeline = pipeline;
    pipeline.attach(this, this);
    for (const h of handlers) pipeline.addLast(h);
    pipeline.fireActive();
  }

  // ---- driving ----

  /** Fires each message as a read, then one read-complete. Returns whether anything reached the tail. */
  writeInbound(...msgs: unknown[]): boolean {
    if (!this.open) return false;
    for (const m of msgs) {
      if (m instanceof Uint8Array) this.bytesRead += m.length;
      this.pipeline.fireRead(m);
      if (!this.open) break;
    }
    if (this.open) {
      this.pipeline.fireReadComplete();
      // As a real connection does: what handlers wrote during the read goes out when it completes.
      if (this.unflushed.length > 0) this.transportFlush();
    }
    return this.inbound.length > 0;
  }

  /** Writes each message from the tail and flushes. Returns whether anything reached the head. */
  writeOutbound(...msgs: unknown[]): boolean {
    for (const m of msgs) this.pipeline.write(m);
    this.pipeline.flush();
    return this.outbound.length > 0;
  }

  readInbound<T = unknown>(): T | undefined {
    return this.inbound.shift() as T | undefined;
  }

  readOutbound<T = unknown>(): T | undefined {
    return this.outbound.shift() as T | undefined;
  }

  /** Every flushed outbound chunk concatenated (for byte-level assertions). */
  readOutboundBytes(): Buffer {
    const chunks = this.outbound
      .splice(0)
      .map((m) => (typeof m === 'string' ? Buffer.from(m) : Buffer.from(m as Uint8Array)));
    return Buffer.concat(chunks);
  }

  /** Simulates the peer's FIN. */
  shutdownInput(): void {
    if (!this.open || this.inputShut) return;
    this.inputShut = true;
    if (this.allowHalfOpen) this.pipeline.fireInputShutdown();
    else this.close('peer-closed');
  }

  /** Moves the fake clock forward and runs the timers that came due. */
  advanceTime(ms: number): void {
    this.now += ms;
    this.timers.advance(this.now);
  }

  /** Closes the channel (firing onInactive) and reports whether messages are waiting to be read. */
  finish(): boolean {
    this.close();
    return this.inbound.length > 0 || this.outbound.length > 0;
  }

  /** Rethrows the first error that reached the tail, if any. */
  checkException(): void {
    const e = this.errors.shift();
    if (e !== undefined) throw e;
  }

  // ---- Channel ----

  get remoteAddress(): SocketAddress {
    return this.proxiedRef?.remote ?? this.socketRemoteAddress;
  }
  get localAddress(): SocketAddress {
    return this.proxiedRef?.local ?? this.socketLocalAddress;
  }
  /** What `setProxiedAddresses` was given last. */
  get proxied(): ProxiedAddresses | undefined {
    return this.proxiedRef;
  }
  setProxiedAddresses(proxied: ProxiedAddresses): void {
    checkProxiedAddresses(proxied);
    this.proxiedRef = proxied;
  }

  get isActive(): boolean {
    return this.open;
  }
  get isWritable(): boolean {
    return this.open && this.writable && !this.outputShut;
  }
  get isInputShutdown(): boolean {
    return this.inputShut;
  }
  get isOutputShutdown(): boolean {
    return this.outputShut;
  }
  get pendingWriteBytes(): number {
    let n = 0;
    for (const m of this.unflushed)
      n += m instanceof Uint8Array ? m.length : typeof m === 'string' ? Buffer.byteLength(m) : 0;
    return n;
  }

  /** Who paused reading (`pauseReading`), oldest first. An embedded channel only records them. */
  readonly readHolders: object[] = [];
  pauseReading(holder: object): void {
    if (!this.readHolders.includes(holder)) this.readHolders.push(holder);
  }
  resumeReading(holder: object): void {
    const i = this.readHolders.indexOf(holder);
    if (i >= 0) this.readHolders.splice(i, 1);
  }
  get isReadingPaused(): boolean {
    return this.readHolders.length > 0;
  }

  write(msg: unknown): void {
    this.pipeline.write(msg);
  }
  flush(): void {
    this.pipeline.flush();
  }
  writeAndFlush(msg: unknown): void {
    this.pipeline.writeAndFlush(msg);
  }
  close(reason: CloseReason = 'local'): void {
    this.pipeline.close(reason);
  }
  shutdownOutput(): void {
    this.pipeline.shutdownOutput();
  }
  abort(reason: CloseReason = 'aborted'): void {
    this.doClose(reason);
  }

  /** Records the options (validated as a real connection would); `getSocketOptions` reports them. */
  setSocketOptions(options: SocketOptions): void {
    validateSocketOptions(options);
    const o = this.socketOptions;
    this.socketOptions = {
      noDelay: options.noDelay ?? o.noDelay,
      keepAlive: options.keepAlive === undefined ? o.keepAlive : options.keepAlive,
      userTimeout: options.userTimeout ?? o.userTimeout,
      sendBufferSize: options.sendBufferSize ?? o.sendBufferSize,
      receiveBufferSize: options.receiveBufferSize ?? o.receiveBufferSize,
    };
  }

  getSocketOptions(): EffectiveSocketOptions {
    return this.socketOptions;
  }

  /** Requests counted by handlers (`channel.countRequest()`). */
  requests = 0;

  countRequest(): void {
    this.requests++;
  }

  // ---- Transport ----

  transportWrite(msg: unknown): void {
    if (!this.open || this.outputShut) return;
    this.unflushed.push(msg);
    if (this.writable && this.pendingWriteBytes > this.highWaterMark) {
      this.writable = false;
      this.pipeline.fireWritabilityChanged(false);
    }
  }

  transportFlush(): void {
    for (const m of this.unflushed) {
      if (m instanceof Uint8Array) this.bytesWritten += m.length;
      this.outbound.push(m);
    }
    this.unflushed = [];
    if (!this.writable) {
      this.writable = true;
      this.pipeline.fireWritabilityChanged(true);
    }
  }

  transportClose(reason: CloseReason): void {
    this.transportFlush();
    this.doClose(reason);
  }

  transportShutdownOutput(): void {
    this.transportFlush();
    this.outputShut = true;
    if (this.inputShut) this.doClose('local');
  }

  unhandledError(error: unknown): void {
    this.errors.push(error);
  }

  unhandledMessage(msg: unknown): void {
    this.inbound.push(msg);
  }

  private doClose(reason: CloseReason): void {
    if (!this.open) return;
    this.open = false;
    this.closeReason = reason;
    this.unflushed = [];
    this.timers.clear();
    this.pipeline.fireInactive(reason);
  }
}
