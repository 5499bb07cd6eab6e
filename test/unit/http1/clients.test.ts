/**
 * The exact bytes real clients send (test/fixtures/clients/observed-client-traffic.json:
 * wrk, ab, ab -k, curl, autocannon, h2load, slowhttptest, nc, captured on loopback), and the
 * TechEmpower plaintext request wrk sends 16 at a time: every one must parse, into the method,
 * target and fields a line-by-line reading gives, with the keep-alive each client relies on.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect } from 'chai';
import type { HttpRequest } from '../../../src/codec/http1/request.js';
import { byteByByte, FIXTURES, randomSplit } from '../../support.js';
import { bytes, decode } from './harness.js';

interface Observed {
  readonly first_request: string;
  readonly pipelined_in_first_read: number;
}

const traffic = JSON.parse(readFileSync(resolve(FIXTURES, 'clients', 'observed-client-traffic.json'), 'utf8')) as {
  readonly http: Readonly<Record<string, Observed>>;
};

/**
 * TechEmpower's plaintext request as wrk sends it with the benchmark's `-H` flags
 * (../shared/vectors/techempower/plaintext-requirements.json, actual_benchmark_request_bytes).
 */
const TFB_WRK =
  'GET /plaintext HTTP/1.1\r\nConnection: keep-alive\r\nHost: 127.0.0.1:8080\r\n' +
  'Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\r\n';

/** A plain reading of a well-formed head: request line, then `name: value` lines. */
function readHead(raw: string): { method: string; url: string; version: string; headers: [string, string][] } {
  const lines = raw.slice(0, raw.indexOf('\r\n\r\n')).split('\r\n');
  const [method, url, protocol] = (lines[0] as string).split(' ') as [string, string, string];
  const headers = lines.slice(1).map((l): [string, string] => {
    const colon = l.indexOf(':');
    return [l.slice(0, colon), l.slice(colon + 1).trim()];
  });
  return { method, url, version: protocol.slice('HTTP/'.length), headers };
}

/** What a client that sends this head expects: HTTP/1.1 unless close, HTTP/1.0 only with keep-alive. */
function keepsAlive(head: ReturnType<typeof readHead>): boolean {
  const connection = head.headers
    .filter(([n]) => n.toLowerCase() === 'connection')
    .map(([, v]) => v.toLowerCase())
    .join(',');
  return head.version === '1.1' ? !connection.includes('close') : connection.includes('keep-alive');
}

function checkAll(requests: readonly HttpRequest[], raw: string, count: number): void {
  const head = readHead(raw);
  expect(requests).to.have.length(count);
  for (const r of requests) {
    expect(r.method).to.equal(head.method);
    expect(r.url).to.equal(head.url);
    expect(r.httpVersion).to.equal(head.version);
    expect(r.headers.toArray()).to.deep.equal(head.headers);
    for (const [name, value] of head.headers) {
      expect(r.headers.get(name.toUpperCase())).to.equal(value);
      expect(r.headers.has(name.toLowerCase())).to.equal(true);
    }
    expect(r.body).to.have.length(0);
    expect(r.keepAlive).to.equal(keepsAlive(head));
    expect(r.upgrade).to.equal(false);
  }
}

describe('requests of real clients (observed-client-traffic.json, TechEmpower wrk)', () => {
  const clients: [string, Observed][] = [
    ...Object.entries(traffic.http),
    ['wrk, TechEmpower plaintext headers, pipeline.lua -- 16', { first_request: TFB_WRK, pipelined_in_first_read: 16 }],
  ];

  it('covers wrk, ab, ab -k, curl, autocannon, h2load, slowhttptest and nc', () => {
    expect(Object.keys(traffic.http)).to.include.members([
      'ab',
      'ab -k',
      'curl',
      'autocannon -p 16',
      'h2load --h1 -m 16',
      'nc',
    ]);
    expect(clients.length).to.be.at.least(9);
  });

  for (const [client, observed] of clients) {
    describe(client, () => {
      const raw = observed.first_request;
      const n = observed.pipelined_in_first_read;
      const batch = bytes(raw.repeat(n));

      it(`${n} request(s) in one read, as the client writes them`, () => {
        const { rec } = decode([batch]);
        expect(rec.errors).to.deep.equal([]);
        checkAll(rec.requests, raw, n);
      });

      it('byte by byte, and in random splits', () => {
        const one = decode(byteByByte(batch)).rec;
        expect(one.errors).to.deep.equal([]);
        checkAll(one.requests, raw, n);
        for (const seed of [7, 8, 9]) {
          const some = decode(randomSplit(batch, seed)).rec;
          expect(some.errors).to.deep.equal([]);
          checkAll(some.requests, raw, n);
        }
      });

      if (!keepsAlive(readHead(raw))) {
        it('without keep-alive, a second request on the connection is not decoded', () => {
          const { rec } = decode([bytes(raw + raw)]);
          expect(rec.requests).to.have.length(1);
          expect(rec.errors).to.have.length(1);
          expect(rec.errors[0]).to.have.property('code', 'HPE_CLOSED_CONNECTION');
        });
      }
    });
  }
});
