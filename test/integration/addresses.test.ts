/**
 * A connection's addresses stay readable for its whole life (issue 15 item 14): a handler that
 * looks at `remoteAddress` for the first time in `onInactive` — after the descriptor is closed —
 * still gets the peer. Server side on every poller × trigger, IPv4 and IPv6, closed by either
 * end; client side likewise.
 */
import { once } from 'node:events';
import net from 'node:net';
import { expect } from 'chai';
import {
  ChannelInboundHandler,
  Client,
  type CloseReason,
  EventLoop,
  type HandlerContext,
  Pipeline,
  type SocketAddress,
} from '../../src/index.js';
import { closed, connect, destroyAll, Opened, TRANSPORTS, waitFor } from './helpers.js';

/** What a handler saw in onInactive, reading the addresses there for the first time. */
interface Seen {
  remote: SocketAddress | undefined;
  local: SocketAddress | undefined;
  reason: CloseReason;
}

/** Reads nothing until the end; then records both addresses. `closeFirst`: close as soon as active. */
class LateReader extends ChannelInboundHandler {
  constructor(
    private readonly seen: Seen[],
    private readonly closeFirst: boolean,
  ) {
    super();
  }
  override onActive(ctx: HandlerContext): void {
    if (this.closeFirst) ctx.close();
    ctx.fireActive();
  }
  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.seen.push({ remote: ctx.channel.remoteAddress, local: ctx.channel.localAddress, reason });
    ctx.fireInactive(reason);
  }
}

const FAMILIES = [
  { family: 'IPv4', host: '127.0.0.1' },
  { family: 'IPv6', host: '::1' },
] as const;

describe('Connection addresses for the whole life of a connection', function () {
  this.timeout(20_000);
  const opened = new Opened();
  afterEach(() => opened.teardown());

  for (const t of TRANSPORTS) {
    for (const { family, host } of FAMILIES) {
      for (const closer of ['peer', 'server'] as const) {
        it(`server, ${t.poller}/${t.trigger}, ${family}, closed by the ${closer}: remoteAddress first read in onInactive`, async () => {
          const seen: Seen[] = [];
          const srv = await opened.listen({
            host,
            port: 0,
            ...t,
            pipeline: () => new Pipeline().addLast(new LateReader(seen, closer === 'server')),
          });
          const port = srv.address().port;
          const s = await opened.client(port, host);
          const clientPort = (s.address() as net.AddressInfo).port;
          if (closer === 'peer') s.end();
          await waitFor(() => seen.length === 1, 'onInactive');
          const got = seen[0] as Seen;
          expect(got.reason).to.equal(closer === 'peer' ? 'peer-closed' : 'local');
          expect(got.remote).to.deep.include({ family, address: host, port: clientPort });
          expect(got.local).to.deep.include({ family, address: host, port });
        });
      }
    }
  }

  it('server on the dual-stack wildcard: an IPv4 peer is known in onInactive as IPv4-mapped', async () => {
    const seen: Seen[] = [];
    const srv = await opened.listen({
      host: '::',
      port: 0,
      pipeline: () => new Pipeline().addLast(new LateReader(seen, false)),
    });
    const port = srv.address().port;
    const s = await opened.client(port, '127.0.0.1');
    const clientPort = (s.address() as net.AddressInfo).port;
    s.end();
    await waitFor(() => seen.length === 1, 'onInactive');
    expect(seen[0]?.remote).to.deep.include({ family: 'IPv6', address: '::ffff:127.0.0.1', port: clientPort });
  });

  for (const t of TRANSPORTS) {
    for (const { family, host } of FAMILIES) {
      it(`client, ${t.poller}/${t.trigger}, ${family}: remoteAddress first read in onInactive`, async () => {
        const sockets = new Set<net.Socket>();
        // The peer: node:net, closing each connection as soon as it is accepted.
        const peer = net.createServer((s) => {
          sockets.add(s);
          s.on('error', () => {});
          s.end();
        });
        peer.listen(0, host);
        await once(peer, 'listening');
        const port = (peer.address() as net.AddressInfo).port;
        const loop = new EventLoop(t);
        try {
          const seen: Seen[] = [];
          const conn = await Client.connect({
            host,
            port,
            loop,
            pipeline: () => new Pipeline().addLast(new LateReader(seen, false)),
          });
          expect(await conn.closed).to.equal('peer-closed');
          expect(seen).to.have.length(1);
          expect(seen[0]?.remote).to.deep.include({ family, address: host, port });
          // Read after the end, from outside the pipeline: still there.
          expect(conn.remoteAddress).to.deep.include({ family, address: host, port });
        } finally {
          await loop.close();
          await destroyAll(sockets);
          peer.close();
          await once(peer, 'close');
        }
      });
    }
  }

  it('a connection reset by its peer still knows the peer in onInactive', async () => {
    const seen: Seen[] = [];
    const srv = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      pipeline: () => new Pipeline().addLast(new LateReader(seen, false)),
    });
    const s = await connect(srv.address().port);
    const clientPort = (s.address() as net.AddressInfo).port;
    s.resetAndDestroy();
    await closed(s);
    await waitFor(() => seen.length === 1, 'onInactive');
    expect(seen[0]?.reason).to.equal('reset');
    expect(seen[0]?.remote).to.deep.include({ family: 'IPv4', address: '127.0.0.1', port: clientPort });
  });
});
