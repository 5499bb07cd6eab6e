/**
 * Structured logs (common/logger.ts): jsonLogger's lines in pino's format, and a real pino logger
 * taken as the framework's Logger — the framework's Error details land in the line as `err`
 * (pino alone drops arguments its message has no `%s` for), bindings from `child`.
 */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { pino } from 'pino';
import { adaptLogger, childLogger, consoleLogger, jsonLogger, type Logger } from '../../../src/common/logger.js';

describe('structured logs', () => {
  it('jsonLogger: one JSON object per line, numeric levels, bindings, err', () => {
    const lines: string[] = [];
    const log = jsonLogger({ write: (l) => lines.push(l), bindings: { service: 'api' } });
    const worker = childLogger(log, { worker: 1, generation: 2 });
    worker.info('ready');
    worker.error('it broke', new Error('boom'));
    worker.warn('odd', { n: 3 });
    log.debug('not shown at info');
    expect(lines).to.have.length(3);
    expect(lines.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).to.equal(true);
    const [ready, broke, odd] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(ready).to.include({ level: 30, pid: process.pid, service: 'api', worker: 1, generation: 2, msg: 'ready' });
    expect(ready?.time).to.be.a('number');
    expect(broke).to.include({ level: 50, msg: 'it broke' });
    expect(broke?.err).to.include({ type: 'Error', message: 'boom' });
    expect((broke?.err as { stack?: string } | undefined)?.stack).to.match(/^Error: boom/);
    expect(odd).to.deep.include({ level: 40, details: { n: 3 } });
  });

  it('jsonLogger: the level filters, and a detail that cannot be serialized does not lose the line', () => {
    const lines: string[] = [];
    const log = jsonLogger({ level: 'warn', write: (l) => lines.push(l) });
    log.info('dropped');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    log.warn('kept', cyclic);
    expect(lines).to.have.length(1);
    expect(JSON.parse(lines[0] as string)).to.include({ level: 40, msg: 'kept' });
  });

  it('a pino logger: details become fields, % in a message stays as it is, child bindings', () => {
    const out: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        out.push(String(chunk));
        done();
      },
    });
    const p = pino({ base: { app: 't' } }, sink);
    const log: Logger = childLogger(adaptLogger(p as unknown as Logger), { worker: 0 });
    log.error('GET /a%20b failed', new Error('boom'));
    log.info('100% done');
    const [failed, done] = out.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(failed).to.include({ level: 50, app: 't', worker: 0, msg: 'GET /a%20b failed' });
    expect(failed?.err).to.include({ type: 'Error', message: 'boom' });
    expect(done).to.include({ level: 30, msg: '100% done', worker: 0 });
  });

  it('any other logger is used as it is; consoleLogger binds with a prefix', () => {
    const plain: Logger = { debug() {}, info() {}, warn() {}, error() {} };
    expect(adaptLogger(plain)).to.equal(plain);
    expect(childLogger(plain, { worker: 1 })).to.equal(plain);
    const lines: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => lines.push(args.join(' '));
    try {
      childLogger(consoleLogger(), { worker: 3 }).info('hello');
    } finally {
      console.error = original;
    }
    expect(lines).to.deep.equal([`[multireactor ${process.pid} worker=3] info: hello`]);
  });
});
