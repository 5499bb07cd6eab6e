/**
 * What the HTTP benchmark's reference servers share: the primary of a node:cluster baseline, and
 * the C reference server's pre-rendered reply.
 */
import { Buffer } from 'node:buffer';
import cluster from 'node:cluster';

/**
 * Runs the primary of a node:cluster baseline: forks `workers`, prints `listening on
 * 127.0.0.1:PORT` once all of them listen, and takes them down on SIGTERM.
 */
export function runPrimary(workers: number): void {
  let ready = 0;
  for (let i = 0; i < workers; i++) {
    cluster.fork().on('listening', (a) => {
      if (++ready === workers) console.log(`listening on 127.0.0.1:${a.port}`);
    });
  }
  process.on('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    process.exit(0);
  });
}

/** Most responses one write carries: a pipelined batch beyond it takes several writes. */
export const MAX_BATCH = 64;

/**
 * The reply of the C reference server, rendered once (its Date is the start's, as the C server's
 * is): one response, and `MAX_BATCH` of them back to back for a pipelined batch in one write.
 */
export function cannedReply(server: string): { readonly one: Buffer; readonly batch: Buffer } {
  const one = Buffer.from(
    `HTTP/1.1 200 OK\r\nServer: ${server}\r\nDate: ${new Date().toUTCString()}\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!`,
    'latin1',
  );
  return { one, batch: Buffer.concat(Array.from({ length: MAX_BATCH }, () => one)) };
}
