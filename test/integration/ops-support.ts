/**
 * What the operations tests share (ops.test.ts, deploy.test.ts): the ops app started as a real
 * master, the `multireactor` command line run as a real process, HTTP over TCP or a Unix socket,
 * and the Prometheus exposition parsed by the real parser of Debian's python3-prometheus-client.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StatusResult } from '../../src/ops/protocol.js';
import { alive } from './cluster-support.js';
import { waitFor } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
export const OPS_APP = join(here, 'ops-app.js');
export const CLI = join(here, '..', '..', 'src', 'bin', 'multireactor.js');

/** One run of the ops app: a master (or a single process) started by the test, every pid it had remembered. */
export class OpsProcess {
  readonly pids = new Set<number>();
  private err = '';
  private out = '';
  /** The TCP port it serves, or 0 on a Unix socket. */
  port = 0;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly child: ChildProcess) {
    this.pids.add(child.pid as number);
    child.stderr?.on('data', (d: Buffer) => {
      this.err += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      this.out += d.toString();
    });
    this.exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
  }

  /** Starts the ops app with `args` and waits until it prints `listening on …` (rejects if it exits first). */
  static async start(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<OpsProcess> {
    const p = new OpsProcess(spawn(process.execPath, [OPS_APP, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env }));
    let exited = false;
    void p.exited.then(() => {
      exited = true;
    });
    await waitFor(() => /^listening on /m.test(p.out) || exited, 'the ops app to listen', 15_000);
    if (exited) throw new Error(`the ops app exited before it listened: ${p.err}`);
    const m = /^listening on (.+):(\d+)$/m.exec(p.out);
    p.port = Number(m?.[2] ?? 0);
    return p;
  }

  get pid(): number {
    return this.child.pid as number;
  }

  stderr(): string {
    return this.err;
  }

  /** Remembers the pids `status` names (so that teardown can reap them). */
  remember(s: StatusResult): void {
    for (const w of s.workers) this.pids.add(w.pid);
  }

  /** Kills what is left (by pid) and waits until every remembered process is gone. */
  async teardown(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    for (const pid of this.pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await waitFor(() => [...this.pids].every((pid) => !alive(pid)), 'every process of the tree to be gone');
  }
}

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `multireactor ARGS` as its own process (asynchronously: a load may run in this one meanwhile). */
export async function cli(args: readonly string[]): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const [code] = (await once(child, 'close')) as [number | null];
  return { status: code, stdout, stderr };
}

/** `multireactor status --json`, checked to have succeeded. */
export async function status(where: readonly string[]): Promise<StatusResult> {
  const r = await cli(['status', ...where, '--json']);
  if (r.status !== 0) throw new Error(`multireactor status failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusResult;
}

export interface Answer {
  readonly status: number;
  readonly body: string;
  readonly headers: http.IncomingHttpHeaders;
}

/** One GET on a new connection, over TCP (`port`) or a Unix socket (`socketPath`). */
export function get(target: { port: number } | { socketPath: string }, path: string): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const req = http.get({ ...target, host: '127.0.0.1', path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
  });
}

/** The admin listener's port, from `status`. */
export function adminPort(s: StatusResult): number {
  const m = /:(\d+)$/.exec(s.master.admin ?? '');
  if (m === null) throw new Error(`no admin listener in ${JSON.stringify(s.master)}`);
  return Number(m[1]);
}

/** A metric family as prometheus_client's parser returns it. */
export interface ParsedFamily {
  readonly name: string;
  readonly type: string;
  readonly samples: ReadonlyArray<{
    readonly name: string;
    readonly labels: Record<string, string>;
    readonly value: number;
  }>;
}

const PYTHON = '/usr/bin/python3';
const PARSE = `
import json, math, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "samples": [
        {"name": s.name, "labels": s.labels, "value": (None if math.isnan(s.value) else s.value if math.isfinite(s.value) else str(s.value))}
        for s in f.samples]})
print(json.dumps(out))
`;

/** Whether Debian's python3-prometheus-client is importable (by the system python3). */
export function prometheusParserMissing(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import prometheus_client.parser'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'the Prometheus parser is missing: apt-get install -y python3-prometheus-client';
}

/** Parses an exposition with prometheus_client's `text_string_to_metric_families` (throws what it throws). */
export function parseExposition(text: string): ParsedFamily[] {
  const r = spawnSync(PYTHON, ['-c', PARSE], { input: text, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`prometheus_client rejected the exposition: ${r.stderr}`);
  return JSON.parse(r.stdout) as ParsedFamily[];
}

/** The value of the sample `name` with exactly these labels (undefined when there is none). */
export function sampleValue(
  families: readonly ParsedFamily[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const f of families) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      const keys = Object.keys(s.labels);
      if (keys.length !== Object.keys(labels).length) continue;
      if (keys.every((k) => s.labels[k] === labels[k])) return s.value;
    }
  }
  return undefined;
}

/** Whether a process is alive, re-exported for the tests. */
export { alive };
