/**
 * Restart latency: how long after `kill -9` of a worker its replacement serves, for multireactor's
 * master (benchmarks/common/line-app.ts) and for node:cluster (node-cluster.ts, which re-forks a
 * dead worker at once). Each round starts a fresh master with two workers and kills
 *   1. the worker of slot 0 (its first crash in the crash window),
 *   2. the worker of slot 1 (first crash too),
 *   3. slot 0's replacement (the second crash of that slot within the window: backoff applies),
 * waiting each time until the new worker answers. "Serves" is measured from the outside, the same
 * way for both: after the kill, 4 client loops open a connection, send `req 1` and read the answer,
 * again every 5 ms (a connection not answered within 250 ms is dropped and retried), until one is
 * answered by a pid that did not exist before. Under SO_REUSEPORT a
 * connection hashed to the dead worker's socket waits in its queue until the replacement accepts
 * it, so the first such answer is the replacement's first accept.
 *
 *   npm run build && node dist/benchmarks/reload/restart.js --rounds 5
 *
 * Prints the samples and their medians per server and kind of kill (ms), and what multireactor's
 * master logged about each restart: ms from the worker's exit to its replacement's ready, and of
 * that the replacement's own start (fork → ready).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptCli } from '../common/cli.js';

const here = dirname(fileURLToPath(import.meta.url));
const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '5' },
});

const SERVERS = [
  { key: 'multireactor', args: [join(here, '..', 'common', 'line-app.js')] },
  { key: 'node:cluster', args: [join(here, 'node-cluster.js'), '--protocol', 'line'] },
] as const;
const KILLS = ['slot 0, first crash', 'slot 1, first crash', 'slot 0 again, second crash'] as const;

interface Started {
  readonly child: ChildProcess;
  readonly port: number;
  workers(): Promise<number[]>;
  /** What the master logged so far. */
  stderr(): string;
}

async function start(args: readonly string[]): Promise<Started> {
  const child = spawn(process.execPath, [...args, '--workers', '2', '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const port = await new Promise<number>((resolve, reject) => {
    const poll = setInterval(() => {
      const m = /listening on .*:(\d+)/.exec(out);
      if (m) {
        clearInterval(poll);
        resolve(Number(m[1]));
      }
    }, 5);
    child.once('exit', (code) => {
      clearInterval(poll);
      reject(new Error(`${args[0]} exited with ${code}`));
    });
  });
  const workers = async (): Promise<number[]> => {
    const from = out.length;
    child.stdin?.write('workers\n');
    for (;;) {
      const m = /^workers (.*)$/m.exec(out.slice(from));
      if (m) {
        const rows = JSON.parse(m[1] as string) as Array<{ pid: number; state: string; slot?: number }>;
        return rows.filter((w) => w.state === 'ready').map((w) => w.pid);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { child, port, workers, stderr: () => err };
}

/**
 * One request on a new connection: the answering pid, or undefined when the connection failed or
 * was not answered within 250 ms (node:cluster's master may hand a connection to the worker that
 * was just killed, before it learns of the exit: that connection is never answered).
 */
function askPid(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
    let got = '';
    const timer = setTimeout(() => done(undefined), 250);
    const done = (pid: number | undefined) => {
      clearTimeout(timer);
      s.destroy();
      resolve(pid);
    };
    s.on('connect', () => s.write('req 1\n'));
    s.on('data', (d: Buffer) => {
      got += d.toString();
      const line = got.split('\n')[0] as string;
      if (got.includes('\n')) done(Number(line.split(' ')[1]));
    });
    s.on('error', () => done(undefined));
    s.on('close', () => done(undefined));
  });
}

/** Kills `victim` and resolves with the ms until a pid not in `known` answers. */
async function killAndTime(port: number, victim: number, known: ReadonlySet<number>): Promise<number> {
  const t0 = performance.now();
  process.kill(victim, 'SIGKILL');
  let found: number | undefined;
  const loop = async () => {
    while (found === undefined) {
      const pid = await askPid(port);
      if (pid !== undefined && !known.has(pid)) found ??= performance.now() - t0;
      else await new Promise((r) => setTimeout(r, 5));
    }
  };
  await Promise.all(Array.from({ length: 4 }, loop));
  return found as number;
}

/** multireactor's own account of each restart: ms from the exit to ready, and of that the start. */
const RESTART_LINE = /ready after a restart: (\d+) ms after the crash, (\d+) ms to start/g;
const ownAccount: Array<[number, number]> = [];

async function round(args: readonly string[]): Promise<number[]> {
  const s = await start(args);
  const known = new Set<number>();
  const samples: number[] = [];
  try {
    await new Promise((r) => setTimeout(r, 500));
    let [w0, w1] = await s.workers();
    for (const pid of [w0, w1]) known.add(pid as number);
    // Kill slot 0, then slot 1, then slot 0's replacement.
    const victims = [() => w0, () => w1, () => w0];
    for (const victim of victims) {
      const pid = victim() as number;
      const ms = await killAndTime(s.port, pid, known);
      samples.push(ms);
      const now = await s.workers();
      const fresh = now.find((p) => !known.has(p)) as number;
      for (const p of now) known.add(p);
      if (pid === w0) w0 = fresh;
      else w1 = fresh;
      await new Promise((r) => setTimeout(r, 300));
    }
  } finally {
    const exited = once(s.child, 'exit');
    s.child.kill('SIGTERM');
    await exited;
  }
  for (const m of s.stderr().matchAll(RESTART_LINE)) ownAccount.push([Number(m[1]), Number(m[2])]);
  return samples;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const rounds = Number(values.rounds);
const lines: string[] = [];
for (const server of SERVERS) {
  const byKill: number[][] = KILLS.map(() => []);
  for (let r = 0; r < rounds; r++) {
    const samples = await round(server.args);
    for (const [i, ms] of samples.entries()) byKill[i]?.push(ms);
    process.stderr.write(`${server.key} round ${r + 1}: ${samples.map((ms) => ms.toFixed(0)).join(', ')} ms\n`);
  }
  KILLS.forEach((kill, i) => {
    const xs = byKill[i] as number[];
    lines.push(
      `| ${server.key} | ${kill} | ${median(xs).toFixed(0)} | ${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)} | ${xs.map((x) => x.toFixed(0)).join(', ')} |`,
    );
  });
}
console.log(
  [
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}, load average ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')} at the end.`,
    `${rounds} rounds; ms from kill -9 until the replacement answers.`,
    '',
    '| server | kill | median | range | samples |',
    '|---|---|---:|---:|---|',
    ...lines,
    '',
    ownAccount.length === 0
      ? '(the master logged no restart timings: a version before they were logged)'
      : `multireactor's master, per restart (${ownAccount.length}): exit → ready median ${median(ownAccount.map((a) => a[0])).toFixed(0)} ms, of which the worker's start (fork → ready) median ${median(ownAccount.map((a) => a[1])).toFixed(0)} ms.`,
  ].join('\n'),
);
