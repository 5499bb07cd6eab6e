/**
 * The echo server: frames are a 2-byte big-endian length and that many bytes of payload; each
 * frame goes back framed the same way.
 *
 *   node dist/examples/echo-server.js --host 127.0.0.1 --port 0 --workers 0 --poller epoll --trigger level
 *
 * Prints `listening on HOST:PORT` once it accepts connections; stops cleanly on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import {
  ChannelInboundHandler,
  type HandlerContext,
  LengthFieldFrameDecoder,
  Pipeline,
  type PollerKind,
  Server,
} from '../src/index.js';

/** Writes every frame back; the connection flushes when the read completes. */
class EchoHandler extends ChannelInboundHandler<Buffer> {
  override onRead(ctx: HandlerContext, frame: Buffer): void {
    ctx.write(frame);
  }
}

class EchoPipeline extends Pipeline {
  override initChannel(): void {
    // Keep the header on the frame (no strip): the echo is the frame as it came.
    this.addLast('frames', new LengthFieldFrameDecoder({ lengthFieldLength: 2, maxFrameLength: 2 + 0xffff }));
    this.addLast('echo', new EchoHandler());
  }
}

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '7000' },
    workers: { type: 'string', default: '0' },
    poller: { type: 'string', default: 'epoll' },
    trigger: { type: 'string', default: 'level' },
  },
});

const server = await Server.listen({
  host: values.host,
  port: Number(values.port),
  workers: Number(values.workers),
  poller: values.poller as PollerKind,
  trigger: values.trigger as 'level' | 'edge',
  pipeline: EchoPipeline,
});

const { address, family, port } = server.address();
console.log(`listening on ${family === 'IPv6' ? `[${address}]` : address}:${port}`);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  console.error(`${signal}: closing (${server.connections} connections open)`);
  server.close().then(
    () => {
      process.exitCode = 0;
    },
    (err: unknown) => {
      console.error('close failed', err);
      process.exitCode = 1;
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
