/**
 * Autobahn|Testsuite section 9 as a benchmark: large messages and many messages, echoed by
 * multireactor's examples/ws-echo-server, by `ws` under node:cluster (bench-ref/ws-echo.cjs) and
 * by uWebSockets.js (bench-ref/uws-ws-echo.cjs), 2 server processes each, side by side.
 *
 * Every case of upstream's section 9 (autobahn9-cases.ts: 9.1/9.2 one text/binary message of
 * 64 KiB … 16 MiB; 9.3/9.4 a 4 MiB message in frames of 64 B … 4 MiB; 9.5/9.6 a 1 MiB message
 * written 64 … 2048 bytes at a time; 9.7/9.8 1,000 round trips of 0 B … 4 KiB) runs on a fresh
 * connection: the time from the first byte written to the last byte of the last echo read, and
 * the server's CPU time over the case (its process tree's threads, from /proc/PID/task/TID/
 * schedstat: utime + stime at nanosecond resolution — /proc/PID/stat counts 10 ms ticks, coarser
 * than many cases). Upstream's own duration also counts the closing handshake: it is in --json
 * (`totalMs`). An echo that is not byte for byte the message sent, a timeout or an unclean close
 * fails the case (FAILED in the table; exit status 1 when multireactor failed one).
 *
 * Servers run interleaved (every case: A B C, then the next case; `--rounds` times over the
 * list); the table gives medians, and a summary per family the sums of the medians. The machine
 * may be shared: figures are preliminary. `--modules` is a node_modules holding `ws` (with
 * `bufferutil`) and `@trufflesuite/uws-js-unofficial` (bench-ref/README.md); a server whose package
 * is missing is skipped, named. `--port 0` takes free ports; otherwise servers listen on PORT,
 * PORT+1, PORT+2.
 *
 *   npm run bench:ws-autobahn9 -- --rounds 3 [--cases 9.1.1,9.7] [--servers multireactor,ws,uws] [--json]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { cpus, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptCli, usageError } from '../common/cli.js';
import { assertPortFree, cpuSeconds, median, stopTree, tree, waitForPort } from '../common/measure.js';
import { type Case9, selectCases } from './autobahn9-cases.js';
import { type CaseOutcome, runCase9 } from './autobahn9-client.js';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, '..', '..');

const values = scriptCli(import.meta.url, {
  rounds: { type: 'string', default: '3', integer: [1, 1000] },
  cases: { type: 'string', default: '' },
  servers: { type: 'string', default: 'multireactor,ws,uws' },
  port: { type: 'string', default: '9120', integer: [0, 65533] },
  workers: { type: 'string', default: '2', integer: [1, 64] },
  modules: { type: 'string', default: '/tmp/mr-bench-ws/node_modules' },
  'bench-ref': { type: 'string', default: '/work/shared/bench-ref' },
  json: { type: 'boolean', default: false },
});

interface ServerSpec {
  readonly key: string;
  readonly label: string;
  /** The command (after `node`) for `port`, or why this server cannot run. */
  command(port: number): { args: string[]; env: NodeJS.ProcessEnv } | string;
  /** It prints `listening on HOST:PORT` (and takes port 0). */
  readonly announces: boolean;
}

const workers = String(values.workers);
const modules = values.modules;
const benchRef = values['bench-ref'];
const refEnv = (port: number) => ({ ...process.env, NODE_PATH: modules, PORT: String(port), WORKERS: workers });

const SERVERS: ServerSpec[] = [
  {
    key: 'multireactor',
    label: 'multireactor',
    announces: true,
    command: (port) => ({
      args: [
        join(dist, 'examples', 'ws-echo-server.js'),
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--workers',
        workers,
      ],
      env: process.env,
    }),
  },
  {
    key: 'ws',
    label: 'ws (node:cluster)',
    announces: false,
    command: (port) =>
      existsSync(join(modules, 'ws'))
        ? { args: [join(benchRef, 'ws-echo.cjs')], env: refEnv(port) }
        : `ws is not in ${modules} (see bench-ref/README.md)`,
  },
  {
    key: 'uws',
    label: 'uWebSockets.js',
    announces: false,
    command: (port) =>
      existsSync(join(modules, '@trufflesuite', 'uws-js-unofficial'))
        ? { args: [join(benchRef, 'uws-ws-echo.cjs')], env: refEnv(port) }
        : `@trufflesuite/uws-js-unofficial is not in ${modules} (see bench-ref/README.md)`,
  },
];

const wanted = values.servers.split(',').map((k) => {
  const s = SERVERS.find((x) => x.key === k.trim());
  if (s === undefined) usageError(`--servers: unknown server ${k}; known: ${SERVERS.map((x) => x.key).join(', ')}`);
  return s;
});
const cases = (() => {
  try {
    return selectCases(values.cases.split(','));
  } catch (err) {
    return usageError((err as Error).message);
  }
})();

/** A free ephemeral port on 127.0.0.1 (for a reference server when --port 0: they cannot report one). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Every server this run started and has not stopped yet: stopped on SIGINT and at the end. */
const running = new Set<ChildProcess>();

interface Started {
  readonly spec: ServerSpec;
  readonly child: ChildProcess;
  readonly port: number;
  /** The server's process tree (taken once it listens: cluster workers and reuseport children included). */
  readonly pids: number[];
}

async function start(spec: ServerSpec, index: number): Promise<Started | string> {
  const base = values.port;
  let port = base === 0 ? (spec.announces ? 0 : await freePort()) : base + index;
  const cmd = spec.command(port);
  if (typeof cmd === 'string') return cmd;
  if (port !== 0) await assertPortFree(port);
  const child = spawn(process.execPath, cmd.args, { env: cmd.env, stdio: ['ignore', 'pipe', 'inherit'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  try {
    if (spec.announces) {
      port = await new Promise<number>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`${spec.key}: no "listening on" line within 15 s`)), 15_000);
        const onData = (d: Buffer) => {
          out += d.toString();
          const m = /listening on \S+:(\d+)/.exec(out);
          if (m === null) return;
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.off('exit', onExit);
          resolve(Number(m[1]));
        };
        const onExit = (code: number | null) => {
          clearTimeout(timer);
          reject(new Error(`${spec.key} exited (${code}) before listening: ${out}`));
        };
        child.stdout?.on('data', onData);
        child.once('exit', onExit);
      });
    }
    child.stdout?.resume();
    await waitForPort(port);
    // Every process of the tree listening (cluster workers, reuseport children) before the first case.
    await new Promise((r) => setTimeout(r, 700));
    return { spec, child, port, pids: tree(child.pid as number) };
  } catch (err) {
    await stopTree(child);
    throw err;
  }
}

/** Whether this kernel gives per-thread CPU time in /proc/PID/task/TID/schedstat (needs CONFIG_SCHED_INFO). */
const hasSchedstat = (() => {
  try {
    return readFileSync(`/proc/${process.pid}/schedstat`, 'utf8').split(' ').length >= 2;
  } catch {
    return false;
  }
})();

/**
 * Nanoseconds of CPU the threads of `pids` have run: the first field of each thread's schedstat
 * (sum_exec_runtime: utime + stime, unrounded). A thread that exits during a case takes its time
 * with it; the echo servers do not start or end threads per message. Without schedstat, /proc's
 * utime + stime in ticks.
 */
function cpuNs(pids: readonly number[]): number {
  if (!hasSchedstat) return cpuSeconds(pids) * 1e9;
  let ns = 0;
  for (const pid of pids) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // exited
    }
    for (const tid of tasks) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // exited meanwhile
      }
    }
  }
  return ns;
}

interface Sample {
  readonly echoMs: number;
  readonly totalMs: number;
  readonly cpuMs: number;
}

/** caseId → server key → samples (one per round); failures: caseId → server key → why. */
const samples = new Map<string, Map<string, Sample[]>>();
const failures = new Map<string, Map<string, string>>();

async function measure(c: Case9, s: Started): Promise<CaseOutcome & { cpuMs: number }> {
  let before = 0;
  const out = await runCase9(c, s.port, () => {
    before = cpuNs(s.pids);
  });
  return { ...out, cpuMs: (cpuNs(s.pids) - before) / 1e6 };
}

async function stopAll(): Promise<void> {
  await Promise.all([...running].map((child) => stopTree(child, { settleMs: 0 })));
}

let interrupted = false;
process.once('SIGINT', () => {
  interrupted = true;
  console.error('interrupted: stopping the servers');
  void stopAll().then(() => process.exit(130));
});

const skipped = new Map<string, string>();
const started: Started[] = [];
try {
  for (const [i, spec] of wanted.entries()) {
    const s = await start(spec, i);
    if (typeof s === 'string') {
      skipped.set(spec.key, s);
      console.error(`skipped ${spec.key}: ${s}`);
    } else started.push(s);
  }
  for (let r = 1; r <= values.rounds && !interrupted; r++) {
    for (const c of cases) {
      for (const s of started) {
        if (interrupted) break;
        const got = await measure(c, s);
        const key = s.spec.key;
        if (!got.ok) {
          if (!failures.has(c.id)) failures.set(c.id, new Map());
          failures.get(c.id)?.set(key, got.detail);
          console.error(`${c.id} round ${r} ${key}: FAILED — ${got.detail}`);
          continue;
        }
        if (!samples.has(c.id)) samples.set(c.id, new Map());
        const byServer = samples.get(c.id) as Map<string, Sample[]>;
        if (!byServer.has(key)) byServer.set(key, []);
        byServer.get(key)?.push({ echoMs: got.echoMs, totalMs: got.totalMs, cpuMs: got.cpuMs });
        console.error(
          `${c.id} round ${r} ${key}: ${got.echoMs.toFixed(2)} ms (to close ${got.totalMs.toFixed(2)} ms), server CPU ${got.cpuMs.toFixed(2)} ms`,
        );
      }
    }
  }
} finally {
  for (const s of started) await stopTree(s.child, { settleMs: 0 });
}
if (interrupted) await new Promise(() => {}); // the SIGINT handler exits

const keys = started.map((s) => s.spec.key);
const labels = new Map(started.map((s) => [s.spec.key, s.spec.label]));
const med = (id: string, key: string, f: (x: Sample) => number) =>
  failures.get(id)?.has(key) === true ? Number.NaN : median((samples.get(id)?.get(key) ?? []).map(f));
const fmt = (n: number) => (Number.isNaN(n) ? '—' : n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const ratio = (a: number, b: number) =>
  Number.isNaN(a / b) || !Number.isFinite(a / b) ? '—' : `${(a / b).toFixed(2)}×`;
const cell = (id: string, key: string, f: (x: Sample) => number) =>
  failures.get(id)?.has(key) === true ? 'FAILED' : fmt(med(id, key, f));
const others = (['ws', 'uws'] as const).filter((k) => keys.includes(k) && keys.includes('multireactor'));
const otherName = { ws: 'ws', uws: 'uWS' } as const;

const lines: string[] = [];
lines.push(
  `Autobahn section 9 — ${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}, Linux ${release()}, Node ${process.version}, ${workers} server processes each, ${values.rounds} round(s), medians (preliminary: shared machine)`,
  '',
  `| case | what | ${keys.map((k) => `ms ${labels.get(k)}`).join(' | ')} | ${keys.map((k) => `CPU ms ${labels.get(k)}`).join(' | ')} |${others.map((o) => ` ours/${otherName[o]} ms, CPU |`).join('')}`,
  `|---|---|${keys.map(() => '---:|').join('')}${keys.map(() => '---:|').join('')}${others.map(() => '---:|').join('')}`,
);
for (const c of cases) {
  const ours = (f: (x: Sample) => number) => med(c.id, 'multireactor', f);
  lines.push(
    `| ${c.id} | ${c.title} | ${keys.map((k) => cell(c.id, k, (x) => x.echoMs)).join(' | ')} | ${keys.map((k) => cell(c.id, k, (x) => x.cpuMs)).join(' | ')} |${others
      .map(
        (o) =>
          ` ${ratio(
            ours((x) => x.echoMs),
            med(c.id, o, (x) => x.echoMs),
          )}, ${ratio(
            ours((x) => x.cpuMs),
            med(c.id, o, (x) => x.cpuMs),
          )} |`,
      )
      .join('')}`,
  );
}

// Per family: the sums of the medians over the cases every server passed (comparable sums; a
// reference server's own limit — ws refuses more than 16,384 fragments by default — leaves out a case).
const families = [...new Set(cases.map((c) => c.family))];
const FAMILY_TITLES: Record<string, string> = {
  '9.1': 'text, one frame, 64 KiB … 16 MiB',
  '9.2': 'binary, one frame, 64 KiB … 16 MiB',
  '9.3': 'text 4 MiB, frames of 64 B … 4 MiB',
  '9.4': 'binary 4 MiB, frames of 64 B … 4 MiB',
  '9.5': 'text 1 MiB, writes of 64 … 2048 B',
  '9.6': 'binary 1 MiB, writes of 64 … 2048 B',
  '9.7': '1,000 text round trips, 0 B … 4 KiB',
  '9.8': '1,000 binary round trips, 0 B … 4 KiB',
};
const passedByAll = (c: Case9) => keys.every((k) => failures.get(c.id)?.has(k) !== true);
const familySum = (fam: string, key: string, f: (x: Sample) => number) =>
  cases.filter((c) => c.family === fam && passedByAll(c)).reduce((sum, c) => sum + med(c.id, key, f), 0);
lines.push(
  '',
  `| family | cases | ${keys.map((k) => `Σ ms ${labels.get(k)}`).join(' | ')} | ${keys.map((k) => `Σ CPU ms ${labels.get(k)}`).join(' | ')} |${others.map((o) => ` ours/${otherName[o]} ms, CPU |`).join('')}`,
  `|---|---|${keys.map(() => '---:|').join('')}${keys.map(() => '---:|').join('')}${others.map(() => '---:|').join('')}`,
);
for (const fam of families) {
  const all = cases.filter((c) => c.family === fam);
  const kept = all.filter(passedByAll).length;
  const n = kept === all.length ? String(kept) : `${kept} of ${all.length}`;
  const ours = (f: (x: Sample) => number) => familySum(fam, 'multireactor', f);
  lines.push(
    `| ${fam} | ${n}: ${FAMILY_TITLES[fam] ?? ''} | ${keys.map((k) => fmt(familySum(fam, k, (x) => x.echoMs))).join(' | ')} | ${keys.map((k) => fmt(familySum(fam, k, (x) => x.cpuMs))).join(' | ')} |${others
      .map(
        (o) =>
          ` ${ratio(
            ours((x) => x.echoMs),
            familySum(fam, o, (x) => x.echoMs),
          )}, ${ratio(
            ours((x) => x.cpuMs),
            familySum(fam, o, (x) => x.cpuMs),
          )} |`,
      )
      .join('')}`,
  );
}
const failed = [...failures].flatMap(([id, m]) => [...m].map(([k, why]) => `FAILED ${id} ${k}: ${why}`));
if (failed.length > 0) lines.push('', ...failed);
if (skipped.size > 0) lines.push('', ...[...skipped].map(([k, why]) => `skipped ${k}: ${why}`));
lines.push(
  '',
  'ms: first byte written to the last byte of the last echo read (median). CPU ms: the server process tree, over the case from the open connection to its close. Ratios: multireactor over the other (lower is better). Family sums: over the cases every server passed.',
);

if (values.json) {
  console.log(
    JSON.stringify({
      rounds: values.rounds,
      workers: values.workers,
      servers: keys,
      skipped: Object.fromEntries(skipped),
      cases: cases.map((c) => ({
        id: c.id,
        title: c.title,
        servers: Object.fromEntries(
          keys.map((k) => [
            k,
            failures.get(c.id)?.has(k) === true
              ? { failed: failures.get(c.id)?.get(k) }
              : {
                  samples: samples.get(c.id)?.get(k) ?? [],
                  echoMs: med(c.id, k, (x) => x.echoMs),
                  totalMs: med(c.id, k, (x) => x.totalMs),
                  cpuMs: med(c.id, k, (x) => x.cpuMs),
                },
          ]),
        ),
      })),
    }),
  );
} else console.log(lines.join('\n'));
// Exit status 1 when multireactor failed a case: a reference server's failure is its own (reported above).
process.exitCode = failures.size > 0 && [...failures.values()].some((m) => m.has('multireactor')) ? 1 : 0;
