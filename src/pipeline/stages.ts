/**
 * Stages a server puts in front of the user's pipeline on every connection it accepts: the PROXY
 * protocol decoder, then TLS — `proxy-protocol → tls → the user's handlers`. The PROXY header
 * comes first on the wire, in clear, before any TLS record (haproxy's proxy-protocol.txt §2: the
 * header is "prepended before any data"), and TLS must hand plaintext to the user's decoders.
 *
 * The server builds its stages once, at `listen` (validating their options there), and each
 * connection asks each stage for a handler of its own after the user's pipeline was built
 * (`initChannel` or the factory) and before `onActive`: whatever the user's pipeline added first,
 * the stages sit between it and the socket.
 */
import type { PackedAddress } from '../syscalls/sockaddr.js';
import type { Channel } from './channel.js';
import type { ChannelHandler } from './handler.js';
import type { Pipeline } from './pipeline.js';

/** One stage before the user's pipeline (see the module comment). */
export interface ServerStage {
  /** The handler's name in the pipeline (`'proxy-protocol'`, `'tls'`): unique, so the user's names must differ. */
  readonly name: string;
  /**
   * This connection's handler, or undefined for none. Runs after the user's pipeline was built and
   * before `onActive`; throwing closes the connection (logged as a failed pipeline initialisation).
   * `socketPeer` is the peer as accept(2) gave it, packed: a stage that decides by the peer (the
   * PROXY stage's trust) reads it without making the address's text.
   */
  create(channel: Channel, socketPeer: PackedAddress): ChannelHandler | undefined;
  /** Frees what the stage holds for the whole server (TLS: its SSL_CTX); called once, when the server closes. */
  close?(): void;
  /** The stage's counters, shown under its name in the server's `stats()` (TLS: handshakes). */
  stats?(): unknown;
}

/** Puts the stages' handlers at the head of `pipeline`, in order: the first one nearest the socket. */
export function installStages(
  pipeline: Pipeline,
  channel: Channel,
  socketPeer: PackedAddress,
  stages: readonly ServerStage[],
): void {
  let prev: string | undefined;
  for (const stage of stages) {
    const handler = stage.create(channel, socketPeer);
    if (handler === undefined) continue;
    if (prev === undefined) pipeline.addFirst(stage.name, handler);
    else pipeline.addAfter(prev, stage.name, handler);
    prev = stage.name;
  }
}
