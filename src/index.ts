/**
 * multireactor: a multi-worker reactor server framework for Node.js.
 *
 * ```ts
 * import { ChannelInboundHandler, type HandlerContext, LengthFieldFrameDecoder, LengthFieldPrepender, Pipeline, Server } from 'multireactor';
 *
 * class Echo extends ChannelInboundHandler {
 *   override onRead(ctx: HandlerContext, frame: unknown): void {
 *     ctx.write(frame); // flushed when the read completes
 *   }
 * }
 * class EchoPipeline extends Pipeline {
 *   override initChannel(): void {
 *     this.addLast('frames', new LengthFieldFrameDecoder({ lengthFieldLength: 2, initialBytesToStrip: 2 }))
 *       .addLast('framer', new LengthFieldPrepender({ lengthFieldLength: 2 }))
 *       .addLast('echo', new Echo());
 *   }
 * }
 * const server = await Server.listen({ host: '127.0.0.1', port: 7000, pipeline: EchoPipeline });
 * ```
 *
 * Start with {@link Server} (and {@link ServerHandle}), {@link Pipeline}, {@link http} and
 * {@link websocket}; the guides are in the package's `docs/` folder (docs/api.md lists them).
 *
 * @module multireactor
 */

export { Client, ClientConnection, type ClientOptions } from './client/client.js';
export type { LookupFunction, ResolvedAddress } from './client/connector.js';
export { Histogram } from './client/histogram.js';
export { type HttpClientOptions, httpClient } from './client/http.js';
export {
  type LatencySummary,
  type LoadErrors,
  type LoadOptions,
  type LoadReport,
  parseDuration,
  runLoad,
} from './client/load.js';
export { Pool, type PoolOptions, type PoolStats, type ReconnectOptions } from './client/pool.js';
export {
  frameIds,
  jsonIds,
  type MessageIds,
  type RequestOptions,
  RequestResponseHandler,
  type RequestResponseOptions,
  type RequestStats,
} from './client/request-response.js';
export { HttpClientCodec, type HttpClientCodecOptions, type HttpClientRequest } from './codec/http1/client.js';
export { type HttpOptions, http } from './codec/http1/http.js';
export * from './codec/http1/index.js';
export {
  type ConnectionInstaller,
  HttpDate,
  HttpResponse,
  ResponseStage,
  type TakeConnectionOptions,
} from './codec/http1/response.js';
export {
  HttpClientResponse,
  HttpResponseDecoder,
  type HttpResponseDecoderOptions,
  HttpResponseError,
} from './codec/http1/response-decoder.js';
export {
  type HttpHandler,
  HttpServerConfig,
  HttpServerHandler,
  type HttpServerHandlerOptions,
} from './codec/http1/server.js';
export * from './codec/index.js';
export {
  PP2_CLIENT,
  PP2_SUBTYPE_AWS_VPCE_ID,
  PP2_SUBTYPE_SSL,
  PP2_TYPE,
  ProxyHeader,
  ProxyProtocolError,
  type ProxySslInfo,
  type ProxyTlv,
} from './codec/proxy-header.js';
export { detectSignature, type ParsedProxyHeader, parseProxyHeader, Signature } from './codec/proxy-parse.js';
export {
  ProxyProtocolConfig,
  ProxyProtocolDecoder,
  type ProxyProtocolOptions,
  type ProxyProtocolStats,
  proxyProtocolStats,
} from './codec/proxy-protocol.js';
export { crc32c } from './common/crc32c.js';
export {
  ChannelClosedError,
  ConnectTimeoutError,
  CorruptedFrameError,
  DecoderError,
  errnoName,
  InvalidOptionError,
  PoolClosedError,
  ProtocolError,
  ReactorError,
  RequestTimeoutError,
  SyscallError,
  TooLongFrameError,
  TooManyPendingError,
  UnsupportedMessageError,
  UnsupportedPlatformError,
} from './common/errors.js';
export {
  adaptLogger,
  consoleLogger,
  type JsonLoggerOptions,
  jsonLogger,
  type Logger,
  type LogLevel,
  silentLogger,
} from './common/logger.js';
export {
  type Timeout,
  type TimerEntry,
  type Timers,
  type TimerTarget,
  TimingWheel,
  type TimingWheelOptions,
} from './common/timing-wheel.js';
export * from './handlers/index.js';
export type {
  ClusterStats,
  MasterHandle,
  MasterPhase,
  MasterStopped,
  ReloadResult,
  WorkerSnapshot,
} from './master/master.js';
export type { WorkerHandle } from './master/worker-side.js';
export * from './offload/index.js';
export type { Channel, ProxiedAddresses, Transport } from './pipeline/channel.js';
export { EmbeddedChannel, type EmbeddedChannelOptions } from './pipeline/embedded.js';
export { DRAINING, ServerDrainingEvent } from './pipeline/events.js';
export {
  ChannelDuplexHandler,
  type ChannelHandler,
  ChannelInboundHandler,
  ChannelOutboundHandler,
  CLOSE_REASONS,
  type CloseReason,
} from './pipeline/handler.js';
export { HandlerContext, Pipeline, type PipelineSpec } from './pipeline/pipeline.js';
export type { ServerStage } from './pipeline/stages.js';
export * from './pubsub/index.js';
export {
  type CloseOptions,
  Server,
  type ServerHandle,
  type ServerOptions,
  type ServerStats,
  type SingleHandle,
} from './server.js';
export type {
  AdminListenOptions,
  ClusterOptions,
  ControlSocketOptions,
  OperationsOptions,
} from './server-options.js';
export type { ServerProxyProtocolOptions } from './server-stages.js';
export type { SocketAddress } from './syscalls/sockaddr.js';
export type { EffectiveSocketOptions, SocketOptions } from './syscalls/socket.js';
export {
  DEFAULT_SERVER_CIPHERS,
  type Pem,
  type TlsCertificateOptions,
  type TlsClientOptions,
  TlsContext,
  TlsHandler,
  TlsHandshakeError,
  type TlsServerOptions,
  TlsSession,
  type TlsStats,
  type TlsVersion,
  tlsSession,
} from './tls/index.js';
export * from './websocket/index.js';
export { EventLoop, type EventLoopOptions, type LoopStats } from './worker/loop.js';
export type { ConnectionOptions, LoopOptions } from './worker/options.js';
export type { PollerKind } from './worker/poller.js';
export type { ServingStats } from './worker/serving.js';
