/**
 * TLS options of servers (`Server.listen({ tls })`) and clients (`Client.connect({ tls })`, `Pool`),
 * their defaults, and their structural validation. The PEM contents are checked when the context
 * is built (context.ts), still at `listen`/`connect`, with errors naming the option.
 */
import { Buffer } from 'node:buffer';
import { InvalidOptionError } from '../common/errors.js';

/** PEM text: a string or its bytes. */
export type Pem = string | Uint8Array;

/** A certificate and its key (a server's, an SNI name's, or a client's for mutual TLS). */
export interface TlsCertificateOptions {
  /** The private key, PEM (PKCS#8, or traditional RSA/EC), possibly encrypted with `passphrase`. */
  readonly key: Pem;
  /** The certificate, PEM; further certificates after it form the chain sent to the peer (leaf first). */
  readonly cert: Pem;
  /** Decrypts an encrypted `key`. */
  readonly passphrase?: string;
}

/** `'TLSv1.2'` or `'TLSv1.3'`: older versions are not offered (RFC 8996 deprecates TLS 1.0 and 1.1). */
export type TlsVersion = 'TLSv1.2' | 'TLSv1.3';

/** What servers and clients share. */
export interface TlsCommonOptions {
  /** Lowest protocol version accepted. Default `'TLSv1.2'`. */
  readonly minVersion?: TlsVersion;
  /** Highest protocol version offered. Default `'TLSv1.3'`. */
  readonly maxVersion?: TlsVersion;
  /**
   * Cipher list for TLS 1.2 (OpenSSL syntax, ciphers(1)). Default on servers: `DEFAULT_SERVER_CIPHERS`
   * (forward-secret AEAD suites only); on clients: OpenSSL's.
   */
  readonly ciphers?: string;
  /** TLS 1.3 cipher suites, colon-separated (`TLS_AES_128_GCM_SHA256:…`). Default: OpenSSL's. */
  readonly ciphersuites?: string;
  /** Key-exchange groups in preference order (`'X25519:P-256'`). Default: OpenSSL's. */
  readonly groups?: string;
  /** ALPN protocols in preference order, e.g. `['http/1.1']`. Default: no ALPN. */
  readonly alpn?: readonly string[];
  /** ms from the connection's start until the handshake must be done; 0: no limit. Default 10 000. */
  readonly handshakeTimeout?: number;
  /** Trusted CA certificates (PEM, one text or several; a text may hold many). */
  readonly ca?: Pem | readonly Pem[];
  /**
   * Give a connection's 33 KiB of record buffers back to the allocator whenever it has nothing
   * buffered (SSL_MODE_RELEASE_BUFFERS, as nginx sets it), and replace a memory BIO that held more
   * than 4 KiB once it is empty: an idle connection costs ~20 KiB instead of ~35, at ~0.3 µs of
   * allocation per record. false trades that memory for the time. Default true.
   */
  readonly releaseBuffers?: boolean;
}

/**
 * `Server.listen({ tls })`: serve TLS under any protocol (docs/tls.md has every option in a
 * table). `key` and `cert` are required. Everything is checked at `listen`, in the master before
 * any worker starts: a PEM without a certificate or key, a key that does not match its
 * certificate, a wrong passphrase or a cipher list OpenSSL refuses rejects with
 * `InvalidOptionError` naming the option (`tls.key`).
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { http, Server } from 'multireactor';
 *
 * await Server.listen({
 *   port: 8443,
 *   tls: { key: readFileSync('key.pem'), cert: readFileSync('cert.pem'), alpn: ['http/1.1'] },
 *   pipeline: http((req, res) => res.end('hello over TLS\n')),
 * });
 * ```
 */
export interface TlsServerOptions extends TlsCommonOptions, TlsCertificateOptions {
  /**
   * Ask clients for a certificate (mutual TLS), verified against `ca`. Default false. The peer
   * certificate is then on `TlsHandler.session`.
   */
  readonly requestCert?: boolean;
  /**
   * With `requestCert`: refuse a client whose certificate is missing or does not verify. false
   * lets it in and reports `session.authorized === false`. Default true.
   */
  readonly rejectUnauthorized?: boolean;
  /**
   * More certificates, chosen by the servername the client sends (SNI, RFC 6066 §3): exact names
   * (`'api.example.com'`) or one-label wildcards (`'*.example.com'`). Every other option is the
   * server's. A client sending no name, or an unknown one, gets `key`/`cert`.
   */
  readonly sni?: Readonly<Record<string, TlsCertificateOptions>>;
  /**
   * Called (synchronously, during the handshake) for a servername that `sni` does not list: return
   * a certificate to use, `undefined` for the default one, or `false` to refuse the name (fatal
   * `unrecognized_name` alert). Contexts built from what it returns are cached by object identity.
   */
  readonly sniCallback?: (servername: string) => TlsCertificateOptions | undefined | false;
  /**
   * Session resumption with tickets (RFC 5077, RFC 8446 §4.6.1). Default true. Workers of one master
   * share ticket keys (made by the master, so resumption works across workers and reloads) unless
   * `ticketKeys` is given.
   */
  readonly sessionTickets?: boolean;
  /** 80 bytes of ticket keys (name, HMAC, AES), to share resumption across servers. Default: see `sessionTickets`. */
  readonly ticketKeys?: Uint8Array;
  /** Prefer the server's cipher order over the client's (SSL_OP_CIPHER_SERVER_PREFERENCE). Default false. */
  readonly honorCipherOrder?: boolean;
}

/**
 * `Client.connect({ tls })` and `new Pool({ tls })` (or `tls: true` for every default: Node's root
 * CAs, the server's certificate and name verified). A failed handshake rejects `connect` with
 * `TlsHandshakeError`.
 */
export interface TlsClientOptions extends TlsCommonOptions {
  /**
   * The name sent as SNI and checked against the server's certificate. Default: the `host` option
   * when it is a name; an IP address is not sent as SNI (RFC 6066 §3) and is checked against the
   * certificate's IP addresses.
   */
  readonly servername?: string;
  /** Refuse a server whose certificate does not verify (chain and name). Default true. */
  readonly rejectUnauthorized?: boolean;
  /** A client certificate (mutual TLS). */
  readonly cert?: Pem;
  /** The client certificate's private key (PEM), with `cert`. */
  readonly key?: Pem;
  /** Decrypts an encrypted `key`. */
  readonly passphrase?: string;
  /** Resume sessions of earlier connections to the same server (tickets). Default true. */
  readonly sessionCache?: boolean;
}

const VERSIONS: readonly TlsVersion[] = ['TLSv1.2', 'TLSv1.3'];

/**
 * The TLS 1.2 suites a server offers unless told otherwise: ECDHE key exchange (forward secrecy)
 * with AES-GCM or ChaCha20-Poly1305 — Mozilla's "intermediate" list without DHE. OpenSSL's own
 * default also offers CBC suites, which testssl.sh rates "potentially VULNERABLE" to LUCKY13
 * (CVE-2013-0169), and RSA key transport. TLS 1.3 suites are always AEAD and stay OpenSSL's.
 */
export const DEFAULT_SERVER_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

const COMMON_KEYS = [
  'minVersion',
  'maxVersion',
  'ciphers',
  'ciphersuites',
  'groups',
  'alpn',
  'handshakeTimeout',
  'ca',
  'releaseBuffers',
] as const;
const SERVER_KEYS: ReadonlySet<string> = new Set([
  ...COMMON_KEYS,
  'key',
  'cert',
  'passphrase',
  'requestCert',
  'rejectUnauthorized',
  'sni',
  'sniCallback',
  'sessionTickets',
  'ticketKeys',
  'honorCipherOrder',
]);
const CLIENT_KEYS: ReadonlySet<string> = new Set([
  ...COMMON_KEYS,
  'servername',
  'rejectUnauthorized',
  'cert',
  'key',
  'passphrase',
  'sessionCache',
]);
const CERT_KEYS: ReadonlySet<string> = new Set(['key', 'cert', 'passphrase']);

function object(name: string, v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InvalidOptionError(name, 'must be an object');
  return v as Record<string, unknown>;
}

function knownKeys(name: string, o: Record<string, unknown>, keys: ReadonlySet<string>): void {
  for (const k of Object.keys(o)) {
    if (!keys.has(k)) throw new InvalidOptionError(`${name}.${k}`, 'is not a TLS option');
  }
}

function pem(name: string, v: unknown): Uint8Array {
  if (typeof v === 'string') {
    if (v.length === 0) throw new InvalidOptionError(name, 'must not be empty');
    return Buffer.from(v, 'utf8');
  }
  if (v instanceof Uint8Array) {
    if (v.length === 0) throw new InvalidOptionError(name, 'must not be empty');
    return v;
  }
  throw new InvalidOptionError(name, 'must be PEM text (a string or a Buffer)');
}

function optionalString(name: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.includes('\0')) {
    throw new InvalidOptionError(name, `must be a non-empty string, got ${String(v)}`);
  }
  return v;
}

function bool(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new InvalidOptionError(name, `must be a boolean, got ${String(v)}`);
  return v;
}

function version(name: string, v: unknown, dflt: TlsVersion): TlsVersion {
  if (v === undefined) return dflt;
  if (!VERSIONS.includes(v as TlsVersion)) {
    throw new InvalidOptionError(name, `must be 'TLSv1.2' or 'TLSv1.3', got ${String(v)}`);
  }
  return v as TlsVersion;
}

/** The ALPN list in wire format: each name as one length byte and its bytes (RFC 7301 §3.1). */
function alpnWire(name: string, v: unknown): Buffer | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0) throw new InvalidOptionError(name, 'must be a non-empty array of strings');
  const parts: Buffer[] = [];
  for (const p of v) {
    const bytes = typeof p === 'string' ? Buffer.from(p, 'latin1') : undefined;
    if (
      bytes === undefined ||
      bytes.length === 0 ||
      bytes.length > 255 ||
      Buffer.from(p, 'utf8').length !== bytes.length
    ) {
      throw new InvalidOptionError(name, `protocols are ASCII strings of 1 to 255 bytes, got ${JSON.stringify(p)}`);
    }
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  const wire = Buffer.concat(parts);
  if (wire.length > 65535) throw new InvalidOptionError(name, 'is too long (65535 bytes in wire format at most)');
  // Its own memory, not a slice of Node's pool: OpenSSL points into it from the ALPN callback.
  const own = Buffer.alloc(wire.length);
  wire.copy(own);
  return own;
}

function caList(name: string, v: unknown): Uint8Array[] | undefined {
  if (v === undefined) return undefined;
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) throw new InvalidOptionError(name, 'must not be an empty array');
  return list.map((p, i) => pem(Array.isArray(v) ? `${name}[${i}]` : name, p));
}

function timeout(name: string, v: unknown): number {
  if (v === undefined) return 10_000;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new InvalidOptionError(name, `must be an integer number of ms >= 0, got ${String(v)}`);
  }
  return v;
}

/** A certificate and key, as bytes, with the option names to blame. */
export interface ResolvedCertificate {
  readonly key: Uint8Array;
  readonly cert: Uint8Array;
  readonly passphrase: string | undefined;
  /** Option path of this certificate (`tls`, `tls.sni["a.example"]`), for error messages. */
  readonly where: string;
}

export interface ResolvedCommon {
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
  readonly ciphers: string | undefined;
  readonly ciphersuites: string | undefined;
  readonly groups: string | undefined;
  readonly alpn: Buffer | undefined;
  readonly handshakeTimeout: number;
  readonly ca: Uint8Array[] | undefined;
  readonly releaseBuffers: boolean;
}

export interface ResolvedTlsServerOptions extends ResolvedCommon {
  readonly certificate: ResolvedCertificate;
  readonly requestCert: boolean;
  readonly rejectUnauthorized: boolean;
  /** Lower-case names; wildcards keep their `*.` prefix. */
  readonly sni: ReadonlyMap<string, ResolvedCertificate>;
  readonly sniCallback: ((servername: string) => TlsCertificateOptions | undefined | false) | undefined;
  readonly sessionTickets: boolean;
  readonly ticketKeys: Uint8Array | undefined;
  readonly honorCipherOrder: boolean;
}

export interface ResolvedTlsClientOptions extends ResolvedCommon {
  readonly servername: string | undefined;
  readonly rejectUnauthorized: boolean;
  readonly certificate: ResolvedCertificate | undefined;
  readonly sessionCache: boolean;
}

function common(name: string, o: Record<string, unknown>): ResolvedCommon {
  const minVersion = version(`${name}.minVersion`, o.minVersion, 'TLSv1.2');
  const maxVersion = version(`${name}.maxVersion`, o.maxVersion, 'TLSv1.3');
  if (minVersion === 'TLSv1.3' && maxVersion === 'TLSv1.2') {
    throw new InvalidOptionError(`${name}.maxVersion`, `must not be below minVersion (${minVersion})`);
  }
  return {
    minVersion,
    maxVersion,
    ciphers: optionalString(`${name}.ciphers`, o.ciphers),
    ciphersuites: optionalString(`${name}.ciphersuites`, o.ciphersuites),
    groups: optionalString(`${name}.groups`, o.groups),
    alpn: alpnWire(`${name}.alpn`, o.alpn),
    handshakeTimeout: timeout(`${name}.handshakeTimeout`, o.handshakeTimeout),
    ca: caList(`${name}.ca`, o.ca),
    releaseBuffers: bool(`${name}.releaseBuffers`, o.releaseBuffers, true),
  };
}

/** Checks a certificate option object (key, cert, passphrase). */
export function resolveCertificate(where: string, v: unknown): ResolvedCertificate {
  const o = object(where, v);
  knownKeys(where, o, CERT_KEYS);
  if (o.key === undefined) throw new InvalidOptionError(`${where}.key`, 'is required');
  if (o.cert === undefined) throw new InvalidOptionError(`${where}.cert`, 'is required');
  return {
    key: pem(`${where}.key`, o.key),
    cert: pem(`${where}.cert`, o.cert),
    passphrase:
      o.passphrase === undefined ? undefined : (optionalString(`${where}.passphrase`, o.passphrase) as string),
    where,
  };
}

/** Structural checks of `tls` for a server (the PEM contents are checked by `TlsContext.server`). */
export function resolveTlsServerOptions(v: unknown, name = 'tls'): ResolvedTlsServerOptions {
  const o = object(name, v);
  knownKeys(name, o, SERVER_KEYS);
  const { key, cert, passphrase } = o;
  const certificate = resolveCertificate(name, {
    key,
    cert,
    ...(passphrase !== undefined ? { passphrase } : {}),
  });
  const sni = new Map<string, ResolvedCertificate>();
  if (o.sni !== undefined) {
    const entries = object(`${name}.sni`, o.sni);
    for (const [host, entry] of Object.entries(entries)) {
      const where = `${name}.sni[${JSON.stringify(host)}]`;
      const lower = host.toLowerCase();
      if (!/^(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/.test(lower)) {
        throw new InvalidOptionError(where, 'must be a host name or a wildcard of one label (*.example.com)');
      }
      sni.set(lower.replace(/\.$/, ''), resolveCertificate(where, entry));
    }
  }
  if (o.sniCallback !== undefined && typeof o.sniCallback !== 'function') {
    throw new InvalidOptionError(`${name}.sniCallback`, 'must be a function');
  }
  const requestCert = bool(`${name}.requestCert`, o.requestCert, false);
  const parsed = common(name, o);
  const resolved = { ...parsed, ciphers: parsed.ciphers ?? DEFAULT_SERVER_CIPHERS };
  if (requestCert && resolved.ca === undefined) {
    throw new InvalidOptionError(
      `${name}.ca`,
      'is required with requestCert: the CAs that client certificates must chain to',
    );
  }
  let ticketKeys: Uint8Array | undefined;
  if (o.ticketKeys !== undefined) {
    if (!(o.ticketKeys instanceof Uint8Array) || o.ticketKeys.length !== 80) {
      throw new InvalidOptionError(`${name}.ticketKeys`, 'must be a Buffer of 80 bytes');
    }
    ticketKeys = o.ticketKeys;
  }
  return {
    ...resolved,
    certificate,
    requestCert,
    rejectUnauthorized: bool(`${name}.rejectUnauthorized`, o.rejectUnauthorized, true),
    sni,
    sniCallback: o.sniCallback as ResolvedTlsServerOptions['sniCallback'],
    sessionTickets: bool(`${name}.sessionTickets`, o.sessionTickets, true),
    ticketKeys,
    honorCipherOrder: bool(`${name}.honorCipherOrder`, o.honorCipherOrder, false),
  };
}

/** Structural checks of `tls` for a client (`true` means all defaults). */
export function resolveTlsClientOptions(v: unknown, name = 'tls'): ResolvedTlsClientOptions {
  const o = v === true ? {} : object(name, v);
  knownKeys(name, o, CLIENT_KEYS);
  let certificate: ResolvedCertificate | undefined;
  if (o.cert !== undefined || o.key !== undefined) {
    const { key, cert, passphrase } = o;
    certificate = resolveCertificate(name, {
      key,
      cert,
      ...(passphrase !== undefined ? { passphrase } : {}),
    });
  } else if (o.passphrase !== undefined) {
    throw new InvalidOptionError(`${name}.passphrase`, 'is only used with key and cert');
  }
  return {
    ...common(name, o),
    servername: optionalString(`${name}.servername`, o.servername),
    rejectUnauthorized: bool(`${name}.rejectUnauthorized`, o.rejectUnauthorized, true),
    certificate,
    sessionCache: bool(`${name}.sessionCache`, o.sessionCache, true),
  };
}
