/**
 * The master's admin listener: the project's own HTTP stage (`http()`) on the master's operations
 * loop, answering
 *
 *   GET /metrics  the Prometheus text format (metrics.ts), every worker asked at each scrape
 *   GET /healthz  200 while the master runs (its loop answers): the liveness probe
 *   GET /readyz   200 when it takes traffic — serving, every slot with a ready worker — and 503
 *                 with the reason otherwise: starting, a slot restarting, the shutdown delay, the
 *                 drain. The readiness probe: a load balancer stops sending new connections.
 *
 * HEAD is answered like GET without the body; other methods get 405, other paths 404.
 */
import { http } from '../codec/http1/http.js';
import type { HttpRequest } from '../codec/http1/request.js';
import type { HttpResponse } from '../codec/http1/response.js';
import type { Logger } from '../common/logger.js';
import type { MasterView } from '../master/handle.js';
import type { MasterMetrics } from './metrics.js';
import { EXPOSITION_CONTENT_TYPE } from './prometheus.js';

const TEXT = 'text/plain; charset=utf-8';

function send(res: HttpResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' }).end(body);
}

/** The admin HTTP pipeline of a master. */
export function adminPipeline(view: MasterView, metrics: MasterMetrics, logger: Logger) {
  return http(
    (req: HttpRequest, res: HttpResponse) => {
      const path = req.path;
      if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') {
        send(res, 404, TEXT, 'not found: /metrics, /healthz, /readyz\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('Allow', 'GET, HEAD');
        send(res, 405, TEXT, 'method not allowed\n');
        return;
      }
      if (path === '/healthz') {
        send(res, 200, TEXT, `ok: master ${view.pid}, ${view.phase()}\n`);
        return;
      }
      if (path === '/readyz') {
        const r = view.readiness();
        send(res, r.ready ? 200 : 503, TEXT, `${r.ready ? 'ready' : 'not ready'}: ${r.reason}\n`);
        return;
      }
      return metrics.render().then(
        (text) => send(res, 200, EXPOSITION_CONTENT_TYPE, text),
        (err: unknown) => {
          logger.error('/metrics failed', err);
          send(res, 500, TEXT, `metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
    },
    // Scrapes and probes are small and regular: no reason to keep a connection idle for long.
    { keepAliveTimeout: 15_000 },
  );
}
