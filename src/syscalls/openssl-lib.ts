/**
 * The OpenSSL 3 inside the node binary, as koffi sees it: the library handle, the opaque types,
 * one C prototype per function, and the constants of its headers. Internal to src/syscalls/: the
 * wrappers in openssl.ts (and the callback trampolines in openssl-callbacks.ts) are what the rest
 * of the framework uses.
 *
 * Conventions, as in libc.ts: each binding is a C prototype, one per line, checkable against its
 * man page (ossl-guide, SSL_read(3), BIO_s_mem(3) …). Pointers are koffi opaque pointers (BigInts
 * in JS; null for NULL). Macros of ssl.h that are really `SSL_CTX_ctrl`/`SSL_ctrl` calls are
 * written out as such, with the constant's origin in a comment; the constants are OpenSSL 3.0's
 * (its headers ship with node: /usr/include/node/openssl/).
 */
import koffi, { type LibraryHandle } from 'koffi';
import { UnsupportedPlatformError } from '../common/errors.js';

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

export const AlpnSelectCb = proto(
  'int multireactor_alpn_select_cb(SSL *ssl, void *out, void *outlen, const void *in, unsigned int inlen, void *arg)',
);
export const ServernameCb = proto('int multireactor_servername_cb(SSL *ssl, void *al, void *arg)');
export const VerifyCb = proto('int multireactor_verify_cb(int preverify_ok, X509_STORE_CTX *x509_ctx)');
export const NewSessionCb = proto('int multireactor_new_session_cb(SSL *ssl, SSL_SESSION *session)');

const lib = loadSelf();

// One prototype per line, in C.
/** @internal The raw bindings (only openssl.ts and openssl-callbacks.ts call them). */
export const c = {
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
  BIO_ctrl: lib.func('long BIO_ctrl(BIO *bp, int cmd, long larg, void *parg)'),

  SSL_new: lib.func('SSL *SSL_new(SSL_CTX *ctx)'),
  SSL_free: lib.func('void SSL_free(SSL *ssl)'),
  SSL_set_bio: lib.func('void SSL_set_bio(SSL *ssl, BIO *rbio, BIO *wbio)'),
  SSL_set0_rbio: lib.func('void SSL_set0_rbio(SSL *s, BIO *rbio)'),
  SSL_set0_wbio: lib.func('void SSL_set0_wbio(SSL *s, BIO *wbio)'),
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
export const SSL_MODE_RELEASE_BUFFERS = 0x10;

/** bio.h: BIO_get_mem_ptr (a macro for BIO_ctrl) — the BUF_MEM of a memory BIO. */
export const BIO_C_GET_BUF_MEM_PTR = 115;
/** buffer.h: offset of `max` (the capacity) in `struct buf_mem_st { size_t length; char *data; size_t max; unsigned long flags; }`. */
export const BUF_MEM_MAX_OFFSET = 16;

// ssl.h: SSL_CTX_ctrl / SSL_ctrl commands behind macros.
export const SSL_CTRL_EXTRA_CHAIN_CERT = 14; // SSL_CTX_add_extra_chain_cert
export const SSL_CTRL_MODE = 33; // SSL_CTX_set_mode
export const SSL_CTRL_SET_SESS_CACHE_MODE = 44; // SSL_CTX_set_session_cache_mode
export const SSL_CTRL_SET_TLSEXT_SERVERNAME_CB = 53; // SSL_CTX_set_tlsext_servername_callback
export const SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG = 54; // SSL_CTX_set_tlsext_servername_arg
export const SSL_CTRL_SET_TLSEXT_HOSTNAME = 55; // SSL_set_tlsext_host_name
export const SSL_CTRL_SET_TLSEXT_TICKET_KEYS = 59; // SSL_CTX_set_tlsext_ticket_keys
export const SSL_CTRL_SET_GROUPS_LIST = 92; // SSL_CTX_set1_groups_list
export const SSL_CTRL_SET_MIN_PROTO_VERSION = 123; // SSL_CTX_set_min_proto_version
export const SSL_CTRL_SET_MAX_PROTO_VERSION = 124; // SSL_CTX_set_max_proto_version

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
export const TLSEXT_NAMETYPE_host_name = 0;
/** ssl.h: SSL_select_next_proto(3) results. */
export const OPENSSL_NPN_NEGOTIATED = 1;
/** x509_vfy.h */
export const X509_V_OK = 0;
/** sslerr.h: reasons we treat specially. */
export const SSL_R_HTTPS_PROXY_REQUEST = 155;
export const SSL_R_HTTP_REQUEST = 156;
/** err.h: ERR_GET_REASON(e) = e & ERR_REASON_MASK; system errors carry ERR_SYSTEM_FLAG. */
export const ERR_REASON_MASK = 0x7fffff;
export const ERR_SYSTEM_FLAG = 0x80000000;
