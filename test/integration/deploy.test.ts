/**
 * docs/deploy.md holds what it says: its Kubernetes YAML parses and points the probes at the
 * admin listener's paths and port; its Dockerfile installs without dev dependencies; and a server
 * started the way its systemd socket unit starts it — under `systemd-socket-activate`, which
 * passes LISTEN_FDS as systemd does — serves on the socket it was handed.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { alive } from './cluster-support.js';
import { waitFor } from './helpers.js';
import { get, OPS_APP, status } from './ops-support.js';

const here = dirname(fileURLToPath(import.meta.url));
const DEPLOY = readFileSync(join(here, '..', '..', '..', 'docs', 'deploy.md'), 'utf8');

/** The fenced blocks of docs/deploy.md in a language. */
function blocks(lang: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`^\`\`\`${lang}\\n([\\s\\S]*?)^\`\`\`$`, 'gm');
  for (let m = re.exec(DEPLOY); m !== null; m = re.exec(DEPLOY)) out.push(m[1] as string);
  return out;
}

type Obj = Record<string, unknown>;
const at = (o: unknown, ...path: Array<string | number>): unknown =>
  path.reduce<unknown>((v, k) => (v as Record<string | number, unknown> | undefined)?.[k], o);

/** A free TCP port on 127.0.0.1 (bound and released; the socket activator binds it next). */
async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('deployment (docs/deploy.md)', function () {
  this.timeout(30_000);

  it('the Kubernetes YAML parses: a Deployment with probes on the admin port, preStop, a grace period; a Service', () => {
    const yaml = blocks('yaml');
    expect(yaml.length, 'YAML blocks').to.be.at.least(1);
    const docs = yaml.flatMap((text) => parseAllDocuments(text));
    for (const d of docs)
      expect(
        d.errors.map((e) => e.message),
        'YAML errors',
      ).to.deep.equal([]);
    const objects = docs.map((d) => d.toJS() as Obj);
    const deployment = objects.find((o) => o.kind === 'Deployment');
    const service = objects.find((o) => o.kind === 'Service');
    expect(deployment, 'a Deployment').to.not.equal(undefined);
    expect(service, 'a Service').to.not.equal(undefined);
    const pod = at(deployment, 'spec', 'template', 'spec') as Obj;
    const container = at(pod, 'containers', 0) as Obj;
    const ports = container.ports as Array<{ name: string; containerPort: number }>;
    const adminPort = ports.find((p) => p.name === 'admin')?.containerPort;
    const httpPort = ports.find((p) => p.name === 'http')?.containerPort;
    expect(adminPort).to.be.a('number');
    expect(httpPort).to.be.a('number');
    expect(at(container, 'readinessProbe', 'httpGet', 'path')).to.equal('/readyz');
    expect(at(container, 'livenessProbe', 'httpGet', 'path')).to.equal('/healthz');
    for (const probe of ['readinessProbe', 'livenessProbe']) {
      const port = at(container, probe, 'httpGet', 'port');
      expect(port === 'admin' || port === adminPort, `${probe} port`).to.equal(true);
    }
    const preStopSeconds = at(container, 'lifecycle', 'preStop', 'sleep', 'seconds') as number;
    expect(preStopSeconds, 'a preStop sleep').to.be.greaterThan(0);
    // The grace period covers preStop, the shutdown delay and the drain: said in the doc, checked here.
    const grace = pod.terminationGracePeriodSeconds as number;
    const env = (container.env ?? []) as Array<{ name: string; value: string }>;
    const delayMs = Number(env.find((e) => e.name === 'SHUTDOWN_DELAY_MS')?.value);
    const drainMs = Number(env.find((e) => e.name === 'DRAIN_TIMEOUT_MS')?.value);
    expect(delayMs).to.be.greaterThan(0);
    expect(drainMs).to.be.greaterThan(0);
    expect(grace * 1000).to.be.greaterThan(preStopSeconds * 1000 + delayMs + drainMs);
    const servicePort = (at(service, 'spec', 'ports') as Array<{ targetPort: unknown }>)[0]?.targetPort;
    expect(servicePort === 'http' || servicePort === httpPort, 'the Service targets the http port').to.equal(true);
  });

  it('the Dockerfile: node:20-slim, npm ci --omit=dev', () => {
    const dockerfile = blocks('dockerfile').join('\n');
    expect(dockerfile).to.match(/^FROM node:20-slim\b/m);
    expect(dockerfile).to.match(/npm ci --omit=dev/);
    expect(dockerfile).to.match(/^CMD \[/m);
  });

  it('the systemd units name a socket (ListenStream, FileDescriptorName) and the service that takes it', () => {
    const ini = blocks('ini').join('\n');
    expect(ini).to.match(/^\[Socket\]$/m);
    expect(ini).to.match(/^ListenStream=/m);
    expect(ini).to.match(/^FileDescriptorName=/m);
    expect(ini).to.match(/^\[Service\]$/m);
    expect(ini).to.match(/^ExecReload=.*multireactor reload/m);
  });

  describe('under systemd-socket-activate', () => {
    let activator: ChildProcess | undefined;
    const pids = new Set<number>();
    let dir: string;

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'mr-deploy-'));
    });

    afterEach(async () => {
      if (activator !== undefined && activator.exitCode === null && activator.signalCode === null) {
        const exited = once(activator, 'exit');
        activator.kill('SIGKILL');
        await exited;
      }
      activator = undefined;
      for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
      await waitFor(() => [...pids].every((p) => !alive(p)), 'every process to be gone');
      pids.clear();
      rmSync(dir, { recursive: true, force: true });
    });

    it('serves on the socket it is handed (LISTEN_FDS), with every worker; stops on SIGTERM', async function () {
      if (spawnSync('systemd-socket-activate', ['--version']).error !== undefined) {
        console.log('      skipped: systemd-socket-activate is missing: apt-get install -y systemd');
        this.skip();
      }
      const port = await freePort();
      const control = join(dir, 'ctl.sock');
      activator = spawn(
        'systemd-socket-activate',
        ['-l', `127.0.0.1:${port}`, '--fdname=http', process.execPath, OPS_APP, '--workers', '2', '--control', control],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const child = activator;
      pids.add(child.pid as number);
      let err = '';
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
      });
      await waitFor(() => /Listening on 127\.0\.0\.1:\d+ as 3\./.test(err), 'the activator to listen', 10_000);
      // The first connection starts the server (the activator execs it); it waits in the queue meanwhile.
      const first = await get({ port }, '/');
      expect(first.status).to.equal(200);
      const s = await status(['--control', control]);
      for (const w of s.workers) pids.add(w.pid);
      // systemd-socket-activate execs the server in its own process: LISTEN_PID names it.
      expect(s.master.pid).to.equal(child.pid);
      expect(s.master.address).to.equal(`127.0.0.1:${port}`);
      expect(err).to.match(/serving on 1 inherited socket\(s\) \(LISTEN_FDS\)/);
      expect(s.workers.map((w) => String(w.pid))).to.include(first.body);
      const seen = new Set<string>();
      for (let i = 0; i < 40 && seen.size < 2; i++) {
        // Connections held open at once, so that the shared socket spreads them over the workers.
        const answers = await Promise.all(Array.from({ length: 8 }, () => get({ port }, '/')));
        for (const a of answers) seen.add(a.body);
      }
      expect(seen.size, 'both workers accept from the inherited socket').to.equal(2);
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      expect(code).to.equal(0);
      for (const w of s.workers) await waitFor(() => !alive(w.pid), `worker ${w.pid} to exit`);
    });
  });
});
