/**
 * A trial build of a pipeline spec, before a server binds: handlers check their options in their
 * constructors, and most pipelines build their handlers in `initChannel` or a factory — per
 * connection. Without a trial, a bad handler option (`new HeartbeatHandler({ timeout: NaN })`)
 * lets `listen()` succeed and then fails every connection. `Server.listen` builds one pipeline
 * here first, so that such an error rejects `listen()` instead.
 *
 * The trial channel is a channel that never opened: `isActive` false, no addresses, writes
 * dropped, a timing wheel whose clock never moves. `initChannel` (or the factory) runs, then every
 * `handlerAdded`; then every handler is removed again (`handlerRemoved` runs, releasing whatever
 * `handlerAdded` took) and the pipeline is dropped. No `onActive`, no `onInactive`: the handlers of
 * this library do nothing beyond checking their options until a channel is active. A pipeline
 * whose building has effects beyond creating handlers (counting connections, opening resources
 * in a factory) sees one build more than there are connections; docs/pipeline.md says so.
 */
import { InvalidOptionError } from '../common/errors.js';
import { type Logger, silentLogger } from '../common/logger.js';
import { TimingWheel } from '../common/timing-wheel.js';
import type { SocketAddress } from '../syscalls/sockaddr.js';
import { type EffectiveSocketOptions, type SocketOptions, validateSocketOptions } from '../syscalls/socket.js';
import { type Channel, checkProxiedAddresses, type ProxiedAddresses, type Transport } from './channel.js';
import type { CloseReason } from './handler.js';
import { createPipeline, type Pipeline, type PipelineSpec } from './pipeline.js';

const NO_SOCKET_OPTIONS: EffectiveSocketOptions = {
  noDelay: true,
  keepAlive: false,
  userTimeout: 0,
  sendBufferSize: 0,
  receiveBufferSize: 0,
};

/** A channel that never opened (see the module comment). */
class TrialChannel implements Channel, Transport {
  readonly id = 0;
  readonly remoteAddress: SocketAddress | undefined = undefined;
  readonly localAddress: SocketAddress | undefined = undefined;
  readonly socketRemoteAddress: SocketAddress | undefined = undefined;
  readonly socketLocalAddress: SocketAddress | undefined = undefined;
  readonly proxied: ProxiedAddresses | undefined = undefined;
  readonly logger: Logger = silentLogger;
  readonly isActive = false;
  readonly isWritable = false;
  readonly isInputShutdown = false;
  readonly isOutputShutdown = false;
  readonly pendingWriteBytes = 0;
  readonly bytesRead = 0;
  readonly bytesWritten = 0;
  readonly closeReason: CloseReason | undefined = undefined;
  readonly timers = new TimingWheel({ clock: () => 0 });
  readonly isReadingPaused = false;
  autoRead = true;
  /** Errors that reached the tail while building. */
  readonly errors: unknown[] = [];
  built: Pipeline | undefined;

  get pipeline(): Pipeline {
    if (this.built === undefined) throw new Error('the pipeline is not built yet');
    return this.built;
  }

  setProxiedAddresses(proxied: ProxiedAddresses): void {
    checkProxiedAddresses(proxied);
  }
  pauseReading(): void {}
  resumeReading(): void {}
  write(): void {}
  flush(): void {}
  writeAndFlush(): void {}
  close(): void {}
  shutdownOutput(): void {}
  abort(): void {}
  setSocketOptions(options: SocketOptions): void {
    validateSocketOptions(options);
  }
  getSocketOptions(): EffectiveSocketOptions {
    return NO_SOCKET_OPTIONS;
  }
  countRequest(): void {}

  transportWrite(): void {}
  transportFlush(): void {}
  transportClose(): void {}
  transportShutdownOutput(): void {}
  unhandledError(error: unknown): void {
    this.errors.push(error);
  }
  unhandledMessage(): void {}
}

/**
 * Builds one pipeline from `spec` on a channel that never opened and tears it down again; throws
 * what building it threw — an `InvalidOptionError` as it is, anything else as an
 * `InvalidOptionError` for `pipeline` whose `cause` is the error.
 */
export function tryPipeline(spec: PipelineSpec): void {
  const ch = new TrialChannel();
  try {
    const pipeline = createPipeline(spec, ch);
    ch.built = pipeline;
    pipeline.attach(ch, ch);
    // handlerRemoved errors reach the tail too.
    for (const name of pipeline.names()) pipeline.remove(name);
  } catch (err) {
    ch.errors.unshift(err);
  } finally {
    ch.timers.clear();
  }
  if (ch.errors.length === 0) return;
  const err = ch.errors[0];
  if (err instanceof InvalidOptionError) throw err;
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  throw new InvalidOptionError('pipeline', `building one (before listening) failed: ${message}`, { cause: err });
}
