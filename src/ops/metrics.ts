/**
 * The master's `/metrics`: what every worker reported (its loop counters, HTTP counters, offload
 * pools, memory), per worker slot (`worker="0"`) and summed, with the master's own counters, in the
 * Prometheus text format (prometheus.ts). docs/operations.md lists every metric.
 *
 * Two families per measurement, so that neither double counts: `multireactor_worker_X{worker="N"}`
 * per slot and `multireactor_X` summed over the slots (`sum(multireactor_worker_X)` equals it).
 *
 * Counters stay monotonic across reloads and crashes: a slot's counter is what its workers that
 * are gone reported last (a draining worker sends a final report just before it exits), plus what
 * its live workers report now. Without that, every reload would look like a counter reset to
 * Prometheus, and the requests answered by a draining worker in its last seconds would vanish.
 * A worker killed without a final report contributes what it reported at the last scrape or status
 * (the master asks at every scrape, so at most one scrape interval is lost).
 */
import { HTTP_LATENCY_BOUNDS_MS, HTTP_STATUS_CLASSES } from '../common/http-metrics.js';
import type { MasterView, WorkerStatus } from '../master/handle.js';
import type { WorkerInfo } from '../master/protocol.js';
import type { OffloadPoolStats } from '../offload/pool.js';
import type { PubSubStats } from '../pubsub/pubsub.js';
import { Exposition, type Labels, type MetricType } from './prometheus.js';

/** One measurement: its name without the prefixes, its type and help. */
interface Def {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
}

const PER_WORKER: readonly Def[] = [
  { name: 'connections_open', type: 'gauge', help: 'Connections open now.' },
  { name: 'connections_accepted_total', type: 'counter', help: 'Connections accepted.' },
  {
    name: 'connections_closed_total',
    type: 'counter',
    help: 'Connections closed, by reason (local, peer-closed, reset, idle-timeout, shutdown, error, ...).',
  },
  { name: 'received_bytes_total', type: 'counter', help: 'Bytes read from connections.' },
  { name: 'sent_bytes_total', type: 'counter', help: 'Bytes written to connections.' },
  {
    name: 'requests_total',
    type: 'counter',
    help: 'Requests or messages handled, as the protocol counts them (every HTTP request; channel.countRequest()).',
  },
  { name: 'http_responses_total', type: 'counter', help: 'HTTP responses sent, by status class.' },
  {
    name: 'http_request_duration_seconds',
    type: 'histogram',
    help: 'From the read that brought an HTTP request to its whole response handed to the connection, on the loop clock (resolution timerTickMs, 20 ms by default).',
  },
  {
    name: 'accept_pauses_total',
    type: 'counter',
    help: 'Times accepting paused: out of descriptors or kernel memory (reason="descriptors": EMFILE, ENFILE, ENOBUFS, ENOMEM) or maxConnections open (reason="max_connections").',
  },
  { name: 'accept_errors_total', type: 'counter', help: 'accept4 failures other than EAGAIN and EINTR.' },
  {
    name: 'read_pauses_total',
    type: 'counter',
    help: 'Times a connection stopped reading because its peer was not reading our writes (backpressure).',
  },
  {
    name: 'dropped_writes_total',
    type: 'counter',
    help: 'Writes dropped because their connection was closing or closed.',
  },
  {
    name: 'unhandled_errors_total',
    type: 'counter',
    help: 'Errors that reached the tail of a pipeline unhandled (each closed its connection).',
  },
  {
    name: 'decoder_errors_total',
    type: 'counter',
    help: "Decoder errors that reached the tail with decoderErrors: 'continue' (connection kept).",
  },
  { name: 'loop_wakeups_total', type: 'counter', help: "Wake-ups of the worker's epoll loop from Node's loop." },
  { name: 'loop_events_total', type: 'counter', help: 'I/O events dispatched by the loop.' },
  {
    name: 'offload_tasks_total',
    type: 'counter',
    help: 'Offloaded tasks by pool (task module) and outcome: completed, failed, overloaded (refused: queue full), aborted (connection closed first), dropped (result after the connection closed).',
  },
  { name: 'offload_queued_tasks', type: 'gauge', help: 'Offloaded tasks waiting for a thread now, by pool.' },
  {
    name: 'offload_running_tasks',
    type: 'gauge',
    help: 'Offloaded tasks running on a thread now (in flight), by pool.',
  },
  { name: 'offload_threads', type: 'gauge', help: 'Threads of the offload pool alive now, by pool.' },
  {
    name: 'pubsub_messages_total',
    type: 'counter',
    help: "Pub/sub messages by event: published (publish() calls), delivered (local WebSocket sends and listener calls), skipped (refused by a member's backpressure policy or closing), received (from other processes), missed (gaps in other processes' sequence numbers), dropped (never handed to the broker: queue full), unconfirmed (written to a broker connection that broke), forwarded (handed to the broker).",
  },
  {
    name: 'pubsub_broker_reconnects_total',
    type: 'counter',
    help: "Pub/sub connections to the broker (Redis, or the master's relay) established again after a loss.",
  },
  { name: 'pubsub_broker_errors_total', type: 'counter', help: 'Error replies from Redis to pub/sub commands.' },
  {
    name: 'pubsub_broker_connected',
    type: 'gauge',
    help: 'Pub/sub instances connected to their broker now (compare with multireactor_pubsub_instances).',
  },
  { name: 'pubsub_instances', type: 'gauge', help: 'PubSub instances in use (started) in the workers.' },
  {
    name: 'pubsub_queued_messages',
    type: 'gauge',
    help: 'Pub/sub messages waiting for the broker now (while it is away).',
  },
  { name: 'pubsub_subscriptions', type: 'gauge', help: 'Topics and patterns with local subscribers now, by kind.' },
  { name: 'resident_memory_bytes', type: 'gauge', help: 'Resident set size of the worker processes.' },
  { name: 'heap_used_bytes', type: 'gauge', help: 'V8 heap in use in the worker processes.' },
  {
    name: 'restarts_total',
    type: 'counter',
    help: 'Workers re-forked after a crash (reloads are not counted here: multireactor_reloads_total).',
  },
];

const COUNTER_OUTCOMES = ['completed', 'failed', 'overloaded', 'aborted', 'dropped'] as const;
/** The `event` label of `pubsub_messages_total`: a counter of `PubSubStats` each. */
const PUBSUB_EVENTS = [
  'published',
  'delivered',
  'skipped',
  'received',
  'missed',
  'dropped',
  'unconfirmed',
  'forwarded',
] as const satisfies ReadonlyArray<keyof PubSubStats>;

/** One sample of a worker: its measurement, the suffix (histograms), labels and value. */
interface Sample {
  readonly name: string;
  readonly suffix: '' | '_bucket' | '_sum' | '_count';
  readonly labels: Labels;
  value: number;
}

type Series = Map<string, Sample>;

function keyOf(s: Sample): string {
  let k = `${s.name}${s.suffix}`;
  for (const [n, v] of s.labels) k += `\u0000${n}=${v}`;
  return k;
}

function add(into: Series, s: Sample, sign = 1): void {
  const k = keyOf(s);
  const had = into.get(k);
  if (had === undefined) into.set(k, { ...s, value: sign * s.value });
  else had.value += sign * s.value;
}

/** A pool's label: its task module, without the `file://` of a URL. */
function poolName(filename: string): string {
  return filename.startsWith('file://') ? filename.slice(7) : filename;
}

/** The counters in a worker's report (what is folded into its slot when it is gone). */
export function counterSamples(info: WorkerInfo): Sample[] {
  const s = info.stats;
  const out: Sample[] = [
    { name: 'connections_accepted_total', suffix: '', labels: [], value: s.accepted },
    { name: 'received_bytes_total', suffix: '', labels: [], value: s.bytesIn },
    { name: 'sent_bytes_total', suffix: '', labels: [], value: s.bytesOut },
    { name: 'requests_total', suffix: '', labels: [], value: s.requests },
    { name: 'accept_pauses_total', suffix: '', labels: [['reason', 'descriptors']], value: s.acceptPauses },
    {
      name: 'accept_pauses_total',
      suffix: '',
      labels: [['reason', 'max_connections']],
      value: s.connectionLimitPauses,
    },
    { name: 'accept_errors_total', suffix: '', labels: [], value: s.acceptErrors },
    { name: 'read_pauses_total', suffix: '', labels: [], value: s.readPauses },
    { name: 'dropped_writes_total', suffix: '', labels: [], value: s.droppedWrites },
    { name: 'unhandled_errors_total', suffix: '', labels: [], value: s.unhandledErrors },
    { name: 'decoder_errors_total', suffix: '', labels: [], value: s.decoderErrors },
    { name: 'loop_wakeups_total', suffix: '', labels: [], value: s.wakeups },
    { name: 'loop_events_total', suffix: '', labels: [], value: s.events },
  ];
  for (const [reason, n] of Object.entries(s.closed)) {
    out.push({ name: 'connections_closed_total', suffix: '', labels: [['reason', reason]], value: n });
  }
  const http = info.http;
  if (http !== undefined) {
    // Status classes with no response yet are left out, except 2xx (a steady series to rate()).
    HTTP_STATUS_CLASSES.forEach((c, i) => {
      const n = http.responses[i] ?? 0;
      if (n > 0 || c === '2xx') out.push({ name: 'http_responses_total', suffix: '', labels: [['code', c]], value: n });
    });
    let cumulative = 0;
    let count = 0;
    for (const n of http.latency) count += n;
    HTTP_LATENCY_BOUNDS_MS.forEach((ms, i) => {
      cumulative += http.latency[i] ?? 0;
      out.push({
        name: 'http_request_duration_seconds',
        suffix: '_bucket',
        labels: [['le', String(ms / 1000)]],
        value: cumulative,
      });
    });
    out.push(
      { name: 'http_request_duration_seconds', suffix: '_bucket', labels: [['le', '+Inf']], value: count },
      { name: 'http_request_duration_seconds', suffix: '_sum', labels: [], value: http.latencySumMs / 1000 },
      { name: 'http_request_duration_seconds', suffix: '_count', labels: [], value: count },
    );
  }
  for (const p of offloadPools(info)) {
    for (const outcome of COUNTER_OUTCOMES) {
      out.push({
        name: 'offload_tasks_total',
        suffix: '',
        labels: [
          ['pool', poolName(p.filename)],
          ['outcome', outcome],
        ],
        value: p[outcome],
      });
    }
  }
  const pubsub = pubSubs(info);
  if (pubsub.length > 0) {
    // A process may run several PubSubs (one per Redis, say): summed, as the process's figures.
    for (const event of PUBSUB_EVENTS) {
      let n = 0;
      for (const p of pubsub) n += p[event];
      out.push({ name: 'pubsub_messages_total', suffix: '', labels: [['event', event]], value: n });
    }
    let reconnects = 0;
    let errors = 0;
    for (const p of pubsub) {
      reconnects += p.reconnects;
      errors += p.errors;
    }
    out.push(
      { name: 'pubsub_broker_reconnects_total', suffix: '', labels: [], value: reconnects },
      { name: 'pubsub_broker_errors_total', suffix: '', labels: [], value: errors },
    );
  }
  return out;
}

/** The gauges in a worker's report (only live workers count). */
function gaugeSamples(info: WorkerInfo): Sample[] {
  const out: Sample[] = [
    { name: 'connections_open', suffix: '', labels: [], value: info.connections },
    { name: 'resident_memory_bytes', suffix: '', labels: [], value: info.rss },
    { name: 'heap_used_bytes', suffix: '', labels: [], value: info.heapUsed },
  ];
  for (const p of offloadPools(info)) {
    const labels: Labels = [['pool', poolName(p.filename)]];
    out.push(
      { name: 'offload_queued_tasks', suffix: '', labels, value: p.queued },
      { name: 'offload_running_tasks', suffix: '', labels, value: p.running },
      { name: 'offload_threads', suffix: '', labels, value: p.threads },
    );
  }
  const pubsub = pubSubs(info);
  if (pubsub.length > 0) {
    let connected = 0;
    let queued = 0;
    let topics = 0;
    let patterns = 0;
    for (const p of pubsub) {
      if (p.connected) connected++;
      queued += p.queued;
      topics += p.topics;
      patterns += p.patterns;
    }
    out.push(
      { name: 'pubsub_instances', suffix: '', labels: [], value: pubsub.length },
      { name: 'pubsub_broker_connected', suffix: '', labels: [], value: connected },
      { name: 'pubsub_queued_messages', suffix: '', labels: [], value: queued },
      { name: 'pubsub_subscriptions', suffix: '', labels: [['kind', 'topic']], value: topics },
      { name: 'pubsub_subscriptions', suffix: '', labels: [['kind', 'pattern']], value: patterns },
    );
  }
  return out;
}

/** The worker's PubSubs (src/pubsub reports them under `pubsub`; none before the first is used). */
function pubSubs(info: WorkerInfo): readonly PubSubStats[] {
  const list = info.reports?.pubsub;
  return Array.isArray(list) ? (list as PubSubStats[]) : [];
}

function offloadPools(info: WorkerInfo): readonly OffloadPoolStats[] {
  const pools = info.reports?.offload;
  return Array.isArray(pools) ? (pools as OffloadPoolStats[]) : [];
}

const STATE_NAMES = { starting: 'starting', ready: 'serving', draining: 'draining', exited: 'exited' } as const;

/** Builds `/metrics` for one master, remembering the counters of its workers that are gone. */
export class MasterMetrics {
  /** Per slot: the counters of its workers that are gone. */
  private readonly retired = new Map<number, Series>();

  constructor(private readonly view: MasterView) {
    view.onWorkerGone((slot, last, counted) => {
      let series = this.retired.get(slot);
      if (series === undefined) {
        series = new Map();
        this.retired.set(slot, series);
      }
      for (const s of counterSamples(last)) add(series, s);
      if (counted !== undefined) for (const s of counterSamples(counted)) add(series, s, -1);
    });
  }

  /** Asks every worker, then writes the exposition. */
  async render(timeoutMs = 2000): Promise<string> {
    const workers = await this.view.inspect(timeoutMs);
    // From here on synchronous: `workers` and `retired` describe the same instant (see inspect).
    return this.write(workers);
  }

  private write(workers: readonly WorkerStatus[]): string {
    const view = this.view;
    const counters = view.counters();
    const slots = new Map<number, Series>();
    for (let i = 0; i < counters.slots; i++) {
      const series: Series = new Map();
      for (const s of this.retired.get(i)?.values() ?? []) add(series, s);
      series.set('restarts_total', {
        name: 'restarts_total',
        suffix: '',
        labels: [],
        value: counters.restarts[i] ?? 0,
      });
      // Gauges present (at 0) even when no worker of the slot answers: the series do not vanish.
      for (const name of ['connections_open', 'resident_memory_bytes', 'heap_used_bytes']) {
        add(series, { name, suffix: '', labels: [], value: 0 });
      }
      slots.set(i, series);
    }
    for (const w of workers) {
      const series = slots.get(w.slot);
      if (series === undefined || w.info === undefined) continue;
      for (const s of counterSamples(w.info)) add(series, s);
      for (const s of gaugeSamples(w.info)) add(series, s);
    }

    const x = new Exposition();
    const readiness = view.readiness();
    x.family(
      'multireactor_ready',
      'gauge',
      'Whether /readyz answers 200: serving, not stopping, every slot has a ready worker.',
    );
    x.sample('multireactor_ready', [], readiness.ready ? 1 : 0);
    x.family('multireactor_worker_slots', 'gauge', 'Worker slots configured (workers).');
    x.sample('multireactor_worker_slots', [], counters.slots);
    x.family('multireactor_workers', 'gauge', 'Worker processes now, by state.');
    for (const state of ['starting', 'serving', 'draining'] as const) {
      const n = workers.filter((w) => STATE_NAMES[w.state] === state).length;
      x.sample('multireactor_workers', [['state', state]], n);
    }
    x.family('multireactor_reloads_total', 'counter', 'Reloads of the workers (SIGUSR2, SIGHUP, reload()), by result.');
    x.sample('multireactor_reloads_total', [['result', 'ok']], counters.reloadsOk);
    x.sample('multireactor_reloads_total', [['result', 'failed']], counters.reloadsFailed);
    const accepted = [...slots.values()].map((s) => s.get('connections_accepted_total')?.value ?? 0);
    const max = Math.max(0, ...accepted);
    const min = Math.min(...accepted);
    x.family(
      'multireactor_accepted_balance_ratio',
      'gauge',
      'Connections accepted by the busiest slot over the least busy one (1: even; the SO_REUSEPORT hash is not load aware).',
    );
    x.sample('multireactor_accepted_balance_ratio', [], max === 0 ? 1 : max / min);
    x.family('multireactor_worker_info', 'gauge', 'One per worker process: its slot, pid, generation and state.');
    for (const w of workers) {
      x.sample(
        'multireactor_worker_info',
        [
          ['worker', String(w.slot)],
          ['pid', String(w.pid)],
          ['generation', String(w.generation)],
          ['state', STATE_NAMES[w.state]],
        ],
        1,
      );
    }
    x.family('multireactor_worker_start_time_seconds', 'gauge', 'When each worker process was forked, Unix time.');
    for (const w of workers) {
      x.sample(
        'multireactor_worker_start_time_seconds',
        [
          ['worker', String(w.slot)],
          ['pid', String(w.pid)],
        ],
        w.startedAtMs / 1000,
      );
    }

    // Summed over the slots, then per slot.
    const total: Series = new Map();
    for (const series of slots.values()) for (const s of series.values()) add(total, s);
    for (const def of PER_WORKER) this.writeFamily(x, `multireactor_${def.name}`, def, [[[], total]]);
    const perSlot: Array<[Labels, Series]> = [...slots.entries()].map(([slot, series]) => [
      [['worker', String(slot)]],
      series,
    ]);
    for (const def of PER_WORKER) this.writeFamily(x, `multireactor_worker_${def.name}`, def, perSlot);

    const mem = process.memoryUsage();
    x.family('process_start_time_seconds', 'gauge', 'When the master process started, Unix time.');
    x.sample('process_start_time_seconds', [], view.startedAtMs / 1000);
    x.family('process_resident_memory_bytes', 'gauge', 'Resident set size of the master process.');
    x.sample('process_resident_memory_bytes', [], mem.rss);
    return x.text();
  }

  private writeFamily(x: Exposition, family: string, def: Def, groups: ReadonlyArray<readonly [Labels, Series]>): void {
    x.family(family, def.type, def.help);
    const suffixes = def.type === 'histogram' ? (['_bucket', '_sum', '_count'] as const) : (['' as const] as const);
    // A histogram's series stay together: every bucket of worker="0", its sum and count, then worker="1".
    for (const [prefix, series] of groups) {
      for (const suffix of suffixes) {
        for (const s of series.values()) {
          if (s.name !== def.name || s.suffix !== suffix) continue;
          x.sample(`${family}${suffix}`, [...prefix, ...s.labels], s.value);
        }
      }
    }
  }
}
