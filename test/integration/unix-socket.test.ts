/**
 * Unix domain socket listeners in this process (`workers: 0`, `path`): what a connection reports as
 * its addresses, options that are TCP's only not breaking it, the PROXY protocol from a peer
 * trusted as `'unix'` (HAProxy's `send-proxy` on a Unix socket), and the options checked at listen.
 * The master's side (every worker on the one socket, the file's mode, stale and live files) is in
 * ops.test.ts.
 */
import { existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import {
  ChannelInboundHandler,
  type HandlerContext,
  InvalidOptionError,
  Pipeline,
  type SocketAddress,
} from '../../src/index.js';
import { Opened } from './helpers.js';

const fmt = (a: SocketAddress | undefined) => (a === undefined ? '-' : `${a.family}:${a.address}:${a.port}`);

/** Says what the connection reports as its addresses. */
class Addresses extends ChannelInboundHandler {
  override onActive(ctx: HandlerContext): void {
    const ch = ctx.channel;
    ctx.writeAndFlush(Buffer.from(`${fmt(ch.remoteAddress)} ${fmt(ch.localAddress)} ${fmt(ch.socketRemoteAddress)}\n`));
  }
}
class AddressesPipeline extends Pipeline {
  override initChannel(): void {
    this.addLast(new Addresses());
  }
}

function firstLine(path: string, send?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path });
    let got = '';
    s.on('connect', () => {
      if (send !== undefined) s.write(send);
    });
    s.on('data', (d) => {
      got += d.toString();
      const nl = got.indexOf('\n');
      if (nl >= 0) {
        s.destroy();
        resolve(got.slice(0, nl));
      }
    });
    s.on('error', reject);
  });
}

describe('Unix socket listener in this process', () => {
  let dir: string;
  const opened = new Opened();

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'mr-unix-'));
  });
  afterEach(async () => {
    await opened.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a connection reports an unnamed Unix peer and the socket path as its local address; TCP options are skipped', async () => {
    const path = join(dir, 'a.sock');
    // noDelay and keepAlive are TCP options: applied to a Unix connection they would fail (EOPNOTSUPP).
    const server = await opened.listen({
      path,
      pipeline: AddressesPipeline,
      noDelay: true,
      keepAlive: { idle: 10, interval: 5, count: 3 },
    });
    expect(server.address()).to.deep.equal({ address: path, family: 'Unix', port: 0 });
    expect(lstatSync(path).mode & 0o777).to.equal(0o660);
    expect(await firstLine(path)).to.equal(`Unix::0 Unix:${path}:0 Unix::0`);
    await server.close();
    expect(existsSync(path), 'the file is removed at close').to.equal(false);
  });

  it("PROXY protocol from a peer trusted as 'unix': the connection reports the client's address", async () => {
    const path = join(dir, 'p.sock');
    await opened.listen({ path, pipeline: AddressesPipeline, proxyProtocol: { trusted: ['unix'] } });
    const header = Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 51234 443\r\n', 'latin1');
    expect(await firstLine(path, header)).to.equal('IPv4:203.0.113.7:51234 IPv4:192.0.2.1:443 Unix::0');
  });

  it('options checked at listen: path with host or port, reuseport, socketMode without path, a path too long', async () => {
    const p = join(dir, 'x.sock');
    const pipeline = AddressesPipeline;
    const bad = async (o: Record<string, unknown>, re: RegExp) => {
      const err = await opened.listen({ pipeline, ...o } as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(o)).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.match(re);
    };
    await bad({ path: p, port: 8080 }, /replaces `host` and `port`/);
    await bad({ path: p, host: '127.0.0.1' }, /replaces `host` and `port`/);
    await bad({ path: p, workers: 2, balance: 'reuseport' }, /SO_REUSEPORT does not apply to a Unix socket/);
    await bad({ socketMode: 0o600 }, /socketMode.*applies to a Unix socket `path` only/);
    await bad({ path: p, socketMode: 0o1777 }, /socketMode/);
    await bad({ path: `/${'x'.repeat(120)}` }, /at most 107/);
    await bad({ pidFile: join(dir, 'a.pid') }, /pidFile.*master option/);
    await bad({ workers: 2, admin: { port: 9100, path: p } }, /admin: unknown option 'admin\.path'|admin/);
    await bad({ workers: 2, admin: { host: 'localhost', port: 1 } }, /admin\.host/);
    await bad({ workers: 2, control: { path: p, mod: 1 } }, /unknown option 'control\.mod'/);
    await bad({ workers: 2, shutdownDelay: -1 }, /shutdownDelay/);
    expect(existsSync(p)).to.equal(false);
  });
});
