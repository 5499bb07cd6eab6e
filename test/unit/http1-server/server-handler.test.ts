import { expect } from 'chai';
import { HttpHeaders } from '../../../src/codec/http1/headers.js';
import { http } from '../../../src/codec/http1/http.js';
import { HttpExpectContinueEvent, HttpParseError, HttpRequest } from '../../../src/codec/http1/request.js';
import { HttpDate, type HttpResponse } from '../../../src/codec/http1/response.js';
import { type HttpHandler, HttpServerHandler, type HttpServerHandlerOptions } from '../../../src/codec/http1/server.js';
import { InvalidOptionError } from '../../../src/common/errors.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { DRAINING } from '../../../src/pipeline/events.js';
import { ChannelInboundHandler, type CloseReason } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';
import { thrownBy } from '../../support.js';

function request(
  over: Partial<{
    method: string;
    url: string;
    version: '1.0' | '1.1';
    headers: Array<[string, string]>;
    body: string;
    keepAlive: boolean;
  }> = {},
): HttpRequest {
  return new HttpRequest(
    over.method ?? 'GET',
    over.url ?? '/',
    over.version ?? '1.1',
    HttpHeaders.from(over.headers ?? []),
    Buffer.from(over.body ?? ''),
    HttpHeaders.EMPTY,
    over.keepAlive ?? true,
    false,
  );
}

class Closes extends ChannelInboundHandler {
  reason: CloseReason | undefined;
  readonly errors: unknown[] = [];
  override onInactive(_ctx: HandlerContext, reason: CloseReason): void {
    this.reason = reason;
  }
  override onError(_ctx: HandlerContext, err: unknown): void {
    this.errors.push(err);
  }
}

function setup(handler: HttpHandler, options: HttpServerHandlerOptions = {}) {
  const closes = new Closes();
  const ch = new EmbeddedChannel([new HttpServerHandler(handler, options), closes]);
  return { ch, closes };
}

/** The responses written so far, as text. */
function out(ch: EmbeddedChannel): string {
  return ch.readOutboundBytes().toString('latin1');
}

const DATE = /Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n/;

describe('HttpServerHandler and HttpResponse', () => {
  it('end(body): status line, Date, the headers set, Content-Length, body — one buffer', () => {
    const { ch } = setup((_req, res) => {
      res.setHeader('Server', 'mr').setHeader('Content-Type', 'text/plain');
      res.end('Hello, World!');
    });
    ch.writeInbound(request({ url: '/plaintext' }));
    expect(ch.outbound).to.have.length(1);
    const text = out(ch);
    expect(text).to.match(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text).to.match(DATE);
    expect(text).to.contain('Server: mr\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!');
    expect(text).not.to.contain('Connection:');
    expect(ch.isActive).to.equal(true);
  });

  it('res.req is the request it answers (as in node:http)', () => {
    const seen: Array<[string, string | undefined]> = [];
    const { ch } = setup((req, res) => {
      seen.push([req.url, res.req?.url]);
      expect(res.req).to.equal(req);
      res.end();
    });
    ch.writeInbound(request({ url: '/1' }), request({ url: '/2' }));
    expect(seen).to.deep.equal([
      ['/1', '/1'],
      ['/2', '/2'],
    ]);
  });

  it('a head repeated (joined into one buffer) and heads that change in between are all exact', () => {
    // The server joins a head it has just seen twice; any change in between must show at once.
    const plan = ['a', 'a', 'a', 'b', 'a', 'a', 'b', 'b', 'a', 'b', 'a', 'a', 'a'];
    const { ch } = setup((req, res) => {
      const v = req.url.slice(1);
      res.setHeader('X-Variant', v);
      if (v === 'b') res.statusCode = 404;
      res.end(v === 'a' ? 'first' : 'second!');
    });
    for (const v of plan) {
      ch.writeInbound(request({ url: `/${v}` }));
      const text = out(ch);
      const status = v === 'a' ? '200 OK' : '404 Not Found';
      const body = v === 'a' ? 'first' : 'second!';
      expect(text).to.match(new RegExp(`^HTTP/1\\.1 ${status}\r\n`));
      expect(text).to.match(DATE);
      expect(text.slice(text.indexOf('X-Variant'))).to.equal(
        `X-Variant: ${v}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
    }
  });

  it("a field list's joined 200 head serves only responses it fits: same length, keep-alive, HTTP/1.1", () => {
    // Three equal answers make the list join its whole head; each variant after them must not use it.
    const { ch } = setup((req, res) => {
      res.setHeader('Server', 'multireactor');
      res.setHeader('Content-Type', 'text/plain');
      res.end(req.url === '/long' ? 'Hello, World!!' : 'Hello, World!');
    });
    const fields = 'Server: multireactor\r\nContent-Type: text/plain\r\n';
    const expectOne = (r: HttpRequest, rest: string) => {
      ch.writeInbound(r);
      const text = out(ch);
      expect(text).to.match(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text).to.match(DATE);
      expect(text.slice(text.indexOf('Server:'))).to.equal(fields + rest);
    };
    const plain = 'Content-Length: 13\r\n\r\nHello, World!';
    for (let i = 0; i < 3; i++) expectOne(request(), plain);
    expectOne(request({ url: '/long' }), 'Content-Length: 14\r\n\r\nHello, World!!');
    expectOne(request(), plain);
    expectOne(request({ method: 'HEAD' }), 'Content-Length: 13\r\n\r\n');
    expectOne(
      request({ version: '1.0', headers: [['Connection', 'keep-alive']] }),
      `Connection: keep-alive\r\n${plain}`,
    );
    expectOne(request(), plain);
    expectOne(request({ keepAlive: false }), `Connection: close\r\n${plain}`);
  });

  it('the Date header comes from a cache that follows the wall clock', () => {
    expect(HttpDate.line.toString('latin1')).to.match(DATE);
    const shown = new Date(HttpDate.line.toString('latin1').slice(6, -2)).getTime();
    expect(Math.abs(Date.now() - shown)).to.be.lessThan(2500);
    // The 200 status line comes pre-joined with the same Date line.
    expect(HttpDate.status200.toString('latin1')).to.equal(`HTTP/1.1 200 OK\r\n${HttpDate.line.toString('latin1')}`);
  });

  it('a joined head follows the Date when it changes', () => {
    const { ch } = setup((_req, res) => res.end('x'));
    for (let i = 0; i < 3; i++) ch.writeInbound(request());
    out(ch);
    const saved = HttpDate.status200;
    try {
      HttpDate.status200 = Buffer.from('HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n', 'latin1');
      for (let i = 0; i < 3; i++) {
        ch.writeInbound(request());
        expect(out(ch)).to.contain('Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 1\r\n\r\nx');
      }
    } finally {
      HttpDate.status200 = saved;
    }
    ch.writeInbound(request());
    expect(out(ch)).to.contain(saved.toString('latin1'));
  });

  it('HEAD: the headers of the GET, no body', () => {
    const { ch } = setup((_req, res) => res.end('twelve bytes'));
    ch.writeInbound(request({ method: 'HEAD' }));
    const text = out(ch);
    expect(text).to.contain('Content-Length: 12\r\n\r\n');
    expect(text.endsWith('\r\n\r\n')).to.equal(true);
  });

  it('204 and 304 carry no body and no Content-Length', () => {
    for (const status of [204, 304]) {
      const { ch } = setup((_req, res) => {
        res.statusCode = status;
        res.end('ignored');
      });
      ch.writeInbound(request());
      const text = out(ch);
      expect(text).to.match(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(text).not.to.contain('Content-Length');
      expect(text.endsWith('\r\n\r\n')).to.equal(true);
    }
  });

  it('HTTP/1.0 with keep-alive answers Connection: keep-alive and stays open', () => {
    const { ch } = setup((_req, res) => res.end('x'));
    ch.writeInbound(request({ version: '1.0', keepAlive: true }));
    expect(out(ch)).to.contain('Connection: keep-alive\r\n');
    expect(ch.isActive).to.equal(true);
  });

  it('HTTP/1.0 without keep-alive, or Connection: close: answered with Connection: close, then closed', () => {
    for (const version of ['1.0', '1.1'] as const) {
      const { ch, closes } = setup((_req, res) => res.end('x'));
      ch.writeInbound(request({ version, keepAlive: false }));
      expect(out(ch)).to.contain('Connection: close\r\n');
      expect(ch.isActive).to.equal(false);
      expect(closes.reason).to.equal('local');
    }
  });

  it('requests after one that closes the connection are not answered', () => {
    const calls: string[] = [];
    const { ch } = setup((req, res) => {
      calls.push(req.url);
      res.end('x');
    });
    ch.writeInbound(request({ url: '/a', keepAlive: false }), request({ url: '/b' }));
    expect(calls).to.deep.equal(['/a']);
  });

  it('streams with chunked coding on HTTP/1.1, close-delimited on HTTP/1.0', () => {
    const { ch } = setup((_req, res) => {
      res.write('hello ');
      res.write(Buffer.from('world'));
      res.end();
    });
    ch.writeInbound(request());
    const text = out(ch);
    expect(text).to.contain('Transfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n');
    const v10 = setup((_req, res) => {
      res.write('a');
      res.end('b');
    });
    v10.ch.writeInbound(request({ version: '1.0', keepAlive: true }));
    const t10 = out(v10.ch);
    expect(t10).to.contain('Connection: close\r\n\r\nab');
    expect(t10).not.to.contain('chunked');
    expect(v10.ch.isActive).to.equal(false);
  });

  it('pipelined requests answered out of order leave in request order', () => {
    const { ch } = setup((req, res) => {
      const delay = { '/1': 30, '/2': 10, '/3': 20 }[req.url] as number;
      ch.timers.schedule(delay, () => res.end(req.url));
    });
    ch.writeInbound(request({ url: '/1' }), request({ url: '/2' }), request({ url: '/3' }));
    ch.advanceTime(15);
    ch.advanceTime(10);
    expect(ch.outbound, 'nothing before /1 is done').to.have.length(0);
    ch.advanceTime(10);
    const bodies = out(ch)
      .split('HTTP/1.1 200 OK')
      .slice(1)
      .map((r) => r.slice(r.indexOf('\r\n\r\n') + 4));
    expect(bodies).to.deep.equal(['/1', '/2', '/3']);
  });

  it('maxPipelinedRequests: reading pauses at that many requests in progress and resumes at half', () => {
    const { ch } = setup((req, res) => ch.timers.schedule(Number(req.url.slice(1)), () => res.end(req.url)), {
      maxPipelinedRequests: 4,
    });
    ch.writeInbound(request({ url: '/10' }), request({ url: '/20' }), request({ url: '/30' }));
    expect(ch.isReadingPaused, 'three in progress').to.equal(false);
    ch.writeInbound(request({ url: '/40' }));
    expect(ch.isReadingPaused, 'four in progress').to.equal(true);
    ch.advanceTime(10);
    expect(ch.isReadingPaused, 'three left').to.equal(true);
    ch.advanceTime(10);
    expect(ch.isReadingPaused, 'two left: half').to.equal(false);
    ch.advanceTime(20);
    expect(out(ch).match(/HTTP\/1\.1 200 OK/g)).to.have.length(4);
  });

  it('answers given at once never pause reading, however many requests one read carries', () => {
    const { ch } = setup((req, res) => res.end(req.url), { maxPipelinedRequests: 2 });
    let paused = false;
    const watch = new (class extends ChannelInboundHandler {
      override onRead(ctx: HandlerContext, msg: unknown): void {
        paused ||= ctx.channel.isReadingPaused;
        ctx.fireRead(msg);
      }
    })();
    ch.pipeline.addFirst(watch);
    ch.writeInbound(...Array.from({ length: 100 }, (_, i) => request({ url: `/${i}` })));
    expect(paused).to.equal(false);
    expect(out(ch).match(/HTTP\/1\.1 200 OK/g)).to.have.length(100);
  });

  it("the HTTP stage's read hold composes with another stage's: each lifts only its own", () => {
    const { ch } = setup((_req, res) => ch.timers.schedule(5, () => res.end()), { maxPipelinedRequests: 1 });
    const other = {};
    ch.pauseReading(other);
    ch.writeInbound(request());
    expect(ch.readHolders).to.have.length(2);
    ch.advanceTime(5);
    expect(ch.readHolders, 'the answer lifts the HTTP hold only').to.deep.equal([other]);
    expect(ch.isReadingPaused).to.equal(true);
    ch.resumeReading(other);
    expect(ch.isReadingPaused).to.equal(false);
  });

  it('options are validated: InvalidOptionError names the option', () => {
    for (const [options, name] of [
      [{ maxPipelinedRequests: 0 }, 'maxPipelinedRequests'],
      [{ maxPipelinedRequests: 1.5 }, 'maxPipelinedRequests'],
      [{ keepAliveTimeout: -1 }, 'keepAliveTimeout'],
      [{ maxRequestsPerConnection: -2 }, 'maxRequestsPerConnection'],
      [{ onHandlerError: 'log' }, 'onHandlerError'],
      [{ drainGrace: -1 }, 'drainGrace'],
      [{ maxPipelinedRequests: null }, 'maxPipelinedRequests'],
      [{ keepAliveTimeout: null }, 'keepAliveTimeout'],
    ] as const) {
      const err = thrownBy(() => new HttpServerHandler(() => {}, options as HttpServerHandlerOptions));
      expect(err).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.include(name);
      expect(thrownBy(() => http(() => {}, options as HttpServerHandlerOptions))).to.be.instanceOf(InvalidOptionError);
    }
  });

  it('streaming: write() returns false over the high watermark, and drained() resolves once it is flushed', async () => {
    const writes: boolean[] = [];
    let response: HttpResponse | undefined;
    let writableInRead: boolean | undefined;
    let drained = false;
    const ch = new EmbeddedChannel(
      [
        new HttpServerHandler((_req, res) => {
          response = res;
          for (let i = 0; i < 4; i++) writes.push(res.write(Buffer.alloc(400, 0x61 + i)));
          writableInRead = res.writable;
          void res.drained().then(() => {
            drained = true;
          });
        }),
      ],
      { highWaterMark: 1000 },
    );
    ch.writeInbound(request());
    // Written within the read, nothing leaves before it completes: the queue grew past 1000 bytes.
    expect(writes).to.deep.equal([true, true, false, false]);
    expect(writableInRead).to.equal(false);
    // The read completed and flushed (as a connection does): writable again.
    await Promise.resolve();
    expect(drained).to.equal(true);
    const res = response as HttpResponse;
    expect(res.writable).to.equal(true);
    res.end();
    expect(out(ch)).to.match(/0\r\n\r\n$/);
  });

  it('a pipelined response is not writable before its turn; drained() resolves when it comes', async () => {
    const responses: HttpResponse[] = [];
    const { ch } = setup((_req, res) => {
      responses.push(res);
    });
    ch.writeInbound(request({ url: '/1' }), request({ url: '/2' }));
    const [first, second] = responses as [HttpResponse, HttpResponse];
    expect(first.writable).to.equal(true);
    expect(second.writable, 'behind /1').to.equal(false);
    let turn = false;
    void second.drained().then(() => {
      turn = true;
    });
    first.end('one');
    await Promise.resolve();
    expect(turn).to.equal(true);
    expect(second.writable).to.equal(true);
    second.end('two');
    expect(bodies(out(ch))).to.deep.equal(['one', 'two']);
  });

  it('drained() resolves when the connection closes (the writes after it are dropped)', async () => {
    const responses: HttpResponse[] = [];
    const { ch } = setup((_req, res) => {
      responses.push(res);
    });
    ch.writeInbound(request({ url: '/1' }), request({ url: '/2' }));
    const waiting = (responses[1] as HttpResponse).drained();
    ch.close();
    await waiting;
    expect((responses[1] as HttpResponse).writable).to.equal(false);
  });

  it('as users build it (http(handler)): a throwing handler gets a 500, logged once, and the connection goes on', () => {
    const ch = new EmbeddedChannel(
      http((req, res) => {
        if (req.url === '/bug') throw new Error('bug');
        res.end(req.url);
      }),
    );
    const logged: unknown[][] = [];
    ch.logger = { debug() {}, info() {}, warn() {}, error: (...args: unknown[]) => logged.push(args) };
    const get = (url: string) => Buffer.from(`GET ${url} HTTP/1.1\r\nHost: x\r\n\r\n`);
    ch.writeInbound(Buffer.concat([get('/a'), get('/bug'), get('/b')]));
    const text = out(ch);
    expect(bodies(text)).to.deep.equal(['/a', '500 Internal Server Error\n', '/b']);
    expect(text).not.to.contain('Connection: close');
    expect(ch.isActive).to.equal(true);
    expect(ch.errors, 'nothing reached the tail').to.deep.equal([]);
    expect(logged).to.have.length(1);
    const [message, err] = logged[0] as [string, Error];
    expect(message).to.match(/"GET \/bug HTTP\/1\.1".*answered 500/);
    expect(err.message).to.equal('bug');
  });

  it('a rejected promise is a 500 too, reported to onHandlerError when given', async () => {
    const reported: Array<[unknown, string]> = [];
    const { ch } = setup(
      async () => {
        throw new Error('async bug');
      },
      { onHandlerError: (err, req) => reported.push([err, req.url]) },
    );
    ch.writeInbound(request({ url: '/x' }));
    await new Promise((r) => setImmediate(r));
    expect(out(ch)).to.match(/^HTTP\/1\.1 500 /);
    expect(reported).to.have.length(1);
    expect(reported[0]?.[1]).to.equal('/x');
    expect(ch.isActive).to.equal(true);
  });

  it('a protocol error is answered with its status after the responses owed, then the connection closes', () => {
    const { ch } = setup((req, res) => {
      ch.timers.schedule(10, () => res.end(req.url));
    });
    ch.writeInbound(request({ url: '/first' }));
    ch.pipeline.fireError(new HttpParseError(431, 'HPE_HEADER_OVERFLOW', 'header fields too large'));
    expect(ch.outbound).to.have.length(0);
    ch.advanceTime(10);
    const text = out(ch);
    expect(text.indexOf('/first')).to.be.lessThan(text.indexOf('431 Request Header Fields Too Large'));
    expect(text).to.contain('Connection: close');
    expect(ch.isActive).to.equal(false);
  });

  it('DRAINING: an idle connection closes after drainGrace (300 ms), not at once', () => {
    const { ch, closes } = setup((_req, res) => res.end('x'));
    ch.pipeline.fireUserEvent(DRAINING);
    ch.advanceTime(299);
    expect(ch.isActive, 'a request may be on its way').to.equal(true);
    ch.advanceTime(1);
    expect(closes.reason).to.equal('shutdown');
  });

  it('DRAINING: a request within the grace is answered with Connection: close, then the connection closes', () => {
    const { ch, closes } = setup((_req, res) => res.end('x'));
    ch.pipeline.fireUserEvent(DRAINING);
    ch.advanceTime(100);
    ch.writeInbound(request());
    expect(out(ch)).to.contain('Connection: close\r\n');
    expect(closes.reason).to.equal('local');
    ch.advanceTime(1000); // the grace timer went with the connection
    expect(ch.errors).to.deep.equal([]);
  });

  it('DRAINING with drainGrace 0 closes an idle connection at once', () => {
    const { closes, ch } = setup((_req, res) => res.end('x'), { drainGrace: 0 });
    ch.pipeline.fireUserEvent(DRAINING);
    expect(closes.reason).to.equal('shutdown');
  });

  it('DRAINING with a response owed: that response says Connection: close and the connection closes after it', () => {
    let pending: HttpResponse | undefined;
    const { ch } = setup((_req, res) => {
      pending = res;
    });
    ch.writeInbound(request());
    ch.pipeline.fireUserEvent(DRAINING);
    expect(ch.isActive).to.equal(true);
    pending?.end('done');
    expect(out(ch)).to.contain('Connection: close\r\n');
    expect(ch.isActive).to.equal(false);
  });

  it('keepAliveTimeout closes a connection idle between requests, not one with a response owed', () => {
    const { ch, closes } = setup((_req, res) => ch.timers.schedule(3000, () => res.end('x')), {
      keepAliveTimeout: 1000,
    });
    ch.writeInbound(request());
    ch.advanceTime(2000);
    expect(ch.isActive, 'a slow answer is not idleness').to.equal(true);
    ch.advanceTime(1000); // answered at 3000
    ch.advanceTime(999);
    expect(ch.isActive).to.equal(true);
    ch.advanceTime(1);
    expect(closes.reason).to.equal('idle-timeout');
  });

  it('maxRequestsPerConnection: the last allowed response says Connection: close', () => {
    const { ch } = setup((_req, res) => res.end('x'), { maxRequestsPerConnection: 2 });
    ch.writeInbound(request());
    expect(out(ch)).not.to.contain('Connection: close');
    ch.writeInbound(request());
    expect(out(ch)).to.contain('Connection: close');
    expect(ch.isActive).to.equal(false);
  });

  it('Expect: 100-continue is answered at once when nothing is owed, after the owed responses otherwise', () => {
    const { ch } = setup((_req, res) => res.end('ok'));
    ch.pipeline.fireUserEvent(new HttpExpectContinueEvent('PUT', '/upload'));
    expect(out(ch)).to.equal('HTTP/1.1 100 Continue\r\n\r\n');
  });

  it('setHeader refuses names and values that could split the response', () => {
    const { ch } = setup((_req, res) => {
      expect(thrownBy(() => res.setHeader('X-A', 'ok\r\nInjected: yes'))).to.be.instanceOf(TypeError);
      expect(thrownBy(() => res.setHeader('Bad Name', 'v'))).to.be.instanceOf(TypeError);
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
      expect(res.getHeader('set-cookie')).to.equal('a=1, b=2');
      res.end();
    });
    ch.writeInbound(request());
    expect(out(ch)).to.contain('Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n');
  });

  it('counts requests in the channel stats', () => {
    const { ch } = setup((_req, res) => res.end());
    ch.writeInbound(request(), request(), request());
    expect(ch.requests).to.equal(3);
  });
});

/** Turns sentinel messages into user events, inside the read that carries them (before the server handler). */
class EventsInRead extends ChannelInboundHandler {
  override onRead(ctx: HandlerContext, msg: unknown): void {
    if (msg === 'continue') ctx.fireUserEvent(new HttpExpectContinueEvent('PUT', '/upload'));
    else if (msg === 'drain') ctx.fireUserEvent(DRAINING);
    else ctx.fireRead(msg);
  }
}

/** The bodies of the responses in `text`, in order. */
function bodies(text: string): string[] {
  return text
    .split(/HTTP\/1\.1 \d{3} [A-Za-z ]+\r\n/)
    .slice(1)
    .map((r) => r.slice(r.indexOf('\r\n\r\n') + 4));
}

describe('HttpServerHandler: the responses of one read leave as one batch', () => {
  it('16 pipelined answers: one buffer, all in order', () => {
    const { ch } = setup((req, res) => res.end(req.url));
    const reqs = Array.from({ length: 16 }, (_, i) => request({ url: `/${i}` }));
    ch.writeInbound(...reqs);
    expect(ch.outbound).to.have.length(1);
    expect(bodies(out(ch))).to.deep.equal(reqs.map((r) => r.url));
  });

  it('batches written earlier stay intact while later reads fill the slab and the slabs after it', () => {
    // Views of the slab are kept here as a slow peer's queue would keep them: nothing may
    // overwrite their bytes.
    const { ch } = setup((req, res) => res.end(req.url.padEnd(900, '.')));
    const kept: Array<Array<{ bytes: Buffer; text: string }>> = [];
    for (let read = 0; read < 300; read++) {
      ch.writeInbound(...Array.from({ length: 3 }, (_, i) => request({ url: `/${read}-${i}` })));
      const chunks = ch.outbound.splice(0) as Buffer[];
      // One write per read; two when the slab filled up during it.
      expect(chunks.length).to.be.oneOf([1, 2]);
      kept.push(chunks.map((bytes) => ({ bytes, text: bytes.toString('latin1') })));
    }
    expect(new Set(kept.flat().map((k) => k.bytes.buffer)).size, 'several slabs used').to.be.greaterThan(3);
    for (const [read, chunks] of kept.entries()) {
      for (const k of chunks) expect(k.bytes.toString('latin1'), `read ${read}`).to.equal(k.text);
      const text = chunks.map((k) => k.text).join('');
      expect(bodies(text)).to.deep.equal([0, 1, 2].map((i) => `/${read}-${i}`.padEnd(900, '.')));
    }
  });

  it('answers that overflow the 64 KiB stage are written in several batches, intact and in order', () => {
    const { ch } = setup((req, res) => res.end(req.url.slice(1).padEnd(4000, '.')));
    const reqs = Array.from({ length: 40 }, (_, i) => request({ url: `/${i}` }));
    ch.writeInbound(...reqs);
    expect(ch.outbound.length).to.be.greaterThan(2);
    expect(bodies(out(ch))).to.deep.equal(reqs.map((r) => r.url.slice(1).padEnd(4000, '.')));
  });

  it('an answer given later keeps its place before the batched ones after it', () => {
    const { ch } = setup((req, res) => {
      if (req.url === '/1') ch.timers.schedule(5, () => res.end('/1'));
      else res.end(req.url);
    });
    ch.writeInbound(request({ url: '/1' }), request({ url: '/2' }), request({ url: '/3' }));
    expect(ch.outbound).to.have.length(0);
    ch.advanceTime(10);
    expect(bodies(out(ch))).to.deep.equal(['/1', '/2', '/3']);
  });

  it('100 Continue in the same read comes after the answers already batched', () => {
    const ch = new EmbeddedChannel([new EventsInRead(), new HttpServerHandler((req, res) => res.end(req.url))]);
    ch.writeInbound(request({ url: '/1' }), request({ url: '/2' }), 'continue');
    const text = out(ch);
    expect(bodies(text.slice(0, text.indexOf('HTTP/1.1 100')))).to.deep.equal(['/1', '/2']);
    expect(text.endsWith('HTTP/1.1 100 Continue\r\n\r\n')).to.equal(true);
  });

  it('100 Continue goes right before the answer of the request that expects it, never before an earlier one', () => {
    // /1 and /2 are answered later; the head expecting 100 comes behind them. The 100 is for
    // the third request: before /2's answer, a client would take it for /2's interim response.
    const later = new Map<string, HttpResponse>();
    const ch = new EmbeddedChannel([
      new EventsInRead(),
      new HttpServerHandler((req, res) => {
        if (req.url === '/3') res.end('/3');
        else later.set(req.url, res);
      }),
    ]);
    ch.writeInbound(request({ url: '/1' }), request({ url: '/2' }), 'continue');
    expect(out(ch)).to.equal('');
    later.get('/1')?.end('/1');
    let text = out(ch);
    expect(text).not.to.contain('100 Continue');
    later.get('/2')?.end('/2');
    text += out(ch);
    // Next in line now: the expecting request, whose body the client holds back until the 100.
    expect(text.endsWith('HTTP/1.1 100 Continue\r\n\r\n'), text).to.equal(true);
    expect(bodies(text.slice(0, text.indexOf('HTTP/1.1 100')))).to.deep.equal(['/1', '/2']);
    ch.writeInbound(request({ url: '/3' }), request({ url: '/4' }));
    text = out(ch);
    expect(text).not.to.contain('100 Continue');
    expect(bodies(text)).to.deep.equal(['/3']);
  });

  it('100 Continue for a request answered before its turn is dropped, not sent before a later answer', () => {
    const later = new Map<string, HttpResponse>();
    const ch = new EmbeddedChannel([
      new EventsInRead(),
      new HttpServerHandler((req, res) => {
        if (req.url !== '/2') later.set(req.url, res);
        else res.end(req.url);
      }),
    ]);
    // /2 expects 100 and is answered (with its body) while /1 is still owed: a final answer
    // makes the 100 moot (RFC 9110 §10.1.1).
    ch.writeInbound(request({ url: '/1' }), 'continue', request({ url: '/2' }));
    expect(out(ch)).to.equal('');
    later.get('/1')?.end('/1');
    ch.writeInbound(request({ url: '/3' }), request({ url: '/4' }));
    later.get('/3')?.end('/3');
    later.get('/4')?.end('/4');
    const text = out(ch);
    expect(text).not.to.contain('100 Continue');
    expect(bodies(text)).to.deep.equal(['/1', '/2', '/3', '/4']);
  });

  it('DRAINING in the same read closes after writing the batched answers', () => {
    for (const drainGrace of [0, 300]) {
      const ch = new EmbeddedChannel([
        new EventsInRead(),
        new HttpServerHandler((req, res) => res.end(req.url), { drainGrace }),
      ]);
      ch.writeInbound(request({ url: '/1' }), request({ url: '/2' }), request({ url: '/3' }), 'drain');
      ch.advanceTime(drainGrace);
      expect(bodies(out(ch))).to.deep.equal(['/1', '/2', '/3']);
      expect(ch.isActive).to.equal(false);
    }
  });

  it('a read on another connection during this one (nested) does not mix the two batches', () => {
    const b = setup((req, res) => res.end(`b${req.url}`));
    const a = setup((req, res) => {
      res.end(`a${req.url}`);
      if (req.url === '/2') b.ch.writeInbound(request({ url: '/1' }), request({ url: '/2' }), request({ url: '/3' }));
    });
    a.ch.writeInbound(request({ url: '/1' }), request({ url: '/2' }), request({ url: '/3' }), request({ url: '/4' }));
    expect(bodies(out(a.ch))).to.deep.equal(['a/1', 'a/2', 'a/3', 'a/4']);
    expect(bodies(out(b.ch))).to.deep.equal(['b/1', 'b/2', 'b/3']);
  });

  it('a body over 16 KiB is written as it is, after its head, not copied', () => {
    const big = Buffer.alloc(100 * 1024, 'x');
    const { ch } = setup((_req, res) => res.end(big));
    ch.writeInbound(request());
    const chunks = ch.outbound as Buffer[];
    expect(
      chunks.some((c) => c.buffer === big.buffer && c.byteOffset === big.byteOffset && c.length === big.length),
    ).to.equal(true);
    const text = out(ch);
    expect(text).to.contain(`Content-Length: ${big.length}\r\n\r\nxxx`);
    expect(text.length).to.be.greaterThan(big.length);
  });
});

describe('HttpResponse headers: shared field lists and responses of their own give the same heads', () => {
  // The model: an ordered list of [name, value], names compared in any case.
  type Model = Array<[string, string]>;
  const setModel = (m: Model, name: string, values: string[]): Model => [
    ...m.filter(([n]) => n.toLowerCase() !== name.toLowerCase()),
    ...values.map((v): [string, string] => [name, v]),
  ];
  const NAMES = ['Server', 'server', 'SERVER', 'Content-Type', 'content-type', 'X-A', 'x-a', 'X-B', 'Cache-Control'];

  /** A tiny seeded generator: the same sequence on every run. */
  function rng(seed: number): () => number {
    let s = seed;
    return () => {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      return s / 0x80000000;
    };
  }

  it('2,000 random handlers (set, replace in any case, arrays, numbers, remove): heads and getHeader as the model says', () => {
    const random = rng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    // A few values repeat (shared lists, reached again through transitions); some are new every
    // time (many distinct lists: past the bound, responses edit lists of their own).
    const value = (): string => (random() < 0.7 ? pick(['a', 'b', 'text/plain', 'no-cache']) : `v${random()}`);
    let model: Model = [];
    const checks: Array<{ model: Model; text?: string }> = [];
    const { ch } = setup((_req, res) => {
      model = [];
      const ops = Math.floor(random() * 7);
      for (let i = 0; i < ops; i++) {
        const r = random();
        const name = pick(NAMES);
        if (r < 0.6) {
          const v = value();
          res.setHeader(name, v);
          model = setModel(model, name, [v]);
        } else if (r < 0.7) {
          const n = Math.floor(random() * 1000);
          res.setHeader(name, n);
          model = setModel(model, name, [String(n)]);
        } else if (r < 0.8) {
          const vs = [value(), value()];
          res.setHeader(name, vs);
          model = setModel(model, name, vs);
        } else {
          res.removeHeader(name);
          model = setModel(model, name, []);
        }
        const probe = pick(NAMES);
        const expected = model.filter(([n]) => n.toLowerCase() === probe.toLowerCase()).map(([, v]) => v);
        expect(res.getHeader(probe)).to.equal(expected.length === 0 ? undefined : expected.join(', '));
        expect(res.hasHeader(probe)).to.equal(expected.length > 0);
      }
      res.end('ok');
      checks.push({ model });
    });
    for (let i = 0; i < 2000; i++) {
      ch.writeInbound(request());
      const text = out(ch);
      const fields = text
        .slice(0, text.indexOf('\r\n\r\n'))
        .split('\r\n')
        .slice(1)
        .filter((l) => !l.startsWith('Date: ') && !l.startsWith('Content-Length: '))
        .map((l): [string, string] => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]);
      expect(fields, `response ${i}`).to.deep.equal((checks[i] as { model: Model }).model);
      expect(text.endsWith('Content-Length: 2\r\n\r\nok')).to.equal(true);
    }
  });

  it('framing and Connection fields in a shared list act as in a list of its own', () => {
    const { ch } = setup((req, res) => {
      if (req.url === '/length') res.setHeader('Content-Length', '5').end('hello');
      else if (req.url === '/chunked') {
        res.setHeader('Transfer-Encoding', 'chunked');
        res.write('abc');
        res.end();
      } else res.setHeader('Connection', 'close').end('bye');
    });
    for (let round = 0; round < 3; round++) {
      // The second and third rounds take the shared lists the first one made.
      ch.writeInbound(request({ url: '/length' }));
      const length = out(ch);
      expect(length).to.contain('Content-Length: 5\r\n\r\nhello');
      expect(length.match(/Content-Length/g)).to.have.length(1);
      ch.writeInbound(request({ url: '/chunked' }));
      const chunked = out(ch);
      expect(chunked).to.contain('Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n');
      expect(chunked).not.to.contain('Content-Length');
    }
    ch.writeInbound(request({ url: '/close' }));
    expect(out(ch)).to.contain('Connection: close\r\nContent-Length: 3\r\n\r\nbye');
    expect(ch.isActive).to.equal(false);
  });

  it('an invalid header leaves the response as it was, shared list or not', () => {
    const { ch } = setup((_req, res) => {
      res.setHeader('X-A', 'a');
      expect(thrownBy(() => res.setHeader('X-B', 'bad\nvalue'))).to.be.instanceOf(TypeError);
      expect(thrownBy(() => res.setHeader('X-A', ['ok', 'bad\r']))).to.be.instanceOf(TypeError);
      res.removeHeader('x-missing');
      res.end();
    });
    for (let i = 0; i < 2; i++) {
      ch.writeInbound(request());
      const text = out(ch);
      expect(text).to.contain('X-A: a\r\nContent-Length: 0\r\n\r\n');
      expect(text).not.to.contain('X-B');
    }
  });
});
