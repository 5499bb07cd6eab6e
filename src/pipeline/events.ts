/**
 * User events the framework itself fires through pipelines (`onUserEvent`).
 */

/**
 * The server is stopping or reloading: finish what you are doing and close politely. Fired
 * once on every open connection of a draining worker, after it stopped accepting.
 *
 * A protocol handler that can close more politely than "now" consumes it (does not pass it on):
 * an HTTP server answers the request in flight with `Connection: close` and closes idle keep-alive
 * connections at once; a line protocol can say "bye" with its next answer. If nobody consumes it, the tail closes the connection gracefully (flush,
 * FIN, linger) with reason `shutdown`. Connections still open at the drain deadline are aborted.
 */
export class ServerDrainingEvent {
  toString(): string {
    return 'ServerDrainingEvent';
  }
}

/** The one draining event (compare with `===` or `instanceof ServerDrainingEvent`). */
export const DRAINING = new ServerDrainingEvent();
