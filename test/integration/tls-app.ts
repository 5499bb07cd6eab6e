/**
 * A TLS line-echo master for the certificate-rotation test: `node tls-app.js CERT_FILE KEY_FILE`.
 * Two workers; each reads the PEM files when it starts (so a reload serves what the files hold
 * then). Its handler keeps a connection open through a drain (it consumes the draining event), as
 * a long-lived protocol would, so that an old connection outlives the reload of its worker until
 * the client ends it or the drain deadline passes. Prints `listening on HOST:PORT`.
 */
import { readFileSync } from 'node:fs';
import {
  ChannelInboundHandler,
  type HandlerContext,
  LineFrameDecoder,
  Pipeline,
  Server,
  ServerDrainingEvent,
} from '../../src/index.js';

class Echo extends ChannelInboundHandler {
  override onRead(ctx: HandlerContext, line: unknown): void {
    ctx.write(line);
  }
  override onUserEvent(ctx: HandlerContext, event: unknown): void {
    if (event instanceof ServerDrainingEvent) return; // stay: the client decides when to leave
    ctx.fireUserEvent(event);
  }
}

const [certFile, keyFile] = process.argv.slice(2);
const server = await Server.listen({
  host: '127.0.0.1',
  port: 0,
  workers: 2,
  drainTimeout: 30_000,
  tls: { cert: readFileSync(certFile as string), key: readFileSync(keyFile as string) },
  pipeline: () =>
    new Pipeline()
      .addLast('lines', new LineFrameDecoder({ maxLength: 1024, stripDelimiter: false }))
      .addLast('echo', new Echo()),
});
if (server.role === 'master') {
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
}
