/**
 * TlsHandler between two embedded channels: the real OpenSSL on both sides, no sockets. Handshakes
 * (TLS 1.2 and 1.3, ALPN, SNI, mutual TLS, resumption), data both ways delivered as flushed, byte
 * by byte and joined, records, close_notify, timeouts, bad input, and every SSL object freed.
 */
import { Buffer } from 'node:buffer';
import { expect } from 'chai';
import {
  ChannelInboundHandler,
  EmbeddedChannel,
  type HandlerContext,
  LengthFieldFrameDecoder,
  Pipeline,
  TlsContext,
  TlsHandler,
  TlsHandshakeError,
  tlsSession,
} from '../../../src/index.js';
import { liveObjects } from '../../../src/syscalls/openssl.js';
import { type TestCertificates, tlsCertificates } from '../../tls-support.js';
import { AppProbe, connectedPair, type Delivery, LOCALHOST, pump, recordTypes, side, transfer } from './tls-pair.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe('TlsHandler (embedded)', () => {
  let certs: TestCertificates;
  const contexts: TlsContext[] = [];
  let liveAtStart = 0;

  before(function () {
    certs = tlsCertificates(this);
  });

  beforeEach(() => {
    liveAtStart = liveObjects.ssl;
  });

  afterEach(() => {
    for (const c of contexts.splice(0)) c.close();
  });

  function server(options: Partial<Parameters<typeof TlsContext.server>[0]> = {}): TlsContext {
    const ctx = TlsContext.server({ ...certs.server, ...options }, silent);
    contexts.push(ctx);
    return ctx;
  }

  function client(options: Parameters<typeof TlsContext.client>[0] = { ca: certs.ca }): TlsContext {
    const ctx = TlsContext.client(options, silent);
    contexts.push(ctx);
    return ctx;
  }

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`completes a ${version} handshake and tells the application only then`, () => {
      const s = side(server({ maxVersion: version }));
      const c = side(client(), LOCALHOST);
      expect(s.app.events).to.deep.equal([]);
      expect(c.app.events).to.deep.equal([]);
      pump(c, s);
      expect(s.app.events[0]).to.equal('active');
      expect(c.app.events[0]).to.equal('active');
      const ss = s.tls.session;
      const cs = c.tls.session;
      expect(ss?.protocol).to.equal(version);
      expect(cs?.protocol).to.equal(version);
      expect(ss?.cipher).to.equal(cs?.cipher);
      expect(ss?.servername).to.equal('localhost');
      expect(cs?.authorized).to.equal(true);
      expect(cs?.peerCertificate?.subject).to.contain('CN=localhost');
      expect(ss?.peerCertificate).to.equal(undefined);
      expect(tlsSession(s.channel)).to.equal(ss);
      expect(TlsHandler.of(c.channel)).to.equal(c.tls);
    });
  }

  for (const delivery of ['chunks', 'bytes', 'joined'] as Delivery[]) {
    it(`carries data both ways, ciphertext delivered in ${delivery}`, () => {
      const { server: s, client: c } = connectedPair(server(), client(), LOCALHOST, delivery);
      c.channel.writeOutbound('hello ', Buffer.from('server'));
      transfer(c.channel, s.channel, delivery);
      expect(s.app.take().toString()).to.equal('hello server');
      s.channel.writeOutbound(Buffer.from('hello client'));
      transfer(s.channel, c.channel, delivery);
      expect(c.app.take().toString()).to.equal('hello client');
    });
  }

  it('carries 1 MiB each way intact, in records of at most 16 KiB', () => {
    const { server: s, client: c } = connectedPair(server(), client());
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 11)) & 0xff;
    c.channel.writeOutbound(big);
    const wire = Buffer.concat(c.channel.outbound.map((m) => Buffer.from(m as Uint8Array)));
    const types = recordTypes(wire);
    expect(types.length).to.be.within(64, 70); // 1 MiB / 16 KiB, plus a little
    transfer(c.channel, s.channel);
    expect(s.app.take().equals(big)).to.equal(true);
    s.channel.writeOutbound(big);
    transfer(s.channel, c.channel, 'joined');
    expect(c.app.take().equals(big)).to.equal(true);
  });

  it('keeps no large buffer after a large transfer: memory BIOs never shrink, so they are replaced', () => {
    for (const releaseBuffers of [true, false]) {
      const { server: s, client: c } = connectedPair(server({ releaseBuffers }), client());
      // An ordinary handshake and a small answer grow neither BIO past what it keeps (4 KiB).
      s.channel.writeOutbound('small answer');
      transfer(s.channel, c.channel);
      expect(c.app.take().toString()).to.equal('small answer');
      const small = s.tls.bioCapacity;
      expect(small.read).to.be.below(4096);
      expect(small.write).to.be.below(4096);
      // 1 MiB out, in one write: it goes into the write BIO a record at a time, never whole.
      const big = Buffer.alloc(1024 * 1024, 'x');
      s.channel.writeOutbound(big);
      transfer(s.channel, c.channel, 'joined');
      expect(c.app.take().length).to.equal(big.length);
      // 1 MiB in, in one read: the read BIO takes it whole (one BIO_write per read).
      c.channel.writeOutbound(big);
      transfer(c.channel, s.channel, 'joined');
      expect(s.app.take().length).to.equal(big.length);
      const after = s.tls.bioCapacity;
      if (releaseBuffers) {
        // Both were replaced once empty: what an idle connection keeps is what a fresh BIO has.
        expect(after).to.deep.equal({ read: 0, write: 0 });
      } else {
        expect(after.write).to.be.below(32 * 1024); // one record's worth, not 1 MiB
        expect(after.read).to.be.at.least(big.length); // bounded by the largest read
      }
    }
  });

  it('lets a handler write and close from the writability event a large write raises', () => {
    // Records reach the connection one at a time, so its writability event fires in the middle of
    // the write: what the handler does then waits until the write is out, in order.
    class WriteAndCloseWhenFull extends ChannelInboundHandler {
      override onWritabilityChanged(ctx: HandlerContext, writable: boolean): void {
        if (!writable) {
          ctx.write('after');
          ctx.close();
          ctx.write('too late'); // after close: dropped
        }
        ctx.fireWritabilityChanged(writable);
      }
    }
    const before = liveObjects.ssl;
    const s = side(server(), undefined, [new WriteAndCloseWhenFull()], { highWaterMark: 20_000 });
    const c = side(client(), LOCALHOST);
    pump(c, s);
    const big = Buffer.alloc(1024 * 1024, 'y');
    s.channel.writeAndFlush(big);
    expect(s.channel.isActive).to.equal(false);
    expect(s.channel.errors).to.deep.equal([]);
    const wire = Buffer.concat(s.channel.outbound.map((m) => Buffer.from(m as Uint8Array)));
    expect(recordTypes(wire).length).to.equal(64 + 1 + 1); // the write, 'after', close_notify
    transfer(s.channel, c.channel, 'joined');
    expect(c.app.take().equals(Buffer.concat([big, Buffer.from('after')]))).to.equal(true);
    expect(c.app.inactive).to.equal('peer-closed');
    c.channel.close();
    expect(liveObjects.ssl).to.equal(before);
  });

  it('stops writing, and frees the SSL, when the channel is aborted in the middle of a large write', () => {
    class AbortWhenFull extends ChannelInboundHandler {
      override onWritabilityChanged(ctx: HandlerContext, writable: boolean): void {
        if (!writable) ctx.channel.abort();
        ctx.fireWritabilityChanged(writable);
      }
    }
    const before = liveObjects.ssl;
    const s = side(server(), undefined, [new AbortWhenFull()], { highWaterMark: 20_000 });
    const c = side(client(), LOCALHOST);
    pump(c, s);
    s.channel.writeAndFlush(Buffer.alloc(1024 * 1024, 'z'));
    expect(s.channel.isActive).to.equal(false);
    expect(s.channel.errors).to.deep.equal([]);
    c.channel.close();
    expect(liveObjects.ssl).to.equal(before);
  });

  it('gathers small writes into one record per flush', () => {
    const { server: s, client: c } = connectedPair(server(), client());
    for (let i = 0; i < 10; i++) s.channel.write(`part ${i};`);
    s.channel.flush();
    const wire = Buffer.concat(s.channel.outbound.map((m) => Buffer.from(m as Uint8Array)));
    expect(recordTypes(wire)).to.deep.equal([23]); // one application_data record
    transfer(s.channel, c.channel);
    expect(c.app.take().toString()).to.equal('part 0;part 1;part 2;part 3;part 4;part 5;part 6;part 7;part 8;part 9;');
  });

  it('hands the plaintext of one read on as one message', () => {
    const { server: s, client: c } = connectedPair(server(), client());
    for (let i = 0; i < 5; i++) c.channel.writeOutbound(`msg${i}`); // five records
    transfer(c.channel, s.channel, 'joined');
    expect(s.app.reads.map((b) => b.toString())).to.deep.equal(['msg0msg1msg2msg3msg4']);
    expect(s.app.events.filter((e) => e === 'readComplete').length).to.be.greaterThan(0);
  });

  it('sends what the application wrote before the handshake completed once it has', () => {
    class Greeter extends ChannelInboundHandler {
      override onActive(ctx: HandlerContext): void {
        ctx.write('220 ready\r\n');
        ctx.fireActive();
      }
    }
    const s = side(server(), undefined, [new Greeter()]);
    const c = side(client(), LOCALHOST);
    pump(c, s);
    expect(c.app.take().toString()).to.equal('220 ready\r\n');
  });

  it('copies a written view of the plaintext buffer (an echo) before the next read reuses it', () => {
    class Echo extends ChannelInboundHandler {
      override onRead(ctx: HandlerContext, msg: unknown): void {
        ctx.write(msg); // a view of the shared plaintext buffer
      }
    }
    const s = side(server(), undefined, [new Echo()]);
    const c = side(client(), LOCALHOST);
    pump(c, s);
    c.channel.writeOutbound('first');
    transfer(c.channel, s.channel);
    c.channel.writeOutbound('SECOND');
    transfer(c.channel, s.channel);
    transfer(s.channel, c.channel);
    expect(c.app.take().toString()).to.equal('firstSECOND');
  });

  it('lets a decoder claim the plaintext buffer and keeps decrypting into a fresh one', () => {
    const frames: Buffer[] = [];
    class Keep extends ChannelInboundHandler {
      override onRead(_ctx: HandlerContext, msg: unknown): void {
        frames.push(msg as Buffer); // kept without copying: the decoder's frames are its own
      }
    }
    const s = side(server(), undefined, [
      new LengthFieldFrameDecoder({ lengthFieldLength: 4, initialBytesToStrip: 4, maxFrameLength: 1 << 20 }),
      new Keep(),
    ]);
    const c = side(client(), LOCALHOST);
    pump(c, s);
    const sent: Buffer[] = [];
    for (let i = 0; i < 6; i++) {
      const body = Buffer.alloc(40_000 + i, 0x41 + i);
      const frame = Buffer.alloc(4 + body.length);
      frame.writeUInt32BE(body.length, 0);
      body.copy(frame, 4);
      sent.push(body);
      c.channel.writeOutbound(frame);
    }
    transfer(c.channel, s.channel, 'joined');
    expect(frames.length).to.equal(6);
    for (const [i, f] of frames.entries()) expect(f.equals(sent[i] as Buffer), `frame ${i}`).to.equal(true);
  });

  it('offers no CBC suite for TLS 1.2 by default, unless told to', () => {
    const strict = server({ maxVersion: 'TLSv1.2' });
    const cbcOnly = client({ ca: certs.ca, ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA' });
    const s = side(strict);
    const c = side(cbcOnly, LOCALHOST);
    pump(c, s);
    expect(c.tls.session).to.equal(undefined);
    expect(strict.stats.failures['no shared cipher']).to.equal(1);
    const ok = connectedPair(server({ maxVersion: 'TLSv1.2' }), client());
    expect(ok.server.tls.session?.cipher).to.match(/^ECDHE-ECDSA-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    const loose = connectedPair(server({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA' }), cbcOnly);
    expect(loose.server.tls.session?.cipher).to.equal('ECDHE-ECDSA-AES128-SHA');
  });

  it('negotiates ALPN, and refuses a client with no protocol in common (RFC 7301 §3.2)', () => {
    const srv = server({ alpn: ['h2', 'http/1.1'] });
    const ok = connectedPair(srv, client({ ca: certs.ca, alpn: ['http/1.1'] }));
    expect(ok.server.tls.session?.alpnProtocol).to.equal('http/1.1');
    expect(ok.client.tls.session?.alpnProtocol).to.equal('http/1.1');
    const s = side(srv);
    const c = side(client({ ca: certs.ca, alpn: ['spdy/3'] }), LOCALHOST);
    pump(c, s);
    expect(s.channel.isActive).to.equal(false);
    expect(s.channel.closeReason).to.equal('protocol-error');
    expect(s.app.events).to.deep.equal([]);
    expect(srv.stats.failures['no application protocol']).to.equal(1);
    expect(c.tls.session).to.equal(undefined);
  });

  it('picks the certificate by SNI: exact names, wildcards, a callback, a refusal', () => {
    const seen: string[] = [];
    const fromCallback = { key: certs.sniA.key, cert: certs.sniA.cert };
    const srv = server({
      sni: { 'a.example.test': certs.sniA, '*.wild.example.test': certs.sniWild },
      sniCallback: (name) => {
        seen.push(name);
        if (name === 'refused.test') return false;
        return name === 'cb.example.test' ? fromCallback : undefined;
      },
    });
    const cli = client({ ca: certs.ca, rejectUnauthorized: false });
    const subject = (servername: string) => {
      const target = { servername, verifyHost: servername, sessionKey: servername };
      const { server: s, client: c } = connectedPair(srv, cli, target);
      expect(s.tls.session?.servername).to.equal(servername);
      return c.tls.session?.peerCertificate?.subject;
    };
    expect(subject('a.example.test')).to.contain('CN=a.example.test');
    expect(subject('A.Example.Test')).to.contain('CN=a.example.test');
    expect(subject('x.wild.example.test')).to.contain('CN=*.wild.example.test');
    expect(subject('deeper.x.wild.example.test')).to.contain('CN=localhost'); // one label only
    expect(subject('cb.example.test')).to.contain('CN=a.example.test');
    expect(subject('other.test')).to.contain('CN=localhost'); // the default
    expect(seen).to.deep.equal(['deeper.x.wild.example.test', 'cb.example.test', 'other.test']);
    const s = side(srv);
    const c = side(cli, { servername: 'refused.test', verifyHost: 'refused.test', sessionKey: 'r' });
    pump(c, s);
    expect(s.channel.isActive).to.equal(false);
    expect(c.tls.session).to.equal(undefined);
    expect(Object.keys(srv.stats.failures).join()).to.match(/callback failed|unrecognized/);
  });

  it('verifies the server: an unknown CA and a wrong name fail with TlsHandshakeError', async () => {
    const srv = server();
    for (const [ctx, target, detail] of [
      [client({ ca: certs.selfSigned.cert }), LOCALHOST, /unable to get local issuer|self-signed|unable to get issuer/],
      [
        client({ ca: certs.ca }),
        { servername: 'elsewhere.test', verifyHost: 'elsewhere.test', sessionKey: 'e' },
        /mismatch/i,
      ],
    ] as const) {
      const s = side(srv);
      const c = side(ctx, target);
      const result = c.tls.handshake();
      pump(c, s);
      const err = await result.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(TlsHandshakeError);
      expect((err as TlsHandshakeError).reason).to.equal('certificate verify failed');
      expect((err as TlsHandshakeError).verifyError).to.match(detail);
      expect(c.channel.isActive).to.equal(false);
      expect(s.channel.isActive).to.equal(false);
      expect(c.app.events).to.deep.equal([]);
    }
    // The server hears the client's alert.
    expect(srv.stats.failures['tlsv1 alert unknown ca']).to.equal(1);
  });

  it('sends the chain: a client trusting only the root verifies a leaf signed by an intermediate', () => {
    const { client: c } = connectedPair(server(), client());
    expect(c.tls.session?.authorized).to.equal(true);
    const s = side(server({ ...certs.serverLeafOnly }));
    const c2 = side(client(), LOCALHOST);
    pump(c2, s);
    expect(c2.tls.session).to.equal(undefined);
  });

  it('reports an unverified server with rejectUnauthorized: false instead of failing', () => {
    const srv = server({ ...certs.selfSigned });
    const { client: c } = connectedPair(srv, client({ ca: certs.ca, rejectUnauthorized: false }));
    expect(c.tls.session?.authorized).to.equal(false);
    expect(c.tls.session?.authorizationError).to.match(/self-signed/);
  });

  describe('mutual TLS', () => {
    it('reads the client certificate of an authorized client', () => {
      const srv = server({ ca: certs.ca, requestCert: true });
      const { server: s } = connectedPair(srv, client({ ca: certs.ca, ...certs.client }));
      expect(s.tls.session?.authorized).to.equal(true);
      expect(s.tls.session?.peerCertificate?.subject).to.contain('CN=test client');
      expect(s.tls.session?.peerCertificateDer?.length).to.be.greaterThan(100);
    });

    it('refuses a client without a certificate, or with one from another CA', () => {
      const srv = server({ ca: certs.ca, requestCert: true });
      for (const opts of [{ ca: certs.ca }, { ca: certs.ca, ...certs.selfSigned }]) {
        const s = side(srv);
        const c = side(client(opts), LOCALHOST);
        pump(c, s);
        expect(s.channel.isActive).to.equal(false);
        expect(s.app.events).to.deep.equal([]);
      }
      const reasons = Object.keys(srv.stats.failures);
      expect(reasons).to.include('peer did not return a certificate');
      expect(reasons).to.include('certificate verify failed');
    });

    it('lets them in with rejectUnauthorized: false and says so', () => {
      const srv = server({ ca: certs.ca, requestCert: true, rejectUnauthorized: false });
      const none = connectedPair(srv, client({ ca: certs.ca }));
      expect(none.server.tls.session?.authorized).to.equal(false);
      expect(none.server.tls.session?.authorizationError).to.equal('the peer sent no certificate');
      const stranger = connectedPair(srv, client({ ca: certs.ca, ...certs.selfSigned }));
      expect(stranger.server.tls.session?.authorized).to.equal(false);
      expect(stranger.server.tls.session?.authorizationError).to.match(/self-signed|issuer/);
      expect(stranger.server.tls.session?.peerCertificate?.subject).to.contain('CN=localhost');
    });
  });

  it('resumes sessions from the client context cache (tickets), TLS 1.3 and 1.2', () => {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const srv = server({ maxVersion });
      const cli = client();
      const first = connectedPair(srv, cli);
      expect(first.client.tls.session?.resumed).to.equal(false);
      first.client.channel.close();
      transfer(first.client.channel, first.server.channel);
      const second = connectedPair(srv, cli);
      expect(second.client.tls.session?.resumed, maxVersion).to.equal(true);
      expect(second.server.tls.session?.resumed, maxVersion).to.equal(true);
      expect(srv.stats.resumed).to.equal(1);
    }
  });

  it('closes with close_notify, and the peer closes on receiving it', () => {
    const { server: s, client: c } = connectedPair(server(), client());
    s.channel.write('bye');
    s.channel.close();
    expect(s.channel.closeReason).to.equal('local');
    expect(s.app.inactive).to.equal('local');
    const wire = Buffer.concat(s.channel.outbound.map((m) => Buffer.from(m as Uint8Array)));
    expect(recordTypes(wire).length).to.equal(2); // the data, then the encrypted close_notify alert
    transfer(s.channel, c.channel);
    expect(c.app.take().toString()).to.equal('bye');
    expect(c.channel.isActive).to.equal(false);
    expect(c.channel.closeReason).to.equal('peer-closed');
  });

  it('lets answers to what arrived with the close_notify go out before closing', () => {
    class Answer extends ChannelInboundHandler {
      override onRead(ctx: HandlerContext, msg: unknown): void {
        ctx.write(`re: ${Buffer.from(msg as Uint8Array).toString()}`);
      }
    }
    const s = side(server(), undefined, [new Answer()]);
    const c = side(client(), LOCALHOST);
    pump(c, s);
    c.channel.write('question');
    c.tls.shutdownOutput(c.channel.pipeline.context('tls') as HandlerContext); // data + close_notify, no FIN
    transfer(c.channel, s.channel, 'joined');
    expect(s.channel.isActive).to.equal(false);
    expect(s.channel.closeReason).to.equal('peer-closed');
    expect(c.channel.isActive).to.equal(true);
    transfer(s.channel, c.channel);
    expect(c.app.take().toString()).to.equal('re: question');
  });

  it('drops writes after close: nothing, and above all no plaintext, follows close_notify', () => {
    const { server: s } = connectedPair(server(), client());
    const chunks: unknown[] = [];
    s.channel.close();
    chunks.push(...s.channel.outbound.splice(0));
    s.channel.writeOutbound('late');
    expect(s.channel.outbound).to.deep.equal([]);
    expect(chunks.every((m) => !Buffer.from(m as Uint8Array).includes('late'))).to.equal(true);
  });

  it('gives up a handshake after handshakeTimeout, counted', async () => {
    const srv = server({ handshakeTimeout: 500 });
    const s = side(srv);
    const handshake = s.tls.handshake();
    s.channel.advanceTime(499);
    expect(s.channel.isActive).to.equal(true);
    s.channel.advanceTime(2);
    expect(s.channel.isActive).to.equal(false);
    expect(s.channel.closeReason).to.equal('idle-timeout');
    expect(srv.stats.failures['handshake timeout']).to.equal(1);
    const err = await handshake.catch((e: unknown) => e);
    expect((err as TlsHandshakeError).reason).to.equal('handshake timeout');
  });

  it('answers garbage with an alert and a close, and plain HTTP with a 400', () => {
    const srv = server();
    const g = side(srv);
    g.channel.writeInbound(Buffer.from('\x16\x03\x01\x00\x05garbage-that-is-no-client-hello', 'latin1'));
    expect(g.channel.isActive).to.equal(false);
    expect(g.channel.closeReason).to.equal('protocol-error');
    const alert = Buffer.concat(g.channel.outbound.map((m) => Buffer.from(m as Uint8Array)));
    expect(recordTypes(alert)).to.deep.equal([21]); // one alert record
    const h = side(srv);
    h.channel.writeInbound(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(h.channel.isActive).to.equal(false);
    const reply = h.channel.readOutboundBytes().toString('latin1');
    expect(reply).to.match(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(reply).to.contain('Connection: close');
    expect(srv.stats.failures['http request']).to.equal(1);
    expect(Object.values(srv.stats.failures).reduce((a, b) => a + b)).to.equal(2);
  });

  it('counts a peer that goes away mid-handshake', () => {
    const srv = server();
    const s = side(srv);
    s.channel.writeInbound(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])); // a ClientHello begins
    // As a connection does on the peer's FIN (without allowHalfOpen): it closes below the pipeline.
    s.channel.abort('peer-closed');
    expect(s.channel.isActive).to.equal(false);
    expect(srv.stats.failures['peer closed']).to.equal(1);
  });

  it('with allowHalfOpen: a FIN mid-handshake fails it; after it, the application hears of it', () => {
    const srv = server();
    const early = side(srv, undefined, [], { allowHalfOpen: true });
    early.channel.shutdownInput();
    expect(early.channel.isActive).to.equal(false);
    expect(srv.stats.failures['peer closed']).to.equal(1);
    const s = side(srv, undefined, [], { allowHalfOpen: true });
    const c = side(client(), LOCALHOST);
    pump(c, s);
    s.channel.shutdownInput();
    expect(s.app.events).to.include('inputShutdown');
    s.channel.writeOutbound('still writing');
    transfer(s.channel, c.channel);
    expect(c.app.take().toString()).to.equal('still writing');
  });

  it('closes connections still shaking hands when the server drains', async () => {
    const { DRAINING } = await import('../../../src/index.js');
    const s = side(server());
    s.channel.pipeline.fireUserEvent(DRAINING);
    expect(s.channel.isActive).to.equal(false);
    expect(s.channel.closeReason).to.equal('shutdown');
  });

  it('frees every SSL object: after successes, failures, timeouts and removals', () => {
    const srv = server({ handshakeTimeout: 100 });
    const cli = client();
    const before = liveObjects.ssl;
    const created = liveObjects.created.ssl;
    for (let i = 0; i < 50; i++) {
      const ok = connectedPair(srv, cli);
      ok.client.channel.close();
      transfer(ok.client.channel, ok.server.channel);
      side(srv).channel.writeInbound(Buffer.from('garbage garbage garbage'));
      side(srv).channel.advanceTime(200);
      const removed = side(srv);
      removed.channel.pipeline.remove('tls');
      removed.channel.close();
    }
    expect(liveObjects.created.ssl - created).to.equal(250);
    expect(liveObjects.ssl).to.equal(before);
    expect(srv.stats.open).to.equal(0);
    expect(liveAtStart).to.equal(before);
  });

  it('refuses a client handler without a target, and fails a connection on a closed context', () => {
    const srv = server();
    expect(() => new TlsHandler(client())).to.throw(TypeError);
    srv.close();
    const ch = new EmbeddedChannel(new Pipeline().addLast('tls', new TlsHandler(srv)).addLast(new AppProbe()));
    expect(ch.isActive).to.equal(false);
    expect(srv.stats.failures['context closed']).to.equal(1);
  });
});
