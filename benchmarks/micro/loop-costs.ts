/**
 * Micro costs of the loop's building blocks (tinybench): FFI calls that fail fast, event
 * decoding, and one pipelined batch through a decoder → handler → connection-style queue.
 * These are the figures ARCHITECTURE.md budgets with; re-run them after changing the hot path.
 *
 *   node dist/benchmarks/micro/loop-costs.js
 */
import { Bench } from 'tinybench';
import {
  ChannelInboundHandler,
  EmbeddedChannel,
  type HandlerContext,
  LengthFieldFrameDecoder,
} from '../../src/index.js';
import { EFD_CLOEXEC, EFD_NONBLOCK, EPOLL_CLOEXEC, LAYOUT } from '../../src/syscalls/constants.js';
import * as sys from '../../src/syscalls/libc.js';
import { scriptCli } from '../common/cli.js';

scriptCli(import.meta.url, {}); // no options: --help, or a clear error for any

const efd = sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
const epfd = sys.epollCreate1(EPOLL_CLOEXEC);
const buf = Buffer.alloc(65536);
const events = new Uint32Array((256 * LAYOUT.epollEventSize) / 4);
for (let i = 0; i < events.length; i++) events[i] = i;
const stride = LAYOUT.epollEventSize / 4;
const dataAt = LAYOUT.epollEventDataOffset / 4;

// 16 pipelined 64-byte frames, echoed through a real decoder and handler.
const frame = Buffer.alloc(66, 0x61);
frame.writeUInt16BE(64, 0);
const batch = Buffer.concat(Array.from({ length: 16 }, () => frame));
class Echo extends ChannelInboundHandler<Buffer> {
  override onRead(ctx: HandlerContext, msg: Buffer): void {
    ctx.write(msg);
  }
}
const ch = new EmbeddedChannel([new LengthFieldFrameDecoder({ lengthFieldLength: 2 }), new Echo()]);

let sink = 0;
const bench = new Bench({ name: 'loop building blocks', time: 500 });
bench
  .add('read() on an empty eventfd → -EAGAIN (koffi)', () => {
    sink += sys.read(efd, buf, 8);
  })
  .add('epoll_wait(…, 0) on an empty set (koffi)', () => {
    sink += sys.epollWait(epfd, events, 256, 0);
  })
  .add('decode 256 events from Uint32Array views', () => {
    for (let i = 0, at = 0; i < 256; i++, at += stride) {
      sink += ((events[at + dataAt] as number) ^ (events[at + dataAt + 1] as number)) + (events[at] as number);
    }
  })
  .add('16 pipelined 64 B frames: decode + echo handler + flush (no socket)', () => {
    ch.writeInbound(batch);
    ch.outbound.length = 0;
  });

await bench.run();
console.log(`${bench.name} — Node ${process.version}, ${process.arch}`);
console.table(bench.table());
sys.close(efd);
sys.close(epfd);
if (sink === Number.MIN_SAFE_INTEGER) console.log(sink);
