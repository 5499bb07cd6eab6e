export { OffloadAbortedError, OffloadOverloadedError, OffloadTaskError } from './errors.js';
export { OffloadHandler, type OffloadHandlerOptions } from './handler.js';
export {
  type HttpOffloadOptions,
  httpOffload,
  type Offload,
  type OffloadingHttpHandler,
} from './http.js';
export type { OffloadOptions, OffloadPoolOptions } from './options.js';
export { destroyOffloadPools, type OffloadPoolStats, offloadStats } from './pool.js';
export type { OffloadSessionStats } from './session.js';
export { exclusive, ownsBuffer, type TransferMode } from './transfer.js';
