/**
 * WebSocket over TLS (wss://), end to end on real sockets and processes: our client against
 * examples/ws-echo-server with --tls-cert/--tls-key in a worker process (text, binary, 1 MiB,
 * permessage-deflate, close codes both ways), the failures that must be errors and not hangs (a
 * certificate that does not verify, wss:// to a plaintext port and ws:// to a TLS one), SNI and
 * ALPN as a server sees them, `ws` over TLS in both directions (its client against our server, our
 * client against its server on node:https), and `multireactor-load --ws wss://…` as a process.
 *
 * Certificates are made by `openssl` (test/tls-support.ts): the suite skips visibly without it
 * (Debian package openssl).
 */
import { Buffer } from 'node:buffer';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import WsClient, { WebSocketServer } from 'ws';
import {
  ChannelClosedError,
  connectWebSocket,
  type LoadReport,
  TlsHandshakeError,
  tlsSession,
  type WebSocket,
  WebSocketHandshakeError,
  websocket,
} from '../../src/index.js';
import { type TestCertificates, tlsCertificates, writePemFiles } from '../tls-support.js';
import { Opened, runToExit, startListening, waitFor } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const WS_ECHO = join(here, '..', '..', 'examples', 'ws-echo-server.js');
const LOAD = join(here, '..', '..', 'src', 'bin', 'load.js');
const MiB = 1024 * 1024;

/** Bytes that compress (a repeating pattern with some noise), or not (random). */
function pattern(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 10)) & 0xff;
  return b;
}

/** What our client received, and a way to wait for the n-th message. */
function collect(ws: WebSocket): { got: Array<[Buffer, boolean]>; next: (n: number) => Promise<[Buffer, boolean]> } {
  const got: Array<[Buffer, boolean]> = [];
  ws.onMessage = (data, isBinary) => {
    // Messages may be lent (copyMessages: false): keep copies.
    got.push([Buffer.from(data), isBinary]);
  };
  return {
    got,
    next: async (n) => {
      await waitFor(() => got.length >= n, `message ${n}`, 10_000);
      return got[n - 1] as [Buffer, boolean];
    },
  };
}

function closeOf(ws: WebSocket): Promise<[number, string]> {
  return new Promise((resolve) => {
    ws.onClose = (code, reason) => resolve([code, reason]);
  });
}

describe('WebSocket over TLS (wss://)', function () {
  this.timeout(30_000);
  let certs: TestCertificates;
  let files: { dir: string; remove: () => void } | undefined;
  const children: ChildProcess[] = [];
  const opened = new Opened();
  const ours: WebSocket[] = [];
  const wsClients: WsClient[] = [];
  const wsServers: WebSocketServer[] = [];
  const httpsServers: https.Server[] = [];

  before(function () {
    certs = tlsCertificates(this);
    files = writePemFiles({ 'ca.pem': certs.ca, 'server.pem': certs.server.cert, 'server.key': certs.server.key });
  });

  after(() => files?.remove());

  afterEach(async () => {
    for (const w of ours.splice(0)) w.terminate();
    for (const c of wsClients.splice(0)) c.terminate();
    for (const s of wsServers.splice(0)) {
      for (const c of s.clients) c.terminate();
      await new Promise((r) => s.close(r));
    }
    for (const s of httpsServers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = once(c, 'exit');
        c.kill('SIGTERM');
        await exited;
      }
    }
    await opened.teardown();
  });

  const pem = (name: string) => join((files as { dir: string }).dir, name);

  /** examples/ws-echo-server over TLS, one worker (a real worker process under its master). */
  async function echoServer(args: string[] = []): Promise<number> {
    const started = await startListening([
      WS_ECHO,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '1',
      '--tls-cert',
      pem('server.pem'),
      '--tls-key',
      pem('server.key'),
      ...args,
    ]);
    children.push(started.child);
    return started.port;
  }

  async function connect(url: string, options: Parameters<typeof connectWebSocket>[1] = {}): Promise<WebSocket> {
    const ws = await connectWebSocket(url, { tls: { ca: certs.ca }, maxMessageSize: 32 * MiB, ...options });
    ours.push(ws);
    return ws;
  }

  describe('our client → examples/ws-echo-server --tls-cert/--tls-key', () => {
    it('echoes text, binary and 1 MiB; the TLS session says TLS 1.3 and ALPN http/1.1; a close code comes back', async () => {
      const port = await echoServer(['--max-message', String(2 * MiB)]);
      const ws = await connect(`wss://127.0.0.1:${port}/some/path?x=1`);
      const session = tlsSession(ws.channel);
      expect(session?.protocol).to.equal('TLSv1.3');
      expect(session?.alpnProtocol).to.equal('http/1.1');
      expect(session?.authorized).to.equal(true);
      expect(ws.extensions).to.equal('');
      const { next } = collect(ws);
      ws.send('hello over TLS');
      expect(await next(1)).to.deep.equal([Buffer.from('hello over TLS'), false]);
      const bin = randomBytes(3000);
      ws.send(bin);
      expect(await next(2)).to.deep.equal([bin, true]);
      const big = randomBytes(MiB);
      ws.send(big);
      const [echoed, isBinary] = await next(3);
      expect(isBinary).to.equal(true);
      expect(echoed.equals(big)).to.equal(true, 'the 1 MiB echo is the same bytes');
      // The closing handshake over TLS: the server answers with our code (RFC 6455 §5.5.1; the
      // reason is its own to give, and it gives none).
      const closed = closeOf(ws);
      ws.close(4000, 'done over TLS');
      expect(await closed).to.deep.equal([4000, '']);
    });

    it('a message over the server’s limit is closed with 1009 through TLS', async () => {
      const port = await echoServer(['--max-message', String(MiB)]);
      const ws = await connect(`wss://127.0.0.1:${port}/`);
      const closed = closeOf(ws);
      ws.send(Buffer.alloc(MiB + 1));
      const [code] = await closed;
      expect(code).to.equal(1009);
    });

    it('with permessage-deflate: negotiated, text, binary and 1 MiB compressed both ways', async () => {
      const port = await echoServer(['--deflate']);
      const ws = await connect(`wss://127.0.0.1:${port}/`, { perMessageDeflate: true });
      expect(ws.extensions).to.match(/^permessage-deflate/);
      const { next } = collect(ws);
      const text = 'compress me '.repeat(1000);
      ws.send(text);
      expect((await next(1))[0].toString()).to.equal(text);
      const bin = randomBytes(5000);
      ws.send(bin);
      expect(await next(2)).to.deep.equal([bin, true]);
      const big = pattern(MiB);
      const before = ws.channel.bytesWritten;
      ws.send(big);
      const [echoed] = await next(3);
      expect(echoed.equals(big)).to.equal(true);
      // Compressed before it was encrypted: far fewer than 1 MiB went out.
      expect(ws.channel.bytesWritten - before).to.be.below(MiB / 4);
      const closed = closeOf(ws);
      ws.close(1000, 'bye');
      expect(await closed).to.deep.equal([1000, '']);
    });

    it('a certificate that does not verify fails the TLS handshake, promptly, with why', async () => {
      const port = await echoServer();
      const started = Date.now();
      // Trusting another CA.
      const wrongCa = await connectWebSocket(`wss://127.0.0.1:${port}/`, { tls: { ca: certs.selfSigned.cert } }).catch(
        (e: unknown) => e,
      );
      expect(wrongCa).to.be.instanceOf(TlsHandshakeError);
      expect((wrongCa as Error).message).to.match(/certificate verify failed/);
      // Node's roots (the default): a private CA is not among them.
      const roots = await connectWebSocket(`wss://127.0.0.1:${port}/`).catch((e: unknown) => e);
      expect(roots).to.be.instanceOf(TlsHandshakeError);
      expect((roots as Error).message).to.match(/certificate verify failed/);
      // The name checked: one the certificate (localhost, 127.0.0.1) does not name fails too.
      const name = await connectWebSocket(`wss://127.0.0.1:${port}/`, {
        tls: { ca: certs.ca, servername: 'not-this-host.test' },
      }).catch((e: unknown) => e);
      expect(name).to.be.instanceOf(TlsHandshakeError);
      expect(Date.now() - started).to.be.below(10_000, 'failures, not handshake timeouts');
      // The server is unharmed: a client that trusts the CA still gets in.
      const ok = await connect(`wss://127.0.0.1:${port}/`);
      const { next } = collect(ok);
      ok.send('still serving');
      expect((await next(1))[0].toString()).to.equal('still serving');
    });

    it('rejectUnauthorized: false accepts a certificate it cannot verify (and says so in the session)', async () => {
      const port = await echoServer();
      const ws = await connectWebSocket(`wss://127.0.0.1:${port}/`, { tls: { rejectUnauthorized: false } });
      ours.push(ws);
      expect(tlsSession(ws.channel)?.authorized).to.equal(false);
      const { next } = collect(ws);
      ws.send('unverified');
      expect((await next(1))[0].toString()).to.equal('unverified');
    });
  });

  describe('scheme mismatches fail cleanly', () => {
    it('wss:// to a plaintext WebSocket port: a TLS handshake error, not a hang', async () => {
      const server = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        pipeline: websocket((ws) => {
          ws.onMessage = (d, b) => ws.send(d, b);
        }),
      });
      const started = Date.now();
      const err = await connectWebSocket(`wss://127.0.0.1:${server.address().port}/`, { tls: { ca: certs.ca } }).catch(
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(TlsHandshakeError);
      expect(Date.now() - started).to.be.below(5000);
    });

    it('ws:// to a TLS port: the handshake fails (no 101), not a hang', async () => {
      const port = await echoServer();
      const started = Date.now();
      const err = await connectWebSocket(`ws://127.0.0.1:${port}/`, { handshakeTimeout: 20_000 }).catch(
        (e: unknown) => e,
      );
      expect(err instanceof WebSocketHandshakeError || err instanceof ChannelClosedError, String(err)).to.equal(true);
      expect(Date.now() - started).to.be.below(5000);
    });
  });

  describe('SNI and ALPN as our server sees them', () => {
    async function tlsServer(): Promise<{
      port: number;
      seen: Array<{ sni: string | undefined; alpn: string | undefined }>;
    }> {
      const seen: Array<{ sni: string | undefined; alpn: string | undefined }> = [];
      const server = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        tls: { key: certs.server.key, cert: certs.server.cert, alpn: ['http/1.1'] },
        pipeline: websocket((ws) => {
          const s = tlsSession(ws.channel);
          seen.push({ sni: s?.servername, alpn: s?.alpnProtocol });
          ws.onMessage = (d, b) => ws.send(d, b);
        }),
      });
      return { port: server.address().port, seen };
    }

    it('sends the URL’s host name as SNI, none for an IP literal, and offers http/1.1', async () => {
      const { port, seen } = await tlsServer();
      await connect(`wss://localhost:${port}/`);
      await connect(`wss://127.0.0.1:${port}/`);
      await waitFor(() => seen.length === 2, 'both connections');
      expect(seen).to.deep.equal([
        { sni: 'localhost', alpn: 'http/1.1' },
        { sni: undefined, alpn: 'http/1.1' },
      ]);
    });
  });

  describe('interop with ws over TLS', () => {
    it('ws as a wss:// client of our server: text, binary, deflate, close codes', async () => {
      const closes: Array<[number, string]> = [];
      const server = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        tls: { key: certs.server.key, cert: certs.server.cert, alpn: ['http/1.1'] },
        pipeline: websocket(
          (ws) => {
            ws.onMessage = (data, isBinary) => {
              if (!isBinary && data.toString() === 'close me') ws.close(4001, 'as you wish');
              else ws.send(data, isBinary);
            };
            ws.onClose = (code, reason) => {
              closes.push([code, reason]);
            };
          },
          { perMessageDeflate: true, maxMessageSize: 32 * MiB, maxPayload: 32 * MiB },
        ),
      });
      const port = server.address().port;
      const open = async () => {
        const c = new WsClient(`wss://localhost:${port}/chat`, {
          ca: certs.ca,
          perMessageDeflate: true,
          maxPayload: 32 * MiB,
        });
        wsClients.push(c);
        const got: Array<[Buffer, boolean]> = [];
        c.on('message', (d, isBinary) => got.push([d as Buffer, isBinary]));
        await once(c, 'open');
        return { c, got };
      };
      const a = await open();
      expect(a.c.extensions).to.equal('permessage-deflate');
      const text = 'über TLS ✓ '.repeat(500);
      a.c.send(text);
      const bin = randomBytes(70_000);
      a.c.send(bin);
      const big = pattern(4 * MiB);
      a.c.send(big);
      await waitFor(() => a.got.length === 3, 'three echoes', 15_000);
      expect(a.got[0]?.[0].toString()).to.equal(text);
      expect(a.got[0]?.[1]).to.equal(false);
      expect(a.got[1]).to.deep.equal([bin, true]);
      expect(a.got[2]?.[0].equals(big)).to.equal(true);
      // The client closes: the server hears its code and reason, and answers with the code.
      const aClosed = once(a.c, 'close');
      a.c.close(4000, 'client says bye');
      const [code] = (await aClosed) as [number, Buffer];
      expect(code).to.equal(4000);
      await waitFor(() => closes.length === 1, 'the server’s onClose');
      expect(closes[0]).to.deep.equal([4000, 'client says bye']);
      // The server closes: the client hears its code.
      const b = await open();
      const bClosed = once(b.c, 'close');
      b.c.send('close me');
      const [code2, reason2] = (await bClosed) as [number, Buffer];
      expect([code2, reason2.toString()]).to.deep.equal([4001, 'as you wish']);
    });

    it('our client against a ws server on node:https: text, binary, 1 MiB deflated, close codes', async () => {
      const httpsServer = https.createServer({ key: certs.server.key, cert: certs.server.cert });
      httpsServers.push(httpsServer);
      const wss = new WebSocketServer({ server: httpsServer, perMessageDeflate: true, maxPayload: 32 * MiB });
      wsServers.push(wss);
      const serverCloses: Array<[number, string]> = [];
      wss.on('connection', (c, req) => {
        c.on('message', (d, isBinary) => {
          if (!isBinary && d.toString() === 'close me') c.close(4002, 'server done');
          else if (!isBinary && d.toString() === 'path') c.send(req.url ?? '');
          else c.send(d, { binary: isBinary });
        });
        c.on('close', (code, reason) => serverCloses.push([code, reason.toString()]));
      });
      httpsServer.listen(0, '127.0.0.1');
      await once(httpsServer, 'listening');
      const port = (httpsServer.address() as AddressInfo).port;

      const ws = await connect(`wss://localhost:${port}/path?q=1`, { perMessageDeflate: true });
      expect(ws.extensions).to.match(/^permessage-deflate/);
      const { next } = collect(ws);
      ws.send('path');
      expect((await next(1))[0].toString()).to.equal('/path?q=1');
      ws.send('hello ws');
      expect(await next(2)).to.deep.equal([Buffer.from('hello ws'), false]);
      const bin = randomBytes(20_000);
      ws.send(bin);
      expect(await next(3)).to.deep.equal([bin, true]);
      const big = pattern(MiB);
      ws.send(big);
      expect((await next(4))[0].equals(big)).to.equal(true);
      const closed = closeOf(ws);
      ws.close(4003, 'client done');
      expect(await closed).to.deep.equal([4003, 'client done']);
      await waitFor(() => serverCloses.length === 1, 'the ws server’s close');
      expect(serverCloses[0]).to.deep.equal([4003, 'client done']);

      // And the server closing: our client hears the code and reason.
      const second = await connect(`wss://localhost:${port}/`);
      const closed2 = closeOf(second);
      second.send('close me');
      expect(await closed2).to.deep.equal([4002, 'server done']);
    });
  });

  describe('multireactor-load --ws wss://', () => {
    /** Runs the load generator as a process (stopped by pid in afterEach should the test fail first). */
    async function load(args: string[]): Promise<{ code: number | null; report: LoadReport; stderr: string }> {
      const r = await runToExit([LOAD, ...args, '--json'], children, 30_000);
      expect(r.stdout, r.stderr).to.match(/^\{/);
      return { code: r.code, report: JSON.parse(r.stdout) as LoadReport, stderr: r.stderr };
    }

    it('--ca FILE: completes with answers and 0 errors; -k too; without either the TLS failure is reported', async () => {
      const port = await echoServer();
      const url = `wss://127.0.0.1:${port}/`;
      const base = ['--ws', '--url', url, '-c', '4', '-d', '700ms', '--pipeline', '4', '--size', '32'];
      const trusted = await load([...base, '--ca', pem('ca.pem')]);
      expect(trusted.code).to.equal(0);
      expect(trusted.report.requests).to.be.greaterThan(100);
      expect(trusted.report.errors).to.deep.equal({
        refused: 0,
        reset: 0,
        timeout: 0,
        badStatus: 0,
        protocol: 0,
        tls: 0,
      });
      expect(trusted.report.connects).to.equal(4);

      const insecure = await load([...base, '--insecure']);
      expect(insecure.code).to.equal(0);
      expect(insecure.report.errors.tls).to.equal(0);
      expect(insecure.report.requests).to.be.greaterThan(100);

      // Node's roots do not include the test CA: every connect fails its handshake, counted as tls.
      const untrusted = await load([...base, '-d', '300ms']);
      expect(untrusted.code).to.equal(1);
      expect(untrusted.report.requests).to.equal(0);
      expect(untrusted.report.errors.tls).to.be.greaterThan(0);
      expect(untrusted.report.errors.reset).to.equal(0);
      expect(untrusted.report.tlsFailure).to.match(/certificate verify failed/);
    });

    it('refuses --ca with a ws:// URL, --ca with --insecure, and an unreadable --ca (exit 2)', async () => {
      for (const args of [
        ['--ws', '--url', 'ws://127.0.0.1:1/', '--ca', pem('ca.pem')],
        ['--ws', '--url', 'wss://127.0.0.1:1/', '--ca', pem('ca.pem'), '--insecure'],
        ['--ws', '--url', 'wss://127.0.0.1:1/', '--ca', pem('missing.pem')],
      ]) {
        const child = spawn(process.execPath, [LOAD, ...args, '-d', '100ms'], { stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        let err = '';
        child.stderr?.on('data', (d: Buffer) => {
          err += d.toString();
        });
        const [code] = (await once(child, 'exit')) as [number | null];
        expect(code, args.join(' ')).to.equal(2);
        expect(err).to.match(/option (tls|insecure|ca)/);
      }
    });
  });
});
