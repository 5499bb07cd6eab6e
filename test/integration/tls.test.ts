/**
 * TLS on real sockets, with real peers: `openssl s_client` (TLS 1.2 and 1.3, ALPN, SNI, a client
 * certificate), curl, node's https/tls clients, the project's own client and pool (also against
 * node:https), bad input (plain HTTP, a truncated ClientHello, random bytes, a client that stalls,
 * a 1 MiB ClientHello, 10,000 failed handshakes) with every descriptor and OpenSSL object
 * accounted for, the examples with --tls-cert/--tls-key, and certificate rotation on reload.
 *
 * Needs the `openssl` command (Debian package openssl) for the certificates and s_client, and
 * `curl` (package curl) for the curl cases; each skips visibly without them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { dirname, join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  ChannelInboundHandler,
  Client,
  EmbeddedChannel,
  type HandlerContext,
  type HttpClientResponse,
  http,
  httpClient,
  LineFrameDecoder,
  Pipeline,
  Pool,
  Server,
  type SingleHandle,
  silentLogger,
  TlsContext,
  TlsHandler,
  TlsHandshakeError,
  tlsSession,
} from '../../src/index.js';
import { liveObjects } from '../../src/syscalls/openssl.js';
import { type TestCertificates, tlsCertificates, writePemFiles } from '../tls-support.js';
import { connect, fdCount, startListening, waitFor } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const EXAMPLES = join(here, '..', '..', 'examples');

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a program without blocking this process's loop (the server under test runs on it). */
function run(command: string, args: readonly string[], input = '', timeoutMs = 10_000): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('latin1');
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('latin1');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

let curlChecked: boolean | undefined;
async function hasCurl(): Promise<boolean> {
  curlChecked ??= await run('curl', ['--version']).then(
    (r) => r.code === 0,
    () => false,
  );
  return curlChecked;
}

/** Answers a line with what TLS negotiated for this connection, as JSON, and closes (with close_notify). */
class Inspect extends ChannelInboundHandler {
  override onRead(ctx: HandlerContext, _line: unknown): void {
    const s = tlsSession(ctx.channel);
    ctx.write(
      `${JSON.stringify({
        protocol: s?.protocol,
        cipher: s?.cipher,
        alpn: s?.alpnProtocol,
        servername: s?.servername,
        authorized: s?.authorized,
        peer: s?.peerCertificate?.subject,
      })}\n`,
    );
    ctx.close();
  }
}

/** The first flight of a real client: a ClientHello, made by our own client side. */
function clientHello(): Buffer {
  const ctx = TlsContext.client({ rejectUnauthorized: false }, silentLogger);
  try {
    const ch = new EmbeddedChannel(
      new Pipeline().addLast(
        'tls',
        new TlsHandler(ctx, { servername: 'localhost', verifyHost: 'localhost', sessionKey: 'x' }),
      ),
    );
    const hello = ch.readOutboundBytes();
    ch.close();
    return hello;
  } finally {
    ctx.close();
  }
}

/** Connects, sends `bytes` (then FIN if `end`), and resolves with what came back once the server closed. */
function exchange(port: number, bytes: Buffer, end: boolean): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(bytes);
      if (end) s.end();
    });
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {}); // a reset after an alert is fine: we look at what came before
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('TLS (real sockets)', function () {
  this.timeout(60_000);
  let certs: TestCertificates;
  let files: { dir: string; remove: () => void };
  const path = (name: string) => join(files.dir, name);

  before(function () {
    certs = tlsCertificates(this);
    files = writePemFiles({
      'ca.pem': certs.ca,
      'server.pem': certs.server.cert,
      'server.key': certs.server.key,
      'client.pem': certs.client.cert,
      'client.key': certs.client.key,
    });
  });

  after(() => files?.remove());

  describe('a server in this process', () => {
    let web: SingleHandle;
    let inspect: SingleHandle;
    let webPort: number;
    let inspectPort: number;
    const extra: Array<{ close(): unknown }> = [];

    before(async () => {
      web = (await Server.listen({
        host: '127.0.0.1',
        port: 0,
        workers: 0,
        logger: silentLogger,
        tls: { ...certs.server, alpn: ['http/1.1'] },
        pipeline: http((req, res) => {
          res.setHeader('Content-Type', 'text/plain');
          res.end(`hello ${req.method} ${req.url}`);
        }),
      })) as SingleHandle;
      webPort = web.address().port;
      inspect = (await Server.listen({
        host: '127.0.0.1',
        port: 0,
        workers: 0,
        logger: silentLogger,
        tls: {
          ...certs.server,
          alpn: ['http/1.1', 'inspect'],
          ca: certs.ca,
          requestCert: true,
          rejectUnauthorized: false,
          sni: { 'a.example.test': certs.sniA },
        },
        pipeline: () =>
          new Pipeline().addLast('lines', new LineFrameDecoder({ maxLength: 1024 })).addLast('inspect', new Inspect()),
      })) as SingleHandle;
      inspectPort = inspect.address().port;
    });

    afterEach(async () => {
      for (const e of extra.splice(0)) await e.close();
    });

    after(async () => {
      await web?.close();
      await inspect?.close();
    });

    it('serves curl --cacert over TLS 1.3 with ALPN http/1.1', async function () {
      if (!(await hasCurl())) {
        console.log('      (skipped: curl is missing — apt-get install curl)');
        this.skip();
      }
      const r = await run('curl', [
        '-sS',
        '-v',
        '--cacert',
        path('ca.pem'),
        '--resolve',
        `localhost:${webPort}:127.0.0.1`,
        `https://localhost:${webPort}/path?q=1`,
      ]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.equal('hello GET /path?q=1');
      expect(r.stderr).to.match(/SSL connection using TLSv1\.3/);
      expect(r.stderr).to.match(/ALPN[:,] server accepted (to use )?http\/1\.1/);
    });

    it('answers plain HTTP on the TLS port with a 400 (curl http://)', async function () {
      if (!(await hasCurl())) this.skip();
      const r = await run('curl', ['-sS', '-w', '\n%{http_code}', `http://127.0.0.1:${webPort}/`]);
      expect(r.stdout).to.match(/This port speaks HTTPS/);
      expect(r.stdout.trim().endsWith('400')).to.equal(true);
    });

    /**
     * openssl s_client in -brief mode (its verbose mode prints sessions as tickets arrive and, when
     * tickets and data come in one segment, can miss the data: seen with 3.0.19), sending one line;
     * the server answers with JSON and closes with close_notify, which ends s_client (-ign_eof).
     */
    async function sClient(args: string[]): Promise<{ summary: string; json: Record<string, unknown> }> {
      const r = await run(
        'openssl',
        ['s_client', '-connect', `127.0.0.1:${inspectPort}`, '-CAfile', path('ca.pem'), '-brief', '-ign_eof', ...args],
        'who\n',
      );
      const line = /^\{.*\}$/m.exec(r.stdout)?.[0];
      expect(line, `s_client printed no answer:\n${r.stdout}\n${r.stderr}`).to.not.equal(undefined);
      return { summary: r.stderr, json: JSON.parse(line as string) };
    }

    for (const [flag, version] of [
      ['-tls1_2', 'TLSv1.2'],
      ['-tls1_3', 'TLSv1.3'],
    ] as const) {
      it(`speaks to openssl s_client ${flag} with ALPN and SNI`, async () => {
        const { summary, json } = await sClient([flag, '-servername', 'localhost', '-alpn', 'inspect']);
        expect(summary).to.contain(`Protocol version: ${version}`);
        expect(summary).to.contain('Verification: OK');
        expect(json.protocol).to.equal(version);
        expect(json.alpn).to.equal('inspect');
        expect(json.servername).to.equal('localhost');
        expect(json.authorized).to.equal(false); // no client certificate sent
      });
    }

    it('gives openssl s_client the SNI certificate it asks for', async () => {
      const { summary, json } = await sClient(['-servername', 'a.example.test']);
      expect(summary).to.match(/Peer certificate: CN\s*=\s*a\.example\.test/);
      expect(summary).to.contain('Verification: OK');
      expect(json.servername).to.equal('a.example.test');
    });

    for (const flag of ['-tls1_2', '-tls1_3']) {
      it(`reads the client certificate openssl s_client ${flag} presents (mutual TLS)`, async () => {
        const { json } = await sClient([
          flag,
          '-servername',
          'localhost',
          '-cert',
          path('client.pem'),
          '-key',
          path('client.key'),
        ]);
        expect(json.authorized).to.equal(true);
        expect(json.peer).to.contain('CN=test client');
      });
    }

    it("serves node's https and tls clients", async () => {
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: webPort, path: '/node', ca: certs.ca, servername: 'localhost' }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => {
              text += d;
            });
            res.on('end', () => resolve(`${res.statusCode} ${text}`));
          })
          .on('error', reject);
      });
      expect(body).to.equal('200 hello GET /node');
      const socket = tls.connect({
        host: '127.0.0.1',
        port: inspectPort,
        ca: certs.ca,
        servername: 'localhost',
        ALPNProtocols: ['inspect'],
        cert: certs.client.cert,
        key: certs.client.key,
      });
      await once(socket, 'secureConnect');
      expect(socket.alpnProtocol).to.equal('inspect');
      socket.write('who\n');
      const [line] = (await once(socket, 'data')) as [Buffer];
      const json = JSON.parse(line.toString());
      expect(json.protocol).to.equal(socket.getProtocol());
      expect(json.cipher).to.equal(socket.getCipher().standardName);
      expect(json.peer).to.contain('CN=test client');
      socket.end();
      await once(socket, 'close');
    });

    it("serves the project's own client and pool, which resumes sessions", async () => {
      const conn = await Client.connect({
        host: 'localhost',
        port: webPort,
        family: 4,
        tls: { ca: certs.ca, alpn: ['http/1.1'] },
        pipeline: httpClient(),
      });
      const res = await conn.request<HttpClientResponse>({ method: 'GET', path: '/client' });
      expect(res.statusCode).to.equal(200);
      expect(res.text()).to.equal('hello GET /client');
      expect(tlsSession(conn.channel)?.alpnProtocol).to.equal('http/1.1');
      await conn.close();
      const resumedBefore = web.stats().tls?.resumed ?? 0;
      const pool = new Pool({
        host: '127.0.0.1',
        port: webPort,
        tls: { ca: certs.ca, servername: 'localhost' },
        pipeline: httpClient(),
        maxConnections: 4,
        idleTimeout: 50,
      });
      extra.push(pool);
      for (let round = 0; round < 3; round++) {
        const replies = await Promise.all(
          [1, 2, 3, 4].map((i) => pool.request<HttpClientResponse>({ method: 'GET', path: `/pool/${i}` })),
        );
        expect(replies.map((r) => r.text())).to.deep.equal([1, 2, 3, 4].map((i) => `hello GET /pool/${i}`));
        await new Promise((r) => setTimeout(r, 150)); // idle connections close; the next round reconnects
      }
      expect((web.stats().tls?.resumed ?? 0) - resumedBefore).to.be.greaterThan(0);
    });

    it('rejects a server the client does not trust with TlsHandshakeError, leaking nothing', async () => {
      const ssl = liveObjects.ssl;
      const err = await Client.connect({ host: '127.0.0.1', port: webPort, tls: true, pipeline: httpClient() }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(TlsHandshakeError);
      expect((err as TlsHandshakeError).reason).to.equal('certificate verify failed');
      await waitFor(() => liveObjects.ssl === ssl, 'the SSL objects freed');
    });
  });

  describe('the client against node:https', () => {
    it('talks HTTPS and mutual TLS to a server that is not ours', async () => {
      const srv = https.createServer(
        { ...certs.server, ca: certs.ca, requestCert: true, rejectUnauthorized: true },
        (req, res) => {
          const peer = (req.socket as tls.TLSSocket).getPeerCertificate();
          res.end(`hi ${peer.subject?.CN}`);
        },
      );
      srv.listen(0, '127.0.0.1');
      await once(srv, 'listening');
      try {
        const port = (srv.address() as AddressInfo).port;
        const conn = await Client.connect({
          host: '127.0.0.1',
          port,
          tls: { ca: certs.ca, servername: 'localhost', ...certs.client },
          pipeline: httpClient(),
        });
        const res = await conn.request<HttpClientResponse>({ method: 'GET', path: '/' });
        expect(res.text()).to.equal('hi test client');
        await conn.close();
        const refused = await Client.connect({
          host: '127.0.0.1',
          port,
          tls: { ca: certs.ca, servername: 'localhost' },
          pipeline: httpClient(),
        }).then(
          async (c) => {
            // TLS 1.3: the server refuses the missing certificate after the client's handshake ended.
            const r = await c.request({ method: 'GET', path: '/' }).then(
              () => 'answered',
              () => 'refused',
            );
            await c.abort();
            return r;
          },
          () => 'refused',
        );
        expect(refused).to.equal('refused');
      } finally {
        srv.closeAllConnections();
        srv.close();
      }
    });
  });

  describe('the client against a server that never answers the ClientHello', () => {
    let silent: net.Server;
    let port: number;
    const held: net.Socket[] = [];

    beforeEach(async () => {
      silent = net.createServer((s) => {
        held.push(s);
        s.on('error', () => {});
      });
      silent.listen(0, '127.0.0.1');
      await once(silent, 'listening');
      port = (silent.address() as AddressInfo).port;
    });

    afterEach(async () => {
      for (const s of held.splice(0)) s.destroy();
      silent.close();
      await once(silent, 'close');
    });

    it('gives up after handshakeTimeout, and on an abort signal, leaking nothing', async () => {
      const ssl = liveObjects.ssl;
      const ctx = liveObjects.ctx;
      const t0 = Date.now();
      const timedOut = await Client.connect({
        host: '127.0.0.1',
        port,
        tls: { ca: certs.ca, servername: 'localhost', handshakeTimeout: 200 },
        pipeline: httpClient(),
      }).catch((e: unknown) => e);
      expect(timedOut).to.be.instanceOf(TlsHandshakeError);
      expect((timedOut as TlsHandshakeError).reason).to.equal('handshake timeout');
      expect(Date.now() - t0).to.be.within(150, 3000);
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('changed my mind')), 100);
      const aborted = await Client.connect({
        host: '127.0.0.1',
        port,
        signal: controller.signal,
        tls: { ca: certs.ca, servername: 'localhost' },
        pipeline: httpClient(),
      }).catch((e: unknown) => e);
      expect((aborted as Error).message).to.equal('changed my mind');
      await waitFor(() => liveObjects.ssl === ssl && liveObjects.ctx === ctx, 'the SSL objects and contexts freed');
    });
  });

  describe('bad input', () => {
    let server: SingleHandle;
    let port: number;

    beforeEach(async () => {
      server = (await Server.listen({
        host: '127.0.0.1',
        port: 0,
        workers: 0,
        logger: silentLogger,
        lingerTimeout: 200,
        tls: { ...certs.server, handshakeTimeout: 300 },
        pipeline: http((_req, res) => res.end('ok')),
      })) as SingleHandle;
      port = server.address().port;
    });

    afterEach(async () => {
      await server?.close();
    });

    async function settled(): Promise<void> {
      await waitFor(() => server.connections === 0, 'every connection closed');
      expect(server.stats().tls?.open).to.equal(0);
    }

    it('survives a truncated ClientHello, random bytes, a stalled client and a 1 MiB ClientHello', async () => {
      const fds = fdCount();
      const ssl = liveObjects.ssl;
      const hello = clientHello();
      // A ClientHello cut in the middle, then FIN.
      await exchange(port, hello.subarray(0, Math.floor(hello.length / 2)), true);
      // Random bytes: whatever OpenSSL makes of them, an alert (or nothing) and a close.
      await exchange(port, randomBytes(4096), false);
      // A client that stops mid-handshake: closed after handshakeTimeout.
      const stalled = await connect(port);
      stalled.on('error', () => {});
      const t0 = Date.now();
      stalled.write(hello.subarray(0, 20));
      await once(stalled, 'close');
      expect(Date.now() - t0).to.be.within(250, 3000);
      // A ClientHello claiming 1 MiB, in valid-looking records of 16 KiB: refused early.
      const body = randomBytes(1024 * 1024 + 4);
      body.set([0x01, 0x10, 0x00, 0x00], 0); // client_hello, length 2^20
      const records: Buffer[] = [];
      for (let at = 0; at < body.length; at += 16384) {
        const part = body.subarray(at, at + 16384);
        const head = Buffer.from([0x16, 0x03, 0x01, 0, 0]);
        head.writeUInt16BE(part.length, 3);
        records.push(head, part);
      }
      const answer = await exchange(port, Buffer.concat(records), false);
      expect(answer[0]).to.equal(21); // an alert
      await settled();
      const f = server.stats().tls?.failures ?? {};
      expect(f['peer closed']).to.equal(1);
      expect(f['handshake timeout']).to.equal(1);
      expect(f['excessive message size']).to.equal(1);
      expect(Object.values(f).reduce((a, b) => a + b)).to.equal(4);
      expect(server.stats().tls?.handshakes).to.equal(0);
      expect(liveObjects.ssl).to.equal(ssl);
      await waitFor(() => fdCount() <= fds, 'descriptors released');
    });

    it('frees everything after 10,000 failed handshakes (and a few good ones)', async function () {
      this.timeout(120_000);
      const ssl = liveObjects.ssl;
      const created = liveObjects.created.ssl;
      const fds = fdCount();
      const garbage = [
        Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
        Buffer.from('\x16\x03\x01\x00\x10not a client hello at all', 'latin1'),
        randomBytes(64),
      ];
      const rssBefore = process.memoryUsage().rss;
      const total = 10_000;
      let next = 0;
      const worker = async () => {
        while (next < total) {
          const i = next++;
          await exchange(port, garbage[i % garbage.length] as Buffer, false);
        }
      };
      await Promise.all(Array.from({ length: 50 }, worker));
      for (let i = 0; i < 20; i++) {
        const c = await Client.connect({
          host: '127.0.0.1',
          port,
          tls: { ca: certs.ca, servername: 'localhost' },
          pipeline: httpClient(),
        });
        expect((await c.request<HttpClientResponse>({ method: 'GET', path: '/' })).text()).to.equal('ok');
        await c.close();
      }
      await settled();
      const s = server.stats().tls;
      const failed = Object.values(s?.failures ?? {}).reduce((a, b) => a + b, 0);
      expect(failed).to.equal(total);
      expect(s?.handshakes).to.equal(20);
      expect(liveObjects.created.ssl - created).to.equal(total + 40); // both sides of the 20 good ones
      expect(liveObjects.ssl).to.equal(ssl);
      await waitFor(() => fdCount() <= fds, 'descriptors released');
      // Not a leak test by itself (the heap grows and shrinks), but a leak of an SSL per handshake
      // (~6 KiB) would show as 60 MB here.
      const grown = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
      expect(grown, `RSS grew ${grown.toFixed(1)} MiB`).to.be.below(40);
    });
  });

  describe('examples with --tls-cert/--tls-key', () => {
    let child: ChildProcess | undefined;

    afterEach(async () => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
      child = undefined;
    });

    async function start(script: string, args: string[] = []): Promise<number> {
      const started = await startListening([
        join(EXAMPLES, script),
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--tls-cert',
        path('server.pem'),
        '--tls-key',
        path('server.key'),
        ...args,
      ]);
      child = started.child;
      return started.port;
    }

    for (const [script, path_, expected] of [
      ['plaintext-server.js', '/plaintext', /^Hello, World!$/],
      ['http-echo-server.js', '/echo?x=1', /"url":"\/echo\?x=1"/],
    ] as const) {
      it(`${script} serves HTTPS`, async () => {
        const port = await start(script, script === 'plaintext-server.js' ? ['--workers', '0'] : []);
        const conn = await Client.connect({
          host: '127.0.0.1',
          port,
          tls: { ca: certs.ca, servername: 'localhost', alpn: ['http/1.1'] },
          pipeline: httpClient(),
        });
        const res = await conn.request<HttpClientResponse>({ method: 'GET', path: path_ });
        expect(res.statusCode).to.equal(200);
        expect(res.text()).to.match(expected);
        expect(tlsSession(conn.channel)?.alpnProtocol).to.equal('http/1.1');
        await conn.close();
      });
    }

    it('echo-server.js echoes frames over TLS', async () => {
      const port = await start('echo-server.js', ['--framing', 'line']);
      const socket = tls.connect({ host: '127.0.0.1', port, ca: certs.ca, servername: 'localhost' });
      await once(socket, 'secureConnect');
      socket.write('over tls\n');
      const [echo] = (await once(socket, 'data')) as [Buffer];
      expect(echo.toString()).to.equal('over tls\n');
      socket.end();
      await once(socket, 'close');
    });

    it('refuses a key that does not match its certificate, naming the option', async () => {
      const mismatched = writePemFiles({ 'cert.pem': certs.server.cert, 'key.pem': certs.client.key });
      try {
        const r = await run(process.execPath, [
          join(EXAMPLES, 'plaintext-server.js'),
          '--port',
          '0',
          '--workers',
          '0',
          '--tls-cert',
          join(mismatched.dir, 'cert.pem'),
          '--tls-key',
          join(mismatched.dir, 'key.pem'),
        ]);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain('option tls.key: does not match the certificate');
      } finally {
        mismatched.remove();
      }
    });
  });

  describe('certificate rotation on reload (SIGUSR2)', () => {
    let master: ChildProcess | undefined;
    const sockets: tls.TLSSocket[] = [];

    afterEach(async () => {
      for (const s of sockets.splice(0)) s.destroy();
      if (master !== undefined && master.exitCode === null && master.signalCode === null) {
        const exited = once(master, 'exit');
        master.kill('SIGTERM');
        await exited;
      }
      master = undefined;
    });

    function open(port: number): Promise<tls.TLSSocket> {
      return new Promise((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port, ca: certs.ca, servername: 'localhost' }, () => resolve(s));
        s.once('error', reject);
        sockets.push(s);
      });
    }

    async function echo(s: tls.TLSSocket, text: string): Promise<string> {
      const got = once(s, 'data') as Promise<[Buffer]>;
      s.write(`${text}\n`);
      return (await got)[0].toString().trim();
    }

    const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

    it('new connections get the new certificate; an old one goes on with the old', async () => {
      const rotating = writePemFiles({ 'cert.pem': certs.server.cert, 'key.pem': certs.server.key });
      try {
        const started = await startListening([
          join(here, 'tls-app.js'),
          join(rotating.dir, 'cert.pem'),
          join(rotating.dir, 'key.pem'),
        ]);
        master = started.child;
        const port = started.port;
        const a = fingerprint(certs.server.cert);
        const b = fingerprint(certs.serverB.cert);
        const old = await open(port);
        expect(old.getPeerCertificate().fingerprint256).to.equal(a);
        expect(await echo(old, 'before')).to.equal('before');
        expect(started.stderr()).not.to.contain('reload done');
        writeFileSync(join(rotating.dir, 'cert.pem'), certs.serverB.cert);
        writeFileSync(join(rotating.dir, 'key.pem'), certs.serverB.key);
        master.kill('SIGUSR2');
        await waitFor(() => started.stderr().includes('reload done'), 'the reload', 20_000);
        // Every slot runs a new worker now; an old one may still take a connection it had queued
        // before it heard "stop accepting": a few in a row must show B.
        const until = Date.now() + 10_000;
        for (let inARow = 0; inARow < 6; ) {
          if (Date.now() > until) throw new Error('new connections did not settle on certificate B');
          const fresh = await open(port);
          if (fresh.getPeerCertificate().fingerprint256 === b) {
            expect(await echo(fresh, `new ${inARow}`)).to.equal(`new ${inARow}`);
            inARow++;
          } else {
            inARow = 0;
          }
          fresh.destroy();
        }
        // The old connection, served by a worker of the previous generation, still works with A.
        expect(await echo(old, 'after')).to.equal('after');
        expect(old.getPeerCertificate().fingerprint256).to.equal(a);
        old.end();
        await once(old, 'close');
      } finally {
        rotating.remove();
      }
    });
  });
});
