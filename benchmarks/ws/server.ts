/**
 * multireactor's WebSocket server for benchmarks/ws: `echo` (every message back) or `broadcast`
 * (every message published to every connection of the worker, the sender included, through one
 * WebSocketGroup: encode once, write many).
 *
 * The echo lends each message to its callback (`copyMessages: false`, what uWebSockets.js does);
 * `--copy-messages` gives it memory of its own, as `ws` does.
 *
 *   node dist/benchmarks/ws/server.js --mode echo|broadcast --port 9001 --workers 2 [--max-connections 20000] [--copy-messages]
 */

import { announce, listenOrExit } from '../../examples/cli.js';
import { type ServerOptions, WebSocketGroup, websocket } from '../../src/index.js';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  mode: { type: 'string', default: 'echo' },
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '9001' },
  workers: { type: 'string', default: '2' },
  'max-connections': { type: 'string', default: '20000' },
  'copy-messages': { type: 'boolean', default: false },
});

const room = new WebSocketGroup();
const pipeline =
  values.mode === 'broadcast'
    ? websocket((ws) => {
        room.join(ws);
        ws.onMessage = (data, isBinary) => {
          room.publish(data, isBinary);
        };
      })
    : websocket(
        (ws) => {
          ws.onMessage = function (data, isBinary) {
            this.send(data, isBinary);
          };
        },
        { copyMessages: values['copy-messages'] },
      );

const options: ServerOptions = {
  host: values.host,
  port: Number(values.port),
  workers: Number(values.workers),
  maxConnections: Number(values['max-connections']),
  pipeline,
};
announce(await listenOrExit('ws bench server', options));
