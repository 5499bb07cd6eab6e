/**
 * `res.takeConnection`: an Upgrade or CONNECT request switches the connection only when the
 * application takes it. The pipeline is built as users build it (`http(handler)`), fed bytes.
 */
import { expect } from 'chai';
import { http } from '../../../src/codec/http1/http.js';
import type { HttpRequest } from '../../../src/codec/http1/request.js';
import type { HttpResponse } from '../../../src/codec/http1/response.js';
import type { HttpHandler, HttpServerHandlerOptions } from '../../../src/codec/http1/server.js';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { DRAINING } from '../../../src/pipeline/events.js';
import { ChannelInboundHandler, type CloseReason } from '../../../src/pipeline/handler.js';
import type { HandlerContext, Pipeline } from '../../../src/pipeline/pipeline.js';
import { thrownBy } from '../../support.js';

const UPGRADE = 'GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: raw\r\n\r\n';
const CONNECT = 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n';

/** The next protocol: records what it reads and what else reaches it, answers `RAW:` + bytes. */
class Raw extends ChannelInboundHandler {
  readonly reads: string[] = [];
  readonly events: unknown[] = [];
  readCompletes = 0;
  inactive: CloseReason | undefined;
  override onRead(ctx: HandlerContext, msg: unknown): void {
    const text = Buffer.from(msg as Uint8Array).toString('latin1');
    this.reads.push(text);
    ctx.write(Buffer.from(`RAW:${text}`, 'latin1'));
  }
  override onReadComplete(ctx: HandlerContext): void {
    this.readCompletes++;
    ctx.flush();
  }
  override onUserEvent(_ctx: HandlerContext, event: unknown): void {
    this.events.push(event);
  }
  override onInactive(_ctx: HandlerContext, reason: CloseReason): void {
    this.inactive = reason;
  }
}

function setup(handler: HttpHandler, options: HttpServerHandlerOptions = {}) {
  const ch = new EmbeddedChannel(http(handler, options));
  return { ch, out: () => ch.readOutboundBytes().toString('latin1') };
}

const bytes = (s: string) => Buffer.from(s, 'latin1');
/** After this turn of the event loop (when an upgrade answered without takeConnection is decided). */
const nextTurn = () => new Promise((r) => setImmediate(r));

describe('res.takeConnection: Upgrade and CONNECT switch only when taken', () => {
  it('taken before end(): the 101 goes out, the HTTP stages leave, the bytes after the head reach the new stage', () => {
    const raw = new Raw();
    let installedWith: [Pipeline, unknown] | undefined;
    const { ch, out } = setup((_req, res) => {
      res.writeHead(101, { Connection: 'Upgrade', Upgrade: 'raw' });
      res.takeConnection((pipeline, channel) => {
        installedWith = [pipeline, channel];
        pipeline.addLast('raw', raw);
      });
      res.end();
    });
    ch.writeInbound(bytes(`${UPGRADE}early`));
    expect(installedWith?.[0]).to.equal(ch.pipeline);
    expect(installedWith?.[1]).to.equal(ch);
    const text = out();
    expect(text).to.match(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(text.endsWith('\r\n\r\nRAW:early'), text).to.equal(true);
    expect(ch.pipeline.names()).to.deep.equal(['http-switched', 'raw']);
    expect(ch.isReadingPaused, 'reading resumed').to.equal(false);
    ch.writeInbound(bytes('later'));
    expect(out()).to.equal('RAW:later');
    expect(raw.reads).to.deep.equal(['early', 'later']);
  });

  it('taken right after end(), in the same run, works the same', async () => {
    const raw = new Raw();
    const { ch, out } = setup((_req, res) => {
      res.writeHead(101, { Connection: 'Upgrade', Upgrade: 'raw' }).end();
      res.takeConnection((pipeline) => pipeline.addLast('raw', raw), { idleTimeout: 0 });
    });
    ch.writeInbound(bytes(`${UPGRADE}early`));
    await nextTurn();
    expect(out()).to.match(/^HTTP\/1\.1 101 [\s\S]*\r\n\r\nRAW:early$/);
    expect(ch.pipeline.names(), 'idleTimeout 0: no idle stage').to.deep.equal(['raw']);
    expect(ch.isActive).to.equal(true);
  });

  it('taken after end() and an await of something settled, in the same turn: still taken', async () => {
    const raw = new Raw();
    const { ch, out } = setup(async (_req, res) => {
      res.writeHead(101, { Connection: 'Upgrade', Upgrade: 'raw' }).end();
      await Promise.resolve();
      res.takeConnection((pipeline) => pipeline.addLast('raw', raw));
    });
    ch.writeInbound(bytes(`${UPGRADE}early`));
    await nextTurn();
    expect(out()).to.match(/\r\n\r\nRAW:early$/);
    expect(ch.isActive).to.equal(true);
  });

  it('an HTTP/1.0 CONNECT (no keep-alive) is taken as well; a declined Upgrade says Connection: close', async () => {
    const raw = new Raw();
    const tunnel = setup((_req, res) => res.takeConnection((pipeline) => pipeline.addLast('raw', raw)).end());
    tunnel.ch.writeInbound(bytes('CONNECT a.example:443 HTTP/1.0\r\n\r\nhi'));
    const text = tunnel.out();
    expect(text).not.to.contain('Connection: close');
    expect(text.endsWith('RAW:hi')).to.equal(true);
    expect(tunnel.ch.isActive).to.equal(true);
    const declined = setup((_req, res) => res.end('plain HTTP, no switch'));
    declined.ch.writeInbound(bytes(UPGRADE));
    expect(declined.out()).to.contain('Connection: close\r\n');
    expect(declined.ch.isActive).to.equal(false);
  });

  it('answered later: the bytes wait (reading paused), then reach the new stage in order with those read meanwhile', () => {
    const raw = new Raw();
    let pending: HttpResponse | undefined;
    const { ch, out } = setup((_req, res) => {
      pending = res;
    });
    ch.writeInbound(bytes(`${UPGRADE}one`));
    expect(ch.isReadingPaused, 'nothing more is read until the upgrade is decided').to.equal(true);
    ch.writeInbound(bytes('two')); // what a read already under way still brings
    expect(out()).to.equal('');
    const res = pending as HttpResponse;
    res.takeConnection((pipeline) => pipeline.addLast('raw', raw));
    res.writeHead(101, { Connection: 'Upgrade', Upgrade: 'raw' }).end();
    expect(raw.reads).to.deep.equal(['one', 'two']);
    expect(raw.readCompletes).to.equal(1);
    expect(out()).to.match(/^HTTP\/1\.1 101 [\s\S]*\r\n\r\nRAW:oneRAW:two$/);
    expect(ch.isReadingPaused).to.equal(false);
  });

  it('behind a pipelined request answered later: the 101 waits its turn, and so does the switch', () => {
    const raw = new Raw();
    const { ch, out } = setup((req, res) => {
      if (!req.upgrade) {
        ch.timers.schedule(50, () => res.end('first'));
        return;
      }
      res.takeConnection((pipeline) => pipeline.addLast('raw', raw));
      res.writeHead(101, { Connection: 'Upgrade', Upgrade: 'raw' }).end();
    });
    ch.writeInbound(bytes(`GET /a HTTP/1.1\r\nHost: x\r\n\r\n${UPGRADE}tail`));
    expect(out()).to.equal('');
    expect(raw.reads).to.deep.equal([]);
    ch.advanceTime(50);
    const text = out();
    expect(text.indexOf('first')).to.be.lessThan(text.indexOf('HTTP/1.1 101'));
    expect(text.endsWith('RAW:tail')).to.equal(true);
  });

  it('CONNECT answered 2xx and taken becomes a tunnel', () => {
    const raw = new Raw();
    const { ch, out } = setup((req, res) => {
      expect(req.method).to.equal('CONNECT');
      res.takeConnection((pipeline) => pipeline.addLast('raw', raw)).end();
    });
    ch.writeInbound(bytes(`${CONNECT}\x16\x03\x01`));
    const text = out();
    expect(text).to.match(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text.endsWith('\r\n\r\nRAW:\x16\x03\x01')).to.equal(true);
    expect(ch.isActive).to.equal(true);
  });

  it('CONNECT answered 200 without takeConnection is answered and closed (no endless tunnel)', async () => {
    const { ch, out } = setup((_req, res) => res.end('ok'));
    ch.writeInbound(bytes(`${CONNECT}bytes nobody would read`));
    await nextTurn();
    expect(out()).to.match(/^HTTP\/1\.1 200 OK\r\n/);
    expect(ch.isActive).to.equal(false);
    expect(ch.closeReason).to.equal('local');
  });

  it('an Upgrade answered 101 without takeConnection, or declined with any other status, is answered and closed', async () => {
    for (const status of [101, 200, 400, 426]) {
      const { ch, out } = setup((_req, res) => res.writeHead(status, { Connection: 'Upgrade', Upgrade: 'raw' }).end());
      ch.writeInbound(bytes(`${UPGRADE}x`));
      await nextTurn();
      expect(out()).to.match(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(ch.isActive, String(status)).to.equal(false);
    }
  });

  it('taken but answered with another status: not installed, closed', () => {
    let installed = false;
    const { ch } = setup((_req, res) => {
      res.takeConnection(() => {
        installed = true;
      });
      res.writeHead(403).end('no');
    });
    ch.writeInbound(bytes(UPGRADE));
    expect(installed).to.equal(false);
    expect(ch.isActive).to.equal(false);
  });

  it('throws for a request without upgrade, a second call, a bad idleTimeout; too late once closed is a no-op', async () => {
    const errors: unknown[] = [];
    let later: HttpResponse | undefined;
    const { ch } = setup((req, res) => {
      if (!req.upgrade) {
        errors.push(thrownBy(() => res.takeConnection(() => {})));
        res.end();
        return;
      }
      errors.push(thrownBy(() => res.takeConnection(() => {}, { idleTimeout: -1 })));
      errors.push(thrownBy(() => res.takeConnection('no' as unknown as () => void)));
      res.writeHead(101).end();
      later = res;
    });
    ch.writeInbound(bytes('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    ch.writeInbound(bytes(UPGRADE));
    expect((errors[0] as Error).message).to.match(/Upgrade or CONNECT/);
    expect(errors[1]).to.be.instanceOf(InvalidOptionError);
    expect(errors[2]).to.be.instanceOf(TypeError);
    await nextTurn();
    // The connection closed (nobody took it in the run that answered): too late is quiet then.
    expect(ch.isActive).to.equal(false);
    let installed = false;
    (later as HttpResponse).takeConnection(() => {
      installed = true;
    });
    expect(installed).to.equal(false);
    const twice = setup((_req, res) => {
      res.takeConnection(() => {});
      errors.push(thrownBy(() => res.takeConnection(() => {})));
      res.writeHead(101).end();
    });
    twice.ch.writeInbound(bytes(UPGRADE));
    expect((errors[3] as Error).message).to.match(/already taken/);
  });

  it('an install that throws: the error is reported and the connection aborted', () => {
    const reported: Array<[unknown, HttpRequest]> = [];
    const { ch } = setup(
      (_req, res) =>
        res
          .takeConnection(() => {
            throw new Error('no such protocol');
          })
          .writeHead(101)
          .end(),
      { onHandlerError: (err, req) => reported.push([err, req]) },
    );
    ch.writeInbound(bytes(UPGRADE));
    const [err, req] = reported[0] as [unknown, HttpRequest];
    expect((err as Error).message).to.equal('no such protocol');
    expect(req.url).to.equal('/chat');
    expect(ch.isActive).to.equal(false);
    expect(ch.closeReason).to.equal('error');
  });

  it('the switched connection closes after idleTimeout without reads; reads keep it open', () => {
    const raw = new Raw();
    const { ch } = setup((_req, res) =>
      res
        .takeConnection((pipeline) => pipeline.addLast('raw', raw), { idleTimeout: 1000 })
        .writeHead(101)
        .end(),
    );
    ch.writeInbound(bytes(UPGRADE));
    for (let i = 0; i < 5; i++) {
      ch.advanceTime(800);
      ch.writeInbound(bytes('ping'));
    }
    expect(ch.isActive).to.equal(true);
    ch.advanceTime(999);
    expect(ch.isActive).to.equal(true);
    ch.advanceTime(1);
    expect(ch.isActive).to.equal(false);
    expect(raw.inactive).to.equal('idle-timeout');
  });

  it('by default the switched connection has a 60 s idle timeout; 0 turns it off', () => {
    for (const [options, open] of [
      [undefined, false],
      [{ idleTimeout: 0 }, true],
    ] as const) {
      const { ch } = setup((_req, res) =>
        res
          .takeConnection((pipeline) => pipeline.addLast('raw', new Raw()), options)
          .writeHead(101)
          .end(),
      );
      ch.writeInbound(bytes(UPGRADE));
      ch.advanceTime(59_999);
      expect(ch.isActive).to.equal(true);
      ch.advanceTime(1);
      expect(ch.isActive, JSON.stringify(options)).to.equal(open);
      ch.advanceTime(10 * 60_000);
      expect(ch.isActive).to.equal(open);
    }
  });

  it('after the switch DRAINING goes to the new stages, which decide how to end', () => {
    const raw = new Raw();
    const { ch } = setup((_req, res) =>
      res
        .takeConnection((pipeline) => pipeline.addLast('raw', raw))
        .writeHead(101)
        .end(),
    );
    ch.writeInbound(bytes(UPGRADE));
    ch.pipeline.fireUserEvent(DRAINING);
    ch.advanceTime(1000);
    expect(raw.events).to.deep.equal([DRAINING]);
    expect(ch.isActive, 'the new stage did not close it').to.equal(true);
  });

  it('the answers of the same read go out before the 101, and the 101 before what the new stage writes', () => {
    const raw = new Raw();
    const { ch, out } = setup((req, res) => {
      if (!req.upgrade) res.end(req.url);
      else
        res
          .takeConnection((pipeline) => pipeline.addLast('raw', raw))
          .writeHead(101)
          .end();
    });
    ch.writeInbound(bytes(`GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n${UPGRADE}hello`));
    const text = out();
    expect(text.indexOf('/a')).to.be.lessThan(text.indexOf('/b'));
    expect(text.indexOf('/b')).to.be.lessThan(text.indexOf('HTTP/1.1 101'));
    expect(text.endsWith('RAW:hello')).to.equal(true);
  });
});
