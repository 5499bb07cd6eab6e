/**
 * The master of the fault tests (master-faults.test.ts), with switches to make its workers fail:
 *
 *   node dist/test/integration/master-app.js [--workers 2] [--balance reuseport|shared] [--port 0]
 *        [--reuse-port] [--daemon] [--restart-delay MS] [--max-crashes N] [--crash-window MS]
 *        [--drain-timeout MS]
 *
 * Line protocol: `pid` → "<worker pid>"; `version` → "<version> <worker pid>", where the version is
 * `globalThis.MASTER_APP_VERSION` as set by a script that imports this one (the reload test
 * rewrites that script between reloads), or "v0"; `spawn` → "<child pid> <worker pid>": the worker
 * starts a node process that loads the framework and idles (with the worker's environment).
 *
 * Environment, read by each worker when it starts:
 * - CRASH_FILE=path: while `path` (any slot) or `path.<slot>` exists, the worker exits with status
 *   3 shortly after it reported ready — a crash loop, slot by slot.
 * - SLOW_START_FILE=path: while `path` exists, a new worker waits as many ms as it says before it
 *   calls Server.listen (an application that takes long to load).
 *
 * The master reads control commands on stdin (benchmarks/common/control.ts) and logs its pid on
 * stderr (`master-app: master <pid>`).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { controlFromStdin } from '../../benchmarks/common/control.js';
import {
  ChannelInboundHandler,
  type HandlerContext,
  LineEncoder,
  LineFrameDecoder,
  Pipeline,
  Server,
  StringDecoder,
} from '../../src/index.js';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    balance: { type: 'string', default: 'reuseport' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'reuse-port': { type: 'boolean', default: false },
    daemon: { type: 'boolean', default: false },
    'restart-delay': { type: 'string', default: '100' },
    'max-crashes': { type: 'string', default: '5' },
    'crash-window': { type: 'string', default: '60000' },
    'drain-timeout': { type: 'string', default: '2000' },
  },
  strict: true,
});

const SPAWNED = `await import(${JSON.stringify(new URL('../../src/index.js', import.meta.url).href)}); setInterval(() => {}, 1000);`;
const version = (globalThis as { MASTER_APP_VERSION?: string }).MASTER_APP_VERSION ?? 'v0';
const inWorker = process.env.MULTIREACTOR_WORKER !== undefined;

const slowFile = process.env.SLOW_START_FILE;
if (inWorker && slowFile !== undefined && existsSync(slowFile)) {
  await new Promise((r) => setTimeout(r, Number(readFileSync(slowFile, 'utf8'))));
}

class App extends ChannelInboundHandler<string> {
  override onRead(ctx: HandlerContext, line: string): void {
    ctx.channel.countRequest();
    if (line === 'pid') ctx.writeAndFlush(String(process.pid));
    else if (line === 'version') ctx.writeAndFlush(`${version} ${process.pid}`);
    else if (line === 'spawn') {
      // A child of the worker that loads the framework too, with the worker's environment.
      const child = spawn(process.execPath, ['--input-type=module', '-e', SPAWNED], { stdio: 'ignore' });
      child.unref();
      ctx.writeAndFlush(`${child.pid} ${process.pid}`);
    } else ctx.writeAndFlush(`unknown ${line}`);
  }
}

class AppPipeline extends Pipeline {
  override initChannel(): void {
    this.addLast(new LineFrameDecoder({ maxLength: 1024 }))
      .addLast(new StringDecoder())
      .addLast(new LineEncoder())
      .addLast(new App());
  }
}

let server: Awaited<ReturnType<typeof Server.listen>>;
try {
  server = await Server.listen({
    host: values.host,
    port: Number(values.port),
    workers: Number(values.workers),
    balance: values.balance as 'reuseport' | 'shared',
    reusePort: values['reuse-port'],
    daemon: values.daemon,
    restartDelay: Number(values['restart-delay']),
    maxCrashes: Number(values['max-crashes']),
    crashWindow: Number(values['crash-window']),
    drainTimeout: Number(values['drain-timeout']),
    startTimeout: 5000,
    pipeline: AppPipeline,
  });
} catch (err) {
  process.stderr.write(`master-app: ${(err as Error).message}\n`);
  process.exit(1);
}

if (server.role === 'worker') {
  const crashFile = process.env.CRASH_FILE;
  if (crashFile !== undefined && (existsSync(crashFile) || existsSync(`${crashFile}.${server.slot}`))) {
    setTimeout(() => process.exit(3), 20);
  }
}
if (server.role === 'master') process.stderr.write(`master-app: master ${process.pid}\n`);
controlFromStdin(server);
