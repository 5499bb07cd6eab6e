/**
 * The PROXY protocol on real sockets: a server with `proxyProtocol`, clients that send v1 and v2
 * headers themselves (whole, and cut into separate segments), untrusted and silent peers, the
 * option checked at listen; then HAProxy as the real peer (`send-proxy`, `send-proxy-v2` with
 * CRC32C and unique-id TLVs, its LOCAL health checks), and the http-echo example behind it.
 *
 * HAProxy tests need the Debian package `haproxy`; without it they are skipped with that message.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  type Channel,
  ChannelInboundHandler,
  type HandlerContext,
  HttpRequestDecoder,
  HttpServerHandler,
  InvalidOptionError,
  Pipeline,
  type PipelineSpec,
  ProxyHeader,
  proxyProtocolStats,
  type SocketAddress,
} from '../../src/index.js';
import { Opened, startListening, TRANSPORTS, waitFor } from './helpers.js';

const fmt = (a: SocketAddress | undefined): string =>
  a === undefined ? '-' : a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;

/** Says who it thinks the peer is as soon as it is active, then echoes what it reads. */
class WhoAmI extends ChannelInboundHandler {
  override onActive(ctx: HandlerContext): void {
    const ch = ctx.channel;
    ctx.writeAndFlush(`${fmt(ch.remoteAddress)} ${fmt(ch.localAddress)} ${fmt(ch.socketRemoteAddress)}\n`);
  }
  override onRead(ctx: HandlerContext, msg: unknown): void {
    ctx.write(msg);
  }
}

const whoAmI: PipelineSpec = () => new Pipeline().addLast(new WhoAmI());

/** Everything a socket received so far, with a way to wait for more. */
class Received {
  text = '';
  private wake: (() => void) | undefined;
  constructor(s: net.Socket) {
    s.on('data', (d: Buffer) => {
      this.text += d.toString('latin1');
      this.wake?.();
    });
  }
  /** Waits until the text received holds `n` characters or a line, and takes them out. */
  async take(what: number | 'line'): Promise<string> {
    const until = Date.now() + 10_000;
    for (;;) {
      const end = what === 'line' ? this.text.indexOf('\n') : this.text.length >= what ? what : -1;
      if (end >= 0) {
        const out = this.text.slice(0, end);
        this.text = this.text.slice(what === 'line' ? end + 1 : end);
        return out;
      }
      if (Date.now() > until) throw new Error(`timed out; received ${JSON.stringify(this.text)}`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 50);
      });
    }
  }
}

function v2Header(
  src: [number, number, number, number],
  sport: number,
  dst: [number, number, number, number],
  dport: number,
) {
  const b = Buffer.alloc(28);
  Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]).copy(b);
  b[12] = 0x21;
  b[13] = 0x11;
  b.writeUInt16BE(12, 14);
  Buffer.from(src).copy(b, 16);
  Buffer.from(dst).copy(b, 20);
  b.writeUInt16BE(sport, 24);
  b.writeUInt16BE(dport, 26);
  return b;
}

/** Resolves when the server closed the connection (FIN or RST), with whatever it sent first. */
function closedByServer(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
    });
    s.on('error', () => {});
    s.once('close', () => resolve(got));
  });
}

describe('PROXY protocol: a server with proxyProtocol', function () {
  this.timeout(20_000);
  const opened = new Opened();
  afterEach(() => opened.teardown());

  for (const t of TRANSPORTS) {
    it(`${t.poller}/${t.trigger}: v1 and v2 headers set the reported addresses; the bytes after them arrive`, async () => {
      const srv = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        ...t,
        proxyProtocol: { trusted: ['127.0.0.1'] },
        pipeline: whoAmI,
      });
      const port = srv.address().port;
      const a = await opened.client(port);
      const ra = new Received(a);
      const aPort = (a.address() as net.AddressInfo).port;
      a.write(`PROXY TCP4 203.0.113.9 198.51.100.1 61000 443\r\nhello`);
      expect(await ra.take('line')).to.equal(`203.0.113.9:61000 198.51.100.1:443 127.0.0.1:${aPort}`);
      expect(await ra.take(5)).to.equal('hello');

      const b = await opened.client(port);
      const rb = new Received(b);
      // A v2 header cut into segments, the payload after it in the last one.
      const whole = Buffer.concat([v2Header([192, 0, 2, 77], 5555, [10, 0, 0, 1], 80), Buffer.from('again')]);
      for (const piece of [whole.subarray(0, 5), whole.subarray(5, 14), whole.subarray(14, 20), whole.subarray(20)]) {
        b.write(piece);
        await sleep(15);
      }
      expect(await rb.take('line')).to.equal(
        `192.0.2.77:5555 10.0.0.1:80 127.0.0.1:${(b.address() as net.AddressInfo).port}`,
      );
      expect(await rb.take(5)).to.equal('again');
    });
  }

  it('dual-stack `::`: an IPv4 proxy (::ffff:127.0.0.1) matches a trusted 127.0.0.1; a v2 LOCAL keeps the socket addresses', async () => {
    const srv = await opened.listen({
      host: '::',
      port: 0,
      proxyProtocol: { trusted: ['127.0.0.1'] },
      pipeline: whoAmI,
    });
    const port = srv.address().port;
    const s = await opened.client(port, '127.0.0.1');
    const rs = new Received(s);
    const local = Buffer.from([
      0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x20, 0x00, 0, 0,
    ]);
    const before = proxyProtocolStats().local;
    s.write(local);
    const sPort = (s.address() as net.AddressInfo).port;
    expect(await rs.take('line')).to.equal(
      `[::ffff:127.0.0.1]:${sPort} [::ffff:127.0.0.1]:${port} [::ffff:127.0.0.1]:${sPort}`,
    );
    expect(proxyProtocolStats().local).to.equal(before + 1);
  });

  it('a peer outside `trusted` is closed before it is read; nothing reaches the pipeline', async () => {
    let actives = 0;
    const srv = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      proxyProtocol: { trusted: ['10.0.0.0/8', '::1'] },
      pipeline: () =>
        new Pipeline().addLast(
          new (class extends ChannelInboundHandler {
            override onActive(): void {
              actives++;
            }
          })(),
        ),
    });
    const before = proxyProtocolStats().untrusted;
    const s = await opened.client(srv.address().port);
    const done = closedByServer(s);
    s.write('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n\r\n');
    expect(await done).to.equal('');
    expect(proxyProtocolStats().untrusted).to.equal(before + 1);
    expect(actives).to.equal(0);
    expect(srv.stats().closed['protocol-error']).to.equal(1);
  });

  it('a trusted peer that sends no header, or a broken one, is closed; so is one that stays silent past the timeout', async () => {
    const srv = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      proxyProtocol: { trusted: ['127.0.0.0/8'], timeout: 300 },
      pipeline: whoAmI,
    });
    const port = srv.address().port;
    const s0 = proxyProtocolStats();
    const plain = await opened.client(port);
    const plainDone = closedByServer(plain);
    plain.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await plainDone).to.equal('');
    const broken = await opened.client(port);
    const brokenDone = closedByServer(broken);
    broken.write('PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n');
    expect(await brokenDone).to.equal('');
    const silent = await opened.client(port);
    const t0 = Date.now();
    expect(await closedByServer(silent)).to.equal('');
    expect(Date.now() - t0).to.be.at.least(250);
    const s1 = proxyProtocolStats();
    expect(s1.missing - s0.missing).to.equal(1);
    expect(s1.malformed - s0.malformed).to.equal(1);
    expect(s1.timeout - s0.timeout).to.equal(1);
    await waitFor(() => srv.connections === 0, 'connections closed');
  });

  it('required: false serves clients without a header and proxied ones alike', async () => {
    const srv = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      proxyProtocol: { trusted: ['127.0.0.1'], required: false },
      pipeline: whoAmI,
    });
    const port = srv.address().port;
    const direct = await opened.client(port);
    const rd = new Received(direct);
    direct.write('hi');
    const dPort = (direct.address() as net.AddressInfo).port;
    expect(await rd.take('line')).to.equal(`127.0.0.1:${dPort} 127.0.0.1:${port} 127.0.0.1:${dPort}`);
    const proxied = await opened.client(port);
    const rp = new Received(proxied);
    proxied.write('PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n');
    expect((await rp.take('line')).split(' ').slice(0, 2)).to.deep.equal(['[2001:db8::7]:4000', '[2001:db8::1]:443']);
  });

  for (const [proxyProtocol, key] of [
    [{ trusted: ['300.0.0.0/8'] }, 'proxyProtocol.trusted[0]'],
    [{ trusted: [] }, 'proxyProtocol.trusted'],
    [{ trusted: ['127.0.0.1'], required: 1 }, 'proxyProtocol.required'],
    [{ trusted: ['127.0.0.1'], timeout: '5s' }, 'proxyProtocol.timeout'],
    [{ trusted: ['127.0.0.1'], logger: console }, 'proxyProtocol.logger'],
    [['127.0.0.1'], 'proxyProtocol'],
  ] as const) {
    it(`listen rejects proxyProtocol ${JSON.stringify(proxyProtocol)} naming ${key}`, async () => {
      const err = await opened
        .listen({ host: '127.0.0.1', port: 0, proxyProtocol: proxyProtocol as never, pipeline: whoAmI })
        .catch((e: unknown) => e);
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.include(key);
    });
  }

  it('examples/http-echo-server without --proxy-protocol reflects the socket peer in X-Peer-Address', async () => {
    const started = await startListening([HTTP_ECHO, '--port', '0']);
    try {
      const a = await get('127.0.0.1', started.port, '127.0.0.6');
      expect(a.status).to.equal(200);
      expect(a.headers['x-peer-address']).to.equal(`127.0.0.6:${a.localPort}`);
    } finally {
      const exited = once(started.child, 'exit');
      started.child.kill('SIGTERM');
      await exited;
    }
  });

  it('a user handler named like the stage cannot clash silently: the name is reserved', async () => {
    const srv = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      proxyProtocol: { trusted: ['127.0.0.1'] },
      pipeline: () => new Pipeline().addLast('proxy-protocol', new WhoAmI()),
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });
    const s = await opened.client(srv.address().port);
    expect(await closedByServer(s)).to.equal('');
  });
});

// ---------------------------------------------------------------------------------------------
// HAProxy as the real peer.

const HTTP_ECHO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'http-echo-server.js');

function haproxyMissing(): string | undefined {
  const r = spawnSync('haproxy', ['-v'], { stdio: 'pipe' });
  if (r.error !== undefined || r.status !== 0) return 'haproxy is not installed (Debian package: haproxy)';
  return undefined;
}

/** A free TCP port on `host` (bound and released: fine for a test that binds it at once). */
async function freePort(host: string): Promise<number> {
  const s = net.createServer();
  s.listen(0, host);
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}

/** Reflects what the server sees, for the HAProxy tests. */
function reflecting(): PipelineSpec {
  return (channel: Channel) =>
    new Pipeline().addLast('http-decoder', new HttpRequestDecoder()).addLast(
      'http',
      new HttpServerHandler((_req, res) => {
        res.setHeader('x-peer', fmt(channel.remoteAddress));
        res.setHeader('x-local', fmt(channel.localAddress));
        res.setHeader('x-socket-peer', fmt(channel.socketRemoteAddress));
        const h = channel.proxied;
        if (h instanceof ProxyHeader) {
          res.setHeader('x-proxy', `v${h.version} ${h.command}`);
          if (h.uniqueId !== undefined) res.setHeader('x-unique-id', h.uniqueId.toString('latin1'));
          if (h.crc32c !== undefined) res.setHeader('x-crc32c', 'verified');
        }
        res.end('ok');
      }),
    );
}

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly localPort: number;
}

/** One GET through `host:port` from `localAddress`, a new connection. */
function get(host: string, port: number, localAddress?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let localPort = 0;
    const req = http.get({ host, port, path: '/', agent: false, ...(localAddress ? { localAddress } : {}) }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, localPort }));
    });
    req.on('socket', (s) => s.on('connect', () => (localPort = s.localPort ?? 0)));
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
  });
}

describe('PROXY protocol: HAProxy as the peer', function () {
  this.timeout(30_000);
  const opened = new Opened();
  const children: ChildProcess[] = [];
  let dir = '';

  before(function () {
    const missing = haproxyMissing();
    if (missing !== undefined) {
      console.error(`    (skipped: ${missing})`);
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'multireactor-haproxy-'));
  });

  afterEach(async () => {
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = once(c, 'exit');
        c.kill('SIGTERM');
        const timer = setTimeout(() => c.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
    }
    await opened.teardown();
  });

  after(() => {
    if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  /** Writes a config, starts `haproxy -f CFG -db`, waits until its frontend accepts connections. */
  async function haproxy(
    name: string,
    config: string,
    frontend: { host: string; port: number },
  ): Promise<ChildProcess> {
    const file = join(dir, `${name}.cfg`);
    writeFileSync(file, config);
    const child = spawn('haproxy', ['-f', file, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const until = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}): ${output}`);
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(frontend.port, frontend.host);
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (up) return child;
      if (Date.now() > until) throw new Error(`haproxy did not listen on ${frontend.host}:${frontend.port}: ${output}`);
      await sleep(50);
    }
  }

  function config(opts: {
    frontends: readonly string[];
    backendPort: number;
    server: string;
    frontendExtra?: string;
  }): string {
    return [
      'global',
      '  maxconn 200',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend fe',
      ...opts.frontends.map((b) => `  bind ${b}`),
      ...(opts.frontendExtra === undefined ? [] : [`  ${opts.frontendExtra}`]),
      '  default_backend be',
      'backend be',
      `  server s1 127.0.0.1:${opts.backendPort} ${opts.server}`,
      '',
    ].join('\n');
  }

  for (const [server, version] of [
    ['send-proxy-v2', 'v2 PROXY'],
    ['send-proxy', 'v1 PROXY'],
  ] as const) {
    it(`${server}: the server reports the client behind HAProxy, not HAProxy (IPv4 and IPv6 clients)`, async () => {
      const srv = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        proxyProtocol: { trusted: ['127.0.0.1'] },
        pipeline: reflecting(),
      });
      const fe4 = await freePort('127.0.0.1');
      const fe6 = await freePort('::1');
      await haproxy(
        server,
        config({ frontends: [`127.0.0.1:${fe4}`, `[::1]:${fe6}`], backendPort: srv.address().port, server }),
        { host: '127.0.0.1', port: fe4 },
      );
      // The client from 127.0.0.2: HAProxy connects to us from 127.0.0.1.
      const a = await get('127.0.0.1', fe4, '127.0.0.2');
      expect(a.status).to.equal(200);
      expect(a.headers['x-peer']).to.equal(`127.0.0.2:${a.localPort}`);
      expect(a.headers['x-local']).to.equal(`127.0.0.1:${fe4}`);
      expect(a.headers['x-socket-peer']).to.match(/^127\.0\.0\.1:\d+$/);
      expect(a.headers['x-proxy']).to.equal(version);
      const b = await get('::1', fe6);
      expect(b.status).to.equal(200);
      expect(b.headers['x-peer']).to.equal(`[::1]:${b.localPort}`);
      expect(b.headers['x-local']).to.equal(`[::1]:${fe6}`);
      expect(b.headers['x-socket-peer']).to.match(/^127\.0\.0\.1:\d+$/);
    });
  }

  it('send-proxy-v2 with crc32c and unique-id TLVs: HAProxy checksum verified, unique id read', async () => {
    const srv = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      proxyProtocol: { trusted: ['127.0.0.1'] },
      pipeline: reflecting(),
    });
    const fe = await freePort('127.0.0.1');
    await haproxy(
      'tlvs',
      config({
        frontends: [`127.0.0.1:${fe}`],
        backendPort: srv.address().port,
        server: 'send-proxy-v2 proxy-v2-options crc32c,unique-id',
        frontendExtra: 'unique-id-format id-%ci-%cp',
      }),
      { host: '127.0.0.1', port: fe },
    );
    const before = proxyProtocolStats();
    const a = await get('127.0.0.1', fe, '127.0.0.3');
    expect(a.status).to.equal(200);
    expect(a.headers['x-peer']).to.equal(`127.0.0.3:${a.localPort}`);
    expect(a.headers['x-crc32c']).to.equal('verified');
    expect(a.headers['x-unique-id']).to.equal(`id-127.0.0.3-${a.localPort}`);
    expect(proxyProtocolStats().malformed).to.equal(before.malformed);
  });

  it("HAProxy's health checks arrive as v2 LOCAL headers and are served as the proxy's own connections", async () => {
    const srv = await opened.listen({
      host: '127.0.0.1',
      port: 0,
      proxyProtocol: { trusted: ['127.0.0.1'] },
      pipeline: reflecting(),
    });
    const fe = await freePort('127.0.0.1');
    const before = proxyProtocolStats();
    await haproxy(
      'checks',
      config({
        frontends: [`127.0.0.1:${fe}`],
        backendPort: srv.address().port,
        server: 'send-proxy-v2 check inter 100',
      }),
      { host: '127.0.0.1', port: fe },
    );
    await waitFor(() => proxyProtocolStats().local >= before.local + 2, 'two LOCAL health checks', 10_000);
    const after = proxyProtocolStats();
    expect(after.untrusted + after.malformed + after.missing + after.timeout).to.equal(
      before.untrusted + before.malformed + before.missing + before.timeout,
    );
    // And the backend is up for HAProxy: requests pass.
    expect((await get('127.0.0.1', fe, '127.0.0.4')).headers['x-peer']).to.match(/^127\.0\.0\.4:/);
  });

  it('examples/http-echo-server --proxy-protocol --workers 2 behind HAProxy reflects the client in X-Peer-Address', async () => {
    const started = await startListening([HTTP_ECHO, '--port', '0', '--workers', '2', '--proxy-protocol']);
    children.push(started.child);
    const fe = await freePort('127.0.0.1');
    await haproxy(
      'example',
      config({ frontends: [`127.0.0.1:${fe}`], backendPort: started.port, server: 'send-proxy-v2' }),
      { host: '127.0.0.1', port: fe },
    );
    for (let i = 0; i < 4; i++) {
      const a = await get('127.0.0.1', fe, '127.0.0.5');
      expect(a.status).to.equal(200);
      expect(a.headers['x-peer-address']).to.equal(`127.0.0.5:${a.localPort}`);
    }
    // Straight to the server, without a header: closed.
    const direct = await get('127.0.0.1', started.port).catch((e: unknown) => e);
    expect(direct).to.be.instanceOf(Error);
  });
});
