/**
 * What every example's command line shares: Node's parseArgs, plus `--help` / `-h` (prints the
 * usage), and a one-line message with the usage instead of a stack trace for an unknown or
 * malformed option; `listenOrExit` does the same for a server that cannot start (a bad option,
 * a port in use).
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { Server, type ServerHandle, type ServerOptions } from '../src/index.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values<O extends Options> = ReturnType<typeof parseArgs<{ options: O; strict: true }>>['values'];

/** The parsed option values, or the process exits (0 after --help, 2 for a bad command line). */
export function cli<const O extends Options>(usage: string, options: O): Values<O> {
  const text = `${usage.trim()}\n`;
  try {
    const { values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true });
    if ((values as { help?: boolean }).help === true) {
      process.stdout.write(text);
      process.exit(0);
    }
    return values as Values<O>;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${text}`);
    process.exit(2);
  }
}

/** `Server.listen`, or a one-line reason on stderr and exit status 1. */
export async function listenOrExit(name: string, options: ServerOptions): Promise<ServerHandle> {
  try {
    return await Server.listen(options);
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
