/**
 * Micro costs of the loop's building blocks (tinybench): FFI calls that fail fast, event
 * decoding, and one pipelined batch through a decoder → handler → connection-style queue. Then,
 * outside tinybench (libuv drives it), what a wake-up through Node's loop costs against asking
 * epoll again within one (EpollPoller's `maxWaits`): two eventfds kept ready, each event answered
 * by reading its eventfd and writing it again.
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
import { EpollPoller } from '../../src/worker/epoll-poller.js';
import { READABLE } from '../../src/worker/poller.js';
import { scriptCli } from '../common/cli.js';
import { median } from '../common/measure.js';

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

/**
 * ns of CPU per event, with `maxWaits` epoll_wait calls per wake-up: two eventfds kept ready, so
 * every batch holds two events (after a batch of one, the poller would not ask again).
 */
async function eventCost(maxWaits: number, events: number): Promise<number> {
  const poller = new EpollPoller({ maxWaits });
  const fds = [sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC), sys.eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)];
  let seen = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const before = process.cpuUsage();
  poller.start(
    (fd) => {
      sys.eventfdRead(fd);
      if (++seen < events) sys.eventfdWrite(fd, 1);
      else done();
    },
    () => {},
  );
  for (const [i, fd] of fds.entries()) {
    poller.register(fd, i + 1, READABLE);
    sys.eventfdWrite(fd, 1);
  }
  await finished;
  const used = process.cpuUsage(before);
  await poller.close();
  for (const fd of fds) sys.close(fd);
  return ((used.user + used.system) * 1000) / events;
}

await bench.run();
console.log(`${bench.name} — Node ${process.version}, ${process.arch}`);
console.table(bench.table());
sys.close(efd);
sys.close(epfd);

const viaLibuv: number[] = [];
const askedAgain: number[] = [];
for (let round = 0; round < 5; round++) {
  viaLibuv.push(await eventCost(1, 100_000));
  askedAgain.push(await eventCost(8, 100_000));
}
console.table({
  'batches of 2 events, each heard through a libuv wake-up (maxWaits 1)': {
    'ns CPU per event (median of 5)': median(viaLibuv),
  },
  'batches of 2 events, asked for again in the same wake-up (maxWaits 8)': {
    'ns CPU per event (median of 5)': median(askedAgain),
  },
});
if (sink === Number.MIN_SAFE_INTEGER) console.log(sink);
