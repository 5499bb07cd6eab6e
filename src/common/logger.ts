/**
 * A minimal logger interface, so applications can route the framework's logs into theirs
 * (pino, winston and console all fit). The default writes to stderr with the pid, which is what
 * tells workers apart; `debug` is silent unless MULTIREACTOR_DEBUG is set.
 *
 * Structured logs: `jsonLogger()` writes one JSON object per line in pino's shape (numeric
 * `level`, `time`, `pid`, `hostname`, `msg`, `err`), and a pino logger can be passed as it is —
 * `Server.listen` recognises it (`adaptLogger`): the framework's details (an Error, mostly) then go
 * into the line as fields (`err`) instead of being dropped, as pino drops arguments that its
 * message has no `%s` for. Either way a worker's lines carry its slot and generation (`child`).
 */
import { hostname } from 'node:os';

/**
 * Where the framework logs: a minimal interface that pino, winston, bunyan and `console` fit, so
 * the framework's lines join the application's. Pass one as `ServerOptions.logger`
 * (`LoopOptions.logger`); the default, {@link consoleLogger}, writes to stderr with the pid, and
 * {@link jsonLogger} writes pino-shaped JSON lines. A pino logger may be passed as it is: its
 * `child()` binds each worker's slot and generation, and an Error detail becomes its `err` field.
 * `details` are what the framework has beyond the message: an Error, mostly.
 */
export interface Logger {
  debug(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
  /**
   * A logger that adds `bindings` to every line (pino's and bunyan's `child`). Optional: the
   * framework binds a worker's `worker` (slot) and `generation` when the logger has it.
   */
  child?(bindings: Record<string, unknown>): Logger;
}

/** Logs to stderr as `[multireactor <pid>] <level>: message`; a child adds its bindings (`worker=0`). */
export function consoleLogger(name = 'multireactor', bindings: Record<string, unknown> = {}): Logger {
  const debugOn = process.env.MULTIREACTOR_DEBUG !== undefined && process.env.MULTIREACTOR_DEBUG !== '';
  const tags = Object.entries(bindings)
    .map(([k, v]) => ` ${k}=${String(v)}`)
    .join('');
  const at =
    (level: string) =>
    (message: string, ...details: unknown[]) => {
      console.error(`[${name} ${process.pid}${tags}] ${level}: ${message}`, ...details);
    };
  return {
    debug: debugOn ? at('debug') : () => {},
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => consoleLogger(name, { ...bindings, ...more }),
  };
}

/** Drops everything (tests that provoke errors on purpose). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** pino's numeric levels (what log processors that read pino's lines expect). */
const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
/** A {@link jsonLogger} level, from the most verbose; each is written as pino's number (20–50). */
export type LogLevel = keyof typeof LEVELS;

/** What {@link jsonLogger} writes and where. */
export interface JsonLoggerOptions {
  /** The lowest level written. Default `'info'` (`'debug'` when MULTIREACTOR_DEBUG is set). */
  readonly level?: LogLevel;
  /** Fields of every line (a service name, say). */
  readonly bindings?: Readonly<Record<string, unknown>>;
  /** Where lines go. Default: stderr. */
  readonly write?: (line: string) => void;
}

/** An Error as pino's standard serializer writes it. */
function serializeError(err: Error): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.name, message: err.message, stack: err.stack };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  return out;
}

/** The framework's details as fields: `err` for an Error, `details` for anything else. */
function detailFields(details: readonly unknown[]): Record<string, unknown> | undefined {
  if (details.length === 0) return undefined;
  const fields: Record<string, unknown> = {};
  const rest: unknown[] = [];
  for (const d of details) {
    if (d instanceof Error && fields.err === undefined) fields.err = d;
    else rest.push(d);
  }
  if (rest.length > 0) fields.details = rest.length === 1 ? rest[0] : rest;
  return fields;
}

/**
 * Logs one JSON object per line, in pino's format: `{"level":30,"time":…,"pid":…,"hostname":…,
 * "msg":"…"}` plus the bindings and `err` (type, message, stack) for an Error detail — what a log
 * shipper or `pino-pretty` reads as it is.
 */
export function jsonLogger(options: JsonLoggerOptions = {}): Logger {
  const debugEnv = process.env.MULTIREACTOR_DEBUG !== undefined && process.env.MULTIREACTOR_DEBUG !== '';
  const min = LEVELS[options.level ?? (debugEnv ? 'debug' : 'info')];
  if (min === undefined) throw new TypeError(`jsonLogger: level must be one of ${Object.keys(LEVELS).join(', ')}`);
  const write = options.write ?? ((line: string) => process.stderr.write(line));
  const host = hostname();
  const make = (bindings: Readonly<Record<string, unknown>>): Logger => {
    const at =
      (level: LogLevel) =>
      (message: string, ...details: unknown[]) => {
        if (LEVELS[level] < min) return;
        const line: Record<string, unknown> = {
          level: LEVELS[level],
          time: Date.now(),
          pid: process.pid,
          hostname: host,
          ...bindings,
        };
        const fields = detailFields(details);
        if (fields !== undefined) {
          if (fields.err instanceof Error) fields.err = serializeError(fields.err);
          Object.assign(line, fields);
        }
        line.msg = message;
        let text: string;
        try {
          text = JSON.stringify(line);
        } catch {
          // A detail that cannot be serialized (a cycle, a BigInt) must not lose the line.
          text = JSON.stringify({ ...line, details: String(line.details) });
        }
        write(`${text}\n`);
      };
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make(options.bindings ?? {});
}

/** What the framework needs to recognise a pino logger: pino's own methods. */
interface PinoLike {
  child(bindings: Record<string, unknown>): PinoLike;
  bindings(): Record<string, unknown>;
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

function isPino(l: unknown): l is PinoLike {
  const p = l as Partial<PinoLike> & { levels?: unknown };
  return (
    typeof p?.child === 'function' &&
    typeof p.bindings === 'function' &&
    typeof p.levels === 'object' &&
    p.levels !== null
  );
}

/**
 * The logger the framework uses for what the application gave it: a pino logger is wrapped so that
 * details become fields (`logger.error({ err }, msg)`, pino's convention) and messages are never
 * read as format strings; any other logger is used as it is.
 */
export function adaptLogger(logger: Logger): Logger {
  if (!isPino(logger)) return logger;
  const p = logger as unknown as PinoLike;
  const at =
    (level: LogLevel) =>
    (message: string, ...details: unknown[]) => {
      p[level](detailFields(details) ?? {}, message);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (bindings) => adaptLogger(p.child(bindings) as unknown as Logger),
  };
}

/** `logger.child(bindings)` when it has one, else the logger itself. */
export function childLogger(logger: Logger, bindings: Record<string, unknown>): Logger {
  return typeof logger.child === 'function' ? logger.child(bindings) : logger;
}
