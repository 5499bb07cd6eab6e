/**
 * A minimal logger interface, so applications can route the framework's logs into theirs
 * (pino, winston and console all fit). The default writes to stderr with the pid, which is what
 * tells workers apart; `debug` is silent unless MULTIREACTOR_DEBUG is set.
 */
export interface Logger {
  debug(message: string, ...details: unknown[]): void;
  info(message: string, ...details: unknown[]): void;
  warn(message: string, ...details: unknown[]): void;
  error(message: string, ...details: unknown[]): void;
}

/** Logs to stderr as `[multireactor <pid>] <level>: message`. */
export function consoleLogger(name = 'multireactor'): Logger {
  const debugOn = process.env.MULTIREACTOR_DEBUG !== undefined && process.env.MULTIREACTOR_DEBUG !== '';
  const at =
    (level: string) =>
    (message: string, ...details: unknown[]) => {
      console.error(`[${name} ${process.pid}] ${level}: ${message}`, ...details);
    };
  return {
    debug: debugOn ? at('debug') : () => {},
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}

/** Drops everything (tests that provoke errors on purpose). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
