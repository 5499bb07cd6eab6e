/**
 * Codecs: decoders turn bytes into messages, encoders messages into bytes.
 */
export { ByteCursor, ByteToMessageDecoder } from './byte-to-message-decoder.js';
export {
  JsonLinesDecoder,
  type JsonLinesDecoderOptions,
  JsonLinesEncoder,
  type JsonLinesEncoderOptions,
} from './json-lines.js';
export {
  type ByteOrder,
  LengthFieldFrameDecoder,
  type LengthFieldFrameDecoderOptions,
  LengthFieldPrepender,
  type LengthFieldPrependerOptions,
  readLength,
} from './length-field.js';
export {
  DelimiterFrameDecoder,
  type DelimiterFrameDecoderOptions,
  LineEncoder,
  type LineEncoderOptions,
  LineFrameDecoder,
  type LineFrameDecoderOptions,
} from './line.js';
export { type Encoded, MessageToByteEncoder } from './message-to-byte-encoder.js';
export {
  RespDecoder,
  type RespDecoderOptions,
  RespEncoder,
  RespError,
  RespProtocolError,
  RespSimpleString,
  type RespValue,
} from './resp.js';
export { type StringCodecOptions, StringDecoder, StringEncoder } from './string.js';
