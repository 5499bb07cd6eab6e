/**
 * The master's control socket (protocol.ts): a JSON-lines pipeline on the master's operations
 * loop. Each request runs as the master's own API would (`reload()`, a graceful stop, the status
 * of every worker, the metrics text) and is answered when it completes.
 */
import { JsonLinesDecoder, JsonLinesEncoder } from '../codec/json-lines.js';
import type { Logger } from '../common/logger.js';
import type { MasterView, WorkerStatus } from '../master/handle.js';
import { DRAINING } from '../pipeline/events.js';
import { ChannelInboundHandler, type CloseReason } from '../pipeline/handler.js';
import { type HandlerContext, Pipeline } from '../pipeline/pipeline.js';
import { describeAddress, type SocketAddress } from '../syscalls/sockaddr.js';
import type { MasterMetrics } from './metrics.js';
import {
  CONTROL_PROTOCOL_VERSION,
  type ControlReply,
  type ControlRequest,
  requestError,
  type StatusResult,
  type StopResult,
} from './protocol.js';

/** Seconds from `fromMs` to `nowMs`, to a tenth. */
function seconds(fromMs: number, nowMs: number): number {
  return Math.max(0, Math.round((nowMs - fromMs) / 100) / 10);
}

/** `status` from a master and its inspected workers. */
export function statusResult(
  view: MasterView,
  workers: readonly WorkerStatus[],
  addresses: { readonly admin: SocketAddress | undefined; readonly control: string | undefined },
  nowMs = Date.now(),
): StatusResult {
  const counters = view.counters();
  const readiness = view.readiness();
  return {
    master: {
      pid: view.pid,
      phase: view.phase(),
      ready: readiness.ready,
      readyReason: readiness.reason,
      address: describeAddress(view.address()),
      uptimeSeconds: seconds(view.startedAtMs, nowMs),
      slots: counters.slots,
      reloads: { ok: counters.reloadsOk, failed: counters.reloadsFailed },
      admin: addresses.admin === undefined ? null : describeAddress(addresses.admin),
      control: addresses.control ?? null,
    },
    workers: workers
      .filter((w) => w.state !== 'exited')
      .map((w) => ({
        slot: w.slot,
        pid: w.pid,
        generation: w.generation,
        state: w.state === 'ready' ? 'serving' : (w.state as 'starting' | 'draining'),
        uptimeSeconds: seconds(w.startedAtMs, nowMs),
        connections: w.info?.connections ?? null,
        requests: w.info?.stats.requests ?? null,
        rssBytes: w.info?.rss ?? null,
        restarts: w.restarts,
      })),
  };
}

/** Longest request line: requests are a few dozen bytes. */
const MAX_REQUEST = 4096;

export interface ControlContext {
  readonly view: MasterView;
  readonly metrics: MasterMetrics;
  readonly logger: Logger;
  /** The drain deadline of a `stop` without one (the master's drainTimeout). */
  readonly drainTimeout: number;
  /** Where the admin listener and this socket listen (for `status`). */
  readonly addresses: { readonly admin: SocketAddress | undefined; readonly control: string | undefined };
}

class ControlHandler extends ChannelInboundHandler {
  /** Requests being answered on this connection. */
  private pending = 0;
  /** The operations loop is closing: close once nothing is pending. */
  private draining = false;
  private ctx: HandlerContext | undefined;

  constructor(private readonly c: ControlContext) {
    super();
  }

  override onActive(ctx: HandlerContext): void {
    this.ctx = ctx;
    ctx.fireActive();
  }

  override onRead(ctx: HandlerContext, msg: unknown): void {
    const error = requestError(msg);
    if (error !== undefined) {
      const id = (msg as { id?: unknown } | null)?.id;
      this.reply(ctx, {
        v: CONTROL_PROTOCOL_VERSION,
        id: typeof id === 'number' ? id : null,
        ok: false,
        error,
      });
      return;
    }
    const req = msg as ControlRequest;
    this.pending++;
    this.run(req)
      .then(
        (result) => this.reply(ctx, { v: CONTROL_PROTOCOL_VERSION, id: req.id, ok: true, result }),
        (err: unknown) =>
          this.reply(ctx, {
            v: CONTROL_PROTOCOL_VERSION,
            id: req.id,
            ok: false,
            error: err instanceof Error ? err.message : String(err),
          }),
      )
      .finally(() => this.settle());
  }

  private async run(req: ControlRequest): Promise<unknown> {
    const { view } = this.c;
    switch (req.cmd) {
      case 'status':
        return statusResult(view, await view.inspect(), this.c.addresses);
      case 'metrics':
        return { text: await this.c.metrics.render() };
      case 'reload': {
        this.c.logger.info(`master ${view.pid}: reload requested on the control socket`);
        return await view.reload();
      }
      case 'stop': {
        const timeout = req.timeoutMs ?? this.c.drainTimeout;
        this.c.logger.info(`master ${view.pid}: stop requested on the control socket (drain ${timeout} ms)`);
        const t0 = Date.now();
        const stopped = await view.stopFromControl(timeout, 'multireactor stop');
        const result: StopResult = { reason: stopped.reason, durationMs: Date.now() - t0 };
        return result;
      }
    }
  }

  private reply(ctx: HandlerContext, reply: ControlReply): void {
    if (ctx.channel.isActive) ctx.writeAndFlush(reply);
  }

  /** A request was answered: a draining connection closes after its last one. */
  private settle(): void {
    this.pending--;
    if (this.draining && this.pending === 0) this.ctx?.close('shutdown');
  }

  override onUserEvent(ctx: HandlerContext, event: unknown): void {
    if (event !== DRAINING) {
      ctx.fireUserEvent(event);
      return;
    }
    this.draining = true;
    if (this.pending === 0) ctx.close('shutdown');
  }

  override onError(ctx: HandlerContext, error: unknown): void {
    // A line that is not JSON, or too long: say so, then close (the stream cannot be trusted).
    this.reply(ctx, {
      v: CONTROL_PROTOCOL_VERSION,
      id: null,
      ok: false,
      error: `bad request line: ${error instanceof Error ? error.message : String(error)}`,
    });
    ctx.close('error');
  }

  override onInactive(ctx: HandlerContext, reason: CloseReason): void {
    this.ctx = undefined;
    ctx.fireInactive(reason);
  }
}

/** The pipeline of a control connection. */
export function controlPipeline(c: ControlContext): () => Pipeline {
  return () =>
    new Pipeline()
      .addLast('json-in', new JsonLinesDecoder({ maxLength: MAX_REQUEST }))
      .addLast('json-out', new JsonLinesEncoder())
      .addLast('control', new ControlHandler(c));
}
