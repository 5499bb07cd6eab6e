/**
 * multireactor's server for benchmarks/pubsub: WebSockets at any path; `?role=publisher` makes a
 * connection a publisher (each message it sends is published to the topic `bench`), any other is
 * a member of `bench`. In-cluster mode (the workers relay through their master) unless `--redis`
 * names a Redis, through which several servers share the topic.
 *
 *   node dist/benchmarks/pubsub/server.js --port 9121 --workers 2 [--redis redis://127.0.0.1:6379]
 */
import { announce, listenOrExit } from '../../examples/cli.js';
import { PubSub, websocket } from '../../src/index.js';
import { scriptCli } from '../common/cli.js';

const values = scriptCli(import.meta.url, {
  host: { type: 'string', default: '127.0.0.1' },
  port: { type: 'string', default: '9121', integer: [1, 65535] },
  workers: { type: 'string', default: '2', integer: [0, 64] },
  redis: { type: 'string' },
});

const pubsub = new PubSub(values.redis !== undefined ? { redis: { url: values.redis, clientName: 'bench' } } : {});

announce(
  await listenOrExit('pubsub bench server', {
    host: values.host,
    port: values.port,
    workers: values.workers,
    maxConnections: 20_000,
    pipeline: websocket(
      (ws, req) => {
        if (new URLSearchParams(req.queryString).get('role') === 'publisher') {
          // Lent for the call only (copyMessages: false): publish encodes it before returning.
          ws.onMessage = (data, isBinary) => {
            pubsub.publish('bench', data, { binary: isBinary });
          };
        } else pubsub.join('bench', ws);
      },
      { copyMessages: false },
    ),
  }),
);
