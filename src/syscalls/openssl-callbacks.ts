/**
 * The callbacks OpenSSL makes into JS: ALPN selection, SNI, accept-all certificate verification,
 * new client sessions. Each is registered with koffi once per process and never unregistered
 * (koffi has 8192 slots); an SSL_CTX passes a small integer as the callback's `arg`, which finds
 * its JS handler in a map. koffi swallows exceptions thrown in a callback and returns 0 to C, which
 * OpenSSL would read as a decision (0 is SSL_TLSEXT_ERR_OK), so every trampoline catches and
 * answers a fatal alert instead.
 */
import type { Buffer } from 'node:buffer';
import koffi from 'koffi';
import {
  AlpnSelectCb,
  c,
  NewSessionCb,
  OPENSSL_NPN_NEGOTIATED,
  type Ptr,
  ServernameCb,
  SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG,
  SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
  SSL_TLSEXT_ERR_ALERT_FATAL,
  SSL_TLSEXT_ERR_NOACK,
  SSL_TLSEXT_ERR_OK,
  SSL_VERIFY_NONE,
  TLSEXT_NAMETYPE_host_name,
  VerifyCb,
} from './openssl-lib.js';

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

/** Forgets the callbacks of a context being freed. */
export function forgetCtx(ctx: Ptr): void {
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
