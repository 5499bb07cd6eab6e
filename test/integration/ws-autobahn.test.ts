/**
 * Conformance: the Autobahn|Testsuite cases of sections 1–7 and 10 against ws-echo-server, and
 * sections 12 and 13 against ws-echo-server --deflate, each performed by our runner
 * (ws-autobahn-runner.ts) on real connections to the example in its own process. Every case must
 * be OK, NON-STRICT or INFORMATIONAL with a clean close; the counts per section are printed.
 *
 * The same cases run through an HTTP server's WebSocket route (`--http`: the handshake answered by
 * an http() handler, the connection taken with `res.takeConnection`).
 *
 * Sections 12 and 13 send 25 messages per case here (upstream: 1,000);
 * WS_AUTOBAHN_COUNT=1000 runs them in full. The runner also fails a server that does not validate
 * UTF-8 (`ws` with `skipUTF8Validation`): it is not a rubber stamp.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { WebSocketServer } from 'ws';
import { startListening } from './helpers.js';
import { deflateCases, plainCases } from './ws-autobahn-cases.js';
import { type CaseResult, formatSummary, runCases, summarize } from './ws-autobahn-runner.js';

const WS_ECHO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'ws-echo-server.js');
const COUNT = Number(process.env.WS_AUTOBAHN_COUNT ?? 25);

function report(title: string, results: readonly CaseResult[]): void {
  console.log(
    `      ${title}\n${formatSummary(summarize(results))
      .split('\n')
      .map((l) => `        ${l}`)
      .join('\n')}`,
  );
  const failed = results.filter((r) => !r.passed);
  expect(
    failed.map((r) => `${r.id}: ${r.behavior} / ${r.behaviorClose} — ${r.detail}`),
    'failed cases',
  ).to.deep.equal([]);
}

describe('WebSocket conformance (Autobahn|Testsuite cases)', function () {
  this.timeout(180_000);
  let child: ChildProcess | undefined;

  afterEach(async () => {
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    child = undefined;
  });

  async function start(args: string[]): Promise<number> {
    const started = await startListening([WS_ECHO, '--host', '127.0.0.1', '--port', '0', ...args]);
    child = started.child;
    return started.port;
  }

  it('sections 1–7 and 10 against ws-echo-server', async () => {
    const port = await start([]);
    const cases = plainCases();
    expect(cases.length).to.equal(247);
    report('sections 1–7, 10', await runCases(cases, port));
  });

  it(`sections 12 and 13 (permessage-deflate) against ws-echo-server --deflate, ${COUNT} messages per case`, async () => {
    const port = await start(['--deflate']);
    const cases = deflateCases(COUNT);
    expect(cases.length).to.equal(90 + 126);
    report('sections 12, 13', await runCases(cases, port));
  });

  it('sections 12 and 13 with context takeover (ws-echo-server --deflate --context-takeover)', async () => {
    const port = await start(['--deflate', '--context-takeover']);
    report('sections 12, 13 (context takeover)', await runCases(deflateCases(Math.min(COUNT, 10)), port));
  });

  it('sections 1–7, 10 and (5 messages per case) 12–13 through the HTTP route (ws-echo-server --http)', async () => {
    const port = await start(['--http']);
    report('sections 1–7, 10 (HTTP route)', await runCases(plainCases(), port));
    child?.kill('SIGTERM');
    if (child !== undefined) await once(child, 'exit');
    const deflatePort = await start(['--http', '--deflate']);
    report('sections 12, 13 (HTTP route)', await runCases(deflateCases(5), deflatePort));
  });

  it('fails a server that does not validate UTF-8 (ws with skipUTF8Validation)', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, skipUTF8Validation: true });
    await once(wss, 'listening');
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    try {
      const port = (wss.address() as { port: number }).port;
      const invalid = plainCases().filter((c) => c.id === '6.3.1' || c.id === '6.3.2' || c.id.startsWith('6.12.'));
      const results = await runCases(invalid, port);
      expect(results.filter((r) => r.passed).map((r) => r.id)).to.deep.equal([]);
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });
});
