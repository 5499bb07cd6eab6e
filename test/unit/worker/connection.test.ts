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

/** The connection's private state that an idle connection should not hold (what these tests check). */
interface Held {
  out: unknown;
  more: { readHolders: unknown; closeTimer: unknown; remote: unknown } | undefined;
  rx: number;
}
const held = (c: Connection) => c as unknown as Held;

describe('worker/connection: what an idle connection holds', function () {
  this.timeout(15_000);
  let loop: EventLoop;
  const peers: number[] = [];
  const conns: Connection[] = [];

  beforeEach(() => {
    loop = new EventLoop({ logger: silentLogger });
  });

  afterEach(async () => {
    for (const c of conns.splice(0)) c.abort();
    for (const fd of peers.splice(0)) close(fd);
    await loop.close();
  });

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

  function drainPeer(peer: number): number {
    const buf = Buffer.alloc(256 * 1024);
    let total = 0;
    for (;;) {
      const n = read(peer, buf, buf.length);
      if (n <= 0) return total;
      total += n;
    }
  }

  it('holds no outbound queue while idle: takes the loop’s spare to write, gives it back once the kernel took all', async () => {
    const a = open();
    const b = open();
    expect(held(a.conn).out).to.equal(undefined);
    expect(held(b.conn).out).to.equal(undefined);
    let queue: unknown;
    a.probe.onData = (ctx, data) => {
      ctx.write(data);
      queue = held(a.conn).out;
      expect(queue, 'queued during the read').to.not.equal(undefined);
    };
    expect(write(a.peer, Buffer.from('one'), 3)).to.equal(3);
    await until('the answer on a', () => a.conn.bytesWritten === 3);
    expect(held(a.conn).out, 'drained: given back').to.equal(undefined);
    // The next connection that writes gets the same queue: no allocation per answer.
    b.probe.onData = (ctx, data) => {
      ctx.write(data);
      expect(held(b.conn).out).to.equal(queue);
    };
    expect(write(b.peer, Buffer.from('two'), 3)).to.equal(3);
    await until('the answer on b', () => b.conn.bytesWritten === 3);
    expect(held(b.conn).out).to.equal(undefined);
    const got = Buffer.alloc(16);
    expect(read(a.peer, got, 16)).to.equal(3);
    expect(read(b.peer, got, 16)).to.equal(3);
  });

  it('a connection whose peer does not read keeps a queue of its own until it drains; others are not affected', async () => {
    const slow = open({ highWaterMark: 8 * 1024 * 1024 });
    const other = open();
    const big = Buffer.alloc(4 * 1024 * 1024, 0x61);
    slow.conn.writeAndFlush(big);
    const q = held(slow.conn).out;
    expect(q, 'the kernel took only part').to.not.equal(undefined);
    expect(slow.conn.pendingWriteBytes).to.be.greaterThan(0);
    other.probe.onData = (ctx, data) => ctx.write(data);
    expect(write(other.peer, Buffer.from('hi'), 2)).to.equal(2);
    await until('the other answer', () => other.conn.bytesWritten === 2);
    expect(held(other.conn).out).to.equal(undefined);
    expect(held(slow.conn).out).to.equal(q);
    let total = 0;
    await until('drained', () => {
      total += drainPeer(slow.peer);
      return total === big.length;
    });
    await until('given back', () => held(slow.conn).out === undefined);
    expect(slow.conn.pendingWriteBytes).to.equal(0);
    expect(slow.conn.bytesWritten).to.equal(big.length);
  });

  it('closing with bytes queued gives the queue back; abort too', async () => {
    const { conn } = open({ highWaterMark: 8 * 1024 * 1024 });
    conn.writeAndFlush(Buffer.alloc(4 * 1024 * 1024, 0x62));
    expect(held(conn).out).to.not.equal(undefined);
    conn.abort();
    expect(held(conn).out).to.equal(undefined);
    expect(conn.pendingWriteBytes).to.equal(0);
  });

  it('holds no side state while idle; pauseReading makes it, resumeReading lets the holders go', async () => {
    const { conn, probe, peer } = open();
    expect(held(conn).more).to.equal(undefined);
    const holder = {};
    conn.pauseReading(holder);
    expect(conn.isReadingPaused).to.equal(true);
    expect(held(conn).more?.readHolders).to.deep.equal([holder]);
    expect(write(peer, Buffer.from('x'), 1)).to.equal(1);
    await sleep(50);
    expect(probe.received).to.equal('');
    conn.resumeReading(holder);
    expect(held(conn).more?.readHolders).to.equal(undefined);
    await until('the held byte read', () => probe.received === 'x');
  });

  it('the close timeout: a graceful close whose peer does not read is aborted after closeTimeout', async () => {
    const { conn, probe } = open({ highWaterMark: 8 * 1024 * 1024, closeTimeout: 60 });
    conn.writeAndFlush(Buffer.alloc(4 * 1024 * 1024, 0x63));
    conn.close();
    expect(conn.isActive).to.equal(true);
    expect(conn.closeReason, 'not closed yet').to.equal(undefined);
    expect(held(conn).more?.closeTimer).to.not.equal(undefined);
    await until('aborted', () => probe.inactive !== undefined);
    expect(probe.inactive).to.equal('aborted');
    expect(conn.closeReason).to.equal('aborted');
    expect(held(conn).more?.closeTimer, 'cancelled and dropped').to.equal(undefined);
  });

  it('the linger timeout: after our FIN, a peer that never sends its own is closed with the reason asked for', async () => {
    const { conn, probe, peer } = open({ lingerTimeout: 60 });
    conn.close('idle-timeout');
    expect(conn.isActive, 'lingering').to.equal(true);
    expect(conn.isOutputShutdown).to.equal(true);
    const buf = Buffer.alloc(16);
    await until('our FIN', () => read(peer, buf, 16) === 0);
    await until('closed', () => probe.inactive !== undefined);
    expect(probe.inactive).to.equal('idle-timeout');
    expect(conn.closeReason).to.equal('idle-timeout');
  });

  it('the read size adapts in its state bits: ×4 after a filled read, ÷2 after two reads at most half full', async () => {
    const { probe, peer } = open({ initialReadSize: 1024, minReadSize: 64, maxReadSize: 65536 });
    const send = (n: number, byte = 0x61) => expect(write(peer, Buffer.alloc(n, byte), n)).to.equal(n);
    send(1024 + 4096 + 16384);
    await until('three reads', () => probe.reads.length === 3);
    expect(probe.reads.map((r) => r.length)).to.deep.equal([1024, 4096, 16384]);
    // Now 65536: two small reads halve it to 32768.
    send(1);
    await until('a fourth read', () => probe.reads.length === 4);
    send(1);
    await until('a fifth read', () => probe.reads.length === 5);
    send(40000);
    await until('40000 more bytes', () => probe.received.length === 21504 + 2 + 40000);
    expect(probe.reads.slice(5).map((r) => r.length)).to.deep.equal([32768, 7232]);
  });

  it('byte counts stay small integers: what passes 2^29 is carried aside, the sum unchanged', async () => {
    const { conn, probe, peer } = open();
    probe.onData = (ctx, data) => ctx.write(data);
    const carry = 2 ** 29;
    held(conn).rx = carry - 3;
    expect(write(peer, Buffer.from('abcdef'), 6)).to.equal(6);
    await until('read', () => probe.received === 'abcdef');
    expect(conn.bytesRead).to.equal(carry + 3);
    expect(held(conn).rx).to.equal(0);
    expect(conn.bytesWritten).to.equal(6);
  });
});
