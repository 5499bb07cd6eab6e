/**
 * What a handshake negotiated, as handlers see it: read once when the handshake completes (a
 * handful of FFI calls per connection, against the ~400 µs of the handshake), so that it stays
 * readable after the connection closed and its OpenSSL objects were freed.
 */
import type { Buffer } from 'node:buffer';
import { X509Certificate } from 'node:crypto';

/**
 * What a TLS handshake negotiated, as handlers see it (`TlsHandler.session`, {@link tlsSession}):
 * read once when the handshake completes, so it stays readable after the connection closed and its
 * OpenSSL objects were freed. The peer's certificate is parsed (`peerCertificate`) only on first use.
 */
export class TlsSession {
  private cert: X509Certificate | undefined;

  /** @internal */
  constructor(
    /** `'TLSv1.3'` or `'TLSv1.2'`. */
    readonly protocol: string,
    /** OpenSSL's name of the cipher suite: `'TLS_AES_256_GCM_SHA384'`, `'ECDHE-ECDSA-AES128-GCM-SHA256'`. */
    readonly cipher: string,
    /** The protocol ALPN selected (`'http/1.1'`), or undefined when none was. */
    readonly alpnProtocol: string | undefined,
    /** The servername the client sent (SNI); on a client, the one it sent. */
    readonly servername: string | undefined,
    /** The session was resumed (a ticket or a session id): no full handshake. */
    readonly resumed: boolean,
    /**
     * The peer's certificate verified (chain, and on a client the name). On a server that did not
     * ask for one (`requestCert` off), false.
     */
    readonly authorized: boolean,
    /** Why it did not verify (OpenSSL's X.509 error text), when the peer sent a certificate that failed. */
    readonly authorizationError: string | undefined,
    /** The peer's certificate, DER-encoded, when it sent one. */
    readonly peerCertificateDer: Buffer | undefined,
  ) {}

  /** The peer's certificate (subject, issuer, fingerprint, SANs …), when it sent one. */
  get peerCertificate(): X509Certificate | undefined {
    if (this.cert === undefined && this.peerCertificateDer !== undefined) {
      this.cert = new X509Certificate(this.peerCertificateDer);
    }
    return this.cert;
  }
}
