/**
 * The HTTP server stage's clocks on the fake clock, through the pipeline as users build it
 * (`http(handler, options)`, fed bytes): keep-alive idle only between requests, the head and
 * request timeouts (408), the handler timeout (503), the drain grace — one wheel timer per
 * connection, not moved per request.
 */
import { expect } from 'chai';
import { type HttpOptions, http } from '../../../src/codec/http1/http.js';
import type { HttpResponse } from '../../../src/codec/http1/response.js';
import { type HttpHandler, HttpServerHandler, type HttpServerHandlerOptions } from '../../../src/codec/http1/server.js';
import { InvalidOptionError } from '../../../src/common/errors.js';
import type { TimerEntry, TimerTarget } from '../../../src/common/timing-wheel.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { DRAINING } from '../../../src/pipeline/events.js';
import { thrownBy } from '../../support.js';

const bytes = (s: string) => Buffer.from(s, 'latin1');
const get = (url: string) => `GET ${url} HTTP/1.1\r\nHost: x\r\n\r\n`;

function setup(handler: HttpHandler, options: HttpOptions = {}) {
  const ch = new EmbeddedChannel(http(handler, options));
  const warnings: string[] = [];
  ch.logger = { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} };
  return { ch, warnings, out: () => ch.readOutboundBytes().toString('latin1') };
}

const echo: HttpHandler = (req, res) => res.end(`${req.url} ${req.body.length}`);

/** Feeds `text` a few bytes at a time, `everyMs` apart. */
function trickle(ch: EmbeddedChannel, text: string, piece: number, everyMs: number): void {
  for (let i = 0; i < text.length; i += piece) {
    ch.writeInbound(bytes(text.slice(i, i + piece)));
    if (i + piece < text.length) ch.advanceTime(everyMs);
  }
}

describe('HTTP server clocks', () => {
  describe('keep-alive runs only between requests', () => {
    it('a head trickled for longer than keepAliveTimeout (within headerTimeout) is answered', () => {
      const { ch, out } = setup(echo, { keepAliveTimeout: 1000, headerTimeout: 30_000 });
      ch.advanceTime(500); // idle for a while before the request starts
      trickle(ch, `GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(40)}\r\n\r\n`, 4, 400); // ~7 s
      expect(out()).to.match(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\/slow 0$/);
      expect(ch.isActive).to.equal(true);
    });

    it('a body sent at 200 B/s for longer than keepAliveTimeout (within requestTimeout) is answered', () => {
      const { ch, out } = setup(echo, { keepAliveTimeout: 5000 });
      ch.writeInbound(bytes('POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n'));
      trickle(ch, 'b'.repeat(2000), 20, 100); // 10 s
      expect(out()).to.match(/\/up 2000$/);
      expect(ch.isActive).to.equal(true);
    });

    it('after the answer the connection is idle again: closed keepAliveTimeout after it', () => {
      const { ch, out } = setup(echo, { keepAliveTimeout: 1000 });
      trickle(ch, get('/a'), 3, 300);
      expect(out()).to.contain('/a 0');
      ch.advanceTime(999);
      expect(ch.isActive).to.equal(true);
      ch.advanceTime(1);
      expect(ch.isActive).to.equal(false);
      expect(ch.closeReason).to.equal('idle-timeout');
    });

    it('empty lines between requests do not start a request: the keep-alive timeout still closes', () => {
      const { ch } = setup(echo, { keepAliveTimeout: 1000 });
      for (let i = 0; i < 4; i++) {
        ch.advanceTime(300);
        ch.writeInbound(bytes('\r\n'));
      }
      expect(ch.isActive).to.equal(false);
      expect(ch.closeReason).to.equal('idle-timeout');
    });

    it('a connection waiting for a slow handler is not idle', () => {
      const { ch } = setup((_req, res) => ch.timers.schedule(3000, () => res.end('x')), { keepAliveTimeout: 1000 });
      ch.writeInbound(bytes(get('/')));
      ch.advanceTime(2000);
      expect(ch.isActive, 'a slow answer is not idleness').to.equal(true);
      ch.advanceTime(1000); // answered at 3000
      ch.advanceTime(999);
      expect(ch.isActive).to.equal(true);
      ch.advanceTime(1);
      expect(ch.closeReason).to.equal('idle-timeout');
    });
  });

  describe('head and request timeouts (408, then close)', () => {
    it('a head not complete headerTimeout after its first byte: 408 HPE_HEADER_TIMEOUT with Connection: close', () => {
      const { ch, out } = setup(echo, { headerTimeout: 1000, keepAliveTimeout: 300 });
      ch.writeInbound(bytes('GET / HT'));
      ch.advanceTime(500);
      ch.writeInbound(bytes('TP/1.1\r\nHost: a')); // more bytes do not restart the clock
      ch.advanceTime(499);
      expect(ch.isActive, 'not the keep-alive timeout: a request is arriving').to.equal(true);
      ch.advanceTime(1);
      const text = out();
      expect(text).to.match(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(text).to.contain('Connection: close\r\n');
      expect(text).to.contain('(HPE_HEADER_TIMEOUT)');
      expect(ch.isActive).to.equal(false);
    });

    it('each head is timed from its own first byte; idle time before it does not count', () => {
      const { ch, out } = setup(echo, { headerTimeout: 1000, keepAliveTimeout: 0 });
      ch.writeInbound(bytes(`${get('/1')}\r\n`));
      ch.advanceTime(60_000);
      ch.writeInbound(bytes('GET /2 HTTP/1.1\r\n'));
      ch.advanceTime(999);
      ch.writeInbound(bytes('Host: x\r\n\r\n'));
      ch.advanceTime(60_000);
      expect(ch.isActive).to.equal(true);
      ch.writeInbound(bytes('GET /3 HTTP/1.1\r\n'));
      ch.advanceTime(1000);
      const text = out();
      expect(text.match(/HTTP\/1\.1 200/g)).to.have.length(2);
      expect(text).to.match(/HTTP\/1\.1 408 [\s\S]*HPE_HEADER_TIMEOUT/);
    });

    it('headerTimeout does not time the body; requestTimeout does, from the first byte (408 HPE_REQUEST_TIMEOUT)', () => {
      const { ch, out } = setup(echo, { headerTimeout: 1000, requestTimeout: 3000 });
      ch.writeInbound(bytes('POST / HTTP/1.1\r\nHost: x\r\nCon'));
      ch.advanceTime(900);
      ch.writeInbound(bytes('tent-Length: 10\r\n\r\nab')); // the head in time, the body started
      ch.advanceTime(2000);
      ch.writeInbound(bytes('cd')); // more bytes do not restart the clock
      ch.advanceTime(99);
      expect(ch.isActive).to.equal(true);
      ch.advanceTime(1);
      expect(out()).to.match(/^HTTP\/1\.1 408 [\s\S]*\(HPE_REQUEST_TIMEOUT\)\n$/);
      expect(ch.isActive).to.equal(false);
    });

    it('requestTimeout times chunked bodies and trailers, and a shorter one times the head', () => {
      const chunked = setup(echo, { requestTimeout: 1000 });
      chunked.ch.writeInbound(bytes('POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n'));
      chunked.ch.advanceTime(600);
      chunked.ch.writeInbound(bytes('0\r\nX-Trailer: 1')); // in the trailers now
      chunked.ch.advanceTime(400);
      expect(chunked.out()).to.contain('HPE_REQUEST_TIMEOUT');
      const head = setup(echo, { headerTimeout: 5000, requestTimeout: 1000 });
      head.ch.writeInbound(bytes('GET / HTTP/1.1\r\n'));
      head.ch.advanceTime(1000);
      expect(head.out()).to.contain('HPE_REQUEST_TIMEOUT');
    });

    it('the 408 comes after the answers owed; what the client sends after it is not answered', () => {
      let late: HttpResponse | undefined;
      const { ch, out } = setup(
        (req, res) => {
          if (req.url === '/late') late = res;
          else res.end(req.url);
        },
        { headerTimeout: 1000 },
      );
      ch.writeInbound(bytes(`${get('/late')}GET /slow HT`));
      ch.advanceTime(1000);
      expect(out(), 'the 408 waits for /late').to.equal('');
      (late as HttpResponse).end('late');
      ch.writeInbound(bytes('TP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n'));
      const text = out();
      expect(text.indexOf('late')).to.be.lessThan(text.indexOf('HTTP/1.1 408'));
      expect(text).not.to.contain('/after');
      expect(text).not.to.contain('/slow');
      expect(ch.isActive).to.equal(false);
    });

    it('a streamed body past requestTimeout: its reader fails and the 408 is its answer', async () => {
      let failure: unknown;
      const { ch, out } = setup(
        async (req, res) => {
          try {
            await req.bodyStream?.bytes();
          } catch (err) {
            failure = err;
          }
          res.end('too late'); // ignored: the server answered in its stead
        },
        { streamBodies: true, requestTimeout: 1000 },
      );
      ch.writeInbound(bytes('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab'));
      ch.advanceTime(1000);
      await new Promise((r) => setImmediate(r));
      expect((failure as { code?: string }).code).to.equal('HPE_REQUEST_TIMEOUT');
      const text = out();
      expect(text).to.match(/^HTTP\/1\.1 408 /);
      expect(text).not.to.contain('too late');
    });

    it('0 turns them off', () => {
      const { ch } = setup(echo, { headerTimeout: 0, requestTimeout: 0, keepAliveTimeout: 0, handlerTimeout: 0 });
      ch.writeInbound(bytes('GET / HTTP/1.1\r\n'));
      expect(ch.timers.size, 'no clock at all').to.equal(0);
      ch.advanceTime(1e9);
      expect(ch.isActive).to.equal(true);
    });
  });

  describe('handlerTimeout (503, then close)', () => {
    it('a handler that never answers: 503 with Connection: close after handlerTimeout, logged; its late answer is dropped', () => {
      let held: HttpResponse | undefined;
      const { ch, out, warnings } = setup(
        (req, res) => {
          if (req.url === '/never') held = res;
          else res.end(req.url);
        },
        { handlerTimeout: 2000 },
      );
      ch.writeInbound(bytes(get('/a') + get('/never') + get('/b')));
      expect(out()).to.match(/\/a$/);
      ch.advanceTime(1999);
      expect(ch.isActive).to.equal(true);
      ch.advanceTime(1);
      const text = out();
      expect(text).to.match(/^HTTP\/1\.1 503 Service Unavailable\r\n/);
      expect(text).to.contain('Connection: close\r\n');
      expect(text, 'nothing after it is answered').not.to.contain('/b');
      expect(ch.isActive).to.equal(false);
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.match(/"GET \/never HTTP\/1\.1".*handlerTimeout \(2000 ms\).*503/);
      const res = held as HttpResponse;
      expect(res.finished).to.equal(true);
      // The handler wakes up late: nothing it does throws or goes out.
      res.setHeader('X-Late', '1').writeHead(200);
      expect(res.write('late')).to.equal(false);
      res.end('late');
      expect(res.statusCode).to.equal(503);
    });

    it('counts from the complete request to the start of its answer: a response started in time is not cut', () => {
      const { ch, out } = setup(
        (_req, res) => {
          ch.timers.schedule(900, () => res.write('started'));
          ch.timers.schedule(5000, () => res.end(' and finished'));
        },
        { handlerTimeout: 1000 },
      );
      ch.writeInbound(bytes('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab'));
      ch.advanceTime(3000); // the body trickles: not the handler's time
      ch.writeInbound(bytes('cd'));
      ch.advanceTime(6000);
      const text = out();
      expect(text).to.match(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text).to.contain('started');
      expect(text).to.contain(' and finished');
      expect(ch.isActive).to.equal(true);
    });

    it('a streamed request: the handler clock starts when its body is complete', () => {
      const { ch, out } = setup(() => {}, { handlerTimeout: 1000, streamBodies: true });
      ch.writeInbound(bytes('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab'));
      ch.advanceTime(5000);
      expect(out()).to.equal('');
      ch.writeInbound(bytes('cd'));
      ch.advanceTime(999);
      expect(out()).to.equal('');
      ch.advanceTime(1);
      expect(out()).to.match(/^HTTP\/1\.1 503 /);
    });

    it('defaults to 120 s; 0 turns it off', () => {
      const on = setup(() => {});
      on.ch.writeInbound(bytes(get('/')));
      on.ch.advanceTime(119_999);
      expect(on.out()).to.equal('');
      on.ch.advanceTime(1);
      expect(on.out()).to.match(/^HTTP\/1\.1 503 /);
      const off = setup(() => {}, { handlerTimeout: 0 });
      off.ch.writeInbound(bytes(get('/')));
      off.ch.advanceTime(3_600_000);
      expect(off.out()).to.equal('');
      expect(off.ch.isActive).to.equal(true);
    });
  });

  describe('one timer per connection', () => {
    it('whole requests answered at once never move it; trickled ones use the same one', () => {
      const { ch } = setup(echo);
      const wheel = ch.timers;
      let schedules = 0;
      let arms = 0;
      const schedule = wheel.schedule.bind(wheel);
      const arm = wheel.arm.bind(wheel);
      wheel.schedule = (ms: number, fn: (() => void) | TimerTarget) => {
        schedules++;
        return schedule(ms, fn);
      };
      wheel.arm = (entry: TimerEntry, ms: number) => {
        arms++;
        arm(entry, ms);
      };
      for (let i = 0; i < 1000; i++) {
        ch.writeInbound(bytes(get(`/${i}`) + get(`/${i}b`)));
        ch.advanceTime(3);
      }
      expect(schedules, 'no Timeout object: the clocks are their own wheel entry').to.equal(0);
      expect(arms, 'the keep-alive deadline re-armed itself as it came (every ~5 s)').to.be.at.most(2);
      for (let i = 0; i < 20; i++) trickle(ch, 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab', 10, 10);
      expect(wheel.size, 'one timer').to.equal(1);
      expect(schedules).to.equal(0);
      expect(ch.isActive).to.equal(true);
    });

    it('keeps its times as small integers from a clock far from 0, with fractions', () => {
      // 2^31 + a fraction: stamps are taken modulo 2^30, and compare right across the wrap.
      const ch = new EmbeddedChannel(http(echo, { keepAliveTimeout: 1000, headerTimeout: 2000 }), {
        startTime: 2 ** 31 - 500.25,
      });
      ch.advanceTime(600); // across 2^31
      trickle(ch, get('/wrap'), 5, 300); // longer than keepAliveTimeout, within headerTimeout
      expect(ch.readOutboundBytes().toString('latin1')).to.contain('/wrap 0');
      ch.advanceTime(999);
      expect(ch.isActive).to.equal(true);
      ch.advanceTime(2);
      expect(ch.isActive).to.equal(false);
    });
  });

  describe('draining', () => {
    it('a request arriving when the drain starts is answered with Connection: close, not cut at drainGrace', () => {
      const { ch, out } = setup(echo, { drainGrace: 100 });
      ch.writeInbound(bytes('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab'));
      ch.pipeline.fireUserEvent(DRAINING);
      ch.advanceTime(500);
      expect(ch.isActive).to.equal(true);
      ch.writeInbound(bytes('cd'));
      const text = out();
      expect(text).to.contain('Connection: close\r\n');
      expect(text).to.match(/\/ 4$/);
      expect(ch.isActive).to.equal(false);
    });
  });

  it('the timeouts are validated as options of the server stage and of http()', () => {
    for (const name of ['headerTimeout', 'requestTimeout', 'handlerTimeout'] as const) {
      for (const bad of [-1, 0.5, Number.NaN, '1', null]) {
        const options = { [name]: bad } as unknown as HttpServerHandlerOptions;
        const err = thrownBy(() => new HttpServerHandler(() => {}, options));
        expect(err, `${name}: ${String(bad)}`).to.be.instanceOf(InvalidOptionError);
        expect((err as Error).message).to.contain(name);
        expect(thrownBy(() => http(() => {}, options))).to.be.instanceOf(InvalidOptionError);
      }
      expect(() => http(() => {}, { [name]: 0 })).not.to.throw();
    }
    // Times are kept as small integers, modulo 2^30 ms (clocks.ts): at most 2^29 - 1 ms, 6.2 days.
    for (const name of [
      'keepAliveTimeout',
      'headerTimeout',
      'requestTimeout',
      'handlerTimeout',
      'drainGrace',
    ] as const) {
      expect(() => http(() => {}, { [name]: 2 ** 29 - 1 }), name).not.to.throw();
      const err = thrownBy(() => http(() => {}, { [name]: 2 ** 29 }));
      expect(err, name).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message)
        .to.contain(name)
        .and.contain('536870911');
    }
  });
});
