/**
 * The master side of the benchmark apps (line-app.ts, http-app.ts): prints `listening on
 * HOST:PORT` once every worker is ready, then reads commands on stdin and answers on stdout, one
 * JSON line each:
 *   workers → "workers <json>",  stats → "stats <json>",  reload → "reload <json>",
 *   upgrade → "upgrade <new master pid>" (then exits) or "upgrade-failed <message>"
 */
import { createInterface } from 'node:readline';
import type { ServerHandle } from '../../src/index.js';

/** Serves the control commands when `server` is the master; nothing in a worker. */
export function controlFromStdin(server: ServerHandle): void {
  if (server.role !== 'master') return;
  const { address, port } = server.address();
  console.log(`listening on ${address}:${port}`);
  const say = (what: string, data: unknown) => console.log(`${what} ${JSON.stringify(data)}`);
  createInterface({ input: process.stdin }).on('line', (cmd) => {
    const c = cmd.trim();
    if (c === 'workers') say('workers', server.workers());
    else if (c === 'stats') server.collectStats().then((s) => say('stats', s));
    else if (c === 'reload') server.reload().then((r) => say('reload', r));
    else if (c === 'upgrade') {
      server.upgrade().then(
        (pid) => {
          say('upgrade', pid);
          process.exit(0);
        },
        (err: Error) => say('upgrade-failed', err.message),
      );
    }
  });
}
