/**
 * The OffloadHandler example of docs/offload.md ("Any protocol"), verbatim but for the import
 * paths and the task module's location, so that it keeps compiling and doing what the page says.
 */
import { pbkdf2Sync } from 'node:crypto';
import { expect } from 'chai';
import {
  ChannelInboundHandler,
  destroyOffloadPools,
  EmbeddedChannel,
  type HandlerContext,
  LineEncoder,
  LineFrameDecoder,
  OffloadHandler,
  Pipeline,
  StringDecoder,
} from '../../../src/index.js';
import { waitFor } from '../../integration/helpers.js';

// One options object for every connection: validated (and the module found) once.
const HASHING = {
  filename: new URL('../../../examples/offload-tasks.js', import.meta.url),
  name: 'hash',
  maxThreads: 2,
  toTask: (line: string) => ({ password: line, rounds: 10_000 }),
};

class Replier extends ChannelInboundHandler<string> {
  override onRead(ctx: HandlerContext, digest: string): void {
    ctx.write(digest);
  }
  override onError(ctx: HandlerContext, error: unknown): void {
    // OffloadOverloadedError, OffloadTaskError: answered in that line's turn; the connection goes on.
    ctx.write(`error ${(error as { code?: string }).code ?? 'unknown'}`);
  }
}

class HashPipeline extends Pipeline {
  override initChannel(): void {
    this.addLast(new LineFrameDecoder({ maxLength: 1024 }))
      .addLast(new StringDecoder())
      .addLast(new LineEncoder())
      .addLast(new OffloadHandler(HASHING))
      .addLast(new Replier());
  }
}

describe('docs/offload.md: the HashPipeline example', () => {
  after(() => destroyOffloadPools());

  it('answers each line with its PBKDF2 digest, in order', async () => {
    const ch = new EmbeddedChannel(HashPipeline);
    try {
      ch.writeInbound(Buffer.from('first\nsecond\n'));
      const want = ['first', 'second']
        .map((p) => `${pbkdf2Sync(p, 'multireactor offload example', 10_000, 32, 'sha256').toString('hex')}\n`)
        .join('');
      let got = '';
      await waitFor(() => {
        got += ch.readOutboundBytes().toString();
        return got.length >= want.length;
      }, 'two digests');
      expect(got).to.equal(want);
    } finally {
      ch.abort();
    }
  });
});
