/**
 * Issue 15 item 11: every options object the library takes rejects a key that names no option,
 * with `InvalidOptionError` naming the key and the nearest known one — codecs, handlers, the HTTP
 * server and client stages, the client's request handler, offload, EmbeddedChannel. (Server.listen,
 * Client.connect, Pool and runLoad, which open sockets when they accept: test/integration/options.test.ts.)
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  DelimiterFrameDecoder,
  EmbeddedChannel,
  HeartbeatHandler,
  HttpClientCodec,
  HttpRequestDecoder,
  HttpResponseDecoder,
  HttpServerHandler,
  http,
  httpClient,
  httpOffload,
  IdleStateHandler,
  InvalidOptionError,
  JsonLinesDecoder,
  JsonLinesEncoder,
  LengthFieldFrameDecoder,
  LengthFieldPrepender,
  LineEncoder,
  LineFrameDecoder,
  OffloadHandler,
  RequestResponseHandler,
  RespDecoder,
  StringDecoder,
  StringEncoder,
  TimingWheel,
} from '../../src/index.js';
import { thrownBy } from '../support.js';

const TASKS = join(dirname(fileURLToPath(import.meta.url)), '..', 'offload-tasks.js');
const handler = () => {};

/** Asserts `fn` throws InvalidOptionError whose message has "unknown option 'KEY' (did you mean 'NEAR'?)". */
function unknownKey(fn: () => unknown, key: string, near: string): InvalidOptionError {
  const err = thrownBy(fn);
  expect(err, `${key} is rejected`).to.be.instanceOf(InvalidOptionError);
  const e = err as InvalidOptionError;
  expect(e.code).to.equal('ERR_INVALID_OPTION');
  expect(e.message).to.contain(`unknown option '${key}' (did you mean '${near}'?)`);
  expect(e.option).to.equal(key);
  return e;
}

// Each case: what to build with a misspelt option, the key, the option meant.
const cases: ReadonlyArray<readonly [string, () => unknown, string, string]> = [
  ['http()', () => http(handler, { maxBody: 10 } as never), 'maxBody', 'maxBodySize'],
  [
    'http() (a server handler option)',
    () => http(handler, { keepAliveTimout: 1 } as never),
    'keepAliveTimout',
    'keepAliveTimeout',
  ],
  ['HttpRequestDecoder', () => new HttpRequestDecoder({ maxHeaderSzie: 1 } as never), 'maxHeaderSzie', 'maxHeaderSize'],
  ['HttpServerHandler', () => new HttpServerHandler(handler, { drainGarce: 1 } as never), 'drainGarce', 'drainGrace'],
  ['HttpResponseDecoder', () => new HttpResponseDecoder({ maxHeader: 1 } as never), 'maxHeader', 'maxHeaders'],
  ['HttpClientCodec', () => new HttpClientCodec({ hots: 'x' } as never), 'hots', 'host'],
  ['httpClient()', () => httpClient({ timout: 1 } as never), 'timout', 'timeout'],
  [
    'LengthFieldFrameDecoder',
    () => new LengthFieldFrameDecoder({ lengthFieldLenght: 2 } as never),
    'lengthFieldLenght',
    'lengthFieldLength',
  ],
  ['LengthFieldPrepender', () => new LengthFieldPrepender({ byteorder: 'big' } as never), 'byteorder', 'byteOrder'],
  ['LineFrameDecoder', () => new LineFrameDecoder({ maxLenght: 10 } as never), 'maxLenght', 'maxLength'],
  [
    'DelimiterFrameDecoder',
    () => new DelimiterFrameDecoder({ delimiters: ['\n'], maxFrameLength: 9, stripDelimeter: true } as never),
    'stripDelimeter',
    'stripDelimiter',
  ],
  ['LineEncoder', () => new LineEncoder({ separator: '\r\n' } as never), 'separator', 'lineSeparator'],
  ['JsonLinesDecoder', () => new JsonLinesDecoder({ maxLen: 10 } as never), 'maxLen', 'maxLength'],
  ['JsonLinesEncoder', () => new JsonLinesEncoder({ replacr: () => 1 } as never), 'replacr', 'replacer'],
  ['StringDecoder', () => new StringDecoder({ encodng: 'utf8' } as never), 'encodng', 'encoding'],
  ['StringEncoder', () => new StringEncoder({ encodng: 'utf8' } as never), 'encodng', 'encoding'],
  ['RespDecoder', () => new RespDecoder({ maxBulkLen: 10 } as never), 'maxBulkLen', 'maxBulkLength'],
  ['IdleStateHandler', () => new IdleStateHandler({ readerIdel: 10 } as never), 'readerIdel', 'readerIdle'],
  ['HeartbeatHandler', () => new HeartbeatHandler({ timeout: 10, mised: 1 } as never), 'mised', 'missed'],
  ['RequestResponseHandler', () => new RequestResponseHandler({ maxPendng: 1 } as never), 'maxPendng', 'maxPending'],
  ['OffloadHandler', () => new OffloadHandler({ filename: TASKS, maxThread: 1 } as never), 'maxThread', 'maxThreads'],
  [
    'httpOffload() (an HTTP option)',
    () => httpOffload(handler, { offload: { filename: TASKS }, retryAftr: 1 } as never),
    'retryAftr',
    'retryAfter',
  ],
  [
    'httpOffload() (an offload option)',
    () => httpOffload(handler, { offload: { filename: TASKS, maxQeue: 1 } } as never),
    'maxQeue',
    'maxQueue',
  ],
  ['EmbeddedChannel', () => new EmbeddedChannel([], { tickMS: 1 } as never), 'tickMS', 'tickMs'],
  ['TimingWheel', () => new TimingWheel({ slot: 8 } as never), 'slot', 'slots'],
  [
    'channel.setSocketOptions',
    () => new EmbeddedChannel([]).setSocketOptions({ noDealy: false } as never),
    'noDealy',
    'noDelay',
  ],
  [
    'channel.setSocketOptions (keepAlive)',
    () => new EmbeddedChannel([]).setSocketOptions({ keepAlive: { idle: 1, interval: 1, cuont: 1 } } as never),
    'keepAlive.cuont',
    'keepAlive.count',
  ],
];

describe('unknown option keys are rejected everywhere options are taken', () => {
  for (const [what, build, key, near] of cases) {
    it(`${what}: '${key}' → did you mean '${near}'?`, () => {
      unknownKey(build, key, near);
    });
  }

  it('the message names what took the options', () => {
    expect(
      unknownKey(() => new LineFrameDecoder({ maxLenght: 1 } as never), 'maxLenght', 'maxLength').message,
    ).to.equal("LineFrameDecoder: unknown option 'maxLenght' (did you mean 'maxLength'?)");
  });

  it('a request option is checked too (RequestResponseHandler.request)', async () => {
    const rr = new RequestResponseHandler({ ids: 'in-order' });
    const ch = new EmbeddedChannel([rr]);
    let err: unknown;
    try {
      await rr.request('x', { timout: 5 } as never);
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(InvalidOptionError);
    expect((err as Error).message).to.contain("unknown option 'timout' (did you mean 'timeout'?)");
    ch.finish();
  });

  it('known options still pass, split between the stages of a composite (http, httpClient, httpOffload)', () => {
    const factory = http(handler, { maxBodySize: 10, keepAliveTimeout: 1000, streamBodies: true });
    const ch = new EmbeddedChannel(factory);
    expect(ch.pipeline.names()).to.deep.equal(['http-decoder', 'http']);
    ch.finish();
    const client = new EmbeddedChannel(httpClient({ host: 'example.org', maxBodySize: 10, timeout: 5, maxPending: 2 }));
    client.finish();
    const off = httpOffload(handler, { offload: { filename: TASKS, maxThreads: 1 }, retryAfter: 2, maxHeaders: 5 });
    expect(typeof off).to.equal('function');
  });
});
