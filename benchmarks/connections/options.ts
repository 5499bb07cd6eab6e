/**
 * The options of the connections benchmark (run.ts), checked before anything starts: a bad
 * value is a one-line message and exit status 2, never a run that measures the wrong thing.
 * Separate from run.ts so that the checks are tested without running the benchmark.
 */
import { readFileSync } from 'node:fs';

/** What each server kind speaks, and whether it can take part in each half. */
export const SERVER_KINDS = {
  /** multireactor's HTTP stage (`http()`): keep-alive connections after one request each. */
  'mr-http': { protocol: 'http', label: 'multireactor, http()' },
  /** multireactor: length-field frames, HeartbeatHandler pinging, an echo handler. */
  'mr-lf': { protocol: 'lf', label: 'multireactor, length-field + heartbeat' },
  /** node:http, one process or node:cluster. */
  'node-http': { protocol: 'http', label: 'node:http' },
  /** uWebSockets.js HTTP: closes idle keep-alive connections after 10 s (fixed in uWS). */
  'uws-http': { protocol: 'http', label: 'uWebSockets.js, HTTP' },
  /** uWebSockets.js WebSocket, pinging automatically (its own heartbeat). */
  'uws-ws': { protocol: 'ws', label: 'uWebSockets.js, WebSocket' },
} as const;
export type ServerKind = keyof typeof SERVER_KINDS;
export type Protocol = (typeof SERVER_KINDS)[ServerKind]['protocol'];

export const PARTS = ['memory', 'scale'] as const;
export type Part = (typeof PARTS)[number];

/** The command line as parseArgs gives it (all strings). */
export interface RawOptions {
  readonly parts: string;
  readonly servers: string;
  readonly connections: string;
  readonly 'scale-connections': string;
  readonly workers: string;
  readonly clients: string;
  readonly rate: string;
  readonly ping: string;
  readonly 'idle-timeout'?: string | undefined;
  readonly hold?: string | undefined;
  readonly 'latency-samples': string;
  readonly rounds: string;
  readonly port: string;
  readonly uws?: string | undefined;
  readonly json?: string | undefined;
}

export interface ConnectionsOptions {
  readonly parts: readonly Part[];
  readonly servers: readonly ServerKind[];
  /** Idle connections held by the one-process server of the memory half. */
  readonly connections: number;
  /** Connections held across the workers in the scale half. */
  readonly scaleConnections: number;
  readonly workers: number;
  /** Client processes of the scale half (each its own loopback source addresses). */
  readonly clients: number;
  /** New connections per second, all clients together; 0: as fast as the server accepts. */
  readonly rate: number;
  /** Heartbeat interval, seconds. */
  readonly ping: number;
  /** Idle timeout, seconds: a connection that hears nothing this long is closed. */
  readonly idleTimeout: number;
  /** The idle window of the scale half, seconds (default: two ping rounds and 5 s). */
  readonly hold: number;
  readonly latencySamples: number;
  /** Rounds of the memory half (medians are reported). */
  readonly rounds: number;
  readonly port: number;
  /** A folder whose node_modules holds uWebSockets.js, or undefined. */
  readonly uws: string | undefined;
  /** Where to write the results as JSON, or undefined. */
  readonly json: string | undefined;
}

/** The descriptors one process may open: its hard RLIMIT_NOFILE (20,000 on this machine kind). */
export function fdLimit(): number {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const hard = m?.[1];
  return hard === undefined || hard === 'unlimited' ? Number.POSITIVE_INFINITY : Number(hard);
}

/** Descriptors a process keeps for itself besides its connections (listeners, epoll, IPC, libuv, stdio). */
export const FD_HEADROOM = 500;

function int(name: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `${min}–${max}`;
    throw new Error(`--${name} must be an integer ${range}, got ${JSON.stringify(text)}`);
  }
  return v;
}

function list<T extends string>(name: string, text: string, known: readonly T[]): T[] {
  const items = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) throw new Error(`--${name} must name at least one of ${known.join(', ')}`);
  for (const s of items) {
    if (!(known as readonly string[]).includes(s)) {
      throw new Error(`--${name}: unknown ${JSON.stringify(s)} (known: ${known.join(', ')})`);
    }
  }
  return [...new Set(items)] as T[];
}

/**
 * Checks and resolves the command line. Throws an Error whose message names the option; `limit`
 * is the descriptor limit of one process (fdLimit(); a parameter for the tests).
 */
export function resolveOptions(raw: RawOptions, limit: number = fdLimit()): ConnectionsOptions {
  const parts = list('parts', raw.parts, PARTS);
  const servers = list('servers', raw.servers, Object.keys(SERVER_KINDS) as ServerKind[]);
  const connections = int('connections', raw.connections, 1);
  const scaleConnections = int('scale-connections', raw['scale-connections'], 1);
  const workers = int('workers', raw.workers, 1, 64);
  const clients = int('clients', raw.clients, 1, 64);
  const rate = int('rate', raw.rate, 0);
  const ping = int('ping', raw.ping, 1, 3600);
  const idleTimeout =
    raw['idle-timeout'] === undefined ? 3 * ping : int('idle-timeout', raw['idle-timeout'], 1, 36_000);
  if (idleTimeout <= ping) {
    throw new Error(
      `--idle-timeout (${idleTimeout} s) must be longer than --ping (${ping} s): the pings keep connections alive`,
    );
  }
  const hold = raw.hold === undefined ? 2 * ping + 5 : int('hold', raw.hold, 1, 36_000);
  const latencySamples = int('latency-samples', raw['latency-samples'], 1, 100_000);
  const rounds = int('rounds', raw.rounds, 1, 100);
  const port = int('port', raw.port, 1, 65535);
  const usable = limit - FD_HEADROOM;
  // Memory half: one server process holds them all, and each client process its share.
  if (parts.includes('memory') && connections > usable) {
    throw new Error(
      `--connections ${connections}: one server process holds them all, and a process may open ${limit} descriptors here (at most ${usable} connections)`,
    );
  }
  if (parts.includes('scale')) {
    const perWorker = Math.ceil(scaleConnections / workers);
    // SO_REUSEPORT spreads by a hash of the 4-tuple: allow for an uneven share.
    if (perWorker * 1.1 > usable) {
      throw new Error(
        `--scale-connections ${scaleConnections} over --workers ${workers} is ${perWorker} per worker; a process may open ${limit} descriptors here: use more workers`,
      );
    }
    if (Math.ceil(scaleConnections / clients) > usable) {
      throw new Error(
        `--scale-connections ${scaleConnections} over --clients ${clients} is ${Math.ceil(scaleConnections / clients)} per client process; a process may open ${limit} descriptors here: use more clients`,
      );
    }
  }
  return {
    parts,
    servers,
    connections,
    scaleConnections,
    workers,
    clients,
    rate,
    ping,
    idleTimeout,
    hold,
    latencySamples,
    rounds,
    port,
    uws: raw.uws === undefined || raw.uws === '' ? undefined : raw.uws,
    json: raw.json,
  };
}

/** Ephemeral ports per source address (net.ipv4.ip_local_port_range), less a margin. */
export function portsPerAddress(): number {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo !== undefined && hi !== undefined && hi > lo) return Math.floor((hi - lo + 1) * 0.9);
  } catch {
    // not Linux: the kernel default range
  }
  return 25_000;
}

/**
 * The loopback source addresses of each client process: client i gets its own, as many as its
 * share needs at `perAddress` connections each — 127.0.0.2, 127.0.0.3, … (127.0.0.1 is left to
 * the latency probe). The whole of 127.0.0.0/8 is loopback on Linux; each address has its own
 * ephemeral port range, so this is how one machine opens more than ~28k connections to one port.
 */
export function sourceAddresses(connections: number, clients: number, perAddress: number): string[][] {
  const out: string[][] = [];
  let next = 2;
  for (let i = 0; i < clients; i++) {
    const share = Math.ceil(connections / clients);
    const n = Math.max(1, Math.ceil(share / perAddress));
    const mine: string[] = [];
    for (let k = 0; k < n; k++, next++) {
      while ((next & 255) === 0 || (next & 255) === 255) next++; // no .0 or .255 host parts
      mine.push(`127.0.${next >> 8}.${next & 255}`);
    }
    out.push(mine);
  }
  return out;
}
