/**
 * What the HTTP/1.1 decoder tests share: a handler that records everything the decoder passes on.
 */

import { HttpRequest, HttpRequestProgress } from '../../../src/codec/http1/request.js';
import { HttpRequestDecoder, type HttpRequestDecoderOptions } from '../../../src/codec/http1/request-decoder.js';
import { EmbeddedChannel } from '../../../src/pipeline/embedded.js';
import { ChannelInboundHandler } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';

/** Records, in order, the requests, raw bytes (after an upgrade), errors and user events that reach it. */
export class Recorder extends ChannelInboundHandler {
  readonly requests: HttpRequest[] = [];
  readonly errors: unknown[] = [];
  /** Bytes passed on raw (copied: they may be views of a buffer that is reused). */
  readonly raw: Buffer[] = [];
  readonly events: unknown[] = [];
  /**
   * The decoder's progress signals for the server stage's clocks (`HttpRequestProgress`), kept
   * apart: they say when a request spans reads, which depends on how the bytes were cut, while
   * `order` must not.
   */
  readonly progress: HttpRequestProgress[] = [];
  /** What arrived, in order: 'request', 'raw', 'error', 'event', or 'other' (a bug). */
  readonly order: string[] = [];

  override onRead(_ctx: HandlerContext, msg: unknown): void {
    if (msg instanceof HttpRequest) {
      this.requests.push(msg);
      this.order.push('request');
    } else if (msg instanceof Uint8Array) {
      this.raw.push(Buffer.from(msg));
      this.order.push('raw');
    } else {
      this.order.push('other');
    }
  }

  override onError(_ctx: HandlerContext, error: unknown): void {
    this.errors.push(error);
    this.order.push('error');
  }

  override onUserEvent(_ctx: HandlerContext, event: unknown): void {
    if (event instanceof HttpRequestProgress) {
      this.progress.push(event);
      return;
    }
    this.events.push(event);
    this.order.push('event');
  }

  /** The raw bytes passed on, joined. */
  rawBytes(): Buffer {
    return Buffer.concat(this.raw);
  }
}

/**
 * Decoder options for the framing tests: `requireHostHeader: false`. llhttp's vectors (52 of its
 * HTTP/1.1 requests have no Host — llhttp does not check it) and most requests written for these
 * tests are about framing, which Host does not change. A server answers an HTTP/1.1 request without
 * Host 400 (RFC 9112 §3.2; the decoder's default): the Host tests in limits.test.ts check that rule,
 * and the vector and Garden suites run again under the default to show what a server answers them.
 * Duplicate and malformed Host fields are refused either way.
 */
export const FRAMING: HttpRequestDecoderOptions = { requireHostHeader: false };

/** A decoder and a recorder in an embedded channel, fed `writes` one by one (the channel stays open). */
export function decode(
  writes: readonly Buffer[],
  options: HttpRequestDecoderOptions = {},
): { ch: EmbeddedChannel; rec: Recorder; decoder: HttpRequestDecoder } {
  const decoder = new HttpRequestDecoder({ ...FRAMING, ...options });
  const rec = new Recorder();
  const ch = new EmbeddedChannel([decoder, rec]);
  for (const w of writes) ch.writeInbound(w);
  return { ch, rec, decoder };
}

/** latin1: one character per byte. */
export const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
