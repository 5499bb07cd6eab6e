/**
 * Which pipelines wait for the client to speak first. A server's listening socket may then defer
 * accepting a connection until its first bytes arrive (`deferAccept`, TCP_DEFER_ACCEPT in tcp(7)):
 * harmless when the protocol starts with the client's bytes — an HTTP request (RFC 9112 §2.1: the
 * client sends the request, the server only answers) — and a stall of the whole deferral period
 * for one where the server speaks first (an SMTP greeting, MySQL's handshake packet). The factories
 * that know it (`http()`, `httpOffload()`, `websocket()`) mark what they return; a pipeline nobody
 * marked is not assumed either way.
 */
import type { PipelineSpec } from './pipeline.js';

const clientFirst = new WeakSet<PipelineSpec>();

/** Marks `spec` as a protocol whose client always sends first; returns it. */
export function markClientSpeaksFirst<T extends PipelineSpec>(spec: T): T {
  clientFirst.add(spec);
  return spec;
}

/** Whether `spec` was marked by {@link markClientSpeaksFirst}. */
export function clientSpeaksFirst(spec: PipelineSpec): boolean {
  return clientFirst.has(spec);
}
