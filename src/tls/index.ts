/**
 * TLS as a pipeline stage, on the OpenSSL inside the node binary (docs/tls.md).
 */
export { type ClientTarget, TICKET_KEYS_ENV, TlsContext, type TlsStats } from './context.js';
export { TlsHandshakeError } from './errors.js';
export { TlsHandler, tlsSession } from './handler.js';
export {
  DEFAULT_SERVER_CIPHERS,
  type Pem,
  type TlsCertificateOptions,
  type TlsClientOptions,
  type TlsCommonOptions,
  type TlsServerOptions,
  type TlsVersion,
} from './options.js';
export { TlsSession } from './session.js';
