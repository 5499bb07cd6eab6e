#!/usr/bin/env node
/**
 * multireactor: the operator's command line for a running master, through its control socket
 * (`Server.listen({ control })`, or next to its `pidFile`). docs/operations.md.
 *
 *   multireactor status  [--control PATH | --pid-file PATH] [--json]
 *   multireactor reload  [--control PATH | --pid-file PATH] [--json]
 *   multireactor stop    [--control PATH | --pid-file PATH] [--timeout SECONDS] [--json]
 *   multireactor metrics [--control PATH | --pid-file PATH]
 *
 * Exit status: 0 done; 1 the command failed (a reload whose new worker did not become ready, a
 * stop that failed) — the reason on stderr; 2 a usage error; 3 no master answers there.
 */
import { parseArgs } from 'node:util';
import { readPidFile } from '../ops/pid-file.js';
import { controlPathForPidFile, type ReloadResult, type StatusResult, type StopResult } from '../ops/protocol.js';
import { controlCall, UnreachableError } from './control-client.js';
import { formatStatus } from './format.js';

const USAGE = `usage: multireactor status|reload|stop|metrics [--control PATH | --pid-file PATH] [--json]
                    [--timeout SECONDS]   (stop: the drain deadline; default the master's drainTimeout)

  status    one row per worker process: slot, pid, generation, state, uptime, open connections,
            requests handled, RSS, restarts of its slot (--json: one object with a workers array)
  reload    replaces every worker by a new one and waits until it is done; exit status 1 and the
            reason when a new worker did not become ready (the old ones keep serving)
  stop      graceful stop: workers drain within the deadline, then the master exits
  metrics   the Prometheus exposition, as the admin listener's /metrics serves it

  --control PATH    the master's control socket (Server.listen({ control }))
  --pid-file PATH   the master's pid file; its control socket is next to it
                    (/run/app.pid -> /run/app.ctl.sock)

exit status: 0 done, 1 the command failed, 2 usage error, 3 no master answers at that socket
`;

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_UNREACHABLE = 3;

function usageError(message: string): never {
  process.stderr.write(`multireactor: ${message}\n\n${USAGE}`);
  process.exit(EXIT_USAGE);
}

function fail(message: string, status = EXIT_FAILED): never {
  process.stderr.write(`multireactor: ${message}\n`);
  process.exit(status);
}

function controlPath(values: { control?: string; 'pid-file'?: string }): string {
  if (values.control !== undefined && values['pid-file'] !== undefined) {
    usageError('give --control or --pid-file, not both');
  }
  if (values.control !== undefined) return values.control;
  const pidFile = values['pid-file'];
  if (pidFile === undefined) usageError('say where the master is: --control PATH or --pid-file PATH');
  let pid: number | undefined;
  try {
    pid = readPidFile(pidFile);
  } catch (err) {
    fail(`cannot read the pid file ${pidFile}: ${(err as Error).message}`, EXIT_UNREACHABLE);
  }
  if (pid === undefined) fail(`the pid file ${pidFile} names no pid`, EXIT_UNREACHABLE);
  return controlPathForPidFile(pidFile);
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      allowPositionals: true,
      strict: true,
      options: {
        control: { type: 'string' },
        'pid-file': { type: 'string' },
        json: { type: 'boolean', default: false },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  }
  try {
    parsed = parse();
  } catch (err) {
    usageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  if (positionals.length !== 1) usageError(positionals.length === 0 ? 'which command?' : 'one command at a time');
  const cmd = positionals[0] as string;
  if (cmd !== 'status' && cmd !== 'reload' && cmd !== 'stop' && cmd !== 'metrics') {
    usageError(`unknown command ${JSON.stringify(cmd)}`);
  }
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    if (cmd !== 'stop') usageError('--timeout goes with stop');
    if (!/^[0-9]+(\.[0-9]+)?$/.test(values.timeout)) {
      usageError(`--timeout must be a number of seconds, got ${JSON.stringify(values.timeout)}`);
    }
    timeoutMs = Math.round(Number(values.timeout) * 1000);
  }
  const path = controlPath(values);
  let reply: Awaited<ReturnType<typeof controlCall>>;
  try {
    reply = await controlCall(path, cmd, {
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
      // status and metrics ask every worker (2 s each at most); reload and stop take what they take.
      ...(cmd === 'status' || cmd === 'metrics' ? { waitMs: 15_000 } : {}),
      // After a stop's answer the master closes the socket as it exits.
      ...(cmd === 'stop' ? { awaitCloseMs: 5000 } : {}),
    });
  } catch (err) {
    fail((err as Error).message, err instanceof UnreachableError ? EXIT_UNREACHABLE : EXIT_FAILED);
  }
  if (!reply.ok) fail(`${cmd} failed: ${reply.error}`);
  const json = values.json === true;
  switch (cmd) {
    case 'status': {
      const s = reply.result as StatusResult;
      process.stdout.write(json ? `${JSON.stringify(s)}\n` : formatStatus(s));
      return;
    }
    case 'metrics':
      process.stdout.write((reply.result as { text: string }).text);
      return;
    case 'reload': {
      const r = reply.result as ReloadResult;
      if (json) process.stdout.write(`${JSON.stringify(r)}\n`);
      if (!r.ok) fail(`reload failed after ${r.durationMs} ms: ${r.error}; the workers before it keep serving`);
      if (!json) {
        const swaps = r.replaced.map((x) => `slot ${x.slot}: ${x.oldPid ?? '(none)'} -> ${x.newPid}`);
        process.stdout.write(
          `reloaded in ${r.durationMs} ms${swaps.length > 0 ? `: ${swaps.join(', ')}` : ' (every worker was already fresh)'}\n`,
        );
      }
      return;
    }
    case 'stop': {
      const r = reply.result as StopResult;
      process.stdout.write(json ? `${JSON.stringify(r)}\n` : `stopped in ${r.durationMs} ms (${r.reason})\n`);
      return;
    }
  }
}

await main();
