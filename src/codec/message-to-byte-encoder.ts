/**
 * Encoder base: turns outbound messages of one type into bytes; other messages pass through.
 */
import { ChannelOutboundHandler } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';

/** What `encode` may return: one chunk, several (written in order, coalesced on flush), or nothing. */
export type Encoded = Uint8Array | string | readonly (Uint8Array | string)[] | undefined;

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
