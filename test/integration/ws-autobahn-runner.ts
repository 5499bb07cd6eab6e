/**
 * Runs Autobahn|Testsuite cases (ws-autobahn-cases.ts) against a WebSocket echo server and judges
 * each one as upstream does (`Case.onConnectionLost`): the behaviour is the first expectation the
 * recorded events match (OK, then NON-STRICT), else FAILED; the close is FAILED when the wrong side
 * closed first, UNCLEAN when a clean closing handshake was required and did not happen, WRONG CODE
 * for a close code not allowed, FAILED BY CLIENT when the client had to drop the TCP connection
 * (the server should close it, RFC 6455 §7.1.1), else OK.
 *
 * As a script, against a server already running:
 *
 *   node dist/test/integration/ws-autobahn-runner.js --port 9001 [--deflate] [--count 1000] [--case 6.4.1]
 */
import { parseArgs } from 'node:util';
import { type CaseRun, type CaseSpec, deflateCases, plainCases } from './ws-autobahn-cases.js';
import { FuzzClient, type Received } from './ws-fuzz-client.js';

export interface CaseResult {
  readonly id: string;
  readonly behavior: string;
  readonly behaviorClose: string;
  readonly passed: boolean;
  /** What happened, for a failure's message. */
  readonly detail: string;
}

const PASSING = new Set(['OK', 'NON-STRICT', 'INFORMATIONAL']);

function sameEvents(a: readonly Received[], b: readonly Received[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as Received;
    const y = b[i] as Received;
    if (x[0] !== y[0]) return false;
    if (x[0] === 'timeout') {
      if (x[1] !== y[1]) return false;
      continue;
    }
    if (!(x[1] as Buffer).equals(y[1] as Buffer)) return false;
    if (x[0] === 'message' && x[2] !== y[2]) return false;
  }
  return true;
}

function describe(events: readonly Received[]): string {
  return `[${events
    .map((e) =>
      e[0] === 'timeout'
        ? `timeout ${e[1]}`
        : `${e[0]}(${e[1].length}${e[0] === 'message' ? (e[2] ? ' bin' : ' text') : ''})`,
    )
    .join(', ')}]`;
}

/** Performs one case on a fresh connection and judges it. */
export async function runCase(spec: CaseSpec, port: number): Promise<CaseResult> {
  let c: FuzzClient;
  try {
    c = await FuzzClient.connect({ port, ...(spec.extensions !== undefined ? { extensions: spec.extensions } : {}) });
  } catch (err) {
    return { id: spec.id, behavior: 'FAILED', behaviorClose: 'FAILED', passed: false, detail: (err as Error).message };
  }
  const r: CaseRun = {
    c,
    expected: [],
    close: { closedByMe: true, codes: [1000], requireClean: true },
    suppressClose: false,
    informational: false,
    wrongCodeFails: false,
  };
  // Upstream's finishWhenDone: once the events match every expectation, the client closes (when
  // the close is expected to be ours).
  c.onEvent = () => {
    if (r.expected.length === 0) return;
    for (const [, exp] of r.expected) if (!sameEvents(c.received, exp)) return;
    if (r.close.closedByMe && !r.suppressClose) c.sendClose(r.close.codes[0]);
  };
  spec.run(r);
  // A case that finished at once (nothing expected from the server) still gets its chance to close.
  c.onEvent();
  // Nothing may run forever: the cases arm their own timers, this is the last resort.
  const guard = setTimeout(() => c.drop(), 150_000);
  await c.closed;
  clearTimeout(guard);

  let behavior = 'FAILED';
  for (const [name, exp] of r.expected) {
    if (sameEvents(c.received, exp)) {
      behavior = name;
      break;
    }
  }
  if (r.verdict !== undefined) behavior = r.verdict.startsWith('FAILED') ? 'FAILED' : r.verdict;
  const wasClean = c.closeSent && c.closeReceived && !c.droppedByMe;
  let behaviorClose: string;
  if (r.close.closedByMe !== c.closedByMe) behaviorClose = 'FAILED';
  else if (r.close.requireClean && !wasClean) behaviorClose = 'UNCLEAN';
  else if (c.remoteCloseCode !== null && !r.close.codes.includes(c.remoteCloseCode)) behaviorClose = 'WRONG CODE';
  else if (c.droppedByMe) behaviorClose = 'FAILED BY CLIENT';
  else behaviorClose = 'OK';
  if (r.close.wrongEndpointIsFatal && r.close.closedByMe !== c.closedByMe) behavior = 'FAILED';
  if (r.wrongCodeFails && behaviorClose === 'WRONG CODE') behavior = 'FAILED';
  if (r.informational) {
    behavior = 'INFORMATIONAL';
    behaviorClose = 'INFORMATIONAL';
  }
  const detail =
    `received ${describe(c.received)}; expected ${r.expected.map(([n, e]) => `${n} ${describe(e)}`).join(' or ')}; ` +
    `closedByMe ${c.closedByMe}, clean ${wasClean}, server code ${c.remoteCloseCode} ${JSON.stringify(c.remoteCloseReason)}, ` +
    `droppedByMe ${c.droppedByMe}${r.verdict !== undefined ? `, ${r.verdict}` : ''}`;
  return {
    id: spec.id,
    behavior,
    behaviorClose,
    passed: PASSING.has(behavior) && (behaviorClose === 'OK' || behaviorClose === 'INFORMATIONAL'),
    detail,
  };
}

/** Runs `cases` with at most `parallel` connections at a time; results in case order. */
export async function runCases(cases: readonly CaseSpec[], port: number, parallel = 16): Promise<CaseResult[]> {
  const results: CaseResult[] = new Array(cases.length);
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const i = next++;
      results[i] = await runCase(cases[i] as CaseSpec, port);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, cases.length) }, worker));
  return results;
}

/** Counts per section: `{ '1': { cases, ok, nonStrict, informational, failed } }`. */
export function summarize(results: readonly CaseResult[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const r of results) {
    const section = r.id.split('.')[0] as string;
    let s = out.get(section);
    if (s === undefined) {
      s = { cases: 0, OK: 0, 'NON-STRICT': 0, INFORMATIONAL: 0, FAILED: 0 };
      out.set(section, s);
    }
    s.cases = (s.cases ?? 0) + 1;
    const key = r.passed ? r.behavior : 'FAILED';
    s[key] = (s[key] ?? 0) + 1;
  }
  return out;
}

export function formatSummary(summary: Map<string, Record<string, number>>): string {
  const rows = ['section  cases     OK  NON-STRICT  INFORMATIONAL  FAILED'];
  for (const [section, s] of summary) {
    rows.push(
      `${section.padEnd(7)}${String(s.cases).padStart(6)}${String(s.OK).padStart(7)}${String(s['NON-STRICT']).padStart(12)}${String(s.INFORMATIONAL).padStart(15)}${String(s.FAILED).padStart(8)}`,
    );
  }
  return rows.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      deflate: { type: 'boolean', default: false },
      count: { type: 'string', default: '1000' },
      case: { type: 'string' },
      parallel: { type: 'string', default: '16' },
    },
  });
  if (values.port === undefined) throw new Error('--port is required');
  let cases = values.deflate ? deflateCases(Number(values.count)) : plainCases();
  if (values.case !== undefined) {
    const prefix = values.case;
    cases = cases.filter((c) => c.id === prefix || c.id.startsWith(`${prefix}.`));
  }
  const results = await runCases(cases, Number(values.port), Number(values.parallel));
  for (const r of results) if (!r.passed) console.log(`${r.id}: ${r.behavior} / ${r.behaviorClose} — ${r.detail}`);
  console.log(formatSummary(summarize(results)));
}

if (process.argv[1]?.endsWith('ws-autobahn-runner.js')) await main();
