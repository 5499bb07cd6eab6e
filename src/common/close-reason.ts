/**
 * Close reasons: a leaf, so that errors (ChannelClosedError carries one) and every layer can name
 * them without importing the pipeline.
 */

/**
 * Why a channel closed; handed to `onInactive` and counted per reason in the loop's stats.
 *
 * - `peer-closed`: the peer sent FIN (read() returned 0) and we closed after flushing.
 * - `reset`: the peer reset the connection (ECONNRESET, EPIPE, EPOLLHUP/EPOLLERR).
 * - `local`: `close()` was called by a handler or the application.
 * - `aborted`: `abort()`/`reset()`, or a graceful close that missed its deadline.
 * - `idle-timeout`: an idle handler closed a silent connection.
 * - `heartbeat`: pings went unanswered.
 * - `timeout`: the kernel gave up (ETIMEDOUT from TCP keepalive or TCP_USER_TIMEOUT).
 * - `protocol-error`: a decoder rejected the input.
 * - `error`: a handler's error reached the tail unhandled, or an unexpected syscall failure.
 * - `shutdown`: the server is stopping.
 */
export type CloseReason =
  | 'peer-closed'
  | 'reset'
  | 'local'
  | 'aborted'
  | 'idle-timeout'
  | 'heartbeat'
  | 'timeout'
  | 'protocol-error'
  | 'error'
  | 'shutdown';

/**
 * Every {@link CloseReason}: the keys of `stats().closed`, where each process counts its closes
 * per reason, and the `reason` label values of the `connections_closed_total` metric — iterate
 * this list to show them all, zeros included.
 */
export const CLOSE_REASONS: readonly CloseReason[] = [
  'peer-closed',
  'reset',
  'local',
  'aborted',
  'idle-timeout',
  'heartbeat',
  'timeout',
  'protocol-error',
  'error',
  'shutdown',
];
