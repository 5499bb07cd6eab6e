/**
 * What the Netty vector suites record: each frame as hex, each error by the kind the vectors name.
 */
import { CorruptedFrameError, TooLongFrameError } from '../../../src/common/errors.js';
import { ChannelInboundHandler } from '../../../src/pipeline/handler.js';
import type { HandlerContext } from '../../../src/pipeline/pipeline.js';

export class VectorEvents extends ChannelInboundHandler {
  readonly log: string[] = [];
  /** `length` of every TooLongFrameError, in order. */
  readonly tooLongLengths: number[] = [];

  override onRead(_ctx: HandlerContext, msg: unknown): void {
    this.log.push(`frame:${Buffer.from(msg as Uint8Array).toString('hex')}`);
  }

  override onError(_ctx: HandlerContext, error: unknown): void {
    if (error instanceof TooLongFrameError) this.tooLongLengths.push(error.length);
    const kind =
      error instanceof TooLongFrameError
        ? 'TooLongFrame'
        : error instanceof CorruptedFrameError
          ? 'Corrupted'
          : `unexpected ${String(error)}`;
    this.log.push(`error:${kind}`);
  }
}
