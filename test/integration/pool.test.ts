/**
 * The pool on real sockets: growing to maxConnections, choosing connections, idle timeout,
 * heartbeat health checks, bounded waiting, fail-fast connects with backoff, close(), and a
 * server killed and restarted under load — where every request must either resolve or reject.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { expect } from 'chai';
import { standaloneLeases } from '../../src/client/loops.js';
import {
  ChannelClosedError,
  InvalidOptionError,
  JsonLinesDecoder,
  JsonLinesEncoder,
  Pipeline,
  Pool,
  PoolClosedError,
  type PoolOptions,
  RequestTimeoutError,
  SyscallError,
  TooManyPendingError,
} from '../../src/index.js';
import { destroyAll, ECHO_EXAMPLE, fdCount, jsonLines, startListening, waitFor } from './helpers.js';

const codecs = () => new Pipeline().addLast(new JsonLinesDecoder()).addLast(new JsonLinesEncoder());

interface JsonServer {
  readonly port: number;
  /** Requests seen per server-side connection, in accept order. */
  readonly perConnection: number[];
  readonly sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/** A JSON-lines server; `answer` decides the reply (undefined: no reply). */
async function jsonServer(answer: (msg: Record<string, unknown>) => unknown = (m) => m): Promise<JsonServer> {
  const perConnection: number[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    const index = perConnection.push(0) - 1;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    jsonLines(s, (msg, reply) => {
      perConnection[index] = (perConnection[index] as number) + 1;
      const value = answer(msg);
      if (value !== undefined) reply(value);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    perConnection,
    sockets,
    close: async () => {
      await destroyAll(sockets);
      await new Promise((r) => server.close(r));
    },
  };
}

describe('Pool', function () {
  this.timeout(30_000);
  const pools: Pool[] = [];
  const servers: JsonServer[] = [];
  const children: ChildProcess[] = [];

  function pool(options: Omit<PoolOptions, 'pipeline'> & { pipeline?: PoolOptions['pipeline'] }): Pool {
    const p = new Pool({ host: '127.0.0.1', pipeline: codecs, ...options } as PoolOptions);
    pools.push(p);
    return p;
  }

  async function server(answer?: (msg: Record<string, unknown>) => unknown): Promise<JsonServer> {
    const s = await jsonServer(answer);
    servers.push(s);
    return s;
  }

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
    await Promise.all(servers.splice(0).map((s) => s.close()));
    for (const c of children.splice(0)) {
      if (c.exitCode === null && c.signalCode === null) {
        const exited = once(c, 'exit');
        c.kill('SIGKILL');
        await exited;
      }
    }
    await waitFor(() => standaloneLeases() === 0, 'the standalone loop to be released');
  });

  it('opens connections on demand up to maxConnections and spreads the requests', async () => {
    const s = await server();
    const p = pool({ port: s.port, maxConnections: 3 });
    expect(p.stats().open).to.equal(0); // nothing before the first request
    const replies = await Promise.all(Array.from({ length: 60 }, (_, i) => p.request<{ i: number }>({ i })));
    replies.forEach((r, i) => {
      expect(r.i).to.equal(i);
    });
    const st = p.stats();
    expect(st.open).to.equal(3);
    expect(st.connects).to.equal(3);
    expect(st).to.include({ pending: 0, waiting: 0, connectFailures: 0, lost: 0 });
    expect(s.perConnection).to.have.length(3);
    expect(s.perConnection.reduce((a, b) => a + b, 0)).to.equal(60);
    for (const n of s.perConnection) expect(n).to.be.greaterThan(0);
  });

  it('round-robin rotates over the connections; least-pending fills the first free one', async () => {
    const s = await server();
    const rr = pool({ port: s.port, maxConnections: 2, minConnections: 2, strategy: 'round-robin' });
    await waitFor(() => rr.stats().open === 2, 'two connections');
    for (let i = 0; i < 10; i++) await rr.request({ i });
    expect(s.perConnection).to.deep.equal([5, 5]);
    await rr.close();
    const s2 = await server();
    const lp = pool({ port: s2.port, maxConnections: 2, minConnections: 2, strategy: 'least-pending' });
    await waitFor(() => lp.stats().open === 2, 'two connections');
    for (let i = 0; i < 10; i++) await lp.request({ i });
    // One at a time: the first connection is always free (so the other may go idle).
    expect(s2.perConnection).to.deep.equal([10, 0]);
  });

  it('multiplexes up to `pipelining` requests per connection', async () => {
    // Replies after 10 ms; records how many requests were outstanding at most.
    let inFlight = 0;
    let maxInFlight = 0;
    const srv = net.createServer((c) => {
      c.setEncoding('utf8');
      c.on('error', () => {});
      let buf = '';
      c.on('data', (d: string) => {
        buf += d;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          const line = buf.slice(0, i + 1);
          buf = buf.slice(i + 1);
          maxInFlight = Math.max(maxInFlight, ++inFlight);
          setTimeout(() => {
            inFlight--;
            c.write(line);
          }, 10);
        }
      });
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    try {
      const p = pool({ port: (srv.address() as net.AddressInfo).port, maxConnections: 1, pipelining: 8 });
      const all = await Promise.all(Array.from({ length: 40 }, (_, i) => p.request<{ i: number }>({ i })));
      all.forEach((r, i) => {
        expect(r.i).to.equal(i);
      });
      expect(maxInFlight).to.equal(8);
      expect(p.stats().connects).to.equal(1);
      await p.close();
    } finally {
      await new Promise((r) => srv.close(r));
    }
  });

  it('closes idle connections after idleTimeout, above minConnections', async () => {
    const s = await server();
    const p = pool({ port: s.port, maxConnections: 3, minConnections: 1, idleTimeout: 100 });
    await Promise.all(Array.from({ length: 9 }, (_, i) => p.request({ i })));
    expect(p.stats().open).to.equal(3);
    await waitFor(() => p.stats().open === 1, 'idle connections to close');
    await waitFor(() => s.sockets.size === 1, 'the server to see them close');
    expect((await p.request<{ again: boolean }>({ again: true })).again).to.equal(true);
  });

  it('a server that stops answering pings is dropped (heartbeat) and replaced', async () => {
    let answering = true;
    const s = await server((m) => {
      if (m.ping) return answering ? { pong: true } : undefined;
      return m;
    });
    const p = pool({
      port: s.port,
      minConnections: 1,
      heartbeat: {
        interval: 60,
        missed: 1,
        ping: () => ({ ping: true }),
        isPong: (m) => (m as { pong?: boolean }).pong === true,
      },
    });
    await waitFor(() => p.stats().open === 1, 'the first connection');
    await new Promise((r) => setTimeout(r, 250)); // pings answered: nothing happens
    expect(p.stats()).to.include({ open: 1, lost: 0 });
    answering = false;
    await waitFor(() => p.stats().lost === 1, 'the silent connection to be dropped');
    await waitFor(() => p.stats().open === 1 && p.stats().connects === 2, 'a replacement (minConnections)');
    answering = true;
    expect(await p.request({ x: 1 })).to.deep.equal({ x: 1, uid: 1 });
  });

  it('bounds the waiting requests (maxWaiting) and counts the wait in the timeout', async () => {
    const s = await server(() => undefined); // never answers
    const p = pool({ port: s.port, maxConnections: 1, maxWaiting: 3, timeout: 150 });
    // No connection yet: all three wait for the first one to open.
    const first = p.request({}).catch((e: unknown) => e);
    const w1 = p.request({}).catch((e: unknown) => e);
    const w2 = p.request({}).catch((e: unknown) => e);
    expect(p.stats()).to.include({ waiting: 3 });
    const over = await p.request({}).catch((e: unknown) => e);
    expect(over).to.be.instanceOf(TooManyPendingError);
    expect((over as TooManyPendingError).limit).to.equal(3);
    await waitFor(() => p.stats().pending === 1, 'the first request to be sent');
    expect(p.stats()).to.include({ waiting: 2 });
    const t0 = performance.now();
    for (const e of await Promise.all([first, w1, w2])) expect(e).to.be.instanceOf(RequestTimeoutError);
    expect(performance.now() - t0).to.be.below(2000);
    expect(p.stats()).to.include({ waiting: 0, pending: 0 });
  });

  it('with the server down, requests fail fast with the connect error; connects back off', async () => {
    const s = await jsonServer();
    const port = s.port;
    await s.close();
    const p = pool({ port, reconnect: { initialDelay: 200, jitter: 0 } });
    const first = await p.request({}).catch((e: unknown) => e);
    expect(first).to.be.instanceOf(SyscallError);
    expect(first).to.include({ code: 'ECONNREFUSED', port });
    // Right after a failure the pool waits for the backoff before trying again.
    const t0 = performance.now();
    const second = await p.request({}).catch((e: unknown) => e);
    expect(second).to.include({ code: 'ECONNREFUSED' });
    expect(performance.now() - t0).to.be.at.least(150);
    expect(p.stats().connectFailures).to.equal(2);
  });

  it('close() rejects waiting and in-flight requests with PoolClosedError and releases everything', async () => {
    const s = await server(() => undefined);
    const before = fdCount();
    const p = new Pool({ host: '127.0.0.1', port: s.port, pipeline: codecs, maxConnections: 2, timeout: 0 });
    const all = Array.from({ length: 5 }, (_, i) => p.request({ i }).catch((e: unknown) => e));
    await waitFor(() => p.stats().pending === 2 && p.stats().waiting === 3, 'requests in flight and waiting');
    await p.close();
    for (const e of await Promise.all(all)) expect(e).to.be.instanceOf(PoolClosedError);
    expect(await p.request({}).catch((e: unknown) => e)).to.be.instanceOf(PoolClosedError);
    expect(p.stats().open).to.equal(0);
    await waitFor(() => s.sockets.size === 0, 'the server to see the connections close');
    await waitFor(() => fdCount() === before, `descriptors back to ${before} (now ${fdCount()})`);
  });

  it('close({ drain }) refuses new requests at once and lets those already made finish', async () => {
    // Replies 100 ms after each request.
    const delayed = net.createServer((c) => {
      jsonLines(c, (msg, reply) => setTimeout(() => reply(msg), 100));
    });
    delayed.listen(0, '127.0.0.1');
    await once(delayed, 'listening');
    try {
      const p = pool({ port: (delayed.address() as net.AddressInfo).port, maxConnections: 1, pipelining: 2 });
      const all = Array.from({ length: 5 }, (_, i) => p.request<{ i: number }>({ i }));
      await waitFor(() => p.stats().pending === 2 && p.stats().waiting === 3, 'two in flight, three waiting');
      const closing = p.close({ drain: 5000 });
      expect(p.closed).to.equal(true);
      expect(await p.request({}).catch((e: unknown) => e), 'refused at once').to.be.instanceOf(PoolClosedError);
      expect((await Promise.all(all)).map((r) => r.i)).to.deep.equal([0, 1, 2, 3, 4]);
      await closing;
      expect(p.stats().open).to.equal(0);
      expect(await p.close({ drain: 1000 }), 'a second close is the first').to.equal(undefined);
    } finally {
      await new Promise((r) => delayed.close(r));
    }
  });

  it('close({ drain }) rejects what is left at the deadline with PoolClosedError', async () => {
    const s = await server(() => undefined); // never answers
    const p = pool({ port: s.port, maxConnections: 1, pipelining: 1, timeout: 0 });
    const all = Array.from({ length: 3 }, (_, i) => p.request({ i }).catch((e: unknown) => e));
    await waitFor(() => p.stats().pending === 1 && p.stats().waiting === 2, 'one in flight, two waiting');
    const t0 = performance.now();
    await p.close({ drain: 150 });
    expect(performance.now() - t0).to.be.at.least(140);
    for (const e of await Promise.all(all)) expect(e).to.be.instanceOf(PoolClosedError);
    expect(p.stats().open).to.equal(0);
    await p.close({ drain: -1 }); // closed already: the first close's promise, options not looked at
    const q = pool({ port: s.port });
    expect(() => q.close({ drain: -1 })).to.throw(InvalidOptionError, /drain/);
  });

  it('survives a server restart: reconnects, and every request resolves or rejects', async () => {
    const start = async (port: number) => {
      const started = await startListening([
        ECHO_EXAMPLE,
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--framing',
        'json',
      ]);
      children.push(started.child);
      return started;
    };
    const first = await start(0);
    const port = first.port;
    const p = pool({
      port,
      maxConnections: 4,
      pipelining: 4,
      timeout: 2000,
      reconnect: { initialDelay: 20, maxDelay: 200 },
    });
    let sent = 0;
    const outcomes: Array<Promise<'ok' | string>> = [];
    let running = true;
    const wrong: unknown[] = [];
    // 8 workers sending one request after another until told to stop.
    const workers = Array.from({ length: 8 }, async (_, w) => {
      while (running) {
        const i = sent++;
        const outcome = p.request<{ w: number; i: number }>({ w, i }).then(
          (r) => {
            if (r.w !== w || r.i !== i) wrong.push(r);
            return 'ok' as const;
          },
          (e: unknown) => ((e as { code?: string }).code ?? String(e)) as string,
        );
        outcomes.push(outcome);
        if ((await outcome) !== 'ok') await new Promise((r) => setTimeout(r, 5));
      }
    });
    await waitFor(() => sent > 200, 'load before the kill');
    const exited = once(first.child, 'exit');
    first.child.kill('SIGKILL');
    await exited;
    await waitFor(() => p.stats().lost > 0, 'the pool to notice');
    const okBefore = (await Promise.all(outcomes.slice())).filter((o) => o === 'ok').length;
    await start(port);
    const sentAtRestart = sent;
    await waitFor(() => sent > sentAtRestart + 200, 'load after the restart', 10_000);
    running = false;
    await Promise.all(workers);
    const all = await Promise.all(outcomes);
    expect(all.length).to.equal(sent); // every request settled: none lost silently
    expect(wrong).to.deep.equal([]);
    const okAfter = all.slice(sentAtRestart).filter((o) => o === 'ok').length;
    expect(okBefore).to.be.greaterThan(0);
    expect(okAfter).to.be.greaterThan(100);
    const failures = new Set(all.filter((o) => o !== 'ok'));
    // What a dying server may cause: lost connections, refused connects, nothing else.
    for (const f of failures) expect(['ERR_CHANNEL_CLOSED', 'ECONNREFUSED', 'ECONNRESET']).to.include(f);
    expect(p.stats().connects).to.be.greaterThan(1);
  });

  it('validates its options with InvalidOptionError naming the option', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ maxConnections: 0 }, /maxConnections/],
      [{ minConnections: 5, maxConnections: 2 }, /minConnections/],
      [{ pipelining: 0 }, /pipelining/],
      [{ strategy: 'random' }, /strategy/],
      [{ idleTimeout: -1 }, /idleTimeout/],
      [{ maxWaiting: -1 }, /maxWaiting/],
      [{ reconnect: { factor: 0.5 } }, /reconnect.factor/],
      [{ reconnect: { jitter: 2 } }, /reconnect.jitter/],
      [{ heartbeat: { timeout: 100 } }, /heartbeat/],
      [{ heartbeat: { interval: 100 } }, /ping/],
      [{ maxPending: 0 }, /maxPending/],
      [{ port: 0 }, /port/],
    ];
    for (const [options, name] of bad) {
      expect(
        () => new Pool({ host: '127.0.0.1', port: 1, pipeline: codecs, ...options } as PoolOptions),
        JSON.stringify(options),
      )
        .to.throw(InvalidOptionError)
        .with.property('message')
        .that.matches(name);
    }
    expect(standaloneLeases()).to.equal(0);
  });

  it('a connection lost mid-flight rejects its requests with ChannelClosedError and the reason', async () => {
    let held = 0;
    const s = await server(() => {
      held++;
      return undefined;
    });
    const p = pool({ port: s.port, maxConnections: 1, pipelining: 4, timeout: 0 });
    const pending = [1, 2, 3].map((i) => p.request({ i }).catch((e: unknown) => e));
    await waitFor(() => held === 3, 'the requests to arrive');
    for (const sock of s.sockets) sock.resetAndDestroy();
    for (const e of await Promise.all(pending)) {
      expect(e).to.be.instanceOf(ChannelClosedError);
      expect((e as ChannelClosedError).reason).to.equal('reset');
    }
    expect(p.stats().lost).to.equal(1);
  });
});
