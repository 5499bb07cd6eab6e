/**
 * The HTTP counters of this process: responses by status class and a request latency histogram,
 * bumped by the HTTP server stage once per response (codec/http1/server.ts) and read by the worker
 * when its master collects stats (the Prometheus exposition, docs/operations.md).
 *
 * Cheap on purpose, it runs once per request: typed arrays bumped in place, no allocation, no clock
 * call. Latency is the time from the read that brought the request to the moment its whole
 * response was handed to the connection, read from the loop's coarse clock (the timing wheel's
 * last reading, `Timers.coarseNow`): its resolution is the wheel's tick (`timerTickMs`, 20 ms by
 * default). A request answered within the read that carried it — every synchronous handler — counts
 * in the first bucket: the clock does not move while a handler runs. What it shows is the slow
 * tail (offloaded work, slow upstreams, handler timeouts), which is what a latency alert is for.
 */

/** Upper bounds of the latency buckets in ms: Prometheus's default buckets (5 ms … 10 s). */
export const HTTP_LATENCY_BOUNDS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** Status classes as counted: index 1 to 5 are 1xx to 5xx; index 0 is anything else. */
export const HTTP_STATUS_CLASSES: readonly string[] = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** What a process reports: plain arrays, sent over IPC as JSON. */
export interface HttpCounters {
  /** Responses by status class, indexed as {@link HTTP_STATUS_CLASSES}. */
  readonly responses: readonly number[];
  /** Responses per latency bucket (not cumulative): one per bound of {@link HTTP_LATENCY_BOUNDS_MS}, then the rest (+Inf). */
  readonly latency: readonly number[];
  /** The latencies summed, in ms. */
  readonly latencySumMs: number;
}

const bounds = Float64Array.from(HTTP_LATENCY_BOUNDS_MS);
const lastBound = bounds.length;

class HttpMetrics {
  readonly responses = new Float64Array(HTTP_STATUS_CLASSES.length);
  readonly latency = new Float64Array(bounds.length + 1);
  latencySumMs = 0;

  /**
   * One response complete: its status, and when its request arrived and now on the loop's coarse
   * clock (`arrivedAt` < 0: not stamped, counted as answered at once).
   */
  record(status: number, arrivedAt: number, now: number): void {
    let c = (status / 100) | 0;
    if (c < 1 || c > 5) c = 0;
    this.responses[c] = (this.responses[c] as number) + 1;
    const ms = arrivedAt < 0 || now < arrivedAt ? 0 : now - arrivedAt;
    let i = 0;
    while (i < lastBound && ms > (bounds[i] as number)) i++;
    this.latency[i] = (this.latency[i] as number) + 1;
    this.latencySumMs += ms;
  }

  snapshot(): HttpCounters {
    return {
      responses: Array.from(this.responses),
      latency: Array.from(this.latency),
      latencySumMs: this.latencySumMs,
    };
  }
}

/** This process's HTTP counters (one per process: a worker serves one server). */
export const httpMetrics = new HttpMetrics();
