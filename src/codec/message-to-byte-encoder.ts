/**
 * Encoder base: turns outbound messages of one type into bytes; other messages pass through.
 */
import { ChannelOutboundHandler } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';

/** What `encode` may return: one chunk, several (written in order, coalesced on flush), or nothing. */
export type Encoded = Uint8Array | string | readonly (Uint8Array | string)[] | undefined;

/**
 * Base of encoders: turns outbound messages of type `O` into bytes in `encode`; messages it does
 * not accept (`acceptOutboundMessage`, everything by default) pass through untouched. The bytes
 * returned are written in order and leave together on flush (the connection gathers chunks into
 * one write), so return a header and a payload as two chunks rather than concatenating them.
 * Returning `undefined` writes nothing. A throw from
 * `encode` goes to `onError` of the handlers after the encoder, towards the tail (on a client,
 * `RequestResponseHandler` rejects the request that was being written with it).
 *
 * @example
 * ```ts
 * import { type HandlerContext, MessageToByteEncoder } from 'multireactor';
 *
 * // Writes each { type, payload } message as a 1-byte type, a 2-byte length, then the payload.
 * class PacketEncoder extends MessageToByteEncoder<{ type: number; payload: Buffer }> {
 *   protected override acceptOutboundMessage(msg: unknown): msg is { type: number; payload: Buffer } {
 *     return typeof msg === 'object' && msg !== null && 'payload' in msg;
 *   }
 *   protected override encode(_ctx: HandlerContext, msg: { type: number; payload: Buffer }) {
 *     const header = Buffer.alloc(3);
 *     header[0] = msg.type;
 *     header.writeUInt16BE(msg.payload.length, 1);
 *     return [header, msg.payload];
 *   }
 * }
 * ```
 */
export abstract class MessageToByteEncoder<O = unknown> extends ChannelOutboundHandler {
  /** Whether this encoder handles `msg`; the default accepts everything. */
  protected acceptOutboundMessage(_msg: unknown): _msg is O {
    return true;
  }

  /** Encodes one message. */
  protected abstract encode(ctx: HandlerContext, msg: O): Encoded;

  override write(ctx: HandlerContext, msg: unknown): void {
    if (!this.acceptOutboundMessage(msg)) {
      ctx.write(msg);
      return;
    }
    const bytes = this.encode(ctx, msg);
    if (bytes === undefined) return;
    if (typeof bytes === 'string' || bytes instanceof Uint8Array) {
      ctx.write(bytes);
      return;
    }
    for (const chunk of bytes) ctx.write(chunk);
  }
}
