/**
 * The readiness backend of a loop. Two implementations: `EpollPoller` (default) and
 * `PollPoller` (poll(2), the portable fallback). The loop above never says "epoll".
 *
 * Contract every backend provides (both pass the same integration suite):
 *
 * - Events use one vocabulary, the `EPOLL*` bits (`READABLE`, `WRITABLE`, `READ_CLOSED`,
 *   `HANGUP`, `ERROR` below); poll(2)'s `POLL*` bits have the same values on Linux.
 * - `register(fd, token, interest)` starts watching; events arrive as
 *   `dispatch(fd, token, events)` with the token given at registration. A token never repeats
 *   for a reused descriptor number, so the owner drops events whose token is stale (a
 *   connection closed and its number reused inside one batch).
 * - `HANGUP` and `ERROR` are reported whatever the interest, as epoll(7) and poll(2) do.
 * - Level-triggered by default: readiness is reported for as long as it lasts. With the
 *   `EDGE` bit in the interest, a direction is reported once, and again only after the owner
 *   hit `EAGAIN` in that direction — and then called `rearm` (a no-op for epoll, which tracks
 *   this in the kernel; poll(2) emulates it, as mio does on platforms without edge triggering).
 * - `deregister(fd, closing)` stops watching. With `closing`, the descriptor is about to be
 *   closed, which removes it from an epoll set by itself (epoll(7), Q6: the last reference to
 *   the open file goes), so no syscall is spent on it.
 * - `yieldAfterBatch()` during a dispatch: no more batches in this wake-up.
 * - `start(dispatch, afterBatch)` begins delivering events from Node's own event loop;
 *   `afterBatch(polls)` runs once after each wake-up, with the number of readiness queries it
 *   made (epoll may ask again within one wake-up). `close()` releases the backend.
 */

export const READABLE = 0x001;
export const WRITABLE = 0x004;
export const ERROR = 0x008;
export const HANGUP = 0x010;
/** The peer shut down its writing half (EPOLLRDHUP / POLLRDHUP). */
export const READ_CLOSED = 0x2000;
/** Register only one of the sockets sharing an accept queue for each wake-up (EPOLLEXCLUSIVE). */
export const EXCLUSIVE = 1 << 28;
/** Edge-triggered (EPOLLET). */
export const EDGE = 0x80000000;

export type Dispatch = (fd: number, token: number, events: number) => void;

/** A loop's readiness backend (`LoopOptions.poller`): epoll(7), or poll(2) as the portable fallback. */
export type PollerKind = 'epoll' | 'poll';

export interface Poller {
  readonly kind: PollerKind;
  start(dispatch: Dispatch, afterBatch: (polls: number) => void): void;
  /** Returns 0 or -errno. */
  register(fd: number, token: number, interest: number): number;
  /** Returns 0 or -errno. */
  modify(fd: number, token: number, interest: number): number;
  /** Returns 0 or -errno. */
  deregister(fd: number, closing: boolean): number;
  /** Edge mode: the owner drained `direction` (hit EAGAIN) and wants to hear of it again. */
  rearm(fd: number, token: number, direction: number): void;
  /** Whether `rearm` does anything (lets the hot path skip the call). */
  readonly needsRearm: boolean;
  /**
   * Something in the batch being dispatched used its share of this wake-up (a connection its
   * `maxReadPerWakeup`, the acceptor its `maxAcceptsPerWakeup`): hand back to Node's loop after
   * this batch rather than asking for more, so that timers and IPC run before it goes on.
   */
  yieldAfterBatch(): void;
  /** Stops delivery and releases every descriptor the poller owns. */
  close(): Promise<void>;
}
