/**
 * llhttp's own request tests (test/fixtures/llhttp, see its README): every strict-mode case
 * (`lenient == false`) fed whole, byte by byte, and in random splits. `ok` cases must give exactly
 * llhttp's messages; `error` cases the messages completed before the error, then one
 * HttpParseError with llhttp's error code; `incomplete` cases the complete messages and nothing
 * else; upgrade cases the request with `upgrade` set and the rest of the bytes passed on raw.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect } from 'chai';
import { HttpParseError, type HttpRequest } from '../../../src/codec/http1/request.js';
import { byteByByte, FIXTURES, randomSplit } from '../../support.js';
import { decode, type Recorder } from './harness.js';

interface Message {
  readonly method: string;
  readonly url: string;
  readonly version: string | null;
  readonly headers: readonly [string, string][];
  /** latin1, de-chunked. */
  readonly body: string;
  readonly trailers?: readonly [string, string][];
  readonly complete: boolean;
  readonly headers_complete: { readonly flags: number } | null;
}

interface Case {
  readonly id: string;
  readonly name: string;
  readonly lenient: boolean;
  readonly raw_base64: string;
  readonly expect: 'ok' | 'error' | 'incomplete';
  readonly messages: readonly Message[];
  readonly error: { readonly offset: number; readonly code_name: string; readonly reason: string } | null;
  readonly upgrade: string | null;
  readonly complete_message_count: number;
}

const all = JSON.parse(readFileSync(resolve(FIXTURES, 'llhttp', 'llhttp-requests.json'), 'utf8')) as Case[];
const strict = all.filter((c) => !c.lenient);

/**
 * Cases whose llhttp expectation cannot hold by design, with what we do instead (docs/http.md,
 * "The request decoder"). Everything else is asserted exactly as llhttp expects it.
 */
const DEVIATIONS: Readonly<
  Record<
    string,
    { readonly why: string; readonly expect: 'error' | 'incomplete'; readonly code?: string; readonly status?: number }
  >
> = {
  // llhttp parses RTSP and Icecast requests too; RFC 9112 §2.3 names the protocol "HTTP" and an
  // HTTP server cannot answer RTSP, so the decoder accepts exactly HTTP/1.0 and HTTP/1.1.
  'request/method:372': { why: 'ICE/1.0 is not HTTP', expect: 'error', code: 'HPE_INVALID_CONSTANT', status: 400 },
  'request/method:400': { why: 'RTSP/1.0 is not HTTP', expect: 'error', code: 'HPE_INVALID_CONSTANT', status: 400 },
  // ANNOUNCE is an RTSP method: not known for HTTP, so 501 before the protocol is even read.
  'request/method:430': { why: 'RTSP/1.0 is not HTTP', expect: 'error', code: 'HPE_INVALID_METHOD', status: 501 },
  // `GET /` with no version is HTTP/0.9, whose response has no status line: HttpRequest carries
  // 1.0 or 1.1 only, so the decoder answers 505.
  'request/sample:314': { why: 'HTTP/0.9 is not supported', expect: 'error', code: 'HPE_INVALID_VERSION', status: 505 },
  // llhttp's harness returns 1 from on_headers_complete ("skip body", its API for responses to
  // HEAD); a request decoder has no such hook: the 123-byte body swallows the next request
  // (44 bytes) and the decoder waits for the rest of it.
  'request/content-length:444': { why: 'no skip-body hook', expect: 'incomplete' },
};

/**
 * Error codes that differ from llhttp's for a case that is an error either way. ANNOUNCE is an
 * RTSP method: llhttp knows it and complains about the protocol, we do not know it (501).
 */
const OUR_CODE: Readonly<Record<string, string>> = {
  'request/invalid:66': 'HPE_INVALID_METHOD',
};

/** llhttp's spans keep trailing whitespace; a field value does not include it (RFC 9110 §5.5). */
const trimValue = (v: string): string => v.replace(/[ \t]+$/, '');

function checkRequest(r: HttpRequest, m: Message, upgrade: boolean, what: string): void {
  expect(r.method, `${what} method`).to.equal(m.method);
  expect(r.url, `${what} url`).to.equal(m.url);
  expect(r.httpVersion, `${what} version`).to.equal(m.version);
  expect(r.headers.toArray(), `${what} headers`).to.deep.equal(m.headers.map(([n, v]) => [n, trimValue(v)]));
  expect(r.headers.size, `${what} header count`).to.equal(m.headers.length);
  expect(r.body.toString('latin1'), `${what} body`).to.equal(m.body);
  expect(r.trailers.toArray(), `${what} trailers`).to.deep.equal((m.trailers ?? []).map(([n, v]) => [n, trimValue(v)]));
  expect(r.upgrade, `${what} upgrade`).to.equal(upgrade);
  if (!upgrade && m.headers_complete !== null) {
    // llhttp_should_keep_alive: 1.1 unless CONNECTION_CLOSE (2), 1.0 only with CONNECTION_KEEP_ALIVE (1).
    const flags = m.headers_complete.flags;
    const keepAlive = m.version === '1.1' ? (flags & 2) === 0 : (flags & 1) !== 0 && (flags & 2) === 0;
    expect(r.keepAlive, `${what} keepAlive`).to.equal(keepAlive);
  }
}

function check(c: Case, rec: Recorder): void {
  const raw = Buffer.from(c.raw_base64, 'base64');
  const deviation = DEVIATIONS[c.id];
  const expectation = deviation?.expect ?? c.expect;
  const complete = deviation === undefined ? c.messages.filter((m) => m.complete) : [];
  // PAUSED_UPGRADE: llhttp stops at error.offset, where the other protocol's bytes begin.
  const upgradeAt = c.expect === 'ok' && c.upgrade !== null && c.error !== null ? c.error.offset : -1;
  expect(rec.order, 'only requests, raw bytes after an upgrade, and one error').to.not.include('other');
  expect(rec.requests, 'request count').to.have.length(complete.length);
  rec.requests.forEach((r, i) => {
    checkRequest(r, complete[i] as Message, upgradeAt >= 0 && i === complete.length - 1, `request ${i + 1}`);
  });
  if (upgradeAt >= 0) {
    expect(rec.rawBytes().toString('latin1'), 'bytes after the upgrade, passed on').to.equal(
      raw.subarray(upgradeAt).toString('latin1'),
    );
  } else {
    expect(rec.raw, 'no raw bytes without an upgrade').to.have.length(0);
  }
  if (expectation !== 'error') {
    expect(rec.errors, 'errors').to.have.length(0);
    return;
  }
  expect(rec.errors, 'exactly one error').to.have.length(1);
  expect(rec.order[rec.order.length - 1], 'nothing after the error').to.equal('error');
  const err = rec.errors[0];
  expect(err).to.be.instanceOf(HttpParseError);
  const e = err as HttpParseError;
  if (deviation !== undefined) {
    expect(e.code).to.equal(deviation.code);
    expect(e.statusCode).to.equal(deviation.status);
    return;
  }
  const llhttp = c.error as NonNullable<Case['error']>;
  expect(e.code, e.message).to.equal(OUR_CODE[c.id] ?? `HPE_${llhttp.code_name}`);
  expect([400, 413, 414, 431, 501, 505]).to.include(e.statusCode);
  // llhttp reports the position after the byte that failed (after the name, for a field that
  // conflicts with an earlier one); we report the byte itself (the start of that field): within
  // the same field line, not equal.
  expect(e.offset, 'error offset').to.be.a('number');
  if (OUR_CODE[c.id] === undefined) expect(Math.abs((e.offset as number) - llhttp.offset)).to.be.at.most(24);
  expect(e.offset as number).to.be.at.most(raw.length);
}

describe('llhttp request vectors, strict mode (test/fixtures/llhttp)', () => {
  it('the fixture holds llhttp’s 137 strict request cases: 72 ok, 56 error, 9 incomplete', () => {
    expect(strict).to.have.length(137);
    expect(strict.filter((c) => c.expect === 'ok')).to.have.length(72);
    expect(strict.filter((c) => c.expect === 'error')).to.have.length(56);
    expect(strict.filter((c) => c.expect === 'incomplete')).to.have.length(9);
  });

  it('deviates from llhttp in 5 documented cases only', () => {
    for (const id of Object.keys(DEVIATIONS)) expect(strict.map((c) => c.id)).to.include(id);
    expect(Object.keys(DEVIATIONS)).to.have.length(5);
  });

  for (const c of strict) {
    const raw = Buffer.from(c.raw_base64, 'base64');
    const label = `${c.id} ${c.name} (${DEVIATIONS[c.id] === undefined ? c.expect : `deviation: ${DEVIATIONS[c.id]?.why}`})`;
    describe(label, () => {
      it('whole', () => check(c, decode([raw]).rec));
      it('byte by byte', () => check(c, decode(byteByByte(raw)).rec));
      it('random splits', () => {
        for (const seed of [1, 2, 3]) check(c, decode(randomSplit(raw, seed + raw.length)).rec);
      });
    });
  }
});

describe('llhttp request vectors under the server default (requireHostHeader: RFC 9112 §3.2)', () => {
  it('ok vectors: an HTTP/1.1 message without Host is answered 400 HPE_MISSING_HOST after the ones before it; the rest decode as llhttp says', () => {
    const refused: string[] = [];
    for (const c of strict) {
      if (c.expect !== 'ok' || DEVIATIONS[c.id] !== undefined) continue;
      const raw = Buffer.from(c.raw_base64, 'base64');
      const complete = c.messages.filter((m) => m.complete);
      const without = complete.findIndex(
        (m) => m.version === '1.1' && !m.headers.some(([n]) => n.toLowerCase() === 'host'),
      );
      for (const rec of [
        decode([raw], { requireHostHeader: true }).rec,
        decode(byteByByte(raw), { requireHostHeader: true }).rec,
      ]) {
        if (without < 0) {
          check(c, rec);
          continue;
        }
        expect(rec.requests, c.id).to.have.length(without);
        expect(rec.errors, c.id).to.have.length(1);
        const e = rec.errors[0] as HttpParseError;
        expect([e.statusCode, e.code], c.id).to.deep.equal([400, 'HPE_MISSING_HOST']);
      }
      if (without >= 0) refused.push(c.id);
    }
    // 49 of the 71 ok vectors (llhttp does not check Host, and its tests mostly omit it).
    expect(refused).to.have.length(49);
  });
});
