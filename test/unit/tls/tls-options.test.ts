/**
 * TLS options are checked when the context is built — at `listen`/`connect` — and a bad one fails
 * with InvalidOptionError naming it: unknown keys, PEMs without a certificate or key, a key that
 * does not match, a wrong passphrase, cipher lists and groups OpenSSL refuses. Nothing is leaked
 * by a context that failed half-way.
 */
import { expect } from 'chai';
import { InvalidOptionError, Pipeline, Server, TlsContext, type TlsServerOptions } from '../../../src/index.js';
import { liveObjects, opensslVersion } from '../../../src/syscalls/openssl.js';
import { thrownBy } from '../../support.js';
import { type TestCertificates, tlsCertificates } from '../../tls-support.js';

const silent = { debug() {}, info() {}, warn() {}, error() {} };

describe('TLS options', () => {
  let certs: TestCertificates;

  before(function () {
    certs = tlsCertificates(this);
  });

  function serverError(options: unknown): InvalidOptionError {
    const ctxBefore = liveObjects.ctx;
    const err = thrownBy(() => TlsContext.server(options as TlsServerOptions, silent));
    expect(liveObjects.ctx, 'SSL_CTX leaked by a failed build').to.equal(ctxBefore);
    expect(err).to.be.instanceOf(InvalidOptionError);
    return err as InvalidOptionError;
  }

  it('binds the OpenSSL 3 inside node', () => {
    expect(opensslVersion()).to.match(/^OpenSSL 3\./);
  });

  it('builds a server context from PEM strings or Buffers, chains included, and frees it', () => {
    const before = liveObjects.ctx;
    const ctx = TlsContext.server({ key: Buffer.from(certs.server.key), cert: certs.server.cert }, silent);
    expect(liveObjects.ctx).to.equal(before + 1);
    ctx.close();
    ctx.close(); // idempotent
    expect(liveObjects.ctx).to.equal(before);
  });

  it('names the option that is wrong', () => {
    const base = { key: certs.server.key, cert: certs.server.cert };
    const cases: Array<[unknown, string, RegExp]> = [
      [null, 'tls', /must be an object/],
      [{ ...base, colour: 'blue' }, 'tls.colour', /not a TLS option/],
      [{ cert: base.cert }, 'tls.key', /required/],
      [{ key: base.key }, 'tls.cert', /required/],
      [{ ...base, cert: 'not a pem' }, 'tls.cert', /no PEM certificate/],
      [{ ...base, cert: 42 }, 'tls.cert', /PEM text/],
      [{ ...base, key: certs.ca }, 'tls.key', /no PEM private key/],
      [{ ...base, key: certs.client.key }, 'tls.key', /does not match the certificate/],
      [{ cert: base.cert, key: certs.encryptedKey }, 'tls.key', /passphrase/],
      [{ cert: base.cert, key: certs.encryptedKey, passphrase: 'wrong' }, 'tls.key', /passphrase/],
      [{ ...base, minVersion: 'TLSv1.1' }, 'tls.minVersion', /TLSv1.2/],
      [{ ...base, minVersion: 'TLSv1.3', maxVersion: 'TLSv1.2' }, 'tls.maxVersion', /below minVersion/],
      [{ ...base, ciphers: 'NO-SUCH-CIPHER' }, 'tls.ciphers', /no cipher/],
      [{ ...base, ciphersuites: 'TLS_NOPE' }, 'tls.ciphersuites', /refused/],
      [{ ...base, groups: 'P-999' }, 'tls.groups', /refused/],
      [{ ...base, alpn: [] }, 'tls.alpn', /non-empty array/],
      [{ ...base, alpn: ['x'.repeat(256)] }, 'tls.alpn', /1 to 255/],
      [{ ...base, handshakeTimeout: -1 }, 'tls.handshakeTimeout', />= 0/],
      [{ ...base, requestCert: true }, 'tls.ca', /required with requestCert/],
      [{ ...base, requestCert: true, ca: 'nothing here' }, 'tls.ca', /no PEM certificate/],
      [{ ...base, ticketKeys: Buffer.alloc(48) }, 'tls.ticketKeys', /80 bytes/],
      [{ ...base, sni: { 'a b': base } }, 'tls.sni["a b"]', /host name/],
      [{ ...base, sni: { 'x.test': { cert: base.cert } } }, 'tls.sni["x.test"].key', /required/],
      [{ ...base, sni: { 'x.test': { ...base, key: certs.client.key } } }, 'tls.sni["x.test"].key', /does not match/],
      [{ ...base, sniCallback: 'yes' }, 'tls.sniCallback', /function/],
      [{ ...base, sessionTickets: 'on' }, 'tls.sessionTickets', /boolean/],
    ];
    for (const [options, option, message] of cases) {
      const err = serverError(options);
      expect(err.message, JSON.stringify(options)?.slice(0, 80)).to.contain(`option ${option}:`);
      expect(err.message).to.match(message);
    }
  });

  it('decrypts an encrypted key with its passphrase', () => {
    const ctx = TlsContext.server(
      { cert: certs.server.cert, key: certs.encryptedKey, passphrase: certs.passphrase },
      silent,
    );
    ctx.close();
  });

  it('checks client options too', () => {
    const cases: Array<[unknown, string]> = [
      [{ servername: '' }, 'tls.servername'],
      [{ rejectUnauthorized: 'no' }, 'tls.rejectUnauthorized'],
      [{ cert: certs.client.cert }, 'tls.key'],
      [{ passphrase: 'x' }, 'tls.passphrase'],
      [{ ca: 'garbage' }, 'tls.ca'],
      [{ cert: certs.client.cert, key: certs.server.key }, 'tls.key'],
      [{ sni: {} }, 'tls.sni'],
    ];
    for (const [options, option] of cases) {
      const err = thrownBy(() => TlsContext.client(options as never, silent));
      expect(err, option).to.be.instanceOf(InvalidOptionError);
      expect((err as Error).message).to.contain(`option ${option}:`);
    }
    TlsContext.client(true, silent).close();
  });

  it('fails Server.listen before anything is opened', async () => {
    const err = await Server.listen({
      host: '127.0.0.1',
      port: 0,
      workers: 0,
      pipeline: Pipeline,
      tls: { key: certs.client.key, cert: certs.server.cert },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as Error).message).to.contain('option tls.key: does not match the certificate');
  });
});
