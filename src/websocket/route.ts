/**
 * A WebSocket route in an HTTP server: the handshake answered by an `http()` handler, then the
 * connection taken away from HTTP (`res.takeConnection`, docs/http.md "Upgrade and CONNECT").
 *
 * ```ts
 * const chat = websocketRoute((ws, req) => {
 *   ws.onMessage = (data, isBinary) => ws.send(data, isBinary);
 * }, { heartbeat: { interval: 15_000 } });
 *
 * await Server.listen({
 *   port: 8080,
 *   pipeline: http((req, res) => {
 *     if (req.path === '/ws') return chat(req, res);
 *     res.end('hello');
 *   }),
 * });
 * ```
 *
 * The request is checked as on a WebSocket-only port (handshake.ts: 426, 400, 403 …; a refusal is
 * an ordinary HTTP response, after which a keep-alive connection goes on with HTTP). Accepted, the
 * 101 goes out in its turn among the connection's responses, the HTTP stages leave, and the
 * WebSocket's take their place with the bytes that followed the request. The HTTP server's
 * timeouts end with the switch (`idleTimeout: 0`): the WebSocket's own liveness (heartbeat,
 * `idleTimeout`) takes over, and a server reload reaches it as a 1001 close.
 */
import type { HttpRequest } from '../codec/http1/request.js';
import type { HttpResponse } from '../codec/http1/response.js';
import {
  type ConnectionHandler,
  handshake,
  installWebSocket,
  ROUTE_KEYS,
  WebSocketServerConfig,
  type WebSocketServerOptions,
} from './handshake.js';

/** The options of a route: those of `websocket()` but the handshake limits (the HTTP stage has its own). */
export type WebSocketRouteOptions = Omit<WebSocketServerOptions, 'handshakeTimeout' | 'maxHeaderSize'>;

/**
 * A handler for the requests of one path of an `http()` server: answers the WebSocket handshake
 * and hands the connection to a WebSocket, `onConnection(ws, req)` as on a dedicated port (see
 * {@link websocket}). A refused handshake is an ordinary HTTP response (a keep-alive connection
 * goes on with HTTP); an accepted one goes out in its turn among the connection's responses, then
 * the HTTP stages leave and the HTTP timeouts end: the WebSocket's own liveness (`heartbeat`,
 * `idleTimeout`) takes over. Options are checked now (`InvalidOptionError`).
 *
 * @example
 * ```ts
 * import { http, router, Server, websocketRoute } from 'multireactor';
 *
 * const app = router();
 * app.get('/', (req, res) => res.setHeader('Content-Type', 'text/html').end('<script>new WebSocket("/ws")</script>'));
 * app.get('/ws', websocketRoute((ws) => {
 *   ws.onMessage = (data, isBinary) => ws.send(data, isBinary); // echo
 * }, { heartbeat: { interval: 15_000 } }));
 * await Server.listen({ port: 8080, pipeline: http(app) });
 * ```
 */
export function websocketRoute(
  onConnection: ConnectionHandler,
  options: WebSocketRouteOptions = {},
): (req: HttpRequest, res: HttpResponse) => void {
  const server = new WebSocketServerConfig(onConnection, options, ROUTE_KEYS);
  return (req, res) => {
    const result = handshake(req, server);
    if (!result.ok) {
      for (const [name, value] of result.headers) {
        // The HTTP stage decides the connection's fate (a refused upgrade closes it; a plain GET keeps it).
        if (name.toLowerCase() !== 'connection') res.setHeader(name, value);
      }
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.writeHead(result.status).end(`${result.message}\n`);
      return;
    }
    for (const [name, value] of result.headers) res.setHeader(name, value);
    res.writeHead(101);
    res.takeConnection(
      (pipeline) => {
        installWebSocket(pipeline, server, req, result.protocol, result.deflate);
      },
      { idleTimeout: 0 },
    );
    res.end();
  };
}
