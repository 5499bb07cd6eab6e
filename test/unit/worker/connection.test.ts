/**
 * Connection alone, on a real kernel socket without TCP: one end of an AF_UNIX stream pair is the
 * connection, the test reads and writes the other end with plain syscalls. Reads reaching the
 * pipeline, writes reaching the peer in order, the watermarks (unwritable past the high one,
 * reading paused, both back below the low one), a graceful close that flushes first, the peer's
 * FIN with and without half-open, abort, and writes after the close. Each case runs on both
 * pollers and triggers.
 */
import { Buffer } from 'node:buffer';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { silentLogger } from '../../../src/common/logger.js';
import { ChannelInboundHandler, type CloseReason } from '../../../src/pipeline/handler.js';
import { type HandlerContext, Pipeline } from '../../../src/pipeline/pipeline.js';
import { AF_UNIX, EAGAIN, SHUT_WR, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_STREAM } from '../../../src/syscalls/constants.js';
import { close, read, shutdown, socketpair, write } from '../../../src/syscalls/libc.js';
import { Connection } from '../../../src/worker/connection.js';
import { EventLoop } from '../../../src/worker/loop.js';
import { type ConnectionOptions, resolveConnectionOptions } from '../../../src/worker/options.js';

/** Records what the pipeline hears; `onData` lets a test react to reads. */
class Probe extends ChannelInboundHandler {
  readonly reads: string[] = [];
  readonly writability: boolean[] = [];
  inputShutdown = false;
  inactive: CloseReason | undefined;
  onData: ((ctx: HandlerContext, data: Buffer) => void) | undefined;

  override onRead(ctx: HandlerContext, msg: unknown): void {
    const data = Buffer.from(msg as Buffer); // the read view is only valid now
    this.reads.push(data.toString('latin1'));
    this.onData?.(ctx, data);
  }
  override onWritabilityChanged(_ctx: HandlerContext, writable: boolean): void {
    this.writability.push(writable);
  }
  override onInputShutdown(): void {
    this.inputShutdown = true;
  }
  override onInactive(_ctx: HandlerContext, reason: CloseReason): void {
    this.inactive = reason;
  }
  get received(): string {
    return this.reads.join('');
  }
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

for (const [poller, trigger] of [
  ['epoll', 'level'],
  ['epoll', 'edge'],
  ['poll', 'level'],
  ['poll', 'edge'],
] as const) {
  describe(`worker/connection (${poller}, ${trigger})`, function () {
    this.timeout(15_000);
    let loop: EventLoop;
    const peers: number[] = [];
    const conns: Connection[] = [];

    beforeEach(() => {
      loop = new EventLoop({ poller, trigger, logger: silentLogger });
    });

    afterEach(async () => {
      for (const c of conns.splice(0)) c.abort();
      for (const fd of peers.splice(0)) close(fd);
      await loop.close();
    });

    /** A connection on one end of a socket pair; returns it, its probe, and the peer's fd. */
    function open(options: ConnectionOptions = {}): { conn: Connection; probe: Probe; peer: number } {
      const pair = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (typeof pair === 'number') throw new Error(`socketpair failed: ${pair}`);
      const [fd, peer] = pair;
      peers.push(peer);
      const probe = new Probe();
      const conn = new Connection(
        { loop, pipeline: () => new Pipeline().addLast('probe', probe), options: resolveConnectionOptions(options) },
        fd,
      );
      expect(conn.open()).to.equal(true);
      conns.push(conn);
      return { conn, probe, peer };
    }

    /** Reads what the peer has now (non-blocking); '' when nothing; null at EOF. */
    function peerRead(peer: number): string | null {
      const buf = Buffer.alloc(256 * 1024);
      let out = '';
      for (;;) {
        const n = read(peer, buf, buf.length);
        if (n > 0) out += buf.toString('latin1', 0, n);
        else if (n === 0) return out === '' ? null : out;
        else if (n === -EAGAIN) return out;
        else throw new Error(`read failed: ${n}`);
      }
    }

    function peerWrite(peer: number, text: string): void {
      const b = Buffer.from(text, 'latin1');
      expect(write(peer, b, b.length)).to.equal(b.length);
    }

    it('reads reach the pipeline; writes reach the peer in order, flushed when the read completes', async () => {
      const { probe, peer } = open();
      probe.onData = (ctx, data) => {
        ctx.write(Buffer.from('<'));
        ctx.write(data);
        ctx.write('>'); // strings are written as UTF-8
      };
      peerWrite(peer, 'hello');
      await until('the echo', () => probe.received === 'hello');
      let got = '';
      await until('the answer', () => {
        got += peerRead(peer) ?? '';
        return got === '<hello>';
      });
    });

    it('past the high watermark it turns unwritable and stops reading; below the low one both come back', async () => {
      const { conn, probe, peer } = open({ highWaterMark: 64 * 1024, lowWaterMark: 16 * 1024 });
      const big = Buffer.alloc(4 * 1024 * 1024, 0x61);
      probe.onData = (ctx, data) => {
        if (data.toString('latin1') === 'go') ctx.writeAndFlush(big);
      };
      peerWrite(peer, 'go');
      await until('unwritable', () => probe.writability.includes(false));
      expect(conn.isWritable).to.equal(false);
      expect(conn.pendingWriteBytes).to.be.greaterThan(64 * 1024);
      // While our queue is full the peer's further bytes are not read.
      peerWrite(peer, 'more');
      await sleep(50);
      expect(probe.received).to.equal('go');
      // The peer reads: the queue drains, writability and reading come back.
      let total = 0;
      await until('drained', () => {
        total += (peerRead(peer) ?? '').length;
        return total === big.length;
      });
      await until('writable again', () => conn.isWritable);
      expect(probe.writability).to.deep.equal([false, true]);
      expect(conn.pendingWriteBytes).to.equal(0);
      await until('the held bytes read', () => probe.received === 'gomore');
    });

    it('close() flushes what is queued, then closes; the peer reads every byte, then EOF', async () => {
      const { conn, probe, peer } = open({ lingerTimeout: 0 });
      const body = Buffer.alloc(1024 * 1024, 0x62);
      conn.write(body);
      conn.close();
      expect(conn.isActive, 'still flushing').to.equal(true);
      let total = 0;
      let eof = false;
      await until('EOF after every byte', () => {
        const r = peerRead(peer);
        if (r === null) eof = true;
        else total += r.length;
        return eof;
      });
      expect(total).to.equal(body.length);
      await until('closed', () => probe.inactive !== undefined);
      expect(probe.inactive).to.equal('local');
      expect(conn.bytesWritten).to.equal(body.length);
    });

    it("the peer's FIN closes the connection after flushing (peer-closed)", async () => {
      const { probe, peer } = open();
      probe.onData = (ctx) => ctx.write('bye');
      peerWrite(peer, 'x');
      expect(shutdown(peer, SHUT_WR)).to.equal(0);
      await until('closed', () => probe.inactive !== undefined);
      expect(probe.inactive).to.equal('peer-closed');
      expect(probe.inputShutdown).to.equal(false);
      let got = '';
      await until('the answer, then EOF', () => {
        const r = peerRead(peer);
        if (r === null) return true;
        got += r;
        return false;
      });
      expect(got).to.equal('bye');
    });

    it('with allowHalfOpen the pipeline hears the FIN and may still write', async () => {
      const { conn, probe, peer } = open({ allowHalfOpen: true, lingerTimeout: 0 });
      expect(shutdown(peer, SHUT_WR)).to.equal(0);
      await until('input shutdown', () => probe.inputShutdown);
      expect(conn.isActive).to.equal(true);
      expect(conn.isInputShutdown).to.equal(true);
      conn.writeAndFlush('late answer');
      let got = '';
      await until('the late answer', () => {
        got += peerRead(peer) ?? '';
        return got === 'late answer';
      });
      conn.close();
      await until('closed', () => probe.inactive !== undefined);
      expect(probe.inactive).to.equal('local');
    });

    it('abort() drops the queue and closes at once; later writes are dropped and counted', async () => {
      const { conn, probe, peer } = open({ highWaterMark: 1024 * 1024 });
      // Fill the socket buffer so that the rest has to queue.
      conn.writeAndFlush(Buffer.alloc(2 * 1024 * 1024, 0x63));
      expect(conn.pendingWriteBytes).to.be.greaterThan(0);
      conn.abort();
      expect(conn.isActive).to.equal(false);
      expect(conn.pendingWriteBytes).to.equal(0);
      expect(probe.inactive).to.equal('aborted');
      const dropped = loop.stats.droppedWrites;
      conn.write('after');
      expect(loop.stats.droppedWrites).to.equal(dropped + 1);
      // The peer sees the bytes that made it into the kernel, then the end.
      await until('EOF or reset', () => {
        try {
          return peerRead(peer) === null;
        } catch {
          return true; // ECONNRESET: closing with unread data may reset
        }
      });
    });
  });
}
