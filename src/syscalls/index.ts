/**
 * The operating-system corner. Everything that calls into libc lives in this folder; the rest of
 * the framework imports from here. (Only libc.ts imports koffi.)
 */
export * as constants from './constants.js';
export { LAYOUT, layoutFor, type StructLayout, SUPPORTED_ARCHES } from './constants.js';
export * as sys from './libc.js';
export {
  decodeSockaddr,
  encodeSockaddr,
  formatIPv4,
  formatIPv6,
  ipFamily,
  type ParsedIPv6,
  parseIPv4,
  parseIPv6,
  type SocketAddress,
} from './sockaddr.js';
export * from './socket.js';
