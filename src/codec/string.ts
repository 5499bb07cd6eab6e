/**
 * Text codecs: bytes → strings and strings → bytes (Netty's `StringDecoder` / `StringEncoder`),
 * for simple text protocols. Put a frame decoder before the `StringDecoder` (a `LineFrameDecoder`
 * for line protocols): it turns whatever messages it gets into strings, one per message.
 */
import { Buffer } from 'node:buffer';
import { StringDecoder as NodeStringDecoder } from 'node:string_decoder';
import { InvalidOptionError } from '../common/errors.js';
import { checkOptions, describeValue, type OptionKeys } from '../common/options.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import type { HandlerContext } from '../pipeline/pipeline.js';
import { type Encoded, MessageToByteEncoder } from './message-to-byte-encoder.js';

/**
 * The character encoding of `StringDecoder` and `StringEncoder`: a Buffer encoding name, checked in
 * their constructors (`InvalidOptionError`).
 */
export interface StringCodecOptions {
  /** Default `'utf8'`. */
  readonly encoding?: BufferEncoding;
}

/** The keys of `StringCodecOptions` (common/options.ts: kept in step with the interface by `tsc`). */
export const STRING_CODEC_OPTIONS = { encoding: true } as const satisfies OptionKeys<StringCodecOptions>;

function encodingOption(owner: string, options: StringCodecOptions): BufferEncoding {
  const encoding = checkOptions(owner, options, STRING_CODEC_OPTIONS).encoding ?? 'utf8';
  if (typeof encoding !== 'string' || !Buffer.isEncoding(encoding)) {
    throw new InvalidOptionError(
      'encoding',
      `must be a Buffer encoding ('utf8', 'latin1' …), got ${describeValue(encoding)}`,
    );
  }
  return encoding;
}

/**
 * Decodes each `Uint8Array` message to a string; other messages pass through.
 *
 * Unlike Netty's (which decodes each message on its own), it keeps the bytes of a character
 * split between two messages and completes it with the next one (a `node:string_decoder` per
 * handler, so per connection): it can sit right after the socket, where reads split characters
 * anywhere. A message that holds only the start of a character yields nothing; an empty message
 * yields `''` (an empty line from a `LineFrameDecoder`). When the input ends (FIN or close) a
 * character left incomplete is emitted as U+FFFD.
 */
export class StringDecoder extends ChannelInboundHandler {
  readonly encoding: BufferEncoding;
  private readonly decoder: NodeStringDecoder;

  constructor(options: StringCodecOptions = {}) {
    super();
    this.encoding = encodingOption('StringDecoder', options);
    this.decoder = new NodeStringDecoder(this.encoding);
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    if (!(msg instanceof Uint8Array)) {
      ctx.fireRead(msg);
      return;
    }
    if (msg.byteLength === 0) {
      ctx.fireRead('');
      return;
    }
    // write() copies the bytes of an incomplete character it keeps, so a borrowed read buffer is fine.
    const text = this.decoder.write(msg);
    if (text.length > 0) ctx.fireRead(text);
  }

  override onInputShutdown(ctx: HandlerContext): void {
    this.emitRemainder(ctx);
    ctx.fireInputShutdown();
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.emitRemainder(ctx);
    ctx.fireInactive(reason);
  }

  private emitRemainder(ctx: HandlerContext): void {
    const rest = this.decoder.end();
    if (rest.length > 0) ctx.fireRead(rest);
  }
}

/** Encodes each string message to bytes; other messages pass through. */
export class StringEncoder extends MessageToByteEncoder<string> {
  readonly encoding: BufferEncoding;

  constructor(options: StringCodecOptions = {}) {
    super();
    this.encoding = encodingOption('StringEncoder', options);
  }

  protected override acceptOutboundMessage(msg: unknown): msg is string {
    return typeof msg === 'string';
  }

  protected override encode(_ctx: HandlerContext, msg: string): Encoded {
    return Buffer.from(msg, this.encoding);
  }
}
