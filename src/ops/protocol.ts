/**
 * The control protocol between the `multireactor` command line and a master: JSON lines over the
 * master's control socket (a Unix socket; its file mode decides who may talk).
 *
 *     → {"v":1,"id":1,"cmd":"status"}
 *     ← {"v":1,"id":1,"ok":true,"result":{"master":{…},"workers":[…]}}
 *     → {"v":1,"id":2,"cmd":"stop","timeoutMs":5000}
 *     ← {"v":1,"id":2,"ok":true,"result":{"reason":"multireactor stop","durationMs":812}}
 *     → {"v":2,"id":3,"cmd":"status"}
 *     ← {"v":1,"id":3,"ok":false,"error":"protocol version 2 is not spoken here: this master speaks 1"}
 *
 * Every request carries the version it speaks (`v`) and an `id` its answer repeats; a request in
 * another version, an unknown command or a malformed line is answered `ok: false` with the
 * reason (a line that is not JSON, then the connection closes). Requests on one connection may
 * overlap (a `status` while a `reload` runs); answers come as each completes. A new version will
 * be a new number: a master answers every version it speaks, and says which it speaks otherwise.
 */
import type { ReloadResult } from '../master/handle.js';

/** The control socket that goes with a pid file: `/run/app.pid` → `/run/app.ctl.sock` (the CLI's `--pid-file` finds it the same way). */
export function controlPathForPidFile(pidFile: string): string {
  return `${pidFile.endsWith('.pid') ? pidFile.slice(0, -4) : pidFile}.ctl.sock`;
}

export const CONTROL_PROTOCOL_VERSION = 1;

export const CONTROL_COMMANDS = ['status', 'reload', 'stop', 'metrics'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

export interface ControlRequest {
  readonly v: number;
  readonly id: number;
  readonly cmd: ControlCommand;
  /** `stop`: the drain deadline in ms (default: the master's drainTimeout). */
  readonly timeoutMs?: number;
}

export type ControlReply =
  | { readonly v: number; readonly id: number | null; readonly ok: true; readonly result: unknown }
  | { readonly v: number; readonly id: number | null; readonly ok: false; readonly error: string };

/** One worker process in `status`. */
export interface WorkerStatusRow {
  readonly slot: number;
  readonly pid: number;
  readonly generation: number;
  readonly state: 'starting' | 'serving' | 'draining';
  readonly uptimeSeconds: number;
  /** Open connections; null when the worker did not answer (starting). */
  readonly connections: number | null;
  /** Requests or messages handled (as the protocol counts them); null when it did not answer. */
  readonly requests: number | null;
  /** Resident set size in bytes; null when it did not answer. */
  readonly rssBytes: number | null;
  /** Crash restarts of its slot since the master started. */
  readonly restarts: number;
}

export interface StatusResult {
  readonly master: {
    readonly pid: number;
    readonly phase: 'starting' | 'serving' | 'delaying' | 'stopping';
    readonly ready: boolean;
    readonly readyReason: string;
    readonly address: string;
    readonly uptimeSeconds: number;
    readonly slots: number;
    readonly reloads: { readonly ok: number; readonly failed: number };
    /** Where the admin listener serves (`127.0.0.1:9100`, `unix:/run/app-admin.sock`), or null. */
    readonly admin: string | null;
    /** The control socket's path. */
    readonly control: string | null;
  };
  readonly workers: readonly WorkerStatusRow[];
}

/** What `stop` answers once every worker is reaped. */
export interface StopResult {
  readonly reason: string;
  readonly durationMs: number;
}

export type { ReloadResult };

/**
 * Checks a parsed request line: the error to answer, or undefined when it is a request this
 * master serves.
 */
export function requestError(msg: unknown): string | undefined {
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) return 'a request is a JSON object';
  const r = msg as Partial<ControlRequest>;
  if (r.v !== CONTROL_PROTOCOL_VERSION) {
    return `protocol version ${JSON.stringify(r.v)} is not spoken here: this master speaks ${CONTROL_PROTOCOL_VERSION}`;
  }
  if (typeof r.id !== 'number' || !Number.isSafeInteger(r.id)) return 'id must be an integer';
  if (!CONTROL_COMMANDS.includes(r.cmd as ControlCommand)) {
    return `unknown command ${JSON.stringify(r.cmd)} (commands: ${CONTROL_COMMANDS.join(', ')})`;
  }
  if (r.timeoutMs !== undefined && !(Number.isSafeInteger(r.timeoutMs) && r.timeoutMs >= 0)) {
    return 'timeoutMs must be an integer >= 0';
  }
  return undefined;
}
