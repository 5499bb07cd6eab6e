/**
 * WebSocket (RFC 6455) and permessage-deflate (RFC 7692) on the pipeline: docs/websocket.md.
 */

export {
  connectWebSocket,
  parseWebSocketUrl,
  WebSocketClientConfig,
  WebSocketClientHandshake,
  type WebSocketClientOptions,
  WebSocketHandshakeError,
  WebSocketOpenEvent,
  websocketClientPipeline,
  websocketClientTls,
} from './client.js';
export type { PerMessageDeflateOptions } from './deflate.js';
export {
  CLOSE_ABNORMAL,
  CLOSE_GOING_AWAY,
  CLOSE_INTERNAL_ERROR,
  CLOSE_INVALID_PAYLOAD,
  CLOSE_NO_STATUS,
  CLOSE_NORMAL,
  CLOSE_POLICY,
  CLOSE_PROTOCOL_ERROR,
  CLOSE_TOO_BIG,
  isValidCloseCode,
} from './frame.js';
export { type PublishResult, WebSocketGroup } from './group.js';
export {
  acceptKey,
  type ConnectionHandler,
  type HandshakeResult,
  handshake,
  installWebSocket,
  WebSocketHandshakeHandler,
  WebSocketServerConfig,
  type WebSocketServerOptions,
  websocket,
} from './handshake.js';
export { WebSocketHeartbeat } from './heartbeat.js';
export type { BackpressurePolicy, WebSocketHeartbeatOptions, WebSocketOptions } from './options.js';
export { type WebSocketRouteOptions, websocketRoute } from './route.js';
export {
  type CloseCallback,
  type ControlCallback,
  type MessageCallback,
  WebSocket,
  WebSocketHandler,
  type WebSocketState,
} from './websocket.js';
