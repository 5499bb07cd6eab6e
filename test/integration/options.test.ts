/**
 * Issue 15 items 11 and 12 where they meet real sockets: `Server.listen`, `Client.connect`, `Pool`
 * and `runLoad` reject an unknown option key before anything is opened (a `Server.listen` that
 * resolved would have bound a port); `Server.listen` rejects a pipeline whose handlers' options
 * are bad before it binds; a pipeline that fails only on a real connection costs that connection
 * and one log line.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  ChannelInboundHandler,
  Client,
  EmbeddedChannel,
  type HandlerContext,
  HeartbeatHandler,
  InvalidOptionError,
  LineFrameDecoder,
  type Logger,
  Pipeline,
  Pool,
  runLoad,
  Server,
  type ServerHandle,
  type ServerOptions,
} from '../../src/index.js';
import { closed, connect, echoPipeline, Opened, waitFor } from './helpers.js';

/**
 * Master-mode options for tests that expect a rejection before any fork: should a worker be forked
 * anyway, it runs a module that exits at once (not this test runner), and the master gives up fast.
 */
const HARMLESS_MASTER = {
  handleSignals: false,
  workerScript: join(dirname(fileURLToPath(import.meta.url)), '..', 'offload-tasks.js'),
  workerArgs: [],
  maxCrashes: 0,
  startTimeout: 2000,
};

/** A logger that keeps each call: its message and how many details came with it. */
function recordingLogger(): Logger & { calls: Array<{ level: string; message: string; details: unknown[] }> } {
  const calls: Array<{ level: string; message: string; details: unknown[] }> = [];
  const at =
    (level: string) =>
    (message: string, ...details: unknown[]) => {
      calls.push({ level, message, details });
    };
  return { calls, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

describe('options: unknown keys and handler options, before anything is opened', function () {
  this.timeout(20_000);
  const opened = new Opened();
  afterEach(() => opened.teardown());

  /** What `Server.listen(options)` rejects with; a server that started anyway is closed, and the test fails. */
  async function listenFailure(options: Record<string, unknown>): Promise<InvalidOptionError> {
    let server: ServerHandle | undefined;
    let failure: unknown;
    try {
      server = await Server.listen({ workers: 0, host: '127.0.0.1', ...options } as unknown as ServerOptions);
    } catch (err) {
      failure = err;
    }
    if (server !== undefined) {
      const port = server.address().port;
      await server.close({ timeout: 0 });
      expect.fail(`listen resolved (bound port ${port}) instead of rejecting`);
    }
    expect(failure).to.be.instanceOf(InvalidOptionError);
    return failure as InvalidOptionError;
  }

  describe('Server.listen', () => {
    it("{ prot: 80 } rejects: unknown option 'prot' (did you mean 'port'?)", async () => {
      const err = await listenFailure({ prot: 80, pipeline: echoPipeline() });
      expect(err.message).to.equal("Server.listen: unknown option 'prot' (did you mean 'port'?)");
    });

    for (const [key, near] of [
      ['workres', 'workers'],
      ['maxConnection', 'maxConnections'],
      ['highWatermark', 'highWaterMark'],
      ['poler', 'poller'],
      ['restartDealy', 'restartDelay'],
      ['keepalive', 'keepAlive'],
      ['noDealy', 'noDelay'],
    ] as const) {
      it(`{ ${key} } → did you mean '${near}'?`, async () => {
        const err = await listenFailure({ port: 0, [key]: 1, pipeline: echoPipeline() });
        expect(err.message).to.contain(`unknown option '${key}' (did you mean '${near}'?)`);
      });
    }

    it('checks the keys of nested options (keepAlive)', async () => {
      const err = await listenFailure({
        port: 0,
        keepAlive: { idle: 1, intervall: 1, count: 1 },
        pipeline: echoPipeline(),
      });
      expect(err.message).to.contain("unknown option 'keepAlive.intervall' (did you mean 'keepAlive.interval'?)");
    });

    it("port: '8080' must be a number — not 'an integer from 0 to 65535, got 8080'", async () => {
      const err = await listenFailure({ port: '8080', pipeline: echoPipeline() });
      expect(err.message).to.equal("option port: must be a number, got the string '8080'");
    });

    it('rejects in a master too, before any worker is forked', async () => {
      const err = await listenFailure({ workers: 2, prot: 80, pipeline: echoPipeline(), ...HARMLESS_MASTER });
      expect(err.message).to.contain("unknown option 'prot'");
    });
  });

  describe('the client', () => {
    it('Client.connect rejects { connectTimout } before connecting', async () => {
      let failure: unknown;
      try {
        await Client.connect({ host: '127.0.0.1', port: 1, pipeline: echoPipeline(), connectTimout: 5 } as never);
      } catch (err) {
        failure = err;
      }
      expect(failure).to.be.instanceOf(InvalidOptionError);
      expect((failure as Error).message).to.equal(
        "Client.connect: unknown option 'connectTimout' (did you mean 'connectTimeout'?)",
      );
    });

    it('Pool rejects unknown keys, its reconnect options included, and a request option', async () => {
      const base = { host: '127.0.0.1', port: 1, pipeline: echoPipeline() };
      expect(() => new Pool({ ...base, maxConection: 2 } as never))
        .to.throw(InvalidOptionError)
        .with.property('message')
        .that.contains("unknown option 'maxConection' (did you mean 'maxConnections'?)");
      expect(() => new Pool({ ...base, reconnect: { initalDelay: 1 } } as never))
        .to.throw(InvalidOptionError)
        .with.property('message')
        .that.contains("unknown option 'reconnect.initalDelay' (did you mean 'reconnect.initialDelay'?)");
      // 'signal' belongs to Client.connect, not to a pool.
      expect(() => new Pool({ ...base, signal: AbortSignal.timeout(1000) } as never)).to.throw(InvalidOptionError);
      const pool = new Pool({ ...base, minConnections: 0 });
      try {
        let failure: unknown;
        try {
          await pool.request('x', { timout: 1 } as never);
        } catch (err) {
          failure = err;
        }
        expect(failure).to.be.instanceOf(InvalidOptionError);
        expect((failure as Error).message).to.contain("unknown option 'timout' (did you mean 'timeout'?)");
      } finally {
        await pool.close();
      }
    });

    it('runLoad rejects { conections }', async () => {
      let failure: unknown;
      try {
        await runLoad({ url: 'http://127.0.0.1:1/', conections: 1 } as never);
      } catch (err) {
        failure = err;
      }
      expect(failure).to.be.instanceOf(InvalidOptionError);
      expect((failure as Error).message).to.contain("unknown option 'conections' (did you mean 'connections'?)");
    });
  });

  describe('Server.listen builds one pipeline before it binds (item 12)', () => {
    it('a handler option that is bad in initChannel rejects listen, nothing bound', async () => {
      class Bad extends Pipeline {
        override initChannel(): void {
          this.addLast(new LineFrameDecoder()).addLast('idle', new HeartbeatHandler({ timeout: Number('abc') * 1000 }));
        }
      }
      const err = await listenFailure({ port: 0, pipeline: Bad });
      expect(err.message).to.equal('option timeout: must be a number of milliseconds, got NaN');
    });

    it('so does one in a factory, and in a master before it forks', async () => {
      const factory = () => new Pipeline().addLast(new HeartbeatHandler({ interval: 0, ping: () => 'p' }));
      expect((await listenFailure({ port: 0, pipeline: factory })).message).to.contain('option interval:');
      const err = await listenFailure({ port: 0, workers: 2, pipeline: factory, ...HARMLESS_MASTER });
      expect(err.message).to.contain('option interval:');
    });

    it('any other error building the pipeline rejects listen as an InvalidOptionError for pipeline, with the cause', async () => {
      const boom = new TypeError('boom');
      const err = await listenFailure({
        port: 0,
        pipeline: () => {
          throw boom;
        },
      });
      expect(err.option).to.equal('pipeline');
      expect(err.message).to.contain('boom');
      expect(err.cause).to.equal(boom);
      // handlerAdded errors too: they reach the tail of the trial pipeline
      class Throws extends ChannelInboundHandler {
        handlerAdded(): void {
          throw new RangeError('not today');
        }
      }
      const err2 = await listenFailure({ port: 0, pipeline: () => new Pipeline().addLast(new Throws()) });
      expect(err2.message).to.contain('not today');
    });

    it('the trial pipeline is inactive and torn down: handlerAdded sees an inactive channel, no onActive, handlerRemoved runs', async () => {
      const seen: string[] = [];
      class Watch extends ChannelInboundHandler {
        handlerAdded(ctx: HandlerContext): void {
          seen.push(`added active=${ctx.channel.isActive}`);
        }
        handlerRemoved(): void {
          seen.push('removed');
        }
        override onActive(ctx: HandlerContext): void {
          seen.push('active');
          ctx.fireActive();
        }
      }
      const srv = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        pipeline: () => new Pipeline().addLast(new HeartbeatHandler({ timeout: 60_000 })).addLast(new Watch()),
      });
      expect(seen).to.deep.equal(['added active=false', 'removed']);
      const s = await connect(srv.address().port);
      await waitFor(() => seen.includes('active'), 'the real connection');
      expect(seen.slice(2)).to.deep.equal(['added active=true', 'active']);
      s.destroy();
    });
  });

  describe('a pipeline that fails on a real connection (item 12)', () => {
    it('costs only that connection, and one log line — no stack trace per connection', async () => {
      const logger = recordingLogger();
      let built = 0;
      const srv = await opened.listen({
        host: '127.0.0.1',
        port: 0,
        logger,
        pipeline: () => {
          // The trial build passes; every real connection's fails.
          if (built++ > 0) throw new Error('no pipeline for you');
          return echoPipeline()();
        },
      });
      const port = srv.address().port;
      for (let i = 0; i < 3; i++) {
        const s = await connect(port);
        s.on('error', () => {});
        await closed(s);
      }
      await waitFor(() => logger.calls.filter((c) => c.level === 'error').length >= 3, 'three log lines');
      const errors = logger.calls.filter((c) => c.level === 'error');
      expect(errors).to.have.length(3);
      for (const c of errors) {
        expect(c.details, 'no Error object (whose stack the logger would print)').to.deep.equal([]);
        expect(c.message).to.not.contain('\n');
        expect(c.message).to.contain('no pipeline for you');
      }
      expect(srv.connections).to.equal(0);
    });
  });

  it('EmbeddedChannel with a known option still works', () => {
    const ch = new EmbeddedChannel([], { tickMs: 5 });
    ch.finish();
  });
});
