// uWebSockets.js serving the HTTP benchmark's endpoints (as bench-app.ts does for multireactor), N
// processes on one port (uSockets binds with SO_REUSEPORT on Linux). A benchmark peer, not a
// dependency: install it into a scratch folder D outside the repository —
//   cd D && npm install @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0
// (the official package is not on npm; this republished build loads on this machine's glibc) —
// then `PORT=8086 WORKERS=2 NODE_PATH=D/node_modules node benchmarks/http/uws-app.cjs`, or
// `run.js --uws D`.
const { fork } = require('node:child_process');
const PORT = +process.env.PORT || 8086;
const N = +process.env.WORKERS || 2;
if (!process.env.UWS_CHILD) {
  let ready = 0;
  for (let i = 0; i < N; i++) {
    fork(__filename, [], { env: { ...process.env, UWS_CHILD: '1' } }).on('message', () => {
      if (++ready === N) console.log(`listening on 127.0.0.1:${PORT}`);
    });
  }
  process.on('SIGTERM', () => process.exit(0));
} else {
  const uWS = require(process.env.UWS_PKG || '@trufflesuite/uws-js-unofficial');
  const BIG = Buffer.alloc(16 * 1024, 'x');
  const plaintext = (res) => {
    res.writeHeader('Server', 'uws').writeHeader('Content-Type', 'text/plain').end('Hello, World!');
  };
  uWS
    .App()
    .get('/plaintext', plaintext)
    .get('/api/*', plaintext)
    .get('/json', (res) => {
      res
        .writeHeader('Server', 'uws')
        .writeHeader('Content-Type', 'application/json')
        .end(JSON.stringify({ message: 'Hello, World!' }));
    })
    .post('/echo', (res, req) => {
      // uWS hands the body over in chunks; they are copied (the ArrayBuffer is only valid in the callback).
      const type = req.getHeader('content-type');
      const chunks = [];
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      res.onData((chunk, last) => {
        chunks.push(Buffer.from(chunk.slice(0)));
        if (!last || aborted) return;
        if (!/^application\/json/i.test(type)) {
          res.cork(() => res.writeStatus('415 Unsupported Media Type').end());
          return;
        }
        let order;
        try {
          order = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          res.cork(() => res.writeStatus('400 Bad Request').end());
          return;
        }
        res.cork(() =>
          res
            .writeHeader('Server', 'uws')
            .writeHeader('Content-Type', 'application/json')
            .end(JSON.stringify({ items: order.items.length })),
        );
      });
    })
    .get('/16k', (res) => {
      res.writeHeader('Server', 'uws').writeHeader('Content-Type', 'text/plain').end(BIG);
    })
    .listen('127.0.0.1', PORT, (t) => {
      if (!t) {
        console.error('listen failed');
        process.exit(1);
      }
      process.send?.('ready');
    });
}
