/**
 * HTTP Garden's trophies (test/fixtures/http-garden, see its README): payloads that broke the
 * parsers of real servers — request smuggling, header injection, framing confusion. Each server
 * payload carries a judgement of what a strict origin server must do (`expected`, ours, not the
 * Garden's): `reject`, `ok:N`, `incomplete`, or `either`. The sends are fed as separate writes,
 * and again byte by byte.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect } from 'chai';
import { HttpParseError } from '../../../src/codec/http1/request.js';
import { byteByByte, FIXTURES } from '../../support.js';
import { decode, type Recorder } from './harness.js';

interface GardenCase {
  readonly id: string;
  readonly kind: 'server' | 'proxy';
  readonly bug: string;
  readonly sends_hex: readonly string[];
  readonly expected: string | null;
  readonly expected_note: string | null;
}

const garden = JSON.parse(readFileSync(resolve(FIXTURES, 'http-garden', 'trophies-payloads.json'), 'utf8')) as {
  readonly commit: string;
  readonly cases: readonly GardenCase[];
};
const judged = garden.cases.filter((c) => c.expected !== null);

/** Checks for the `ok:N` cases beyond the count, from their expected_note. */
const DETAILS: Readonly<Record<string, (rec: Recorder) => void>> = {
  // After the last chunk, `X:POST / HTTP/1.1` is a trailer field: one request, no smuggled POST.
  'garden-server-39': (rec) => {
    const [r] = rec.requests;
    expect(r?.method).to.equal('GET');
    expect(r?.trailers.toArray()).to.deep.equal([['X', 'POST / HTTP/1.1']]);
  },
  // obs-text is kept as sent: nothing stripped from the value.
  'garden-server-41': (rec) => {
    expect(rec.requests[0]?.headers.get('user')).to.equal('\x85admin\xa0');
  },
  // Content-Length: 0 means no body; the second POST's 34-byte body is the second send.
  'garden-server-48': (rec) => {
    const [a, b] = rec.requests;
    expect(a?.headers.get('id')).to.equal('0');
    expect(a?.body).to.have.length(0);
    expect(b?.headers.get('id')).to.equal('1');
    expect(b?.body.toString('latin1')).to.equal('GET / HTTP/1.1\r\nHost: a\r\nid: 2\r\n\r\n');
  },
};

function check(c: GardenCase, rec: Recorder): void {
  const expected = c.expected as string;
  // Whatever the payload, the decoder only ever produces requests and HttpParseErrors, and
  // nothing after an error.
  expect(rec.order.filter((o) => o !== 'request' && o !== 'error')).to.deep.equal([]);
  for (const e of rec.errors) expect(e).to.be.instanceOf(HttpParseError);
  expect(rec.errors.length).to.be.at.most(1);
  if (rec.errors.length > 0) expect(rec.order[rec.order.length - 1]).to.equal('error');
  if (expected === 'reject') {
    // Every rejected payload is bad from its first request on: nothing may be emitted before
    // the error (a request emitted first would be the smuggler's reading of the bytes).
    expect(rec.requests, 'no request before the error').to.have.length(0);
    expect(rec.errors).to.have.length(1);
    expect([400, 501, 505]).to.include((rec.errors[0] as HttpParseError).statusCode);
  } else if (expected.startsWith('ok:')) {
    expect(rec.requests).to.have.length(Number(expected.slice(3)));
    if (rec.errors.length > 0) {
      // garden-server-45: after a `Connection: close` request, llhttp's strict mode reports the
      // bytes that follow as CLOSED_CONNECTION (llhttp vector request/connection:292); the
      // request itself is emitted first and must be answered, then the connection closes.
      expect((rec.errors[0] as HttpParseError).code).to.equal('HPE_CLOSED_CONNECTION');
      expect(rec.requests.every((r) => !r.keepAlive)).to.equal(true);
    }
    DETAILS[c.id]?.(rec);
  } else if (expected === 'incomplete') {
    expect(rec.requests).to.have.length(0);
    expect(rec.errors).to.have.length(0);
  } else {
    expect(expected).to.equal('either');
    // garden-server-4 and -19: reject, or ignore the line — never the single smuggled request.
    expect(rec.requests.length).to.not.equal(1);
  }
}

describe(`HTTP Garden server trophies (http-garden@${garden.commit.slice(0, 10)})`, () => {
  it('the fixture holds 48 judged server payloads (40 reject, 4 ok, 2 incomplete, 2 either)', () => {
    expect(judged).to.have.length(48);
    expect(judged.every((c) => c.kind === 'server')).to.equal(true);
    const count = (p: (e: string) => boolean) => judged.filter((c) => p(c.expected as string)).length;
    expect(count((e) => e === 'reject')).to.equal(40);
    expect(count((e) => e.startsWith('ok:'))).to.equal(4);
    expect(count((e) => e === 'incomplete')).to.equal(2);
    expect(count((e) => e === 'either')).to.equal(2);
  });

  for (const c of judged) {
    describe(`${c.id} (${c.expected}): ${c.bug}`, () => {
      const sends = c.sends_hex.map((h) => Buffer.from(h, 'hex'));
      it('sends as separate writes', () => check(c, decode(sends).rec));
      it('byte by byte', () => check(c, decode(byteByByte(Buffer.concat(sends))).rec));
    });
  }
});

describe('HTTP Garden server trophies under the server default (requireHostHeader: RFC 9112 §3.2)', () => {
  // The payloads whose first request is HTTP/1.1 without Host: a server refuses them at that
  // request's head (400 HPE_MISSING_HOST) — unless an earlier error in the same head refuses it
  // first. Every other verdict holds as judged.
  const WITHOUT_HOST = ['garden-server-25', 'garden-server-39', 'garden-server-45'];

  for (const c of judged) {
    it(`${c.id} (${WITHOUT_HOST.includes(c.id) ? 'refused: no Host' : c.expected})`, () => {
      const sends = c.sends_hex.map((h) => Buffer.from(h, 'hex'));
      for (const rec of [
        decode(sends, { requireHostHeader: true }).rec,
        decode(byteByByte(Buffer.concat(sends)), { requireHostHeader: true }).rec,
      ]) {
        if (!WITHOUT_HOST.includes(c.id)) {
          check(c, rec);
          continue;
        }
        expect(rec.requests).to.have.length(0);
        expect(rec.errors).to.have.length(1);
        expect((rec.errors[0] as HttpParseError).code).to.equal('HPE_MISSING_HOST');
      }
    });
  }
});
