/**
 * The client on real sockets: non-blocking connect (success, refused, timed out, aborted), IPv6,
 * host names and the fallback to the next address, which loop a connection runs on, correlated
 * requests (out of order, timed out, late), a server dying mid-flight, HTTP against the server
 * side, and no descriptor left behind. The servers stand for the outside world: node:net
 * listeners, in-process multireactor servers, or child processes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { expect } from 'chai';
import { acquireLoop, standaloneLeases } from '../../src/client/loops.js';
import {
  ChannelClosedError,
  ChannelInboundHandler,
  Client,
  type ClientConnection,
  ConnectTimeoutError,
  EventLoop,
  type HandlerContext,
  type HttpClientResponse,
  http,
  httpClient,
  InvalidOptionError,
  JsonLinesDecoder,
  JsonLinesEncoder,
  jsonIds,
  Pipeline,
  RequestResponseHandler,
  RequestTimeoutError,
  SyscallError,
} from '../../src/index.js';
import { localAddress, openListenSocket, sys } from '../../src/syscalls/index.js';
import { servingLoop } from '../../src/worker/current.js';
import { destroyAll, fdCount, jsonLines, Opened, runToExit, TRANSPORTS, waitFor } from './helpers.js';

/** A node:net server; `onSocket` sees each connection. */
async function netServer(onSocket: (s: net.Socket) => void, host = '127.0.0.1'): Promise<net.Server> {
  const server = net.createServer(onSocket);
  server.listen(0, host);
  await once(server, 'listening');
  return server;
}

function portOf(server: net.Server): number {
  return (server.address() as net.AddressInfo).port;
}

const jsonPipeline = () =>
  new Pipeline()
    .addLast('decoder', new JsonLinesDecoder())
    .addLast('encoder', new JsonLinesEncoder())
    .addLast('requests', new RequestResponseHandler({ ids: jsonIds('uid') }));

/** Records what a client pipeline saw. */
class Recorder extends ChannelInboundHandler<Buffer> {
  active = 0;
  data = '';
  inactive: string[] = [];
  override onActive(ctx: HandlerContext): void {
    this.active++;
    ctx.fireActive();
  }
  override onRead(_ctx: HandlerContext, msg: Buffer): void {
    this.data += msg.toString();
  }
  override onInactive(ctx: HandlerContext, reason: Parameters<ChannelInboundHandler['onInactive']>[1]): void {
    this.inactive.push(reason);
    ctx.fireInactive(reason);
  }
}

/**
 * A listener with a backlog of 0 that never accepts, its queue filled by one connection: the
 * kernel drops the next SYN (the accept queue is full), so a connect to it hangs — on loopback.
 */
async function blackHole(): Promise<{ port: number; close: () => Promise<void> }> {
  const fd = openListenSocket({ host: '127.0.0.1', port: 0, backlog: 0, reusePort: false });
  const { port } = localAddress(fd);
  const filler = net.connect({ port, host: '127.0.0.1' });
  filler.on('error', () => {});
  await once(filler, 'connect');
  return {
    port,
    close: async () => {
      await destroyAll([filler]);
      sys.close(fd);
    },
  };
}

describe('Client', function () {
  this.timeout(20_000);
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const conns: ClientConnection[] = [];
  const opened = new Opened();
  const children: ChildProcess[] = [];
  const cleanups: Array<() => Promise<void>> = [];

  async function server(onSocket: (s: net.Socket) => void, host?: string): Promise<number> {
    const s = await netServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      onSocket(sock);
    }, host);
    servers.push(s);
    return portOf(s);
  }

  afterEach(async () => {
    await Promise.all(conns.splice(0).map((c) => c.abort()));
    await destroyAll(sockets);
    sockets.clear();
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
    await opened.teardown();
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = once(c, 'exit');
        c.kill('SIGKILL');
        await exited;
      }
    }
    for (const f of cleanups.splice(0)) await f();
    // The standalone loop closes with its last connection: nothing of it may be left.
    await waitFor(() => standaloneLeases() === 0, 'the standalone loop to be released');
  });

  describe('connect', () => {
    it('connects (IPv4), builds the pipeline on a connected socket, and closes cleanly', async () => {
      let serverSide: net.Socket | undefined;
      const port = await server((s) => {
        serverSide = s;
        s.on('data', (d) => s.write(`echo:${d}`));
        s.on('end', () => s.end());
      });
      const rec = new Recorder();
      const conn = await Client.connect({ host: '127.0.0.1', port, pipeline: () => new Pipeline().addLast(rec) });
      conns.push(conn);
      expect(rec.active).to.equal(1);
      expect(conn.isActive).to.equal(true);
      expect(conn.address).to.equal('127.0.0.1');
      expect(conn.remoteAddress).to.deep.include({ address: '127.0.0.1', family: 'IPv4', port });
      expect(conn.localAddress?.port).to.equal(serverSide?.remotePort);
      expect(conn.channel.getSocketOptions().noDelay).to.equal(true); // the server's default
      expect(standaloneLeases()).to.equal(1);
      conn.writeAndFlush('hi');
      await waitFor(() => rec.data === 'echo:hi', 'the echo');
      expect(await conn.close()).to.equal('local');
      expect(rec.inactive).to.deep.equal(['local']);
    });

    it('applies socket options', async () => {
      const port = await server(() => {});
      const conn = await Client.connect({
        host: '127.0.0.1',
        port,
        pipeline: Pipeline,
        noDelay: false,
        keepAlive: { idle: 30, interval: 5, count: 3 },
        userTimeout: 7000,
      });
      conns.push(conn);
      expect(conn.channel.getSocketOptions()).to.deep.include({
        noDelay: false,
        keepAlive: { idle: 30, interval: 5, count: 3 },
        userTimeout: 7000,
      });
    });

    it('a closed port: rejects with SyscallError ECONNREFUSED carrying the address, and leaks nothing', async () => {
      const s = await netServer(() => {});
      const port = portOf(s);
      await new Promise((r) => s.close(r));
      const before = fdCount();
      const err = await Client.connect({ host: '127.0.0.1', port, pipeline: Pipeline }).then(
        () => expect.fail('connected to a closed port'),
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(SyscallError);
      expect(err).to.include({ code: 'ECONNREFUSED', syscall: 'connect', address: '127.0.0.1', port });
      expect((err as Error).message).to.contain(`127.0.0.1:${port}`);
      expect(fdCount()).to.equal(before);
    });

    it('a server that never answers the SYN: rejects with ConnectTimeoutError after connectTimeout', async () => {
      const hole = await blackHole();
      cleanups.push(hole.close);
      const before = fdCount();
      const t0 = performance.now();
      const err = await Client.connect({
        host: '127.0.0.1',
        port: hole.port,
        pipeline: Pipeline,
        connectTimeout: 200,
      }).then(
        () => expect.fail('connected to a full backlog'),
        (e: unknown) => e,
      );
      const elapsed = performance.now() - t0;
      expect(err).to.be.instanceOf(ConnectTimeoutError);
      expect(err).to.include({ code: 'ERR_CONNECT_TIMEOUT', address: '127.0.0.1', port: hole.port, timeout: 200 });
      expect(elapsed).to.be.at.least(195);
      expect(fdCount()).to.equal(before);
    });

    it('an abort signal cancels a connect in progress', async () => {
      const hole = await blackHole();
      cleanups.push(hole.close);
      const before = fdCount();
      const ac = new AbortController();
      const pending = Client.connect({ host: '127.0.0.1', port: hole.port, pipeline: Pipeline, signal: ac.signal });
      setTimeout(() => ac.abort(new Error('enough')), 50);
      const err = await pending.then(
        () => expect.fail('connected'),
        (e: unknown) => e,
      );
      expect((err as Error).message).to.equal('enough');
      expect(fdCount()).to.equal(before);
      const pre = await Client.connect({
        host: '127.0.0.1',
        port: hole.port,
        pipeline: Pipeline,
        signal: AbortSignal.abort(new Error('before')),
      }).catch((e: unknown) => e);
      expect((pre as Error).message).to.equal('before');
    });

    it('connects over IPv6 loopback, with or without brackets', async () => {
      const port = await server((s) => s.end('v6'), '::1');
      for (const host of ['::1', '[::1]']) {
        const rec = new Recorder();
        const conn = await Client.connect({ host, port, pipeline: () => new Pipeline().addLast(rec) });
        conns.push(conn);
        expect(conn.remoteAddress).to.deep.include({ address: '::1', family: 'IPv6', port });
        expect(await conn.closed).to.equal('peer-closed');
        expect(rec.data).to.equal('v6');
      }
    });

    it('resolves host names, and tries the next address when one refuses', async () => {
      const port = await server(() => {});
      const conn = await Client.connect({ host: 'localhost', port, pipeline: Pipeline, family: 4 });
      conns.push(conn);
      expect(conn.address).to.equal('127.0.0.1');
      // ::1 refuses (nothing listens there on this port); 127.0.0.1 answers.
      const looked: string[] = [];
      const second = await Client.connect({
        host: 'db.internal',
        port,
        pipeline: Pipeline,
        lookup: async (name) => {
          looked.push(name);
          return [
            { address: '::1', family: 6 },
            { address: '127.0.0.1', family: 4 },
          ];
        },
      });
      conns.push(second);
      expect(looked).to.deep.equal(['db.internal']);
      expect(second.address).to.equal('127.0.0.1');
    });

    it('reports the last address that failed, and lookup failures as they are', async () => {
      const s = await netServer(() => {});
      const port = portOf(s);
      await new Promise((r) => s.close(r));
      const err = await Client.connect({
        host: 'twice.internal',
        port,
        pipeline: Pipeline,
        lookup: async () => [
          { address: '::1', family: 6 },
          { address: '127.0.0.1', family: 4 },
        ],
      }).catch((e: unknown) => e);
      expect(err).to.include({ code: 'ECONNREFUSED', address: '127.0.0.1' });
      const none = await Client.connect({
        host: 'nothing.internal',
        port,
        pipeline: Pipeline,
        lookup: async () => [],
      }).catch((e: unknown) => e);
      expect(none).to.include({ code: 'ENOTFOUND' });
      const dns = await Client.connect({
        host: 'broken.internal',
        port,
        pipeline: Pipeline,
        lookup: async () => {
          throw Object.assign(new Error('getaddrinfo EAI_AGAIN'), { code: 'EAI_AGAIN' });
        },
      }).catch((e: unknown) => e);
      expect(dns).to.include({ code: 'EAI_AGAIN' });
    });

    it('rejects bad options with InvalidOptionError before opening anything', async () => {
      const before = fdCount();
      const bad: Array<[Record<string, unknown>, RegExp]> = [
        [{ port: 0, pipeline: Pipeline }, /port/],
        [{ port: 70000, pipeline: Pipeline }, /port/],
        [{ port: 80 }, /pipeline/],
        [{ port: 80, pipeline: Pipeline, connectTimeout: -1 }, /connectTimeout/],
        [{ port: 80, pipeline: Pipeline, family: 5 }, /family/],
        [{ port: 80, pipeline: Pipeline, host: '' }, /host/],
        [{ port: 80, pipeline: Pipeline, highWaterMark: 0 }, /highWaterMark/],
        [{ port: 80, pipeline: Pipeline, keepAlive: { idle: 0, interval: 1, count: 1 } }, /keepAlive.idle/],
        [{ port: 80, pipeline: Pipeline, maxReadSize: 1024 * 1024 }, /maxReadSize/],
      ];
      for (const [options, name] of bad) {
        const err = await Client.connect(options as never).catch((e: unknown) => e);
        expect(err, JSON.stringify(options)).to.be.instanceOf(InvalidOptionError);
        expect((err as Error).message).to.match(name);
      }
      expect(fdCount()).to.equal(before);
    });
  });

  describe('loops', () => {
    it('runs on the loop of the server serving in this process, and ends with it', async () => {
      const srv = await opened.listen({ host: '127.0.0.1', port: 0, pipeline: jsonEchoPipeline });
      const rec = new Recorder();
      const conn = await Client.connect({
        host: '127.0.0.1',
        port: srv.address().port,
        pipeline: () => new Pipeline().addLast(rec),
      });
      conns.push(conn);
      expect(conn.channel.timers).to.equal(servingLoop()?.timers);
      expect(standaloneLeases()).to.equal(0);
      opened.forget(srv);
      await srv.close({ timeout: 0 });
      expect(await conn.closed).to.equal('shutdown');
    });

    it('runs on an explicit loop, and closes when that loop closes', async () => {
      const port = await server(() => {});
      const loop = new EventLoop();
      const conn = await Client.connect({ host: '127.0.0.1', port, pipeline: Pipeline, loop });
      expect(conn.channel.timers).to.equal(loop.timers);
      expect(standaloneLeases()).to.equal(0);
      await loop.close();
      expect(await conn.closed).to.equal('shutdown');
      const err = await Client.connect({ host: '127.0.0.1', port, pipeline: Pipeline, loop }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(InvalidOptionError);
    });

    for (const t of TRANSPORTS) {
      it(`connects, exchanges and refuses on ${t.poller}/${t.trigger} loops`, async () => {
        const port = await server((s) => jsonLines(s, (m, reply) => reply(m)));
        const loop = new EventLoop(t);
        try {
          const conn = await Client.connect({ host: '127.0.0.1', port, pipeline: jsonPipeline, loop });
          const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => conn.request<{ i: number }>({ i })));
          expect(replies.map((r) => r.i)).to.deep.equal(Array.from({ length: 20 }, (_, i) => i));
          expect(await conn.close()).to.equal('local');
          const closedPort = await netServer(() => {});
          const refusedPort = portOf(closedPort);
          await new Promise((r) => closedPort.close(r));
          const err = await Client.connect({ host: '127.0.0.1', port: refusedPort, pipeline: Pipeline, loop }).catch(
            (e: unknown) => e,
          );
          expect(err).to.include({ code: 'ECONNREFUSED' });
        } finally {
          await loop.close();
        }
      });
    }

    it('shares one standalone loop, closed with the last connection', async () => {
      const port = await server(() => {});
      const a = await Client.connect({ host: '127.0.0.1', port, pipeline: Pipeline });
      const b = await Client.connect({ host: '127.0.0.1', port, pipeline: Pipeline });
      expect(a.channel.timers).to.equal(b.channel.timers);
      expect(standaloneLeases()).to.equal(2);
      await a.close();
      expect(standaloneLeases()).to.equal(1);
      await b.abort();
      expect(standaloneLeases()).to.equal(0);
      // A lease taken and given back leaves nothing either.
      acquireLoop(undefined).release();
      expect(standaloneLeases()).to.equal(0);
    });

    it('a script that only uses the client exits by itself once it closed its connection', async () => {
      const port = await server((s) => jsonLines(s, (m, reply) => reply(m)));
      const index = new URL('../../src/index.js', import.meta.url).href;
      const script = `
        import { Client, Pipeline, JsonLinesDecoder, JsonLinesEncoder, RequestResponseHandler } from ${JSON.stringify(index)};
        const conn = await Client.connect({ host: '127.0.0.1', port: ${port}, pipeline: () =>
          new Pipeline().addLast(new JsonLinesDecoder()).addLast(new JsonLinesEncoder()).addLast(new RequestResponseHandler()) });
        const reply = await conn.request({ hello: 'world' });
        console.log(JSON.stringify(reply));
        await conn.close();
      `;
      const ran = await runToExit(['--input-type=module', '-e', script], children, 10_000);
      expect(ran.code, `the script did not exit by itself: ${ran.stderr}`).to.equal(0);
      expect(JSON.parse(ran.stdout)).to.deep.equal({ hello: 'world', uid: 1 });
    });
  });

  describe('requests', () => {
    it('matches replies that come out of order', async () => {
      const port = await server((s) => {
        // Answers each batch of 10 requests in reverse order.
        let batch: Array<[Record<string, unknown>, (o: unknown) => void]> = [];
        jsonLines(s, (m, reply) => {
          batch.push([m, reply]);
          if (batch.length === 10) {
            for (const [req, r] of batch.reverse()) r({ ...req, answer: (req.n as number) * 2 });
            batch = [];
          }
        });
      });
      const conn = await Client.connect({ host: '127.0.0.1', port, pipeline: jsonPipeline });
      conns.push(conn);
      const replies = await Promise.all(
        Array.from({ length: 50 }, (_, n) => conn.request<{ n: number; answer: number }>({ n })),
      );
      replies.forEach((r, n) => {
        expect(r).to.include({ n, answer: n * 2 });
      });
      expect(conn.requests?.stats).to.include({ sent: 50, completed: 50, late: 0, unmatched: 0 });
    });

    it('times out a slow request, drops its late reply, and serves the others', async () => {
      const port = await server((s) =>
        jsonLines(s, (m, reply) => {
          if (m.slow) setTimeout(() => reply(m), 300);
          else reply(m);
        }),
      );
      const conn = await Client.connect({ host: '127.0.0.1', port, pipeline: jsonPipeline });
      conns.push(conn);
      const slow = conn.request({ slow: true }, { timeout: 100 }).catch((e: unknown) => e);
      const fast = await conn.request<{ fast: boolean }>({ fast: true });
      expect(fast.fast).to.equal(true);
      expect(await slow).to.be.instanceOf(RequestTimeoutError);
      await waitFor(() => conn.requests?.stats.late === 1, 'the late reply');
      expect(conn.requests?.pending).to.equal(0);
      expect((await conn.request<{ again: number }>({ again: 1 })).again).to.equal(1);
    });

    it('a server that resets mid-flight rejects every pending request with the reason', async () => {
      let received = 0;
      const port = await server((s) =>
        jsonLines(s, () => {
          if (++received === 3) s.resetAndDestroy();
        }),
      );
      const conn = await Client.connect({ host: '127.0.0.1', port, pipeline: jsonPipeline });
      conns.push(conn);
      const results = await Promise.allSettled([1, 2, 3].map((i) => conn.request({ i })));
      for (const r of results) {
        expect(r.status).to.equal('rejected');
        const err = (r as PromiseRejectedResult).reason as ChannelClosedError;
        expect(err).to.be.instanceOf(ChannelClosedError);
        expect(err.reason).to.equal('reset');
      }
      expect(await conn.closed).to.equal('reset');
    });

    it('a server process killed mid-flight rejects the pending requests', async () => {
      // A child that reads requests and never answers, then dies by SIGKILL.
      const child = spawn(
        process.execPath,
        [
          '-e',
          `const s = require('node:net').createServer((c) => { c.on('data', () => process.stdout.write('got\\n')); });
           s.listen(0, '127.0.0.1', () => console.log('port', s.address().port));`,
        ],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(child);
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d;
      });
      await waitFor(() => /port (\d+)/.test(out), 'the child server');
      const port = Number(/port (\d+)/.exec(out)?.[1]);
      const conn = await Client.connect({ host: '127.0.0.1', port, pipeline: jsonPipeline });
      conns.push(conn);
      const pending = [1, 2, 3].map((i) => conn.request({ i }).catch((e: unknown) => e));
      await waitFor(() => out.includes('got'), 'the requests to arrive');
      child.kill('SIGKILL');
      for (const e of await Promise.all(pending)) {
        expect(e).to.be.instanceOf(ChannelClosedError);
        expect(['peer-closed', 'reset']).to.include((e as ChannelClosedError).reason);
      }
    });

    it('request() without a RequestResponseHandler rejects clearly', async () => {
      const port = await server(() => {});
      const conn = await Client.connect({ host: '127.0.0.1', port, pipeline: Pipeline });
      conns.push(conn);
      const err = await conn.request({}).catch((e: unknown) => e);
      expect(err).to.include({ code: 'ERR_NO_REQUEST_HANDLER' });
    });
  });

  describe('HTTP', () => {
    it('talks to the HTTP server side: pipelined requests in order, HEAD, POST', async () => {
      const srv = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        pipeline: http((req, res) => {
          if (req.path === '/plaintext') res.setHeader('Content-Type', 'text/plain').end('Hello, World!');
          else if (req.method === 'POST') res.end(Buffer.concat([Buffer.from('got '), req.body]));
          else res.writeHead(404).end(`no ${req.path}`);
        }),
      });
      const conn = await Client.connect({ host: '127.0.0.1', port: srv.address().port, pipeline: httpClient() });
      conns.push(conn);
      const paths = Array.from({ length: 20 }, (_, i) => (i % 3 === 0 ? `/miss${i}` : '/plaintext'));
      const all = await Promise.all(paths.map((path) => conn.request<HttpClientResponse>({ path })));
      all.forEach((res, i) => {
        if (i % 3 === 0) {
          expect(res.statusCode).to.equal(404);
          expect(res.text()).to.equal(`no /miss${i}`);
        } else {
          expect(res.statusCode).to.equal(200);
          expect(res.headers.get('content-type')).to.equal('text/plain');
          expect(res.text()).to.equal('Hello, World!');
        }
      });
      const head = await conn.request<HttpClientResponse>({ method: 'HEAD', path: '/plaintext' });
      expect(head.statusCode).to.equal(200);
      expect(head.headers.get('content-length')).to.equal('13');
      expect(head.body.length).to.equal(0);
      const post = await conn.request<HttpClientResponse>({ method: 'POST', path: '/echo', body: 'this' });
      expect(post.text()).to.equal('got this');
    });
  });

  it('leaves no descriptor behind after many connects, requests and closes', async () => {
    const port = await server((s) => jsonLines(s, (m, reply) => reply(m)));
    const before = fdCount();
    for (let round = 0; round < 3; round++) {
      const cs = await Promise.all(
        Array.from({ length: 10 }, () => Client.connect({ host: '127.0.0.1', port, pipeline: jsonPipeline })),
      );
      await Promise.all(cs.map((c) => c.request({ round })));
      await Promise.all(cs.map((c, i) => (i % 2 === 0 ? c.close() : c.abort())));
    }
    await waitFor(() => standaloneLeases() === 0, 'the loop to close');
    // The standalone loop's epoll fd is gone too.
    await waitFor(() => fdCount() === before, `descriptors back to ${before} (now ${fdCount()})`);
  });
});

/** A JSON-lines echo pipeline for in-process servers. */
const jsonEchoPipeline = () =>
  new Pipeline()
    .addLast(new JsonLinesDecoder())
    .addLast(new JsonLinesEncoder())
    .addLast(
      new (class extends ChannelInboundHandler {
        override onRead(ctx: HandlerContext, msg: unknown): void {
          ctx.write(msg);
        }
      })(),
    );
