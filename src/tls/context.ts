/**
 * `TlsContext`: one OpenSSL SSL_CTX (plus one per SNI certificate) built from validated options —
 * once per server and process (every worker builds its own at `listen`, from the options its run of
 * the user's script produced, so certificate files read at startup are read anew on reload), or
 * once per client connection or pool. It makes the SSL object of each connection, counts
 * handshakes and failures per reason, and frees every SSL_CTX on `close()` (an SSL still open
 * holds its own reference, so closing a context under live connections is safe: OpenSSL frees it
 * with the last one).
 */
import { Buffer } from 'node:buffer';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { InvalidOptionError } from '../common/errors.js';
import { consoleLogger, type Logger } from '../common/logger.js';
import {
  ctxAddClientCA,
  ctxAddExtraChainCert,
  ctxCertStore,
  ctxCheckPrivateKey,
  ctxForgetNewSession,
  ctxOnNewSession,
  ctxReleaseBuffers,
  ctxSetAlpnProtocols,
  ctxSetCertStore,
  ctxSetCipherList,
  ctxSetCiphersuites,
  ctxSetGroupsList,
  ctxSetMaxProtoVersion,
  ctxSetMinProtoVersion,
  ctxSetNumTickets,
  ctxSetOptions,
  ctxSetServernameCallback,
  ctxSetSessionCacheMode,
  ctxSetSessionIdContext,
  ctxSetTicketKeys,
  ctxSetVerify,
  ctxUseCertificate,
  ctxUsePrivateKey,
  drainErrors,
  freeCertStore,
  freeCtx,
  freeKey,
  freeSession,
  freeSsl,
  freeX509,
  newCertStore,
  newClientCtx,
  newServerCtx,
  newSsl,
  type Ptr,
  randomBytes,
  readCertificates,
  readPrivateKey,
  SSL_OP_CIPHER_SERVER_PREFERENCE,
  SSL_OP_NO_RENEGOTIATION,
  SSL_OP_NO_TICKET,
  SSL_SESS_CACHE_CLIENT,
  SSL_SESS_CACHE_NO_INTERNAL_STORE,
  SSL_TLSEXT_ERR_ALERT_FATAL,
  SSL_TLSEXT_ERR_OK,
  SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
  SSL_VERIFY_NONE,
  SSL_VERIFY_PEER,
  type SslConnection,
  sessionIsResumable,
  sslSetAlpnProtos,
  sslSetServername,
  sslSetSession,
  sslSetSslCtx,
  sslSetVerifyHost,
  sslSetVerifyIp,
  storeAddCert,
  TLS1_2_VERSION,
  TLS1_3_VERSION,
} from '../syscalls/openssl.js';
import {
  type ResolvedCertificate,
  type ResolvedCommon,
  type ResolvedTlsClientOptions,
  type ResolvedTlsServerOptions,
  resolveCertificate,
  resolveTlsClientOptions,
  resolveTlsServerOptions,
  type TlsCertificateOptions,
  type TlsClientOptions,
  type TlsServerOptions,
  type TlsVersion,
} from './options.js';
import { type TlsScratch, tlsScratch } from './scratch.js';

/** Counters of one context (one server in one process, or one client/pool). */
export interface TlsStats {
  /** Handshakes completed. */
  handshakes: number;
  /** Of those, resumed sessions (tickets or session ids). */
  resumed: number;
  /** Handshakes that failed, per reason (OpenSSL's reason text, or `handshake timeout`, `peer closed` …). */
  failures: Record<string, number>;
  /** Connections with an SSL object alive now. */
  open: number;
}

/**
 * The environment variable through which a master hands its workers one set of session-ticket keys
 * (base64 of 80 bytes), so that a ticket issued by one worker resumes on any other and after a
 * reload. Set by `Server.listen` in the master when TLS is on and `ticketKeys` is not given.
 */
export const TICKET_KEYS_ENV = 'MULTIREACTOR_TLS_TICKET_KEYS';

/** Session id context: required for resumption with client certificates (SSL_CTX_set_session_id_context(3)). */
const SESSION_ID_CONTEXT = Buffer.from('multireactor');

const VERSION_CODES: Record<TlsVersion, number> = { 'TLSv1.2': TLS1_2_VERSION, 'TLSv1.3': TLS1_3_VERSION };

/** Contexts built from what an `sniCallback` returned, by object identity; oldest dropped beyond this. */
const SNI_CALLBACK_CACHE = 256;
/** Client sessions kept for resumption, per context (one per server name and port). */
const CLIENT_SESSIONS = 64;

function firstError(): string {
  const errs = drainErrors();
  return errs[0]?.reasonText ?? 'unknown error';
}

/** The roots Node trusts (tls.rootCertificates), in one X509_STORE per process, shared by client contexts. */
let rootStore: Ptr | undefined;
function defaultRoots(): Ptr {
  if (rootStore !== undefined) return rootStore;
  const store = newCertStore();
  if (store === null) throw new Error('X509_STORE_new failed (out of memory)');
  for (const pem of rootCertificates) {
    for (const x of readCertificates(Buffer.from(pem, 'latin1'))) {
      storeAddCert(store, x);
      freeX509(x);
    }
  }
  drainErrors(); // duplicates are "cert already in hash table": harmless
  rootStore = store;
  return store;
}

/** A client connection's identity for the session cache and for verification. */
export interface ClientTarget {
  /** SNI and the name checked against the certificate (a DNS name), or undefined. */
  readonly servername: string | undefined;
  /** What the certificate is checked against: the servername, else the host (an IP address). */
  readonly verifyHost: string;
  /** Session cache key (host and port). */
  readonly sessionKey: string;
}

/**
 * One OpenSSL `SSL_CTX` built from checked options (plus one per SNI certificate): what a server's
 * or client's `TlsHandler`s make their connections' SSL objects from, and where handshakes are
 * counted (`stats`: handshakes, resumed, failures per reason, open). A server builds its own at
 * `listen`, in every worker (a reload's workers read the certificate files anew). Build one with
 * {@link TlsContext.client} to share a client session cache across connections (`ClientOptions.tls`
 * takes a context); `close()` it when done — an SSL still open keeps its own reference, so closing
 * under live connections is safe.
 *
 * @example
 * ```ts
 * import { Client, type HttpClientResponse, httpClient, TlsContext } from 'multireactor';
 *
 * const tls = TlsContext.client({ alpn: ['http/1.1'] }); // Node's root CAs; name checked
 * for (let i = 0; i < 2; i++) {
 *   const conn = await Client.connect({ host: 'example.com', port: 443, tls, pipeline: httpClient() });
 *   const res = await conn.request<HttpClientResponse>({ path: '/' });
 *   console.log(res.statusCode, tls.stats.resumed); // the second connection resumes the first's session
 *   await conn.close();
 * }
 * tls.close();
 * ```
 */
export class TlsContext {
  readonly isServer: boolean;
  /** ms the handshake may take; 0: no limit. */
  readonly handshakeTimeout: number;
  readonly stats: TlsStats = { handshakes: 0, resumed: 0, failures: {}, open: 0 };
  /** @internal */ readonly logger: Logger;
  /** @internal */ readonly scratch: TlsScratch;
  /** @internal Whether peers' certificates are verified (so sessions report on them). */
  readonly verifiesPeer: boolean;
  /** @internal Whether ALPN is configured (so sessions ask which protocol was selected). */
  readonly alpn: boolean;
  /** @internal `releaseBuffers`: an idle connection gives back its record buffers and grown BIO buffers. */
  readonly releaseBuffers: boolean;
  private main: Ptr | null;
  private readonly extra: Ptr[] = [];
  private readonly sniExact = new Map<string, Ptr>();
  private readonly sniWildcard = new Map<string, Ptr>();
  private readonly sniCallbackCache = new Map<object, Ptr>();
  private readonly server: ResolvedTlsServerOptions | undefined;
  private readonly client: ResolvedTlsClientOptions | undefined;
  /** Client: sessions to resume, by target; and which target each live SSL belongs to. */
  private readonly sessions = new Map<string, Ptr>();
  private readonly sessionKeys = new Map<Ptr, string>();

  private constructor(
    server: ResolvedTlsServerOptions | undefined,
    client: ResolvedTlsClientOptions | undefined,
    logger: Logger,
  ) {
    this.server = server;
    this.client = client;
    this.isServer = server !== undefined;
    const common = (server ?? client) as ResolvedCommon;
    this.handshakeTimeout = common.handshakeTimeout;
    this.logger = logger;
    this.scratch = tlsScratch();
    this.alpn = common.alpn !== undefined;
    this.releaseBuffers = common.releaseBuffers;
    this.verifiesPeer = server !== undefined ? server.requestCert : true;
    this.main = null;
    try {
      if (server !== undefined) {
        this.main = this.buildServerCtx(server, server.certificate);
        for (const [name, cert] of server.sni) {
          const ctx = this.buildServerCtx(server, cert);
          this.extra.push(ctx);
          if (name.startsWith('*.')) this.sniWildcard.set(name.slice(2), ctx);
          else this.sniExact.set(name, ctx);
        }
        if (server.sni.size > 0 || server.sniCallback !== undefined) {
          ctxSetServernameCallback(this.main, (ssl, name) => this.selectByName(ssl, name));
        }
      } else {
        this.main = this.buildClientCtx(client as ResolvedTlsClientOptions);
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /**
   * A server context. Throws `InvalidOptionError` naming the option for anything OpenSSL refuses:
   * a PEM without a certificate or key, a key that does not match its certificate, a wrong
   * passphrase, a cipher list or group OpenSSL does not know.
   */
  static server(options: TlsServerOptions, logger: Logger = consoleLogger()): TlsContext {
    return new TlsContext(resolveTlsServerOptions(options), undefined, logger);
  }

  /** A client context (`true`: every default — the system's roots, verification on). */
  static client(options: TlsClientOptions | true, logger: Logger = consoleLogger()): TlsContext {
    return new TlsContext(undefined, resolveTlsClientOptions(options), logger);
  }

  /** Whether the context is still usable (not closed). */
  get isOpen(): boolean {
    return this.main !== null;
  }

  /** A copy of the counters. */
  snapshot(): TlsStats {
    return { ...this.stats, failures: { ...this.stats.failures } };
  }

  /** Frees every SSL_CTX (and cached client session) of this context. Idempotent. */
  close(): void {
    if (this.main !== null) {
      ctxForgetNewSession(this.main);
      freeCtx(this.main);
      this.main = null;
    }
    for (const ctx of this.extra.splice(0)) freeCtx(ctx);
    for (const ctx of this.sniCallbackCache.values()) freeCtx(ctx);
    this.sniCallbackCache.clear();
    this.sniExact.clear();
    this.sniWildcard.clear();
    for (const s of this.sessions.values()) freeSession(s);
    this.sessions.clear();
  }

  /** @internal The SSL of a new server connection, or null (closed context, out of memory). */
  newServerSsl(): SslConnection | null {
    if (this.main === null) return null;
    const conn = newSsl(this.main, true);
    if (conn !== null) this.stats.open++;
    return conn;
  }

  /** @internal The SSL of a new client connection to `target`, or null. */
  newClientSsl(target: ClientTarget): SslConnection | null {
    const o = this.client;
    if (this.main === null || o === undefined) return null;
    const conn = newSsl(this.main, false);
    if (conn === null) return null;
    this.stats.open++;
    const ssl = conn.ssl;
    // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName".
    if (target.servername !== undefined) sslSetServername(ssl, target.servername);
    // Checked even without rejectUnauthorized, so that the session reports the result.
    if (isIP(target.verifyHost) !== 0) sslSetVerifyIp(ssl, target.verifyHost);
    else sslSetVerifyHost(ssl, target.verifyHost);
    if (o.alpn !== undefined) sslSetAlpnProtos(ssl, o.alpn);
    if (o.sessionCache) {
      this.sessionKeys.set(ssl, target.sessionKey);
      const session = this.sessions.get(target.sessionKey);
      if (session !== undefined) sslSetSession(ssl, session);
    }
    drainErrors(); // a failed setter leaves its reason queued; the handshake reports what matters
    return conn;
  }

  /** @internal Frees a connection's SSL (and its BIOs). */
  freeSsl(ssl: Ptr): void {
    freeSsl(ssl);
    this.stats.open--;
    this.sessionKeys.delete(ssl);
  }

  /** @internal Counts a failed handshake and logs it at debug level. */
  countFailure(reason: string, detail: string, peer: string): void {
    const f = this.stats.failures;
    f[reason] = (f[reason] ?? 0) + 1;
    this.logger.debug(
      `TLS handshake failed${peer !== '' ? ` with ${peer}` : ''}: ${reason}${detail ? ` (${detail})` : ''}`,
    );
  }

  // ---- building ----

  private base(ctx: Ptr, o: ResolvedCommon, where: string): void {
    let options = SSL_OP_NO_RENEGOTIATION;
    const s = this.server;
    if (s !== undefined && !s.sessionTickets) options |= SSL_OP_NO_TICKET;
    if (s?.honorCipherOrder === true) options |= SSL_OP_CIPHER_SERVER_PREFERENCE;
    ctxSetOptions(ctx, options);
    if (o.releaseBuffers) ctxReleaseBuffers(ctx);
    if (ctxSetMinProtoVersion(ctx, VERSION_CODES[o.minVersion]) !== 1) {
      throw new InvalidOptionError(`${where}.minVersion`, `OpenSSL refused it: ${firstError()}`);
    }
    if (ctxSetMaxProtoVersion(ctx, VERSION_CODES[o.maxVersion]) !== 1) {
      throw new InvalidOptionError(`${where}.maxVersion`, `OpenSSL refused it: ${firstError()}`);
    }
    if (o.ciphers !== undefined && ctxSetCipherList(ctx, o.ciphers) !== 1) {
      throw new InvalidOptionError(`${where}.ciphers`, `OpenSSL selects no cipher from it: ${firstError()}`);
    }
    if (o.ciphersuites !== undefined && ctxSetCiphersuites(ctx, o.ciphersuites) !== 1) {
      throw new InvalidOptionError(`${where}.ciphersuites`, `OpenSSL refused it: ${firstError()}`);
    }
    if (o.groups !== undefined && ctxSetGroupsList(ctx, o.groups) !== 1) {
      throw new InvalidOptionError(`${where}.groups`, `OpenSSL refused it: ${firstError()}`);
    }
  }

  private useCertificate(ctx: Ptr, c: ResolvedCertificate): void {
    const certs = readCertificates(c.cert);
    if (certs.length === 0) throw new InvalidOptionError(`${c.where}.cert`, 'holds no PEM certificate');
    const leaf = certs[0] as Ptr;
    try {
      if (ctxUseCertificate(ctx, leaf) !== 1) {
        throw new InvalidOptionError(`${c.where}.cert`, `OpenSSL refused the certificate: ${firstError()}`);
      }
      // The chain: the context takes each certificate it accepts.
      for (let i = 1; i < certs.length; i++) {
        if (ctxAddExtraChainCert(ctx, certs[i] as Ptr) !== 1) {
          throw new InvalidOptionError(`${c.where}.cert`, `OpenSSL refused chain certificate ${i}: ${firstError()}`);
        }
        certs[i] = 0n;
      }
    } finally {
      freeX509(leaf);
      for (let i = 1; i < certs.length; i++) if (certs[i] !== 0n) freeX509(certs[i] as Ptr);
    }
    const key = readPrivateKey(c.key, c.passphrase);
    if (key === null) {
      const reason = firstError();
      throw new InvalidOptionError(
        `${c.where}.key`,
        /bad decrypt|bad password|interrupted or cancelled/.test(reason)
          ? `cannot decrypt the key: wrong or missing passphrase (${reason})`
          : `holds no PEM private key (${reason})`,
      );
    }
    try {
      if (ctxUsePrivateKey(ctx, key) !== 1 || ctxCheckPrivateKey(ctx) !== 1) {
        throw new InvalidOptionError(`${c.where}.key`, `does not match the certificate (${firstError()})`);
      }
    } finally {
      freeKey(key);
    }
  }

  private trust(ctx: Ptr, ca: readonly Uint8Array[], where: string, announce: boolean): void {
    const store = ctxCertStore(ctx);
    for (let i = 0; i < ca.length; i++) {
      const certs = readCertificates(ca[i] as Uint8Array);
      if (certs.length === 0) {
        throw new InvalidOptionError(ca.length > 1 ? `${where}.ca[${i}]` : `${where}.ca`, 'holds no PEM certificate');
      }
      for (const x of certs) {
        storeAddCert(store, x);
        // Named in the CertificateRequest, so that clients holding several certificates pick one.
        if (announce) ctxAddClientCA(ctx, x);
        freeX509(x);
      }
    }
    drainErrors(); // a CA listed twice is "cert already in hash table": harmless
  }

  private buildServerCtx(o: ResolvedTlsServerOptions, cert: ResolvedCertificate): Ptr {
    const ctx = newServerCtx();
    if (ctx === null) throw new Error(`SSL_CTX_new failed: ${firstError()}`);
    try {
      this.base(ctx, o, 'tls');
      this.useCertificate(ctx, cert);
      if (o.ca !== undefined) this.trust(ctx, o.ca, 'tls', o.requestCert);
      if (o.requestCert) {
        const mode = SSL_VERIFY_PEER | (o.rejectUnauthorized ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
        ctxSetVerify(ctx, mode, o.rejectUnauthorized);
      }
      ctxSetSessionIdContext(ctx, SESSION_ID_CONTEXT);
      if (o.sessionTickets) {
        const keys = o.ticketKeys ?? ticketKeysFromEnv();
        if (keys !== undefined && ctxSetTicketKeys(ctx, keys) !== 1) {
          throw new InvalidOptionError('tls.ticketKeys', `OpenSSL refused them: ${firstError()}`);
        }
      } else {
        // No tickets at all: TLS 1.3 would still send NewSessionTicket messages for stateful resumption.
        ctxSetNumTickets(ctx, 0);
      }
      if (o.alpn !== undefined) ctxSetAlpnProtocols(ctx, o.alpn);
      return ctx;
    } catch (err) {
      freeCtx(ctx);
      throw err;
    }
  }

  private buildClientCtx(o: ResolvedTlsClientOptions): Ptr {
    const ctx = newClientCtx();
    if (ctx === null) throw new Error(`SSL_CTX_new failed: ${firstError()}`);
    try {
      this.base(ctx, o, 'tls');
      if (o.ca !== undefined) this.trust(ctx, o.ca, 'tls', false);
      else ctxSetCertStore(ctx, defaultRoots());
      ctxSetVerify(ctx, o.rejectUnauthorized ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, true);
      if (o.certificate !== undefined) this.useCertificate(ctx, o.certificate);
      if (o.sessionCache) {
        // Sessions are kept by us, per target, not in OpenSSL's internal client cache (which it never consults).
        ctxSetSessionCacheMode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        ctxOnNewSession(ctx, (ssl, session) => this.keepSession(ssl, session));
      }
      return ctx;
    } catch (err) {
      freeCtx(ctx);
      throw err;
    }
  }

  /** Client: a new session arrived for `ssl` (after the handshake, or a TLS 1.3 ticket later). */
  private keepSession(ssl: Ptr, session: Ptr): boolean {
    const key = this.sessionKeys.get(ssl);
    if (key === undefined || !sessionIsResumable(session)) return false;
    const old = this.sessions.get(key);
    if (old !== undefined) {
      freeSession(old);
      this.sessions.delete(key);
    } else if (this.sessions.size >= CLIENT_SESSIONS) {
      const oldest = this.sessions.keys().next().value as string;
      freeSession(this.sessions.get(oldest) as Ptr);
      this.sessions.delete(oldest);
    }
    this.sessions.set(key, session);
    return true;
  }

  /** Server, SNI: switch `ssl` to the context of `name` (called by OpenSSL during the ClientHello). */
  private selectByName(ssl: Ptr, name: string | null): number {
    const o = this.server as ResolvedTlsServerOptions;
    if (name === null || name === '') return SSL_TLSEXT_ERR_OK;
    const lower = name.toLowerCase();
    let target = this.sniExact.get(lower);
    if (target === undefined) {
      const dot = lower.indexOf('.');
      if (dot > 0) target = this.sniWildcard.get(lower.slice(dot + 1));
    }
    if (target === undefined && o.sniCallback !== undefined) {
      let chosen: TlsCertificateOptions | undefined | false;
      try {
        chosen = o.sniCallback(name);
      } catch (err) {
        this.logger.debug(`tls.sniCallback threw for ${JSON.stringify(name)}: ${(err as Error)?.message}`);
        return SSL_TLSEXT_ERR_ALERT_FATAL;
      }
      if (chosen === false) return SSL_TLSEXT_ERR_ALERT_FATAL;
      if (chosen !== undefined) {
        try {
          target = this.contextFor(chosen);
        } catch (err) {
          this.logger.warn(`tls.sniCallback returned an unusable certificate for ${JSON.stringify(name)}`, err);
          return SSL_TLSEXT_ERR_ALERT_FATAL;
        }
      }
    }
    if (target !== undefined) sslSetSslCtx(ssl, target);
    return SSL_TLSEXT_ERR_OK;
  }

  /** A context for a certificate an `sniCallback` returned, built once per object. */
  private contextFor(chosen: TlsCertificateOptions): Ptr {
    const cached = this.sniCallbackCache.get(chosen);
    if (cached !== undefined) return cached;
    const ctx = this.buildServerCtx(
      this.server as ResolvedTlsServerOptions,
      resolveCertificate('tls.sniCallback()', chosen),
    );
    if (this.sniCallbackCache.size >= SNI_CALLBACK_CACHE) {
      // SSL_set_SSL_CTX took a reference for every connection using the oldest: freeing ours is safe.
      const [oldest, ptr] = this.sniCallbackCache.entries().next().value as [object, Ptr];
      this.sniCallbackCache.delete(oldest);
      freeCtx(ptr);
    }
    this.sniCallbackCache.set(chosen, ctx);
    return ctx;
  }
}

/**
 * In a master: makes one set of ticket keys for every worker it will fork (and for the workers of
 * later reloads, and a master upgraded in place: they inherit its environment), unless the options
 * bring their own or turn tickets off. The keys live as long as the master; `ticketKeys` rotates them.
 */
export function shareTicketKeys(options: TlsServerOptions): void {
  if (options.sessionTickets === false || options.ticketKeys !== undefined) return;
  if (ticketKeysFromEnv() !== undefined) return;
  process.env[TICKET_KEYS_ENV] = randomBytes(80).toString('base64');
}

function ticketKeysFromEnv(): Buffer | undefined {
  const raw = process.env[TICKET_KEYS_ENV];
  if (raw === undefined || raw === '') return undefined;
  const keys = Buffer.from(raw, 'base64');
  return keys.length === 80 ? keys : undefined;
}

/**
 * Checks server TLS options completely, as `listen` must (a bad PEM, a key that does not match its
 * certificate), by building a context and freeing it at once — in a master, which never serves.
 */
export function validateTlsServerOptions(options: unknown): void {
  TlsContext.server(options as TlsServerOptions).close();
}

/** Frees a process-wide root store (tests that count OpenSSL objects); it is rebuilt on next use. */
export function releaseDefaultRoots(): void {
  if (rootStore === undefined) return;
  freeCertStore(rootStore);
  rootStore = undefined;
}
