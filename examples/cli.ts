/**
 * What every example's command line shares: Node's parseArgs, plus `--help` / `-h` (prints the
 * usage), and a one-line message with the usage and exit status 2 instead of a stack trace for an
 * unknown or malformed option; `listenOrExit` does the same (exit status 1) for a server that
 * cannot start (a bad option, a port in use).
 *
 * Numbers are parsed strictly, in one place: an option declared with `integer: [min, max]` takes
 * decimal digits only and is range-checked — `--port=` (empty), `--port 0x1F90`, `--port 1e3`,
 * `--port ' 80'` or `--workers 1.5` are errors, not 0, 8080, 1000, 80 or a truncation, as
 * `Number()` would make them. `number: [min, max]` takes a decimal fraction too (`0.5`), and
 * `choices: [...]` one of a list. The parsed value is then a number (or the choice).
 *
 * Every example also takes `--log-format text|json`: `json` makes `listenOrExit` give the server
 * `jsonLogger()` — one JSON object per line on stderr, in pino's format, each worker's lines with
 * its slot — for a log shipper (docs/operations.md, "Logs").
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { jsonLogger, type Logger, Server, type ServerHandle, type ServerOptions } from '../src/index.js';

type ArgSpec = NonNullable<ParseArgsConfig['options']>[string];

/** An option of the command line: parseArgs's, or a string with `integer`, `number` or `choices`. */
export type Option =
  | ArgSpec
  | (ArgSpec & { readonly type: 'string'; readonly multiple?: false; readonly integer: readonly [number, number] })
  | (ArgSpec & { readonly type: 'string'; readonly multiple?: false; readonly number: readonly [number, number] })
  | (ArgSpec & { readonly type: 'string'; readonly multiple?: false; readonly choices: readonly string[] });
export type Options = Readonly<Record<string, Option>>;

type Plain<O extends Options> = { [K in keyof O]: Omit<O[K], 'integer' | 'number' | 'choices'> };
type Raw<O extends Options> = ReturnType<typeof parseArgs<{ options: Plain<O>; strict: true }>>['values'];
type WithDefault<S, T> = S extends { readonly default: string } ? T : T | undefined;

/** The parsed values: numbers for `integer` and `number` options, the choice for `choices`. */
export type Values<O extends Options> = {
  [K in keyof Raw<O>]: K extends keyof O
    ? O[K] extends { readonly integer: readonly [number, number] }
      ? WithDefault<O[K], number>
      : O[K] extends { readonly number: readonly [number, number] }
        ? WithDefault<O[K], number>
        : O[K] extends { readonly choices: readonly (infer C)[] }
          ? WithDefault<O[K], C>
          : Raw<O>[K]
    : Raw<O>[K];
};

const DIGITS = /^[0-9]+$/;
const DECIMAL = /^[0-9]+(\.[0-9]+)?$/;

/**
 * `text` as an integer in [min, max], or an Error that says what `--name` must be: decimal digits
 * only (a leading `-` when `min` is negative), no sign, space, exponent, hex or fraction.
 */
export function parseInteger(name: string, text: string, min: number, max: number): number {
  const negative = min < 0 && text.startsWith('-');
  const digits = negative ? text.slice(1) : text;
  const n = DIGITS.test(digits) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** `text` as a decimal number (`5`, `0.25`) in [min, max], or an Error that says what `--name` must be. */
export function parseDecimal(name: string, text: string, min: number, max: number): number {
  const n = DECIMAL.test(text) ? Number(text) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new Error(`--${name} must be a number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return n;
}

/** The usage of the command line `cli` parsed (for `usageError`). */
let currentUsage = '';

/** What every example's usage ends with: the option `cli` adds to each. */
const LOG_FORMAT_USAGE =
  "  --log-format text|json   the server's log lines: text (default) or JSON lines (pino's format)\n";

/** `--log-format` as given (`cli` parses it for every example). */
let logFormat: 'text' | 'json' = 'text';

/** The logger `--log-format` asks for: undefined for text (the framework's default). */
export function exampleLogger(): Logger | undefined {
  return logFormat === 'json' ? jsonLogger() : undefined;
}

/** Ends the process the way a bad option does: `message`, the usage, exit status 2. */
export function usageError(message: string): never {
  process.stderr.write(`${message}\n\n${currentUsage}`);
  process.exit(2);
}

/**
 * Each comma-separated element of `text` through `parse` (`parseInteger`, …); a bad element ends
 * the process as a bad option does.
 */
export function listOption<T>(name: string, text: string, parse: (name: string, text: string) => T): T[] {
  try {
    return text.split(',').map((t) => parse(name, t));
  } catch (err) {
    usageError((err as Error).message);
  }
}

/** The parsed option values, or the process exits (0 after --help, 2 for a bad command line). */
export function cli<const O extends Options>(usage: string, options: O): Values<O> {
  const text = `${usage.trim()}\n${LOG_FORMAT_USAGE}`;
  currentUsage = text;
  try {
    const plain: Record<string, ArgSpec> = {};
    for (const [name, o] of Object.entries(options)) {
      const { integer: _i, number: _n, choices: _c, ...spec } = o as Option & Record<string, unknown>;
      plain[name] = spec as ArgSpec;
    }
    const { values } = parseArgs({
      options: { ...plain, help: { type: 'boolean', short: 'h' }, 'log-format': { type: 'string' } },
      strict: true,
    });
    if ((values as { help?: boolean }).help === true) {
      process.stdout.write(text);
      process.exit(0);
    }
    const { 'log-format': format, help: _help, ...rest } = values as Record<string, unknown>;
    if (format !== undefined && format !== 'text' && format !== 'json') {
      throw new Error(`--log-format must be one of text, json, got ${JSON.stringify(format)}`);
    }
    logFormat = format === 'json' ? 'json' : 'text';
    const out: Record<string, unknown> = { ...rest };
    for (const [name, o] of Object.entries(options)) {
      const v = out[name];
      if (typeof v !== 'string') continue;
      if ('integer' in o) out[name] = parseInteger(name, v, o.integer[0], o.integer[1]);
      else if ('number' in o) out[name] = parseDecimal(name, v, o.number[0], o.number[1]);
      else if ('choices' in o && !o.choices.includes(v)) {
        throw new Error(`--${name} must be one of ${o.choices.join(', ')}, got ${JSON.stringify(v)}`);
      }
    }
    return out as Values<O>;
  } catch (err) {
    usageError((err as Error).message);
  }
}

/** `Server.listen`, or a one-line reason on stderr and exit status 1. */
export async function listenOrExit(
  name: string,
  options: ServerOptions | (() => ServerOptions),
): Promise<ServerHandle> {
  try {
    const o = typeof options === 'function' ? options() : options;
    const logger = exampleLogger();
    return await Server.listen(logger !== undefined && o.logger === undefined ? { ...o, logger } : o);
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n`);
    process.exit(1);
  }
}

/**
 * Prints `listening on HOST:PORT` (in the master once every worker is ready, or in a single
 * process), and — serving in this process — stops gracefully on SIGTERM/SIGINT (a master handles
 * its signals itself).
 */
export function announce(server: ServerHandle): void {
  if (server.role !== 'worker') {
    const { address, port } = server.address();
    console.log(`listening on ${address}:${port}`);
  }
  if (server.role === 'single') {
    const stop = () => void server.close();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  }
}
