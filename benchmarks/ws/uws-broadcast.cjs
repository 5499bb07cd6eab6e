// uWebSockets.js broadcast server for benchmarks/ws: every socket subscribes to one topic and every
// message is published to it (`app.publish`, the sender included). N processes on one port, like
// bench-ref/uws-ws-echo.cjs. Needs @trufflesuite/uws-js-unofficial on NODE_PATH (or UWS_PKG).
const { fork } = require('node:child_process');
const PORT = +process.env.PORT || 8090;
const N = +process.env.WORKERS || 1;
if (!process.env.UWS_CHILD) {
  for (let i = 0; i < N; i++) fork(__filename, [], { env: { ...process.env, UWS_CHILD: '1' } });
  process.on('SIGTERM', () => process.exit(0));
} else {
  const uWS = require(process.env.UWS_PKG || '@trufflesuite/uws-js-unofficial');
  const app = uWS.App();
  app
    .ws('/*', {
      compression: uWS.DISABLED,
      maxPayloadLength: 16 * 1024 * 1024,
      maxBackpressure: 64 * 1024 * 1024,
      idleTimeout: 120,
      open: (ws) => ws.subscribe('all'),
      message: (_ws, message, isBinary) => app.publish('all', message, isBinary),
    })
    .listen('127.0.0.1', PORT, (t) => {
      if (!t) {
        console.error('listen failed');
        process.exit(1);
      }
    });
}
