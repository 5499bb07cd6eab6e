/**
 * What one offloaded task costs, apart from its own work: a (nearly) no-op task's round trip through the
 * pool (one at a time, and 64 in flight), the loop's CPU time per task, and how long a new thread
 * takes to serve its first task (what `abortRunning` pays for every task it stops).
 *
 *   npm run build && node dist/benchmarks/offload/roundtrip.js [--tasks 20000]
 */
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveOffloadOptions } from '../../src/offload/options.js';
import { ABORTED, DONE, OffloadPool, OffloadTask, type Outcome, type TaskOwner } from '../../src/offload/pool.js';
import { scriptCli } from '../common/cli.js';
import { median } from '../common/measure.js';

const values = scriptCli(import.meta.url, { tasks: { type: 'string', default: '20000', integer: [1, 10_000_000] } });
const N = values.tasks;
const here = dirname(fileURLToPath(import.meta.url));
const filename = join(here, '..', '..', 'examples', 'offload-tasks.js');

/** Runs `n` no-op tasks with at most `window` in flight; resolves with each one's round trip (µs). */
function run(pool: OffloadPool, n: number, window: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const times: number[] = [];
    let started = 0;
    const owner: TaskOwner = {
      taskEnded(task: OffloadTask, outcome: Outcome, value: unknown) {
        if (outcome !== DONE) {
          reject(outcome === ABORTED ? new Error('aborted') : value);
          return;
        }
        times.push((performance.now() - (task.tag as number)) * 1000);
        if (times.length === n) resolve(times);
        else if (started < n) start();
      },
    };
    const start = () => {
      started++;
      const t = new OffloadTask(owner, performance.now(), undefined, 'default', undefined);
      t.payload = NOOP;
      if (!pool.submit(t)) reject(new Error('refused'));
    };
    for (let i = 0; i < Math.min(window, n); i++) start();
  });
}

// The example's task with one PBKDF2 round: a few µs of work, so the figures are the pool's.
const NOOP = { password: 'p', rounds: 1 };

function cpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000; // ms, this process: the loop and the pool's threads
}

const lines = [
  `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Linux ${release()}, Node ${process.version}. ${N} no-op tasks per line; one pool thread.`,
  '',
  '| in flight | round trip p50 µs | p99 µs | tasks/s | CPU per task µs (loop + thread) |',
  '|---:|---:|---:|---:|---:|',
];
const options = resolveOffloadOptions({ filename, maxThreads: 1, maxQueue: 1024 }).pool;
const pool = new OffloadPool(options);
await run(pool, 2000, 8); // warm-up: thread start, JIT on both sides
for (const window of [1, 64]) {
  const c0 = cpu();
  const t0 = performance.now();
  const times = await run(pool, N, window);
  const secs = (performance.now() - t0) / 1000;
  const perTask = ((cpu() - c0) * 1000) / N;
  const sorted = Float64Array.from(times).sort();
  lines.push(
    `| ${window} | ${median(times).toFixed(1)} | ${(sorted[Math.floor(N * 0.99)] as number).toFixed(1)} | ${Math.round(N / secs).toLocaleString('en-US')} | ${perTask.toFixed(1)} |`,
  );
}
await pool.destroy();

// A new thread's first task: what replacing a terminated thread costs.
const starts: number[] = [];
for (let i = 0; i < 5; i++) {
  const p = new OffloadPool(options);
  const [first] = await run(p, 1, 1);
  starts.push((first as number) / 1000);
  await p.destroy();
}
lines.push('', `A new thread serves its first task after ${median(starts).toFixed(1)} ms (median of 5).`);
console.log(lines.join('\n'));
