#!/usr/bin/env node
/**
 * multireactor-load: a small load generator built on the client.
 *
 *   multireactor-load --url http://127.0.0.1:8080/plaintext -c 50 -d 10s [--pipeline 16] [--json]
 *   multireactor-load --echo --url tcp://127.0.0.1:7000 -c 50 -d 10s [--size 64] [--pipeline 16]
 *   multireactor-load --ws --url ws://127.0.0.1:9001/ -c 50 -d 10s [--size 64] [--pipeline 4] [--deflate]
 *   multireactor-load --ws --url wss://127.0.0.1:9443/ [--ca ca.pem | --insecure] …
 *
 * Options: -c/--connections N (default 10), -d/--duration 10s|500ms|1m|N seconds (default 10s),
 * --pipeline N requests in flight per connection (default 1), --timeout 2s, --method M,
 * -H/--header "Name: value" (repeatable), --body TEXT, --echo with --size BYTES, --ws with --size
 * BYTES and --deflate (WebSocket binary messages to an echo server), --json. With a wss:// URL:
 * --ca FILE trusts the CA certificates of a PEM file instead of Node's roots, --insecure (-k, as
 * curl's) accepts any certificate — a test server's self-signed one — without checking it.
 *
 * Prints a table (or, with --json, one JSON object: requests, requestsPerSecond, latency
 * {min, mean, stdev, max, p50, p75, p90, p99, p999} in ms, errors {refused, reset, timeout,
 * badStatus, protocol, tls}, tlsFailure, …). Exits 0 after a run that got answers, 1 when nothing was answered,
 * 2 for a usage error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type LoadReport, parseDuration, runLoad } from '../client/load.js';
import { InvalidOptionError } from '../common/errors.js';

const USAGE = `usage: multireactor-load --url http://HOST:PORT/PATH [-c CONNECTIONS] [-d DURATION] [--pipeline N]
                         [--timeout DURATION] [--method M] [-H "Name: value"]... [--body TEXT] [--json]
       multireactor-load --echo --url tcp://HOST:PORT [--size BYTES] [-c N] [-d DURATION] [--pipeline N] [--json]
       multireactor-load --ws --url ws://HOST:PORT/PATH [--size BYTES] [--deflate] [-c N] [-d DURATION] [--pipeline N] [--json]
       multireactor-load --ws --url wss://HOST:PORT/PATH [--ca FILE | --insecure] …   (over TLS)`;

function integer(name: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidOptionError(name, `must be a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function format(r: LoadReport): string {
  const l = r.latency;
  const e = r.errors;
  const mb = (b: number) => `${(b / 1048576).toFixed(2)}MB`;
  const pad = (s: string) => s.padStart(10);
  return [
    `Running ${r.seconds.toFixed(2)}s test @ ${r.url}${r.mode === 'http' ? '' : ` (${r.mode})`}`,
    `  ${r.connections} connections, pipeline ${r.pipeline}, one Node.js process`,
    `  Latency      ${'p50'.padStart(10)}${'p90'.padStart(10)}${'p99'.padStart(10)}${'max'.padStart(10)}${'mean'.padStart(10)}${'stdev'.padStart(10)}`,
    `  (ms)         ${pad(l.p50.toFixed(2))}${pad(l.p90.toFixed(2))}${pad(l.p99.toFixed(2))}${pad(l.max.toFixed(2))}${pad(l.mean.toFixed(2))}${pad(l.stdev.toFixed(2))}`,
    `  ${r.requests} requests in ${r.seconds.toFixed(2)}s, ${mb(r.bytesRead)} read, ${mb(r.bytesWritten)} written, ${r.connects} connects`,
    `  Errors: refused ${e.refused}, reset ${e.reset}, timeout ${e.timeout}, bad status ${e.badStatus}, protocol ${e.protocol}${r.url.startsWith('wss:') ? `, tls ${e.tls}` : ''}`,
    ...(r.tlsFailure !== undefined ? [`  First TLS failure: ${r.tlsFailure}`] : []),
    `Requests/sec: ${r.requestsPerSecond.toFixed(2)}`,
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let report: LoadReport;
  try {
    if (values.url === undefined) throw new InvalidOptionError('url', 'is required');
    const headers: Record<string, string> = {};
    for (const h of values.header ?? []) {
      const colon = h.indexOf(':');
      if (colon <= 0) throw new InvalidOptionError('header', `must be "Name: value", got ${JSON.stringify(h)}`);
      headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
    }
    if (values.ca !== undefined && values.insecure) {
      throw new InvalidOptionError('insecure', 'checks nothing: give it or --ca, not both');
    }
    let ca: Uint8Array | undefined;
    if (values.ca !== undefined) {
      try {
        ca = readFileSync(values.ca);
      } catch (err) {
        throw new InvalidOptionError('ca', `cannot read ${values.ca}: ${(err as Error).message}`);
      }
    }
    const tls = ca !== undefined ? { ca } : values.insecure ? { rejectUnauthorized: false } : undefined;
    report = await runLoad({
      url: values.url,
      mode: values.ws ? 'ws' : values.echo ? 'echo' : 'http',
      connections: integer('connections', values.connections),
      duration: parseDuration('duration', values.duration),
      pipeline: integer('pipeline', values.pipeline),
      timeout: parseDuration('timeout', values.timeout),
      size: integer('size', values.size),
      deflate: values.deflate,
      method: values.method,
      headers,
      ...(values.body !== undefined ? { body: values.body } : {}),
      ...(tls !== undefined ? { tls } : {}),
    });
  } catch (err) {
    if (err instanceof InvalidOptionError) {
      process.stderr.write(`multireactor-load: ${err.message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  process.stdout.write(`${values.json ? JSON.stringify(report) : format(report)}\n`);
  return report.requests > 0 ? 0 : 1;
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    options: {
      url: { type: 'string', short: 'u' },
      connections: { type: 'string', short: 'c', default: '10' },
      duration: { type: 'string', short: 'd', default: '10s' },
      pipeline: { type: 'string', short: 'p', default: '1' },
      timeout: { type: 'string', default: '2s' },
      method: { type: 'string', default: 'GET' },
      header: { type: 'string', short: 'H', multiple: true },
      body: { type: 'string' },
      echo: { type: 'boolean', default: false },
      ws: { type: 'boolean', default: false },
      deflate: { type: 'boolean', default: false },
      ca: { type: 'string' },
      insecure: { type: 'boolean', short: 'k', default: false },
      size: { type: 'string', default: '64' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

process.exitCode = await main(process.argv.slice(2));
