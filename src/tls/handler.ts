/**
 * `TlsHandler`: TLS as a pipeline stage at the head (Netty's SslHandler), on OpenSSL memory BIOs.
 *
 * ```
 *   socket ──ciphertext──► [tls] ──plaintext──► [decoders] ──► [business]
 *   socket ◄─ciphertext─── [tls] ◄─plaintext──────────────────  (write / flush / close)
 * ```
 *
 * Inbound, all the ciphertext of one read goes into the read BIO with one BIO_write, and SSL_read
 * runs until the BIO is empty, decrypting into one shared plaintext buffer (scratch.ts) that the
 * next handler sees as one message — a read of many records costs one `onRead` downstream, as
 * with plaintext. The loop stops after a short read when the read BIO is empty (BIO_ctrl_pending),
 * which saves the SSL_read that would only say WANT_READ and the SSL_get_error after it.
 *
 * Outbound, writes queue as plaintext and are encrypted when flushed (or when the read that caused
 * them completes: the connection then writes everything in one send, as without TLS): small writes
 * are copied together into one record, and each SSL_write (one record at most) is drained at once
 * from the write BIO into a view the connection queues. What OpenSSL writes by itself (its
 * handshake flights, tickets, alerts, a KeyUpdate answer) is drained once per read, when the read
 * completes — or with the answer, when one was written meanwhile. So a keep-alive request and its
 * answer cost five FFI calls: BIO_write, SSL_read, BIO_ctrl_pending, SSL_write, BIO_read.
 * Backpressure stays the connection's: what is encrypted goes to its queue at once (at the latest
 * once a record's worth of plaintext is waiting), so its watermarks see it.
 *
 * Memory BIOs never shrink (a BUF_MEM keeps the most it ever held), so one SSL_write never takes
 * more than a record: the write BIO holds at most one record, never a whole large response. With
 * `releaseBuffers` (the default), a BIO that held more than `BIO_KEEP` bytes at once is replaced by
 * a fresh one as soon as it is empty — after the read, or the flush, that grew it — so that an idle
 * connection keeps no ciphertext buffer, whatever it carried before (as OpenSSL's own
 * SSL_MODE_RELEASE_BUFFERS does for its record buffers).
 *
 * The handshake is driven by the worker's own loop, under `handshakeTimeout` on the channel's
 * timing wheel. The next handlers hear `onActive` once it has completed — the negotiated session
 * (`TlsHandler.session`: protocol, cipher, ALPN, SNI, the peer's certificate) is then readable —
 * and nothing at all of a connection whose handshake failed. A failure (a fatal alert, garbage,
 * a timeout, a peer that went away) is counted per reason in the context's stats and logged at
 * debug level, never thrown: OpenSSL's alert is sent, and the connection closes (`protocol-error`).
 * A plain HTTP request on the TLS port is answered with a plaintext 400, as nginx does.
 *
 * Closing sends close_notify (RFC 8446 §6.1) before the connection's FIN; the peer's close_notify
 * ends the input as a FIN would (the answers to what arrived with it still go out, then we answer
 * with ours and close). Renegotiation is off (SSL_OP_NO_RENEGOTIATION). Every SSL object is freed
 * when the connection closes.
 */
import { Buffer } from 'node:buffer';
import { isOutboundView } from '../common/buffer-view.js';
import { UnsupportedMessageError } from '../common/errors.js';
import type { Timeout } from '../common/timing-wheel.js';
import type { Channel } from '../pipeline/channel.js';
import { ServerDrainingEvent } from '../pipeline/events.js';
import type { ChannelHandler, CloseReason } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { isLent } from '../pipeline/read-loan.js';
import {
  bioCapacity,
  bioPending,
  bioRead,
  bioWrite,
  drainErrors,
  freeX509,
  type OpensslError,
  renewReadBio,
  renewWriteBio,
  SSL_ERROR_WANT_READ,
  SSL_ERROR_WANT_WRITE,
  SSL_ERROR_ZERO_RETURN,
  SSL_R_HTTP_REQUEST,
  SSL_R_HTTPS_PROXY_REQUEST,
  type SslConnection,
  sslAlpnSelected,
  sslCipherName,
  sslDoHandshake,
  sslGetError,
  sslPeerCertificate,
  sslRead,
  sslServername,
  sslSessionReused,
  sslShutdown,
  sslVerifyResult,
  sslVersion,
  sslWrite,
  verifyErrorString,
  X509_V_OK,
  x509ToDer,
} from '../syscalls/openssl.js';
import type { ClientTarget, TlsContext } from './context.js';
import { TlsHandshakeError } from './errors.js';
import { MAX_RECORD_PLAINTEXT, MIN_READ_ROOM } from './scratch.js';
import { TlsSession } from './session.js';

const HANDSHAKING = 0;
const OPEN = 1;
/** We are closing (close_notify sent, or closed during the handshake): nothing more goes out. */
const CLOSING = 2;
/** The handshake or a record failed; the connection is closing. */
const FAILED = 3;
/** The connection closed; the SSL is freed. */
const CLOSED = 4;

const EMPTY = new Uint8Array(0);

/**
 * With `releaseBuffers`, a memory BIO that held more than this at once is replaced once empty: a
 * ClientHello with post-quantum key shares (~1.8 KiB) or a flight with a certificate chain still
 * fits, so that ordinary handshakes and small answers never pay for a new BIO.
 */
const BIO_KEEP = 4096;

const PLAIN_HTTP_BODY = 'This port speaks HTTPS: send the request over TLS (https://).\n';
/** What a plain HTTP request on a TLS port gets (nginx answers 400 "The plain HTTP request was sent to HTTPS port"). */
const PLAIN_HTTP_400 = Buffer.from(
  `HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: ${PLAIN_HTTP_BODY.length}\r\nConnection: close\r\n\r\n${PLAIN_HTTP_BODY}`,
  'latin1',
);

/**
 * TLS as a pipeline stage at the head (Netty's `SslHandler`), on the OpenSSL inside the node
 * binary, driven by the connection's own loop: ciphertext in from the connection, plaintext to the
 * next handlers, and what they write encrypted on its way out. A server puts it first in every
 * pipeline when `ServerOptions.tls` is set, and `Client.connect({ tls })` on a client connection;
 * you rarely build one yourself.
 *
 * Contract: the handlers after it hear `onActive` only once the handshake has completed — then
 * `session` (protocol, cipher, ALPN, SNI, the peer's certificate) is set; {@link tlsSession} finds
 * it from a channel — and nothing at all of a connection whose handshake failed: a failure (a
 * fatal alert, garbage, `handshakeTimeout`) is counted per reason in the context's stats and
 * logged at debug level, never thrown, and the connection closes as `protocol-error`. A plain HTTP
 * request on the TLS port gets a plaintext 400. Closing sends close_notify before the FIN; the
 * OpenSSL objects of a connection are freed when it closes. A read of many records reaches the
 * next handler as one message.
 *
 * @example
 * ```ts
 * import { readFileSync } from 'node:fs';
 * import { ChannelInboundHandler, type HandlerContext, LineEncoder, LineFrameDecoder, Pipeline, Server, tlsSession } from 'multireactor';
 *
 * class WhoAreYou extends ChannelInboundHandler {
 *   override onActive(ctx: HandlerContext): void {
 *     const s = tlsSession(ctx.channel); // set: onActive comes after the handshake
 *     ctx.writeAndFlush(`${s?.protocol} ${s?.cipher} client=${s?.peerCertificate?.subject ?? 'none'}`);
 *     ctx.fireActive();
 *   }
 * }
 * class Lines extends Pipeline {
 *   override initChannel(): void {
 *     this.addLast(new LineFrameDecoder()).addLast(new LineEncoder()).addLast(new WhoAreYou());
 *   }
 * }
 * await Server.listen({
 *   port: 7443,
 *   // The TlsHandler goes first in every connection's pipeline; the PEMs are checked here, at listen.
 *   tls: {
 *     key: readFileSync('key.pem'),
 *     cert: readFileSync('cert.pem'),
 *     ca: readFileSync('clients-ca.pem'),
 *     requestCert: true, // mutual TLS
 *   },
 *   pipeline: Lines,
 * });
 * ```
 */
export class TlsHandler implements ChannelHandler {
  /** What the handshake negotiated, once it completed (undefined before, and after a failure). */
  session: TlsSession | undefined;
  private conn: SslConnection | null = null;
  private state = HANDSHAKING;
  /** Plaintext written and not yet encrypted: `out[0, outCount)`. */
  private out: Uint8Array[] = [];
  private outCount = 0;
  private outBytes = 0;
  /** The batch `encrypt` works through (swapped with `out`, so that writes made meanwhile queue behind it). */
  private batch: Uint8Array[] = [];
  /**
   * In `encrypt`: handing a record to the connection may raise its writability event, and a
   * handler may then write, flush, close or shut the output down — all of which wait until the
   * batch being encrypted is out (encrypt is not re-entrant; what they ask is done when it ends).
   */
  private encrypting = false;
  private closeAfter: CloseReason | undefined;
  private shutdownAfter = false;
  private timer: Timeout | undefined;
  private started = false;
  /** The next handlers heard onActive (the handshake completed). */
  private downstreamActive = false;
  /** Plaintext went downstream in this read: pass the read's completion on. */
  private delivered = false;
  /** The peer's close_notify arrived; acted on when the read completes. */
  private peerClosed = false;
  /** Our close_notify went out (shutdownOutput): nothing more to write. */
  private outputShut = false;
  /** OpenSSL may have written to the write BIO since it was last drained (a flight, a ticket, an alert). */
  private unsent = false;
  /** The read BIO held more than BIO_KEEP bytes: replace it once it is empty (`releaseBuffers`). */
  private readGrown = false;
  /** Likewise the write BIO. */
  private writeGrown = false;
  private failure: TlsHandshakeError | undefined;
  private waiters: Array<{ resolve: (s: TlsSession) => void; reject: (e: unknown) => void }> | undefined;

  /**
   * @param context the server's or client's `TlsContext`
   * @param target client side: whom we connect to (SNI, name check, session cache)
   */
  constructor(
    readonly context: TlsContext,
    private readonly target?: ClientTarget,
  ) {
    if (!context.isServer && target === undefined) throw new TypeError('TlsHandler: a client handler needs a target');
  }

  /** The TLS stage of a channel's pipeline (named `tls`), if it has one. */
  static of(channel: Channel): TlsHandler | undefined {
    const h = channel.pipeline.get('tls');
    return h instanceof TlsHandler ? h : undefined;
  }

  /**
   * @internal Bytes the connection's two memory BIOs keep allocated (their buffers' capacity): what
   * an idle connection holds besides OpenSSL's own state. 0 once the SSL is freed.
   */
  get bioCapacity(): { read: number; write: number } {
    const conn = this.conn;
    return conn === null ? { read: 0, write: 0 } : { read: bioCapacity(conn.rbio), write: bioCapacity(conn.wbio) };
  }

  /** Whether the handshake completed and the connection is still open for application data. */
  get isOpen(): boolean {
    return this.state === OPEN;
  }

  /**
   * Resolves with the session once the handshake completed; rejects with `TlsHandshakeError` when
   * it failed, or `ChannelClosedError`-like errors when the connection closed first.
   */
  handshake(): Promise<TlsSession> {
    if (this.session !== undefined) return Promise.resolve(this.session);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.state >= CLOSING)
      return Promise.reject(new TlsHandshakeError('closed', 'the connection closed during the handshake'));
    return new Promise((resolve, reject) => {
      this.waiters ??= [];
      this.waiters.push({ resolve, reject });
    });
  }

  // ---- lifecycle ----

  handlerAdded(ctx: HandlerContext): void {
    const context = this.context;
    const conn = context.isServer ? context.newServerSsl() : context.newClientSsl(this.target as ClientTarget);
    if (conn === null) {
      this.fail(ctx, context.isOpen ? 'out of memory' : 'context closed', 'no SSL object could be made', []);
      return;
    }
    this.conn = conn;
    if (context.handshakeTimeout > 0) {
      this.timer = ctx.channel.timers.schedule(context.handshakeTimeout, () => this.onTimeout(ctx));
    }
  }

  handlerRemoved(_ctx: HandlerContext): void {
    this.release();
  }

  onActive(ctx: HandlerContext): void {
    // Downstream hears onActive once the handshake has completed (handshakeCompleted).
    if (this.context.isServer || this.started || this.state !== HANDSHAKING) return;
    this.started = true;
    // The client speaks first: the ClientHello leaves now.
    if (this.stepHandshake(ctx)) this.readRecords(ctx);
    if (this.unsent && this.state < CLOSING) this.drain(ctx);
    ctx.flush();
  }

  onRead(ctx: HandlerContext, msg: unknown): void {
    if (this.state >= CLOSING || this.peerClosed) return; // closing: what comes now is not read
    const conn = this.conn as SslConnection;
    const data = msg as Uint8Array;
    // A memory BIO takes everything (it grows); OpenSSL bounds what it keeps of a handshake or
    // record (a ClientHello of 1 MiB fails "excessive message size", a record over 2^14+2048
    // bytes "packet length too long"), so what waits here is at most one read's worth.
    const n = data.length;
    if (n > 0) {
      if (bioWrite(conn.rbio, data, n) !== n) {
        this.fail(ctx, 'out of memory', 'BIO_write failed', drainErrors());
        return;
      }
      if (n > BIO_KEEP) this.readGrown = true;
    }
    if (this.state === HANDSHAKING) {
      this.started = true;
      if (!this.stepHandshake(ctx)) {
        // WANT_READ: OpenSSL took all there was (ssl3_read_n reads the BIO dry before it asks for more).
        if (this.readGrown && this.state === HANDSHAKING) this.readEmptied();
        return;
      }
    }
    this.readRecords(ctx);
  }

  onReadComplete(ctx: HandlerContext): void {
    if (this.delivered) {
      this.delivered = false;
      ctx.fireReadComplete();
    }
    if (this.state === HANDSHAKING) {
      // Our next flight, from this read's handshake step.
      if (this.unsent) this.drain(ctx);
      if (this.writeGrown) this.writeEmptied();
      return;
    }
    if (this.state !== OPEN) return;
    // Answers written during this read, and anything OpenSSL queued itself (a session ticket, a
    // KeyUpdate answer, an alert), go to the connection now; it sends them when the read ends.
    // (An answer flushed during the read already took OpenSSL's records along: nothing to drain.)
    if (this.outBytes > 0) this.encrypt(ctx);
    if (this.unsent && this.state === OPEN) this.drain(ctx);
    if (this.peerClosed && this.state === OPEN) this.closeTls(ctx, 'peer-closed');
  }

  onInputShutdown(ctx: HandlerContext): void {
    // The peer's FIN with allowHalfOpen. During the handshake there is nothing to keep open for.
    if (this.state === HANDSHAKING) {
      this.fail(ctx, 'peer closed', 'FIN during the handshake', []);
      return;
    }
    if (this.downstreamActive) ctx.fireInputShutdown();
  }

  onUserEvent(ctx: HandlerContext, event: unknown): void {
    if (this.downstreamActive) {
      ctx.fireUserEvent(event);
      return;
    }
    // A draining server closes connections still shaking hands: nobody downstream knows them.
    if (event instanceof ServerDrainingEvent) this.close(ctx, 'shutdown');
  }

  onInactive(ctx: HandlerContext, reason: CloseReason): void {
    if (this.state === HANDSHAKING) {
      // The peer went away (or was reset, or the connection was aborted) before the handshake ended.
      const why = reason === 'reset' ? 'connection reset' : reason === 'peer-closed' ? 'peer closed' : reason;
      this.context.countFailure(why, 'during the handshake', peerOf(ctx));
      this.settle(new TlsHandshakeError(why, 'the connection closed during the handshake'));
    } else if (this.session === undefined && this.failure === undefined) {
      this.settle(new TlsHandshakeError('closed', 'the connection closed during the handshake'));
    }
    this.state = CLOSED;
    this.release();
    if (this.downstreamActive) ctx.fireInactive(reason);
  }

  // ---- outbound ----

  write(_ctx: HandlerContext, msg: unknown): void {
    let chunk: Uint8Array;
    if (msg instanceof Uint8Array) chunk = msg;
    else if (typeof msg === 'string') chunk = Buffer.from(msg);
    else throw new UnsupportedMessageError(describe(msg));
    // Once closing, nothing may follow close_notify — and plaintext must never reach the socket.
    if (this.state >= CLOSING || this.outputShut || this.closeAfter !== undefined) return;
    const n = chunk.length;
    if (n === 0) return;
    // A view of a read buffer (ours or the loop's: an echo) is overwritten by the next read.
    if (!isOutboundView(chunk) && isLent(chunk)) chunk = Buffer.from(chunk);
    this.out[this.outCount++] = chunk;
    this.outBytes += n;
    // A record's worth waiting: encrypt it now, so that the connection's watermarks see it.
    if (this.outBytes >= MAX_RECORD_PLAINTEXT && this.state === OPEN && !this.encrypting) this.encrypt(_ctx);
  }

  flush(ctx: HandlerContext): void {
    if (this.state === OPEN && this.outBytes > 0 && !this.encrypting) this.encrypt(ctx);
    ctx.flush();
  }

  close(ctx: HandlerContext, reason: CloseReason): void {
    if (this.state === OPEN) {
      // After what is queued — also what the batch being encrypted has left.
      if (this.encrypting) this.closeAfter ??= reason;
      else this.closeTls(ctx, reason);
      return;
    }
    if (this.state === HANDSHAKING) {
      // No close_notify in the middle of a handshake (SSL_shutdown(3) refuses it): just close.
      this.state = CLOSING;
      this.timer?.cancel();
      this.settle(new TlsHandshakeError('closed', 'the connection was closed during the handshake'));
    }
    ctx.close(reason);
  }

  shutdownOutput(ctx: HandlerContext): void {
    if (this.encrypting) {
      this.shutdownAfter = true;
      return;
    }
    if (this.state === OPEN && !this.outputShut) {
      if (this.outBytes > 0) this.encrypt(ctx);
      if (this.state !== OPEN) return;
      this.sendCloseNotify();
      this.drain(ctx);
      this.outputShut = true;
    }
    ctx.shutdownOutput();
  }

  // ---- the handshake ----

  /** One step of the handshake; true once it has completed (and the connection is open). */
  private stepHandshake(ctx: HandlerContext): boolean {
    const conn = this.conn as SslConnection;
    const r = sslDoHandshake(conn.ssl);
    // Our next flight, or the last one (a TLS 1.2 server's Finished, a server's session tickets):
    // drained when this read completes, or with the first answer if one is written before.
    this.unsent = true;
    if (r === 1) {
      this.handshakeCompleted(ctx);
      return this.state === OPEN;
    }
    const e = sslGetError(conn.ssl, r);
    if (e === SSL_ERROR_WANT_READ || e === SSL_ERROR_WANT_WRITE) return false;
    this.fail(ctx, '', '', drainErrors());
    return false;
  }

  private handshakeCompleted(ctx: HandlerContext): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.state = OPEN;
    const session = this.readSession();
    this.session = session;
    const stats = this.context.stats;
    stats.handshakes++;
    if (session.resumed) stats.resumed++;
    this.downstreamActive = true;
    ctx.fireActive();
    this.settle(undefined);
    // What was written before the handshake completed (by onActive handlers just now).
    if (this.state === OPEN && this.outBytes > 0) this.encrypt(ctx);
  }

  private readSession(): TlsSession {
    const ssl = (this.conn as SslConnection).ssl;
    const context = this.context;
    let der: Buffer | undefined;
    let authorized = false;
    let authorizationError: string | undefined;
    if (context.verifiesPeer) {
      const x = sslPeerCertificate(ssl);
      if (x !== null) {
        try {
          der = x509ToDer(x);
        } finally {
          freeX509(x);
        }
        const v = sslVerifyResult(ssl);
        authorized = v === X509_V_OK;
        if (!authorized) authorizationError = verifyErrorString(v);
      } else {
        authorizationError = 'the peer sent no certificate';
      }
    }
    return new TlsSession(
      sslVersion(ssl),
      sslCipherName(ssl) ?? '',
      context.alpn ? sslAlpnSelected(ssl) : undefined,
      context.isServer ? sslServername(ssl) : this.target?.servername,
      sslSessionReused(ssl),
      authorized,
      authorizationError,
      der,
    );
  }

  private onTimeout(ctx: HandlerContext): void {
    this.timer = undefined;
    if (this.state !== HANDSHAKING) return;
    this.state = FAILED;
    const ms = this.context.handshakeTimeout;
    this.context.countFailure('handshake timeout', `no handshake within ${ms} ms`, peerOf(ctx));
    this.settle(new TlsHandshakeError('handshake timeout', `no handshake within ${ms} ms`));
    // A peer that stalls would not read an alert either: close now, without lingering for it.
    ctx.channel.abort('idle-timeout');
  }

  /**
   * The handshake failed (or a record did, after it): count it, send what OpenSSL queued (its
   * alert) — or a plaintext 400 to a plain HTTP request — and close.
   */
  private fail(ctx: HandlerContext, reason: string, detail: string, errors: readonly OpensslError[]): void {
    const during = this.state === HANDSHAKING;
    this.state = FAILED;
    this.timer?.cancel();
    this.timer = undefined;
    const first = errors[0];
    const why = reason !== '' ? reason : (first?.reasonText ?? 'protocol error');
    const what = detail !== '' ? detail : (first?.text ?? '');
    let verifyError: string | undefined;
    if (why === 'certificate verify failed' && this.conn !== null) {
      verifyError = verifyErrorString(sslVerifyResult(this.conn.ssl));
    }
    const full = verifyError !== undefined ? `${what}: ${verifyError}` : what;
    if (during) {
      this.context.countFailure(why, full, peerOf(ctx));
      this.settle(new TlsHandshakeError(why, full, verifyError));
    } else {
      this.context.logger.debug(`TLS connection ${ctx.channel.id} failed: ${why} (${full}); closing`);
    }
    if (this.conn !== null) this.drain(ctx);
    if (
      during &&
      this.context.isServer &&
      (first?.reason === SSL_R_HTTP_REQUEST || first?.reason === SSL_R_HTTPS_PROXY_REQUEST)
    ) {
      ctx.write(PLAIN_HTTP_400);
    }
    this.dropQueued();
    ctx.close('protocol-error');
  }

  /** Resolves or rejects those waiting for the handshake (undefined: it completed). */
  private settle(error: TlsHandshakeError | undefined): void {
    if (error !== undefined) this.failure ??= error;
    const waiters = this.waiters;
    if (waiters === undefined) return;
    this.waiters = undefined;
    for (const w of waiters) {
      if (error === undefined) w.resolve(this.session as TlsSession);
      else w.reject(error);
    }
  }

  // ---- records ----

  /** SSL_read until the read BIO is drained, handing the plaintext on in as few messages as fit. */
  private readRecords(ctx: HandlerContext): void {
    const conn = this.conn as SslConnection;
    const ssl = conn.ssl;
    const scratch = this.context.scratch;
    // SSL_read may write too: an alert, a KeyUpdate answer.
    this.unsent = true;
    let at = 0;
    for (;;) {
      const room = scratch.plain.length - at;
      const r = sslRead(ssl, scratch.plainAt(at), room);
      if (r > 0) {
        at += r;
        // A record shorter than the room was returned whole; with the read BIO empty there is no
        // further record to decrypt — asking would only return WANT_READ.
        if (r < room && bioPending(conn.rbio) === 0) break;
        if (scratch.plain.length - at < MIN_READ_ROOM) {
          this.deliver(ctx, at);
          at = 0;
          if (this.state !== OPEN) return;
        }
        continue;
      }
      const e = sslGetError(ssl, r);
      // WANT_READ: OpenSSL took all there was (ssl3_read_n reads the BIO dry before it asks for more).
      if (e === SSL_ERROR_WANT_READ) break;
      if (at > 0) {
        this.deliver(ctx, at);
        at = 0;
        if (this.state !== OPEN) return;
      }
      if (e === SSL_ERROR_ZERO_RETURN) {
        // close_notify: the peer sends no more. Acted on once this read completes.
        this.peerClosed = true;
        return;
      }
      this.fail(ctx, '', '', drainErrors());
      return;
    }
    // The read BIO is empty here (both ways out of the loop): renewing it is safe.
    if (this.readGrown) this.readEmptied();
    if (at > 0) this.deliver(ctx, at);
  }

  /** The read BIO, grown past BIO_KEEP, is empty: with `releaseBuffers`, give its buffer back. */
  private readEmptied(): void {
    this.readGrown = false;
    if (this.context.releaseBuffers && this.conn !== null) renewReadBio(this.conn);
  }

  /** Likewise the write BIO, drained. */
  private writeEmptied(): void {
    this.writeGrown = false;
    if (this.context.releaseBuffers && this.conn !== null) renewWriteBio(this.conn);
  }

  private deliver(ctx: HandlerContext, n: number): void {
    this.delivered = true;
    ctx.fireRead(this.context.scratch.plainView(n));
  }

  /**
   * Encrypts the queued plaintext: small writes copied together into one record, large ones a
   * record at a time — each SSL_write drained at once, so that the write BIO never holds more than
   * one record (it would keep the capacity of a whole large response otherwise). Then does what a
   * handler asked meanwhile (see `encrypting`).
   */
  private encrypt(ctx: HandlerContext): void {
    this.encrypting = true;
    while (this.outBytes > 0 && this.state === OPEN) {
      const out = this.out;
      const count = this.outCount;
      this.out = this.batch;
      this.batch = out;
      this.outCount = 0;
      this.outBytes = 0;
      this.encryptBatch(ctx, out, count);
    }
    this.encrypting = false;
    // The write BIO is empty: every SSL_write was drained.
    if (this.writeGrown) this.writeEmptied();
    if (this.state !== OPEN) this.dropQueued();
    const reason = this.closeAfter;
    if (reason !== undefined) {
      this.closeAfter = undefined;
      this.shutdownAfter = false;
      this.close(ctx, reason);
    } else if (this.shutdownAfter) {
      this.shutdownAfter = false;
      this.shutdownOutput(ctx);
    }
  }

  /** Seals `out[0, count)` and clears it. */
  private encryptBatch(ctx: HandlerContext, out: Uint8Array[], count: number): void {
    if (count === 1) {
      const b = out[0] as Uint8Array;
      out[0] = EMPTY;
      this.sealAll(ctx, b);
      return;
    }
    const gather = this.context.scratch.gather;
    let g = 0;
    let i = 0;
    // `gather` is shared by the thread's connections (another one may write from an event this
    // one raises): it never holds unsealed bytes across a `seal`, which is where events come from.
    for (; i < count; i++) {
      const b = out[i] as Uint8Array;
      out[i] = EMPTY;
      if (g + b.length <= gather.length) {
        gather.set(b, g);
        g += b.length;
        continue;
      }
      if (g > 0) {
        if (!this.seal(ctx, gather, g)) break;
        g = 0;
      }
      if (b.length >= gather.length) {
        if (!this.sealAll(ctx, b)) break;
      } else {
        gather.set(b, 0);
        g = b.length;
      }
    }
    if (i < count) out.fill(EMPTY, i + 1, count);
    else if (g > 0) this.seal(ctx, gather, g);
  }

  /** `seal`s all of `b`, a record at a time. False when the connection stopped being open. */
  private sealAll(ctx: HandlerContext, b: Uint8Array): boolean {
    const n = b.length;
    if (n <= MAX_RECORD_PLAINTEXT) return this.seal(ctx, b, n);
    for (let at = 0; at < n; at += MAX_RECORD_PLAINTEXT) {
      const end = Math.min(n, at + MAX_RECORD_PLAINTEXT);
      if (!this.seal(ctx, b.subarray(at, end), end - at)) return false;
    }
    return true;
  }

  /**
   * Encrypts the first `n` (≤ one record) bytes of `data` and hands the record — after whatever
   * OpenSSL had queued before it — to the connection. False when the connection stopped being
   * open: SSL_write failed (with memory BIOs only a fatal error does), or a handler closed the
   * channel from the writability event the connection's queue raised.
   */
  private seal(ctx: HandlerContext, data: Uint8Array, n: number): boolean {
    if (sslWrite((this.conn as SslConnection).ssl, data, n) <= 0) {
      this.fail(ctx, '', '', drainErrors());
      return false;
    }
    this.drain(ctx);
    return this.state === OPEN;
  }

  /** Moves what OpenSSL wrote (records, alerts, handshake messages) to the connection's queue. */
  private drain(ctx: HandlerContext): void {
    this.unsent = false;
    const scratch = this.context.scratch;
    for (;;) {
      // Re-read each time: the writability event of `ctx.write` may have closed the connection.
      const conn = this.conn;
      if (conn === null) return;
      const room = scratch.cipherRoom();
      const n = bioRead(conn.wbio, scratch.cipherTarget(), room);
      if (n <= 0) return;
      if (n > BIO_KEEP) this.writeGrown = true;
      ctx.write(scratch.takeCipher(n));
      if (n < room) return;
    }
  }

  /** SSL_shutdown: queues our close_notify. It returns 0 (sent) or 1 (both sent); only < 0 leaves errors. */
  private sendCloseNotify(): void {
    if (sslShutdown((this.conn as SslConnection).ssl) < 0) drainErrors();
  }

  /** Sends close_notify after what is queued, then closes the connection (it flushes first). */
  private closeTls(ctx: HandlerContext, reason: CloseReason): void {
    if (this.outBytes > 0) this.encrypt(ctx);
    if (this.state !== OPEN) {
      ctx.close(reason);
      return;
    }
    this.state = CLOSING;
    if (!this.outputShut) this.sendCloseNotify();
    this.drain(ctx);
    ctx.close(reason);
  }

  private dropQueued(): void {
    this.out.fill(EMPTY, 0, this.outCount);
    this.outCount = 0;
    this.outBytes = 0;
    this.closeAfter = undefined;
    this.shutdownAfter = false;
  }

  private release(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.dropQueued();
    const conn = this.conn;
    if (conn === null) return;
    this.conn = null;
    if (this.state < CLOSING) this.state = CLOSED;
    this.context.freeSsl(conn.ssl);
  }
}

/** The TLS session of a channel: `TlsHandler.of(channel)?.session`. */
export function tlsSession(channel: Channel): TlsSession | undefined {
  return TlsHandler.of(channel)?.session;
}

function peerOf(ctx: HandlerContext): string {
  const a = ctx.channel.remoteAddress;
  return a === undefined ? '' : a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}

function describe(msg: unknown): string {
  if (msg === null) return 'null';
  if (typeof msg === 'object') return (msg as object).constructor?.name ?? 'object';
  return typeof msg;
}
