/**
 * A real redis-server (Debian package `redis-server`) for the pub/sub tests, started by the test on
 * a free port with nothing saved (`--save '' --appendonly no`, a temporary `--dir`), stopped by pid
 * — also when the test fails: call `stopAll()` from afterEach. `restart()` kills it (SIGKILL: a
 * crash, as far as its clients can tell) and starts it again on the same port.
 *
 * Without redis-server, `requireRedis(this)` skips the test visibly, naming the package.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context } from 'mocha';

let available: boolean | undefined;

/** Whether redis-server runs here. */
export function hasRedis(): boolean {
  if (available === undefined) {
    try {
      execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
      available = true;
    } catch {
      available = false;
    }
  }
  return available;
}

/** Skips the calling test (or suite) when redis-server is missing, saying which package to install. */
export function requireRedis(ctx: Context): void {
  if (hasRedis()) return;
  console.log('      (skipped: no redis-server — apt-get install -y redis-server)');
  ctx.skip();
}

/** A port nothing listens on now (the kernel's pick, released at once). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  s.close();
  await once(s, 'close');
  return port;
}

const running = new Set<RedisServer>();

export class RedisServer {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'mr-redis-'));
  /** Everything it wrote (its log goes to stdout). */
  log = '';

  private constructor(
    readonly port: number,
    private readonly extra: readonly string[],
  ) {}

  /** Starts redis-server on a free port (or `port`) with `extra` arguments; resolves once it accepts connections. */
  static async start(extra: readonly string[] = [], port?: number): Promise<RedisServer> {
    const r = new RedisServer(port ?? (await freePort()), extra);
    running.add(r);
    await r.launch();
    return r;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private async launch(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
        '--logfile',
        '',
        ...this.extra,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        this.log += d.toString();
        if (/Ready to accept connections/.test(this.log)) resolve();
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code, signal) =>
        reject(new Error(`redis-server exited (${code ?? signal}) before it was ready:\n${this.log}`)),
      );
    });
  }

  /** Kills it (SIGKILL, by pid) and waits until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  /** Kills it and starts it again on the same port, empty (nothing is saved). */
  async restart(): Promise<void> {
    await this.kill();
    this.log = '';
    await this.launch();
  }

  /** Stops it for good and removes its folder. */
  async stop(): Promise<void> {
    running.delete(this);
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs a command with redis-cli (package redis-tools, a dependency of redis-server); its output. */
  cli(...args: string[]): string {
    return execFileSync('redis-cli', ['-p', String(this.port), ...args], { encoding: 'utf8' });
  }
}

/** Stops every server still running (afterEach). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((r) => r.stop()));
}
