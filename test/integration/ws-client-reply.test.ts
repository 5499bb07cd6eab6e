/**
 * The WebSocket client answering a message that came in the same segment as the 101: the
 * client holds such bytes until the code that awaited `connectWebSocket` has run, then delivers
 * them outside any read of the connection — and a reply sent from `onMessage` then must still be
 * flushed (it waited for the next read before; a socket.io server, which speaks first, never got
 * the client's answer).
 */
import { expect } from 'chai';
import { connectWebSocket, websocket } from '../../src/index.js';
import { Opened, waitFor } from './helpers.js';

describe('websocket client: a reply to the first message', function () {
  this.timeout(15_000);
  const opened = new Opened();
  afterEach(() => opened.teardown());

  it('is sent at once when the server spoke in the same write as its 101', async () => {
    const replies: string[] = [];
    const server = await opened.listen({
      port: 0,
      host: '127.0.0.1',
      pipeline: websocket((ws) => {
        // Written with the 101, in one send().
        ws.send('hello first');
        ws.onMessage = (data) => replies.push(data.toString());
      }),
    });
    for (let i = 0; i < 5; i++) {
      const ws = await connectWebSocket(`ws://127.0.0.1:${server.address().port}/`);
      ws.onMessage = (data) => {
        if (data.toString() === 'hello first') ws.send(`reply ${i}`);
      };
      await waitFor(() => replies.includes(`reply ${i}`), `reply ${i}`, 3000);
      ws.terminate();
    }
    expect(replies).to.deep.equal(['reply 0', 'reply 1', 'reply 2', 'reply 3', 'reply 4']);
  });
});
