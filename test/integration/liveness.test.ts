/**
 * Heartbeats, idle timeouts, TCP options and bad frames on live connections.
 */

import { execFileSync } from 'node:child_process';
import type net from 'node:net';
import { expect } from 'chai';
import {
  ChannelInboundHandler,
  type CloseReason,
  type EffectiveSocketOptions,
  type HandlerContext,
  HeartbeatHandler,
  LengthFieldFrameDecoder,
  LengthFieldPrepender,
  Pipeline,
  type ServerHandle,
  type ServerOptions,
  silentLogger,
} from '../../src/index.js';
import { ended, frame, Opened, readBytes, waitFor } from './helpers.js';

/** Payload frames: 2-byte length + bytes. */
function payloadFrame(text: string): Buffer {
  const body = Buffer.from(text);
  const b = Buffer.alloc(2 + body.length);
  b.writeUInt16BE(body.length, 0);
  body.copy(b, 2);
  return b;
}

/** Splits a stream of 2-byte-length frames into their payloads (as text). */
function frameReader(socket: net.Socket, onFrame: (text: string) => void): void {
  let pending = Buffer.alloc(0);
  socket.on('data', (d: Buffer) => {
    pending = Buffer.concat([pending, d]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      const n = pending.readUInt16BE(0);
      onFrame(pending.subarray(2, 2 + n).toString());
      pending = pending.subarray(2 + n);
    }
  });
}

class Echo extends ChannelInboundHandler<Buffer> {
  override onRead(ctx: HandlerContext, msg: Buffer): void {
    ctx.write(msg);
  }
}

class Reasons extends ChannelInboundHandler {
  constructor(private readonly into: CloseReason[]) {
    super();
  }
  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.into.push(reason);
    ctx.fireInactive(reason);
  }
}

describe('liveness on real connections', function () {
  this.timeout(30_000);
  let server: ServerHandle | undefined;
  const opened = new Opened();
  let reasons: CloseReason[];

  async function start(pipeline: () => Pipeline, extra: Partial<ServerOptions> = {}): Promise<number> {
    reasons = [];
    server = await opened.listen({ host: '127.0.0.1', port: 0, logger: silentLogger, pipeline, ...extra });
    return server.address().port;
  }

  const client = (port: number): Promise<net.Socket> => opened.client(port);

  afterEach(async () => {
    await opened.teardown();
    server = undefined;
  });

  describe('HeartbeatHandler in timeout mode (the seeds’ server-side mode)', () => {
    const pipeline = () => () =>
      new Pipeline()
        .addLast(new LengthFieldFrameDecoder({ lengthFieldLength: 2 }))
        .addLast(new HeartbeatHandler({ timeout: 300 }))
        .addLast(new Reasons(reasons))
        .addLast(new Echo());

    it('closes a silent client after the timeout, with reason idle-timeout', async () => {
      const port = await start(pipeline());
      const t0 = Date.now();
      const s = await client(port);
      await ended(s);
      const elapsed = Date.now() - t0;
      expect(elapsed, 'closed after about the timeout').to.be.within(280, 2000);
      await waitFor(() => reasons.length === 1, 'onInactive');
      expect(reasons).to.deep.equal(['idle-timeout']);
      expect((server as ServerHandle).stats().closed['idle-timeout']).to.equal(1);
    });

    it('keeps a client that talks at least once per timeout', async () => {
      const port = await start(pipeline());
      const s = await client(port);
      for (let i = 0; i < 8; i++) {
        const echoed = readBytes(s, 5);
        s.write(payloadFrame(`m${i}.`));
        expect((await echoed).length).to.equal(5);
        await new Promise((r) => setTimeout(r, 150));
      }
      expect(reasons).to.deep.equal([]);
      expect(s.readableEnded).to.equal(false);
    });
  });

  describe('HeartbeatHandler in ping mode', () => {
    const pipeline = () => () =>
      new Pipeline()
        .addLast(new LengthFieldFrameDecoder({ lengthFieldLength: 2, initialBytesToStrip: 2 }))
        .addLast(new LengthFieldPrepender({ lengthFieldLength: 2 }))
        .addLast(
          new HeartbeatHandler({
            interval: 100,
            missed: 2,
            ping: () => 'PING',
            isPong: (m) => (m as Buffer).toString() === 'PONG',
          }),
        )
        .addLast(new Reasons(reasons))
        .addLast(new Echo());

    it('a client that answers pings stays connected', async () => {
      const port = await start(pipeline());
      const s = await client(port);
      let pings = 0;
      frameReader(s, (text) => {
        if (text === 'PING') {
          pings++;
          s.write(payloadFrame('PONG'));
        }
      });
      await new Promise((r) => setTimeout(r, 1200));
      expect(pings, 'pings received in 1.2 s at 100 ms').to.be.at.least(5);
      expect(reasons).to.deep.equal([]);
      expect(s.readableEnded).to.equal(false);
    });

    it('a client that never answers is closed after `missed` pings, with reason heartbeat', async () => {
      const port = await start(pipeline());
      const s = await client(port);
      const seen: string[] = [];
      frameReader(s, (text) => seen.push(text));
      const t0 = Date.now();
      await ended(s);
      expect(Date.now() - t0, 'about interval x (missed + 1)').to.be.within(250, 2000);
      expect(seen).to.deep.equal(['PING', 'PING']);
      await waitFor(() => reasons.length === 1, 'onInactive');
      expect(reasons).to.deep.equal(['heartbeat']);
    });
  });

  describe('TCP options', () => {
    let seen: EffectiveSocketOptions[];
    const recorder = (change?: Parameters<HandlerContext['channel']['setSocketOptions']>[0]) => () =>
      new Pipeline().addLast(
        new (class extends ChannelInboundHandler {
          override onActive(ctx: HandlerContext): void {
            if (change !== undefined) ctx.channel.setSocketOptions(change);
            seen.push(ctx.channel.getSocketOptions());
            ctx.fireActive();
          }
        })(),
      );

    beforeEach(() => {
      seen = [];
    });

    it('listen options are set on every accepted socket (read back with getsockopt)', async () => {
      const port = await start(recorder(), {
        keepAlive: { idle: 30, interval: 5, count: 4 },
        userTimeout: 12_000,
        sendBufferSize: 64 * 1024,
        receiveBufferSize: 32 * 1024,
      });
      await client(port);
      await waitFor(() => seen.length === 1, 'the connection');
      const o = seen[0] as EffectiveSocketOptions;
      expect(o.noDelay).to.equal(true);
      expect(o.keepAlive).to.deep.equal({ idle: 30, interval: 5, count: 4 });
      expect(o.userTimeout).to.equal(12_000);
      // socket(7): the kernel doubles SO_SNDBUF/SO_RCVBUF for its own bookkeeping.
      expect(o.sendBufferSize).to.equal(2 * 64 * 1024);
      expect(o.receiveBufferSize).to.equal(2 * 32 * 1024);
    });

    it('a handler can change them per connection', async () => {
      const port = await start(recorder({ noDelay: false, keepAlive: { idle: 7, interval: 3, count: 2 } }));
      await client(port);
      await waitFor(() => seen.length === 1, 'the connection');
      expect(seen[0]?.noDelay).to.equal(false);
      expect(seen[0]?.keepAlive).to.deep.equal({ idle: 7, interval: 3, count: 2 });
    });

    it('ss -tno shows the kernel keepalive timer on the accepted socket', async function () {
      try {
        execFileSync('ss', ['-V'], { stdio: 'ignore' });
      } catch {
        this.skip(); // iproute2 is not installed: getsockopt above already proves the options
      }
      const port = await start(recorder(), { keepAlive: { idle: 30, interval: 5, count: 4 } });
      const s = await client(port);
      await waitFor(() => seen.length === 1, 'the connection');
      const local = (s.address() as net.AddressInfo).port;
      const ss = execFileSync('ss', [
        '-tno',
        'state',
        'established',
        `( sport = :${port} and dport = :${local} )`,
      ]).toString();
      expect(ss).to.match(/timer:\(keepalive,/);
    });

    it('rejects a negative keepalive interval at listen, naming it', async () => {
      let failure: unknown;
      try {
        await start(recorder(), { keepAlive: { idle: 30, interval: -1, count: 4 } });
      } catch (err) {
        failure = err;
      }
      expect(String(failure)).to.contain('option keepAlive.interval:');
    });
  });

  describe('oversized frames on a live connection', () => {
    const pipeline = () => () =>
      new Pipeline()
        .addLast(new LengthFieldFrameDecoder({ lengthFieldLength: 2, maxFrameLength: 2 + 100 }))
        .addLast(new Reasons(reasons))
        .addLast(new Echo());

    it('by default the bad frame is skipped and the connection keeps working', async () => {
      const port = await start(pipeline());
      const s = await client(port);
      const good1 = frame(10, 1);
      const bad = frame(5000, 2); // over maxFrameLength: discarded as it arrives
      const good2 = frame(20, 3);
      const echoed = readBytes(s, good1.length + good2.length);
      s.write(Buffer.concat([good1, bad, good2]));
      expect((await echoed).equals(Buffer.concat([good1, good2]))).to.equal(true);
      expect((server as ServerHandle).stats().decoderErrors).to.equal(1);
      expect(reasons).to.deep.equal([]);
    });

    it("with decoderErrors: 'close' the connection closes as a protocol error; others are unaffected", async () => {
      const port = await start(pipeline(), { decoderErrors: 'close' });
      const bystander = await client(port);
      const s = await client(port);
      const fin = ended(s);
      s.write(frame(5000, 2));
      await fin;
      await waitFor(() => reasons.length === 1, 'onInactive');
      expect(reasons).to.deep.equal(['protocol-error']);
      const f = frame(30, 4);
      const echoed = readBytes(bystander, f.length);
      bystander.write(f);
      expect((await echoed).equals(f)).to.equal(true);
    });
  });
});
