/**
 * Codecs: decoders turn bytes into messages, encoders messages into bytes.
 */
export { ByteCursor, ByteToMessageDecoder } from './byte-to-message-decoder.js';
export {
  type ByteOrder,
  LengthFieldFrameDecoder,
  type LengthFieldFrameDecoderOptions,
  LengthFieldPrepender,
  type LengthFieldPrependerOptions,
  readLength,
} from './length-field.js';
export { type Encoded, MessageToByteEncoder } from './message-to-byte-encoder.js';
