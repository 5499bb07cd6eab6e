/**
 * Bindings to the OpenSSL 3 that the running node binary contains.
 *
 * Node links OpenSSL statically and exports its symbols for addons (`nm -D $(which node) | grep -c
 * ' T SSL_'` → 475 with Node 20), so `koffi.load(null)` — dlopen(NULL), the symbols already in the
 * process — binds them: nothing to install, nothing to compile, and the same library node:tls
 * uses. This is the only module that knows OpenSSL's C API; src/tls/ builds on these wrappers.
 *
 * Conventions, as in libc.ts: each binding is a C prototype, one per line, checkable against its
 * man page (ossl-guide, SSL_read(3), BIO_s_mem(3) …). Pointers are koffi opaque pointers (BigInts
 * in JS; null for NULL). Macros of ssl.h that are really `SSL_CTX_ctrl`/`SSL_ctrl` calls are
 * written out as such, with the constant's origin in a comment; the constants are OpenSSL 3.0's
 * (its headers ship with node: /usr/include/node/openssl/).
 *
 * The error queue (ERR_get_error(3)) is per thread, and SSL_get_error(3) requires it to be empty
 * before each I/O call. Clearing it before every call would cost an FFI call per record; instead
 * every failure we see is drained at once (`drainErrors`), so the queue stays empty between calls.
 * Node's own crypto code clears what it leaves behind (ClearErrorOnReturn in src/crypto).
 *
 * Callbacks (ALPN selection, SNI, certificate verification) are registered with koffi once per
 * process and never unregistered (koffi has 8192 slots): each SSL_CTX passes a small integer as
 * the callback's `arg`, which finds its JS handler in a map. koffi swallows exceptions thrown in a
 * callback and returns 0 to C, which OpenSSL would read as a decision (0 is SSL_TLSEXT_ERR_OK), so
 * every trampoline catches and answers a fatal alert instead.
 */
import { Buffer } from 'node:buffer';
import koffi, { type LibraryHandle } from 'koffi';
import { UnsupportedPlatformError } from '../errors.js';

function loadSelf(): LibraryHandle {
  try {
    return koffi.load(null);
  } catch (err) {
    throw new UnsupportedPlatformError(
      `cannot load the process's own symbols through koffi: ${(err as Error).message}`,
    );
  }
}

// Opaque types, so that the prototypes read as in the man pages. koffi type names are global to
// the process: reuse one another copy of this module declared.
function opaque(name: string): void {
  try {
    koffi.opaque(name);
  } catch {
    koffi.resolve(name);
  }
}
for (const name of [
  'SSL',
  'SSL_CTX',
  'SSL_METHOD',
  'SSL_CIPHER',
  'SSL_SESSION',
  'BIO',
  'BIO_METHOD',
  'X509',
  'X509_STORE',
  'X509_STORE_CTX',
  'X509_VERIFY_PARAM',
  'EVP_PKEY',
]) {
  opaque(name);
}

function proto(signature: string) {
  try {
    return koffi.proto(signature);
  } catch {
    // Declared by another copy of this module: same name, same signature.
    const name = /\b(multireactor_\w+)\s*\(/.exec(signature)?.[1] as string;
    return koffi.resolve(name);
  }
}

const AlpnSelectCb = proto(
  'int multireactor_alpn_select_cb(SSL *ssl, void *out, void *outlen, const void *in, unsigned int inlen, void *arg)',
);
const ServernameCb = proto('int multireactor_servername_cb(SSL *ssl, void *al, void *arg)');
const VerifyCb = proto('int multireactor_verify_cb(int preverify_ok, X509_STORE_CTX *x509_ctx)');
const NewSessionCb = proto('int multireactor_new_session_cb(SSL *ssl, SSL_SESSION *session)');

const lib = loadSelf();

// One prototype per line, in C.
const c = {
  OpenSSL_version: lib.func('const char *OpenSSL_version(int type)'),
  TLS_server_method: lib.func('const SSL_METHOD *TLS_server_method(void)'),
  TLS_client_method: lib.func('const SSL_METHOD *TLS_client_method(void)'),

  SSL_CTX_new: lib.func('SSL_CTX *SSL_CTX_new(const SSL_METHOD *method)'),
  SSL_CTX_free: lib.func('void SSL_CTX_free(SSL_CTX *ctx)'),
  SSL_CTX_ctrl: lib.func('long SSL_CTX_ctrl(SSL_CTX *ctx, int cmd, long larg, void *parg)'),
  SSL_CTX_callback_ctrl: lib.func('long SSL_CTX_callback_ctrl(SSL_CTX *ctx, int cmd, multireactor_servername_cb *fp)'),
  SSL_CTX_set_options: lib.func('uint64_t SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options)'),
  SSL_CTX_set_cipher_list: lib.func('int SSL_CTX_set_cipher_list(SSL_CTX *ctx, const char *str)'),
  SSL_CTX_set_ciphersuites: lib.func('int SSL_CTX_set_ciphersuites(SSL_CTX *ctx, const char *str)'),
  SSL_CTX_use_certificate: lib.func('int SSL_CTX_use_certificate(SSL_CTX *ctx, X509 *x)'),
  SSL_CTX_use_PrivateKey: lib.func('int SSL_CTX_use_PrivateKey(SSL_CTX *ctx, EVP_PKEY *pkey)'),
  SSL_CTX_check_private_key: lib.func('int SSL_CTX_check_private_key(const SSL_CTX *ctx)'),
  SSL_CTX_set_verify: lib.func('void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, multireactor_verify_cb *cb)'),
  SSL_CTX_get_cert_store: lib.func('X509_STORE *SSL_CTX_get_cert_store(const SSL_CTX *ctx)'),
  SSL_CTX_set1_cert_store: lib.func('void SSL_CTX_set1_cert_store(SSL_CTX *ctx, X509_STORE *store)'),
  SSL_CTX_add_client_CA: lib.func('int SSL_CTX_add_client_CA(SSL_CTX *ctx, X509 *cacert)'),
  SSL_CTX_set_session_id_context: lib.func(
    'int SSL_CTX_set_session_id_context(SSL_CTX *ctx, const uint8_t *sid_ctx, unsigned int sid_ctx_len)',
  ),
  SSL_CTX_set_num_tickets: lib.func('int SSL_CTX_set_num_tickets(SSL_CTX *ctx, size_t num_tickets)'),
  SSL_CTX_set_alpn_select_cb: lib.func(
    'void SSL_CTX_set_alpn_select_cb(SSL_CTX *ctx, multireactor_alpn_select_cb *cb, void *arg)',
  ),
  SSL_CTX_sess_set_new_cb: lib.func('void SSL_CTX_sess_set_new_cb(SSL_CTX *ctx, multireactor_new_session_cb *cb)'),
  SSL_get_SSL_CTX: lib.func('SSL_CTX *SSL_get_SSL_CTX(const SSL *ssl)'),
  SSL_select_next_proto: lib.func(
    'int SSL_select_next_proto(void *out, void *outlen, const void *server, unsigned int server_len, const void *client, unsigned int client_len)',
  ),

  X509_STORE_new: lib.func('X509_STORE *X509_STORE_new(void)'),
  X509_STORE_free: lib.func('void X509_STORE_free(X509_STORE *store)'),
  X509_STORE_add_cert: lib.func('int X509_STORE_add_cert(X509_STORE *store, X509 *x)'),
  X509_free: lib.func('void X509_free(X509 *x)'),
  X509_verify_cert_error_string: lib.func('const char *X509_verify_cert_error_string(long n)'),
  EVP_PKEY_free: lib.func('void EVP_PKEY_free(EVP_PKEY *pkey)'),
  PEM_read_bio_X509: lib.func('X509 *PEM_read_bio_X509(BIO *bp, void *x, void *cb, void *u)'),
  PEM_read_bio_PrivateKey: lib.func('EVP_PKEY *PEM_read_bio_PrivateKey(BIO *bp, void *x, void *cb, const char *u)'),
  i2d_X509_bio: lib.func('int i2d_X509_bio(BIO *bp, const X509 *x)'),

  BIO_s_mem: lib.func('const BIO_METHOD *BIO_s_mem(void)'),
  BIO_new: lib.func('BIO *BIO_new(const BIO_METHOD *type)'),
  BIO_new_mem_buf: lib.func('BIO *BIO_new_mem_buf(const void *buf, int len)'),
  BIO_free: lib.func('int BIO_free(BIO *a)'),
  BIO_read: lib.func('int BIO_read(BIO *b, void *data, int dlen)'),
  BIO_write: lib.func('int BIO_write(BIO *b, const void *data, int dlen)'),
  BIO_ctrl_pending: lib.func('size_t BIO_ctrl_pending(BIO *b)'),

  SSL_new: lib.func('SSL *SSL_new(SSL_CTX *ctx)'),
  SSL_free: lib.func('void SSL_free(SSL *ssl)'),
  SSL_set_bio: lib.func('void SSL_set_bio(SSL *ssl, BIO *rbio, BIO *wbio)'),
  SSL_set_accept_state: lib.func('void SSL_set_accept_state(SSL *ssl)'),
  SSL_set_connect_state: lib.func('void SSL_set_connect_state(SSL *ssl)'),
  SSL_do_handshake: lib.func('int SSL_do_handshake(SSL *ssl)'),
  SSL_read: lib.func('int SSL_read(SSL *ssl, void *buf, int num)'),
  SSL_write: lib.func('int SSL_write(SSL *ssl, const void *buf, int num)'),
  SSL_get_error: lib.func('int SSL_get_error(const SSL *ssl, int ret)'),
  SSL_shutdown: lib.func('int SSL_shutdown(SSL *ssl)'),
  SSL_ctrl: lib.func('long SSL_ctrl(SSL *ssl, int cmd, long larg, const char *parg)'),
  SSL_set_SSL_CTX: lib.func('SSL_CTX *SSL_set_SSL_CTX(SSL *ssl, SSL_CTX *ctx)'),
  SSL_set_alpn_protos: lib.func('int SSL_set_alpn_protos(SSL *ssl, const uint8_t *protos, unsigned int protos_len)'),
  SSL_get0_alpn_selected: lib.func('void SSL_get0_alpn_selected(const SSL *ssl, void *data, void *len)'),
  SSL_get_servername: lib.func('const char *SSL_get_servername(const SSL *ssl, int type)'),
  SSL_get_version: lib.func('const char *SSL_get_version(const SSL *ssl)'),
  SSL_get_current_cipher: lib.func('const SSL_CIPHER *SSL_get_current_cipher(const SSL *ssl)'),
  SSL_CIPHER_get_name: lib.func('const char *SSL_CIPHER_get_name(const SSL_CIPHER *cipher)'),
  SSL_session_reused: lib.func('int SSL_session_reused(const SSL *ssl)'),
  SSL_get_verify_result: lib.func('long SSL_get_verify_result(const SSL *ssl)'),
  SSL_get1_peer_certificate: lib.func('X509 *SSL_get1_peer_certificate(const SSL *ssl)'),
  SSL_set1_host: lib.func('int SSL_set1_host(SSL *ssl, const char *hostname)'),
  SSL_get0_param: lib.func('X509_VERIFY_PARAM *SSL_get0_param(SSL *ssl)'),
  X509_VERIFY_PARAM_set1_ip_asc: lib.func(
    'int X509_VERIFY_PARAM_set1_ip_asc(X509_VERIFY_PARAM *param, const char *ipasc)',
  ),
  SSL_set_session: lib.func('int SSL_set_session(SSL *ssl, SSL_SESSION *session)'),
  SSL_SESSION_free: lib.func('void SSL_SESSION_free(SSL_SESSION *session)'),
  SSL_SESSION_is_resumable: lib.func('int SSL_SESSION_is_resumable(const SSL_SESSION *s)'),

  ERR_get_error: lib.func('unsigned long ERR_get_error(void)'),
  ERR_error_string_n: lib.func('void ERR_error_string_n(unsigned long e, _Out_ char *buf, size_t len)'),
  ERR_reason_error_string: lib.func('const char *ERR_reason_error_string(unsigned long e)'),
  RAND_bytes: lib.func('int RAND_bytes(_Out_ uint8_t *buf, int num)'),
};

/** An OpenSSL object: an opaque pointer (a BigInt); NULL is null. */
export type Ptr = bigint;

// ---- constants (ssl.h, tls1.h, prov_ssl.h, bio.h, x509_vfy.h of OpenSSL 3.0) ----

/** prov_ssl.h */
export const TLS1_VERSION = 0x0301;
export const TLS1_1_VERSION = 0x0302;
export const TLS1_2_VERSION = 0x0303;
export const TLS1_3_VERSION = 0x0304;

/** ssl.h: SSL_get_error(3) results. */
export const SSL_ERROR_NONE = 0;
export const SSL_ERROR_SSL = 1;
export const SSL_ERROR_WANT_READ = 2;
export const SSL_ERROR_WANT_WRITE = 3;
export const SSL_ERROR_WANT_X509_LOOKUP = 4;
export const SSL_ERROR_SYSCALL = 5;
export const SSL_ERROR_ZERO_RETURN = 6;

/** ssl.h: SSL_CTX_set_verify(3) modes. */
export const SSL_VERIFY_NONE = 0x00;
export const SSL_VERIFY_PEER = 0x01;
export const SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 0x02;

/** ssl.h: option bits (SSL_OP_BIT(n) = 1 << n, uint64_t since 3.0). */
export const SSL_OP_NO_TICKET = 1n << 14n;
export const SSL_OP_CIPHER_SERVER_PREFERENCE = 1n << 22n;
export const SSL_OP_NO_RENEGOTIATION = 1n << 30n;

/** ssl.h: SSL_CTX_set_mode(3) bits. */
const SSL_MODE_RELEASE_BUFFERS = 0x10;

// ssl.h: SSL_CTX_ctrl / SSL_ctrl commands behind macros.
const SSL_CTRL_EXTRA_CHAIN_CERT = 14; // SSL_CTX_add_extra_chain_cert
const SSL_CTRL_MODE = 33; // SSL_CTX_set_mode
const SSL_CTRL_SET_SESS_CACHE_MODE = 44; // SSL_CTX_set_session_cache_mode
const SSL_CTRL_SET_TLSEXT_SERVERNAME_CB = 53; // SSL_CTX_set_tlsext_servername_callback
const SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG = 54; // SSL_CTX_set_tlsext_servername_arg
const SSL_CTRL_SET_TLSEXT_HOSTNAME = 55; // SSL_set_tlsext_host_name
const SSL_CTRL_SET_TLSEXT_TICKET_KEYS = 59; // SSL_CTX_set_tlsext_ticket_keys
const SSL_CTRL_SET_GROUPS_LIST = 92; // SSL_CTX_set1_groups_list
const SSL_CTRL_SET_MIN_PROTO_VERSION = 123; // SSL_CTX_set_min_proto_version
const SSL_CTRL_SET_MAX_PROTO_VERSION = 124; // SSL_CTX_set_max_proto_version

/** ssl.h: session cache modes. */
export const SSL_SESS_CACHE_OFF = 0x0;
export const SSL_SESS_CACHE_CLIENT = 0x1;
export const SSL_SESS_CACHE_SERVER = 0x2;
export const SSL_SESS_CACHE_NO_INTERNAL_STORE = 0x200;

/** tls1.h: what a servername or ALPN callback answers. */
export const SSL_TLSEXT_ERR_OK = 0;
export const SSL_TLSEXT_ERR_ALERT_FATAL = 2;
export const SSL_TLSEXT_ERR_NOACK = 3;
/** tls1.h */
const TLSEXT_NAMETYPE_host_name = 0;
/** ssl.h: SSL_select_next_proto(3) results. */
const OPENSSL_NPN_NEGOTIATED = 1;
/** x509_vfy.h */
export const X509_V_OK = 0;
/** sslerr.h: reasons we treat specially. */
export const SSL_R_HTTPS_PROXY_REQUEST = 155;
export const SSL_R_HTTP_REQUEST = 156;
/** err.h: ERR_GET_REASON(e) = e & ERR_REASON_MASK; system errors carry ERR_SYSTEM_FLAG. */
const ERR_REASON_MASK = 0x7fffff;
const ERR_SYSTEM_FLAG = 0x80000000;

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

// ---- callbacks ----

/** What an ALPN selection or SNI handler of one context does; found by the id passed as `arg`. */
interface CtxCallbacks {
  /** ALPN: the server's protocols in wire format (length-prefixed), in preference order. */
  alpn?: Buffer;
  /** SNI: picks a context for the servername (SSL_set_SSL_CTX); returns an SSL_TLSEXT_ERR_* code. */
  servername?: (ssl: Ptr, servername: string | null) => number;
}

const callbacksById = new Map<number, CtxCallbacks>();
const idByCtx = new Map<Ptr, number>();
let nextCallbackId = 1;

function callbacksFor(ctx: Ptr): [number, CtxCallbacks] {
  let id = idByCtx.get(ctx);
  if (id === undefined) {
    id = nextCallbackId++;
    idByCtx.set(ctx, id);
    callbacksById.set(id, {});
  }
  return [id, callbacksById.get(id) as CtxCallbacks];
}

function forgetCtx(ctx: Ptr): void {
  const id = idByCtx.get(ctx);
  if (id === undefined) return;
  idByCtx.delete(ctx);
  callbacksById.delete(id);
}

/**
 * The ALPN trampoline (SSL_CTX_set_alpn_select_cb(3)): SSL_select_next_proto picks the first of the
 * server's protocols that the client offers. `*out` then points into the server's list — a Buffer
 * the map keeps alive, whose memory does not move — and OpenSSL copies it before the handshake
 * goes on. No overlap is a fatal `no_application_protocol` alert (RFC 7301 §3.2).
 */
let alpnTrampoline: unknown;
function alpnCallback(): unknown {
  alpnTrampoline ??= koffi.register(
    (_ssl: Ptr, out: Ptr, outlen: Ptr, input: Ptr, inlen: number, arg: Ptr | null): number => {
      try {
        const protos = callbacksById.get(Number(arg))?.alpn;
        if (protos === undefined) return SSL_TLSEXT_ERR_NOACK;
        const r = c.SSL_select_next_proto(out, outlen, protos, protos.length, input, inlen) as number;
        return r === OPENSSL_NPN_NEGOTIATED ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_ALERT_FATAL;
      } catch {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
      }
    },
    koffi.pointer(AlpnSelectCb),
  );
  return alpnTrampoline;
}

/** Server side: select ALPN among `protos` (wire format: each name prefixed with its length). */
export function ctxSetAlpnProtocols(ctx: Ptr, protos: Buffer): void {
  const [id, cbs] = callbacksFor(ctx);
  cbs.alpn = protos;
  c.SSL_CTX_set_alpn_select_cb(ctx, alpnCallback(), BigInt(id));
}

/**
 * The SNI trampoline (SSL_CTX_set_tlsext_servername_callback, a macro for SSL_CTX_callback_ctrl
 * with SSL_CTRL_SET_TLSEXT_SERVERNAME_CB). OpenSSL presets the alert to unrecognized_name, which is
 * what a refusal (SSL_TLSEXT_ERR_ALERT_FATAL) sends.
 */
let servernameTrampoline: unknown;
function servernameCallback(): unknown {
  servernameTrampoline ??= koffi.register((ssl: Ptr, _al: Ptr, arg: Ptr | null): number => {
    try {
      const fn = callbacksById.get(Number(arg))?.servername;
      if (fn === undefined) return SSL_TLSEXT_ERR_OK;
      return fn(ssl, c.SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) as string | null);
    } catch {
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
  }, koffi.pointer(ServernameCb));
  return servernameTrampoline;
}

export function ctxSetServernameCallback(ctx: Ptr, fn: (ssl: Ptr, servername: string | null) => number): void {
  const [id, cbs] = callbacksFor(ctx);
  cbs.servername = fn;
  c.SSL_CTX_callback_ctrl(ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB, servernameCallback());
  c.SSL_CTX_ctrl(ctx, SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG, 0, BigInt(id));
}

/**
 * A verify callback that accepts every chain (`rejectUnauthorized: false`): the handshake goes on,
 * and SSL_get_verify_result still tells whether the chain verified (SSL_CTX_set_verify(3)).
 */
let acceptAllTrampoline: unknown;
function acceptAllCallback(): unknown {
  acceptAllTrampoline ??= koffi.register(() => 1, koffi.pointer(VerifyCb));
  return acceptAllTrampoline;
}

/** SSL_CTX_set_verify with no callback (`reject` true: a chain that fails ends the handshake) or one that accepts all. */
export function ctxSetVerify(ctx: Ptr, mode: number, reject: boolean): void {
  c.SSL_CTX_set_verify(ctx, mode, reject || mode === SSL_VERIFY_NONE ? null : acceptAllCallback());
}

/**
 * Client session cache: OpenSSL calls `onSession(ssl, session)` with every new session (in TLS 1.3
 * after the handshake, with each NewSessionTicket). The callback keeps it by returning 1 (it then
 * owns one reference and must `freeSession` it) or declines with 0.
 */
const sessionHandlers = new Map<Ptr, (ssl: Ptr, session: Ptr) => boolean>();
let newSessionTrampoline: unknown;
function newSessionCallback(): unknown {
  newSessionTrampoline ??= koffi.register((ssl: Ptr, session: Ptr): number => {
    try {
      const ctx = c.SSL_get_SSL_CTX(ssl) as Ptr;
      return sessionHandlers.get(ctx)?.(ssl, session) === true ? 1 : 0;
    } catch {
      return 0;
    }
  }, koffi.pointer(NewSessionCb));
  return newSessionTrampoline;
}

export function ctxOnNewSession(ctx: Ptr, fn: (ssl: Ptr, session: Ptr) => boolean): void {
  sessionHandlers.set(ctx, fn);
  c.SSL_CTX_sess_set_new_cb(ctx, newSessionCallback());
}

export function ctxForgetNewSession(ctx: Ptr): void {
  sessionHandlers.delete(ctx);
}

export function freeSession(session: Ptr): void {
  c.SSL_SESSION_free(session);
}

export function sessionIsResumable(session: Ptr): boolean {
  return (c.SSL_SESSION_is_resumable(session) as number) === 1;
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
  /** Ciphertext from the peer goes in here. */
  readonly rbio: Ptr;
  /** Ciphertext for the peer comes out of here. */
  readonly wbio: Ptr;
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
