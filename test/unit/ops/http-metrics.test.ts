/**
 * The HTTP counters of a process (common/http-metrics.ts), bumped by the HTTP server stage through
 * the pipeline as users build it (`http(handler)` on an EmbeddedChannel with its fake clock):
 * responses by status class, protocol errors included, and the latency buckets on the loop clock.
 */
import { expect } from 'chai';
import { http } from '../../../src/codec/http1/http.js';
import type { HttpResponse } from '../../../src/codec/http1/response.js';
import { HTTP_LATENCY_BOUNDS_MS, httpMetrics } from '../../../src/common/http-metrics.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';

const get = (url: string) => Buffer.from(`GET ${url} HTTP/1.1\r\nHost: x\r\n\r\n`, 'latin1');

/** What the process's counters gained while `fn` ran. */
function delta(fn: () => void): { responses: number[]; latency: number[]; sumMs: number } {
  const before = httpMetrics.snapshot();
  fn();
  const after = httpMetrics.snapshot();
  return {
    responses: after.responses.map((n, i) => n - (before.responses[i] ?? 0)),
    latency: after.latency.map((n, i) => n - (before.latency[i] ?? 0)),
    sumMs: after.latencySumMs - before.latencySumMs,
  };
}

describe('HTTP metrics (the server stage hook)', () => {
  it('counts responses by status class; a synchronous answer lands in the first bucket', () => {
    const ch = new EmbeddedChannel(
      http((req, res) => {
        if (req.path === '/missing') res.writeHead(404).end();
        else if (req.path === '/fail') res.writeHead(503).end();
        else res.end('ok');
      }),
    );
    const d = delta(() => {
      ch.writeInbound(Buffer.concat([get('/'), get('/'), get('/missing'), get('/fail')]));
    });
    // other, 1xx, 2xx, 3xx, 4xx, 5xx
    expect(d.responses).to.deep.equal([0, 0, 2, 0, 1, 1]);
    expect(d.latency[0]).to.equal(4);
    expect(d.latency.reduce((a, b) => a + b, 0)).to.equal(4);
    expect(d.sumMs).to.equal(0);
    ch.close();
  });

  it('a later answer is timed on the loop clock from its request to its whole response', () => {
    let pending: HttpResponse | undefined;
    const ch = new EmbeddedChannel(
      http((_req, res) => {
        pending = res;
      }),
    );
    const d = delta(() => {
      ch.writeInbound(get('/later'));
      ch.advanceTime(300);
      pending?.end('late');
    });
    expect(d.responses[2]).to.equal(1);
    // 300 ms: above 250, within 500.
    const bucket = HTTP_LATENCY_BOUNDS_MS.indexOf(500);
    expect(d.latency[bucket]).to.equal(1);
    expect(d.sumMs).to.be.within(290, 320);
    ch.close();
  });

  it('a request the decoder rejects is counted with its 4xx answer', () => {
    const ch = new EmbeddedChannel(http((_req, res) => res.end()));
    const d = delta(() => {
      // A field line without a colon: 400 (an unknown method is 501 now, a 5xx).
      ch.writeInbound(Buffer.from('GET / HTTP/1.1\r\nHost x\r\n\r\n', 'latin1'));
    });
    expect(d.responses[4]).to.equal(1);
  });
});
