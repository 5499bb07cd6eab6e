/**
 * TLS errors. A failed handshake on a server is counted and logged, never thrown (the connection
 * closes with an alert); a client's `connect` rejects with a `TlsHandshakeError`.
 */
import { ReactorError } from '../common/errors.js';

/**
 * The TLS handshake failed. `reason` is OpenSSL's reason text (`'certificate verify failed'`,
 * `'wrong version number'`, `'tlsv1 alert unknown ca'` …) or one of ours (`'handshake timeout'`,
 * `'peer closed'`); `verifyError` is the X.509 verification result's text when a certificate was
 * refused (`'self-signed certificate'`, `'Hostname mismatch'`).
 */
export class TlsHandshakeError extends ReactorError {
  readonly reason: string;
  readonly verifyError: string | undefined;

  constructor(reason: string, detail: string, verifyError?: string) {
    super('ERR_TLS_HANDSHAKE', `TLS handshake failed: ${reason}${detail !== '' ? ` (${detail})` : ''}`);
    this.name = 'TlsHandshakeError';
    this.reason = reason;
    this.verifyError = verifyError;
  }
}
