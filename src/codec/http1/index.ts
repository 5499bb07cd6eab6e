/**
 * HTTP/1.1: the request decoder and what it produces.
 */

export { HttpBodyChunk, HttpRequestBody } from './body.js';
export { HttpHeaders } from './headers.js';
export * from './request.js';
export { HttpDecoderConfig, HttpRequestDecoder, type HttpRequestDecoderOptions } from './request-decoder.js';
export { type RouteHandler, Router, type RouterOptions, router } from './router.js';
