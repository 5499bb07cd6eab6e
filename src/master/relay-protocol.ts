/**
 * The frames of the pub/sub relay between a master and its workers (relay.ts; the worker side is
 * src/pubsub/cluster.ts), on one AF_UNIX stream socket pair per worker:
 *
 * ```
 * +----------------+------+---------------+----------------+------------------------------+
 * | length (u32 BE)| op   | name len (u16)| name (UTF-8)   | message (PUB only, envelope) |
 * +----------------+------+---------------+----------------+------------------------------+
 *   length counts everything after itself
 * ```
 *
 * Worker → master: SUB/UNSUB a topic, PSUB/PUNSUB a pattern (the worker's first local subscriber
 * came, its last one left), PUB a message. Master → worker: PUB only — the very bytes a worker
 * sent, forwarded to every other worker with a matching subscription, never re-encoded. The
 * master reads the op and the name; the message is opaque to it.
 */

export const RELAY_PUB = 1;
export const RELAY_SUB = 2;
export const RELAY_UNSUB = 3;
export const RELAY_PSUB = 4;
export const RELAY_PUNSUB = 5;

/** Bytes before the name: length, op, name length. */
export const RELAY_HEAD = 7;
/** Longest name (the 16-bit field). */
export const RELAY_MAX_NAME = 0xffff;

/** Frames longer than this (message included) are refused by the master: the sender is broken. */
export const RELAY_MAX_FRAME = 512 * 1024 * 1024;
