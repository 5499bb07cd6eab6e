/**
 * The OpenSSL 3 inside the running node binary, wrapped for src/tls/.
 *
 * Node links OpenSSL statically and exports its symbols for addons (`nm -D $(which node) | grep -c
 * ' T SSL_'` → 475 with Node 20), so `koffi.load(null)` — dlopen(NULL), the symbols already in the
 * process — binds them (openssl-lib.ts): nothing to install, nothing to compile, and the same
 * library node:tls uses. These wrappers are all the rest of the framework sees of OpenSSL's C API:
 * contexts, certificates, connections over memory BIOs, errors; the callbacks OpenSSL makes into
 * JS are in openssl-callbacks.ts (re-exported here).
 *
 * The error queue (ERR_get_error(3)) is per thread, and SSL_get_error(3) requires it to be empty
 * before each I/O call. Clearing it before every call would cost an FFI call per record; instead
 * every failure we see is drained at once (`drainErrors`), so the queue stays empty between calls.
 * Node's own crypto code clears what it leaves behind (ClearErrorOnReturn in src/crypto).
 */
import { Buffer } from 'node:buffer';
import koffi from 'koffi';
import { forgetCtx } from './openssl-callbacks.js';
import {
  BIO_C_GET_BUF_MEM_PTR,
  BUF_MEM_MAX_OFFSET,
  c,
  ERR_REASON_MASK,
  ERR_SYSTEM_FLAG,
  type Ptr,
  SSL_CTRL_EXTRA_CHAIN_CERT,
  SSL_CTRL_MODE,
  SSL_CTRL_SET_GROUPS_LIST,
  SSL_CTRL_SET_MAX_PROTO_VERSION,
  SSL_CTRL_SET_MIN_PROTO_VERSION,
  SSL_CTRL_SET_SESS_CACHE_MODE,
  SSL_CTRL_SET_TLSEXT_HOSTNAME,
  SSL_CTRL_SET_TLSEXT_TICKET_KEYS,
  SSL_MODE_RELEASE_BUFFERS,
  TLSEXT_NAMETYPE_host_name,
} from './openssl-lib.js';

export {
  ctxForgetNewSession,
  ctxOnNewSession,
  ctxSetAlpnProtocols,
  ctxSetServernameCallback,
  ctxSetVerify,
  freeSession,
  sessionIsResumable,
} from './openssl-callbacks.js';
export {
  type Ptr,
  SSL_ERROR_NONE,
  SSL_ERROR_SSL,
  SSL_ERROR_SYSCALL,
  SSL_ERROR_WANT_READ,
  SSL_ERROR_WANT_WRITE,
  SSL_ERROR_WANT_X509_LOOKUP,
  SSL_ERROR_ZERO_RETURN,
  SSL_OP_CIPHER_SERVER_PREFERENCE,
  SSL_OP_NO_RENEGOTIATION,
  SSL_OP_NO_TICKET,
  SSL_R_HTTP_REQUEST,
  SSL_R_HTTPS_PROXY_REQUEST,
  SSL_SESS_CACHE_CLIENT,
  SSL_SESS_CACHE_NO_INTERNAL_STORE,
  SSL_SESS_CACHE_OFF,
  SSL_SESS_CACHE_SERVER,
  SSL_TLSEXT_ERR_ALERT_FATAL,
  SSL_TLSEXT_ERR_NOACK,
  SSL_TLSEXT_ERR_OK,
  SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
  SSL_VERIFY_NONE,
  SSL_VERIFY_PEER,
  TLS1_1_VERSION,
  TLS1_2_VERSION,
  TLS1_3_VERSION,
  TLS1_VERSION,
  X509_V_OK,
} from './openssl-lib.js';

// ---- counters: every SSL and SSL_CTX made here is counted until it is freed ----

/**
 * Live OpenSSL objects made through these wrappers, for the leak tests (what is created must be
 * freed: SSL on close, SSL_CTX when its server closes). Plain numbers, bumped on creation and free.
 */
export const liveObjects = { ssl: 0, ctx: 0, created: { ssl: 0, ctx: 0 } };

export function opensslVersion(): string {
  return c.OpenSSL_version(0) as string;
}

// ---- contexts ----

export function newServerCtx(): Ptr | null {
  const ctx = c.SSL_CTX_new(c.TLS_server_method()) as Ptr | null;
  if (ctx !== null) {
    liveObjects.ctx++;
    liveObjects.created.ctx++;
  }
  return ctx;
}

export function newClientCtx(): Ptr | null {
  const ctx = c.SSL_CTX_new(c.TLS_client_method()) as Ptr | null;
  if (ctx !== null) {
    liveObjects.ctx++;
    liveObjects.created.ctx++;
  }
  return ctx;
}

/** Drops our reference; OpenSSL frees the context once no SSL holds one either. */
export function freeCtx(ctx: Ptr): void {
  c.SSL_CTX_free(ctx);
  liveObjects.ctx--;
  forgetCtx(ctx);
}

export function ctxSetOptions(ctx: Ptr, options: bigint): void {
  c.SSL_CTX_set_options(ctx, options);
}

/** SSL_CTX_set_min_proto_version (a macro for SSL_CTX_ctrl); 1 on success. */
export function ctxSetMinProtoVersion(ctx: Ptr, version: number): number {
  return c.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MIN_PROTO_VERSION, version, null) as number;
}

export function ctxSetMaxProtoVersion(ctx: Ptr, version: number): number {
  return c.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_MAX_PROTO_VERSION, version, null) as number;
}

/**
 * SSL_MODE_RELEASE_BUFFERS: an idle connection gives back its 34 KiB of record buffers (nginx sets
 * it for the same reason: many idle keep-alive connections).
 */
export function ctxReleaseBuffers(ctx: Ptr): void {
  c.SSL_CTX_ctrl(ctx, SSL_CTRL_MODE, SSL_MODE_RELEASE_BUFFERS, null);
}

export function ctxSetSessionCacheMode(ctx: Ptr, mode: number): void {
  c.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_SESS_CACHE_MODE, mode, null);
}

export function ctxSetCipherList(ctx: Ptr, list: string): number {
  return c.SSL_CTX_set_cipher_list(ctx, list) as number;
}

export function ctxSetCiphersuites(ctx: Ptr, list: string): number {
  return c.SSL_CTX_set_ciphersuites(ctx, list) as number;
}

/** SSL_CTX_set1_groups_list (a macro for SSL_CTX_ctrl with a char * argument); 1 on success. */
export function ctxSetGroupsList(ctx: Ptr, list: string): number {
  return c.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_GROUPS_LIST, 0, Buffer.from(`${list}\0`, 'latin1')) as number;
}

export function ctxUseCertificate(ctx: Ptr, x509: Ptr): number {
  return c.SSL_CTX_use_certificate(ctx, x509) as number;
}

/**
 * SSL_CTX_add_extra_chain_cert (a macro for SSL_CTX_ctrl): the context takes ownership of `x509`
 * on success — the caller must not free it then.
 */
export function ctxAddExtraChainCert(ctx: Ptr, x509: Ptr): number {
  return c.SSL_CTX_ctrl(ctx, SSL_CTRL_EXTRA_CHAIN_CERT, 0, x509) as number;
}

export function ctxUsePrivateKey(ctx: Ptr, key: Ptr): number {
  return c.SSL_CTX_use_PrivateKey(ctx, key) as number;
}

export function ctxCheckPrivateKey(ctx: Ptr): number {
  return c.SSL_CTX_check_private_key(ctx) as number;
}

export function ctxAddClientCA(ctx: Ptr, x509: Ptr): number {
  return c.SSL_CTX_add_client_CA(ctx, x509) as number;
}

export function ctxCertStore(ctx: Ptr): Ptr {
  return c.SSL_CTX_get_cert_store(ctx) as Ptr;
}

/** Shares `store` with the context (SSL_CTX_set1_cert_store takes a reference). */
export function ctxSetCertStore(ctx: Ptr, store: Ptr): void {
  c.SSL_CTX_set1_cert_store(ctx, store);
}

export function ctxSetSessionIdContext(ctx: Ptr, id: Uint8Array): number {
  return c.SSL_CTX_set_session_id_context(ctx, id, id.length) as number;
}

export function ctxSetNumTickets(ctx: Ptr, n: number): number {
  return c.SSL_CTX_set_num_tickets(ctx, n) as number;
}

/** SSL_CTX_set_tlsext_ticket_keys (a macro for SSL_CTX_ctrl): 80 bytes of name, HMAC and AES keys. */
export function ctxSetTicketKeys(ctx: Ptr, keys: Uint8Array): number {
  return c.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_TLSEXT_TICKET_KEYS, keys.length, keys) as number;
}

export function newCertStore(): Ptr | null {
  return c.X509_STORE_new() as Ptr | null;
}

export function freeCertStore(store: Ptr): void {
  c.X509_STORE_free(store);
}

/** Adds a trusted certificate to a store (the store takes its own reference). */
export function storeAddCert(store: Ptr, x509: Ptr): number {
  return c.X509_STORE_add_cert(store, x509) as number;
}

// ---- certificates and keys ----

/** A read-only memory BIO over `data` (which must stay alive until `BIO_free`). */
function memReader(data: Uint8Array): Ptr {
  const bio = c.BIO_new_mem_buf(data, data.length) as Ptr | null;
  if (bio === null) throw new Error('BIO_new_mem_buf failed (out of memory)');
  return bio;
}

/**
 * Every certificate in a PEM text, in order (X509 pointers the caller frees). Stops at the first
 * block that is not a certificate; an empty result means none was found.
 */
export function readCertificates(pem: Uint8Array): Ptr[] {
  const bio = memReader(pem);
  const out: Ptr[] = [];
  try {
    for (;;) {
      const x = c.PEM_read_bio_X509(bio, null, null, null) as Ptr | null;
      if (x === null) break;
      out.push(x);
    }
  } finally {
    c.BIO_free(bio);
  }
  // The read that ended the loop queued "no start line": expected, and not ours to keep.
  drainErrors();
  return out;
}

/** The private key of a PEM text (PKCS#8, traditional RSA/EC), decrypting with `passphrase`; null when none. */
export function readPrivateKey(pem: Uint8Array, passphrase: string | undefined): Ptr | null {
  const bio = memReader(pem);
  try {
    // With no callback, OpenSSL's default one uses `u` as the passphrase (pem_passwd_cb(3)); an
    // empty string rather than NULL keeps it from prompting on the terminal for an encrypted key.
    return c.PEM_read_bio_PrivateKey(bio, null, null, passphrase ?? '') as Ptr | null;
  } finally {
    c.BIO_free(bio);
  }
}

export function freeX509(x509: Ptr): void {
  c.X509_free(x509);
}

export function freeKey(key: Ptr): void {
  c.EVP_PKEY_free(key);
}

/** The DER encoding of a certificate (i2d_X509_bio into a memory BIO). */
export function x509ToDer(x509: Ptr): Buffer {
  const bio = c.BIO_new(c.BIO_s_mem()) as Ptr | null;
  if (bio === null) throw new Error('BIO_new failed (out of memory)');
  try {
    if ((c.i2d_X509_bio(bio, x509) as number) !== 1) {
      drainErrors();
      throw new Error('i2d_X509_bio failed');
    }
    const n = Number(c.BIO_ctrl_pending(bio));
    const out = Buffer.allocUnsafe(n);
    c.BIO_read(bio, out, n);
    return out;
  } finally {
    c.BIO_free(bio);
  }
}

export function verifyErrorString(code: number): string {
  return c.X509_verify_cert_error_string(code) as string;
}

// ---- connections ----

/** An SSL with two memory BIOs (ciphertext in, ciphertext out); null if OpenSSL is out of memory. */
export interface SslConnection {
  readonly ssl: Ptr;
  /** Ciphertext from the peer goes in here (replaced by `renewReadBio`). */
  rbio: Ptr;
  /** Ciphertext for the peer comes out of here (replaced by `renewWriteBio`). */
  wbio: Ptr;
}

let memMethod: Ptr | undefined;

export function newSsl(ctx: Ptr, server: boolean): SslConnection | null {
  const ssl = c.SSL_new(ctx) as Ptr | null;
  if (ssl === null) return null;
  // A static table: asked for once.
  memMethod ??= c.BIO_s_mem() as Ptr;
  // An empty BIO_s_mem says "retry" (-1 with the retry flag), never EOF: its default
  // (BIO_set_mem_eof_return(3); only BIO_new_mem_buf's default to EOF), which SSL_get_error's
  // WANT_READ relies on.
  const rbio = c.BIO_new(memMethod) as Ptr | null;
  const wbio = c.BIO_new(memMethod) as Ptr | null;
  if (rbio === null || wbio === null) {
    if (rbio !== null) c.BIO_free(rbio);
    if (wbio !== null) c.BIO_free(wbio);
    c.SSL_free(ssl);
    return null;
  }
  // The SSL owns both BIOs from now on: SSL_free frees them.
  c.SSL_set_bio(ssl, rbio, wbio);
  if (server) c.SSL_set_accept_state(ssl);
  else c.SSL_set_connect_state(ssl);
  liveObjects.ssl++;
  liveObjects.created.ssl++;
  return { ssl, rbio, wbio };
}

/**
 * A memory BIO never gives memory back: its buffer keeps the capacity of the most it ever held
 * (BUF_MEM_grow_clean grows it by a third at a time, and nothing shrinks it), so a connection that
 * once carried a large write would keep that much for as long as it lives. These swap in a fresh,
 * empty BIO (SSL_set0_rbio(3)/SSL_set0_wbio(3) free the one they replace); call them only when the
 * BIO is empty. False, keeping the old one, if OpenSSL is out of memory.
 */
export function renewReadBio(conn: SslConnection): boolean {
  const bio = c.BIO_new(memMethod as Ptr) as Ptr | null;
  if (bio === null) return false;
  c.SSL_set0_rbio(conn.ssl, bio);
  conn.rbio = bio;
  return true;
}

export function renewWriteBio(conn: SslConnection): boolean {
  const bio = c.BIO_new(memMethod as Ptr) as Ptr | null;
  if (bio === null) return false;
  c.SSL_set0_wbio(conn.ssl, bio);
  conn.wbio = bio;
  return true;
}

/** Frees the SSL and its BIOs. */
export function freeSsl(ssl: Ptr): void {
  c.SSL_free(ssl);
  liveObjects.ssl--;
}

/** Hands ciphertext to OpenSSL; returns bytes taken (all of them: a memory BIO grows). */
export function bioWrite(bio: Ptr, data: Uint8Array, length: number): number {
  return c.BIO_write(bio, data, length) as number;
}

/** Takes up to `length` bytes of ciphertext out; <= 0 when there is none. */
export function bioRead(bio: Ptr, into: Uint8Array, length: number): number {
  return c.BIO_read(bio, into, length) as number;
}

export function bioPending(bio: Ptr): number {
  return Number(c.BIO_ctrl_pending(bio));
}

const bufMem = new BigUint64Array(1);

/**
 * What a memory BIO keeps allocated for its data (its BUF_MEM's `max`), in bytes: not part of any
 * hot path — for tests and diagnostics of what an idle connection holds.
 */
export function bioCapacity(bio: Ptr): number {
  bufMem[0] = 0n;
  c.BIO_ctrl(bio, BIO_C_GET_BUF_MEM_PTR, 0, bufMem);
  const p = bufMem[0] as bigint;
  return p === 0n ? 0 : Number(koffi.decode(p, BUF_MEM_MAX_OFFSET, 'size_t'));
}

export function sslDoHandshake(ssl: Ptr): number {
  return c.SSL_do_handshake(ssl) as number;
}

export function sslRead(ssl: Ptr, into: Uint8Array, length: number): number {
  return c.SSL_read(ssl, into, length) as number;
}

export function sslWrite(ssl: Ptr, data: Uint8Array, length: number): number {
  return c.SSL_write(ssl, data, length) as number;
}

export function sslGetError(ssl: Ptr, ret: number): number {
  return c.SSL_get_error(ssl, ret) as number;
}

export function sslShutdown(ssl: Ptr): number {
  return c.SSL_shutdown(ssl) as number;
}

/** SSL_set_tlsext_host_name (a macro for SSL_ctrl): the SNI a client sends. */
export function sslSetServername(ssl: Ptr, name: string): number {
  return c.SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, name) as number;
}

/** Checks the peer certificate against a DNS name (SSL_set1_host(3)). */
export function sslSetVerifyHost(ssl: Ptr, host: string): number {
  return c.SSL_set1_host(ssl, host) as number;
}

/** Checks the peer certificate against an IP address (X509_VERIFY_PARAM_set1_ip_asc(3)). */
export function sslSetVerifyIp(ssl: Ptr, ip: string): number {
  return c.X509_VERIFY_PARAM_set1_ip_asc(c.SSL_get0_param(ssl), ip) as number;
}

/** Client side: the protocols to offer (wire format). 0 on success — inverted, as the man page warns. */
export function sslSetAlpnProtos(ssl: Ptr, protos: Uint8Array): number {
  return c.SSL_set_alpn_protos(ssl, protos, protos.length) as number;
}

export function sslSetSslCtx(ssl: Ptr, ctx: Ptr): void {
  c.SSL_set_SSL_CTX(ssl, ctx);
}

export function sslSetSession(ssl: Ptr, session: Ptr): number {
  return c.SSL_set_session(ssl, session) as number;
}

// Out-parameters of SSL_get0_alpn_selected, as typed arrays (passed by reference: koffi's
// `_Out_` arrays cost a conversion each way). One thread; calls do not nest.
const alpnData = new BigUint64Array(1);
const alpnLen = new Uint32Array(1);

/** The protocol ALPN selected, or undefined. */
export function sslAlpnSelected(ssl: Ptr): string | undefined {
  alpnLen[0] = 0;
  c.SSL_get0_alpn_selected(ssl, alpnData, alpnLen);
  const n = alpnLen[0] as number;
  if (n === 0) return undefined;
  return Buffer.from(koffi.view(alpnData[0] as bigint, n)).toString('latin1');
}

export function sslServername(ssl: Ptr): string | undefined {
  return (c.SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) as string | null) ?? undefined;
}

export function sslVersion(ssl: Ptr): string {
  return c.SSL_get_version(ssl) as string;
}

export function sslCipherName(ssl: Ptr): string | undefined {
  const cipher = c.SSL_get_current_cipher(ssl) as Ptr | null;
  return cipher === null ? undefined : (c.SSL_CIPHER_get_name(cipher) as string);
}

export function sslSessionReused(ssl: Ptr): boolean {
  return (c.SSL_session_reused(ssl) as number) === 1;
}

export function sslVerifyResult(ssl: Ptr): number {
  return Number(c.SSL_get_verify_result(ssl));
}

/** The peer's certificate (a reference the caller frees with `freeX509`), or null. */
export function sslPeerCertificate(ssl: Ptr): Ptr | null {
  return c.SSL_get1_peer_certificate(ssl) as Ptr | null;
}

// ---- errors ----

/** One entry of OpenSSL's error queue. */
export interface OpensslError {
  /** The packed code (ERR_get_error(3)). */
  readonly code: number;
  /** ERR_GET_REASON(code): e.g. SSL_R_HTTP_REQUEST. 0 for system errors. */
  readonly reason: number;
  /** The reason's text ("wrong version number"), or 'unknown'. */
  readonly reasonText: string;
  /** ERR_error_string_n: "error:0A00010B:SSL routines::wrong version number". */
  readonly text: string;
}

const errText = Buffer.alloc(256);

/** Empties this thread's error queue, returning what it held (oldest first; usually one or two). */
export function drainErrors(): OpensslError[] {
  const out: OpensslError[] = [];
  for (;;) {
    const code = Number(c.ERR_get_error());
    if (code === 0) return out;
    if (out.length >= 16) continue; // keep draining, stop describing
    c.ERR_error_string_n(code, errText, errText.length);
    const end = errText.indexOf(0);
    const system = (code & ERR_SYSTEM_FLAG) !== 0;
    out.push({
      code,
      reason: system ? 0 : code & ERR_REASON_MASK,
      reasonText: system ? 'system error' : ((c.ERR_reason_error_string(code) as string | null) ?? 'unknown'),
      text: errText.toString('latin1', 0, end < 0 ? errText.length : end),
    });
  }
}

/** Random bytes from OpenSSL's CSPRNG (ticket keys). */
export function randomBytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  if ((c.RAND_bytes(out, n) as number) !== 1) {
    drainErrors();
    throw new Error('RAND_bytes failed');
  }
  return out;
}
