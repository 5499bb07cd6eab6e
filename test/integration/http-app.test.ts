/**
 * The application layer over real sockets: `router()` (path parameters, methods, 404, 405 with
 * Allow, HEAD served by GET routes, OPTIONS), `req.query`, `req.json()` / `req.text()` (the body
 * limit, 400 for malformed JSON, 415 for another content type), `res.json()`, `res.status()`,
 * `HttpError`, and examples/api-server.js as users run it. The client is Node's own `fetch`
 * (undici), plus raw sockets where bytes matter.
 */

import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import {
  HttpError,
  type HttpOptions,
  http,
  InvalidOptionError,
  type Router,
  router,
  type ServerHandle,
  silentLogger,
} from '../../src/index.js';
import { thrownBy } from '../support.js';
import { Opened, startListening } from './helpers.js';

const API_EXAMPLE = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'api-server.js');

describe('HTTP application layer on real connections', function () {
  this.timeout(30_000);
  const opened = new Opened();
  let server: ServerHandle | undefined;

  async function start(app: Router, options: HttpOptions = {}): Promise<string> {
    server = await opened.listen({ host: '127.0.0.1', port: 0, logger: silentLogger, pipeline: http(app, options) });
    return `http://127.0.0.1:${server.address().port}`;
  }

  afterEach(async () => {
    await opened.teardown();
    server = undefined;
  });

  describe('router()', () => {
    function app(): Router {
      const a = router();
      a.get('/users/:id', (req, res) => res.json({ id: req.params.id, method: req.method }));
      a.delete('/users/:id', (_req, res) => res.status(204).end());
      a.get('/files/*', (req, res) => res.end(req.params['*']));
      a.get('/orgs/:org/repos/:repo', (req, res) => res.json(req.params));
      a.post('/users', (_req, res) => res.status(201).end());
      a.on(['PUT', 'PATCH'], '/users/:id', (req, res) => res.end(req.method));
      return a;
    }

    it('routes by method and path, with decoded parameters', async () => {
      const base = await start(app());
      let r = await fetch(`${base}/users/42`);
      expect(r.status).to.equal(200);
      expect(r.headers.get('content-type')).to.equal('application/json; charset=utf-8');
      expect(await r.json()).to.deep.equal({ id: '42', method: 'GET' });
      r = await fetch(`${base}/orgs/acme%20inc/repos/r%C3%A9po?x=1`);
      expect(await r.json()).to.deep.equal({ org: 'acme inc', repo: 'répo' });
      r = await fetch(`${base}/files/a/b/c.txt`);
      expect(await r.text()).to.equal('a/b/c.txt');
      r = await fetch(`${base}/users/7`, { method: 'DELETE' });
      expect(r.status).to.equal(204);
      r = await fetch(`${base}/users/7`, { method: 'PATCH' });
      expect(await r.text()).to.equal('PATCH');
      r = await fetch(`${base}/users`, { method: 'POST' });
      expect(r.status).to.equal(201);
    });

    it('404 for a path no route has; notFound answers instead when given', async () => {
      const base = await start(app());
      const r = await fetch(`${base}/nothing/here`);
      expect(r.status).to.equal(404);
      expect(await r.text()).to.equal('404 Not Found\n');
      await opened.teardown();
      const custom = router({ notFound: (req, res) => res.status(404).json({ missing: req.path }) });
      const base2 = await start(custom);
      const r2 = await fetch(`${base2}/gone?q=1`);
      expect(r2.status).to.equal(404);
      expect(await r2.json()).to.deep.equal({ missing: '/gone' });
    });

    it('405 with Allow for a path that has routes for other methods; OPTIONS answers 204 with Allow', async () => {
      const base = await start(app());
      let r = await fetch(`${base}/users/1`, { method: 'POST' });
      expect(r.status).to.equal(405);
      expect(r.headers.get('allow')).to.equal('GET, HEAD, DELETE, PUT, PATCH, OPTIONS');
      r = await fetch(`${base}/users`, { method: 'GET' });
      expect(r.status).to.equal(405);
      expect(r.headers.get('allow')).to.equal('POST, OPTIONS');
      r = await fetch(`${base}/users/1`, { method: 'OPTIONS' });
      expect(r.status).to.equal(204);
      expect(r.headers.get('allow')).to.equal('GET, HEAD, DELETE, PUT, PATCH, OPTIONS');
    });

    it('HEAD is served by the GET route: its headers, no body', async () => {
      const base = await start(app());
      const s = await opened.client(Number(new URL(base).port));
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.write('HEAD /users/9 HTTP/1.1\r\nHost: x\r\n\r\nGET /users/9 HTTP/1.1\r\nHost: x\r\n\r\n');
      const body = '{"id":"9","method":"GET"}';
      while (!Buffer.concat(chunks).toString().endsWith(body)) await new Promise((r) => setTimeout(r, 10));
      // The HEAD answer has the GET's headers and no body: the GET's answer follows its blank line.
      const [headAnswer, getAnswer] = Buffer.concat(chunks).toString().split('\r\n\r\n');
      expect(headAnswer).to.match(/^HTTP\/1\.1 200 OK\r\n/);
      // (the GET route's handler answers HEAD with what it would send: its own method in it)
      expect(headAnswer).to.contain(`Content-Length: ${JSON.stringify({ id: '9', method: 'HEAD' }).length}`);
      expect(getAnswer).to.match(/^HTTP\/1\.1 200 OK\r\n/);
      const head = await fetch(`${base}/users/9`, { method: 'HEAD' });
      expect(head.status).to.equal(200);
      expect(head.headers.get('content-length')).to.equal(String(JSON.stringify({ id: '9', method: 'HEAD' }).length));
      expect(head.headers.get('content-type')).to.equal('application/json; charset=utf-8');
      expect(await head.text()).to.equal('');
    });

    it('rejects unknown options, unknown methods and non-function handlers', () => {
      expect(thrownBy(() => router({ caseSensitiv: false } as never))).to.be.instanceOf(InvalidOptionError);
      expect(thrownBy(() => router({ maxParamLength: 0 }))).to.be.instanceOf(InvalidOptionError);
      expect(thrownBy(() => router().on('FETCH', '/', () => {}))).to.be.instanceOf(TypeError);
      expect(thrownBy(() => router().get('/', 'nope' as never))).to.be.instanceOf(TypeError);
    });
  });

  describe('req.query, req.json(), req.text(), res.json(), res.status(), HttpError', () => {
    function app(): Router {
      const a = router();
      a.get('/search', (req, res) => res.json({ query: { ...req.query }, raw: req.queryString }));
      a.post('/echo', async (req, res) => res.status(202).json({ got: await req.json() }));
      a.post('/small', async (req, res) => res.json(await req.json({ limit: 16 })));
      a.post('/text', async (req, res) => res.end(`${(await req.text()).length}`));
      a.get('/teapot', () => {
        throw new HttpError(418, 'short and stout');
      });
      return a;
    }

    it('parses the query string lazily into an object; the raw string stays', async () => {
      const base = await start(app());
      const r = await fetch(`${base}/search?q=caf%C3%A9+au+lait&tag=a&tag=b&empty=&flag`);
      expect(await r.json()).to.deep.equal({
        query: { q: 'café au lait', tag: ['a', 'b'], empty: '', flag: '' },
        raw: 'q=caf%C3%A9+au+lait&tag=a&tag=b&empty=&flag',
      });
    });

    it('req.json() parses a JSON body; res.status() and res.json() answer', async () => {
      const base = await start(app());
      const r = await fetch(`${base}/echo`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ a: [1, 2, { b: 'ü' }] }),
      });
      expect(r.status).to.equal(202);
      expect(await r.json()).to.deep.equal({ got: { a: [1, 2, { b: 'ü' }] } });
      const vendor = await fetch(`${base}/echo`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/vnd.api+json; charset=utf-8' },
        body: '[true]',
      });
      expect(await vendor.json()).to.deep.equal({ got: [true] });
    });

    it('400 for malformed or empty JSON, 415 for another content type, 413 past the limit — the connection goes on', async () => {
      const base = await start(app());
      const post = (path: string, type: string | undefined, body: string) =>
        fetch(`${base}${path}`, { method: 'POST', headers: type === undefined ? {} : { 'Content-Type': type }, body });
      let r = await post('/echo', 'application/json', '{"a": ');
      expect(r.status).to.equal(400);
      expect(await r.text()).to.match(/^400 Bad Request: malformed JSON body/);
      r = await post('/echo', 'application/json', '  ');
      expect(r.status).to.equal(400);
      r = await post('/echo', 'text/plain', '{}');
      expect(r.status).to.equal(415);
      r = await post('/echo', 'application/x-www-form-urlencoded', 'a=1');
      expect(r.status).to.equal(415);
      r = await post('/small', 'application/json', JSON.stringify({ long: 'x'.repeat(20) }));
      expect(r.status).to.equal(413);
      r = await post('/small', 'application/json', '{"ok":1}');
      expect(await r.json()).to.deep.equal({ ok: 1 });
      r = await fetch(`${base}/teapot`);
      expect(r.status).to.equal(418);
      expect(await r.text()).to.equal("418 I'm a Teapot: short and stout\n");
    });

    it('the server’s maxBodySize bounds every body (413 before the body is read)', async () => {
      const base = await start(app(), { maxBodySize: 64 });
      const r = await fetch(`${base}/text`, { method: 'POST', body: 'x'.repeat(65) });
      expect(r.status).to.equal(413);
    });

    it('req.json() and req.text() read a streamed body (streamBodies) to its end, within the limit', async () => {
      const base = await start(app(), { streamBodies: true });
      const big = JSON.stringify({ items: Array.from({ length: 2000 }, (_, i) => i) });
      const r = await fetch(`${base}/echo`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: big,
      });
      expect(((await r.json()) as { got: { items: number[] } }).got.items).to.have.length(2000);
      const t = await fetch(`${base}/text`, { method: 'POST', body: 'é'.repeat(50_000) });
      expect(await t.text()).to.equal('50000');
      const small = await fetch(`${base}/small`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: big,
      });
      expect(small.status).to.equal(413);
    });
  });

  describe('examples/api-server.js', () => {
    let child: ChildProcess | undefined;

    afterEach(async () => {
      if (child !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = once(child, 'exit');
        child.kill('SIGTERM');
        await exited;
      }
      child = undefined;
    });

    it('creates, reads, lists and deletes users; validation errors are 422, bad JSON 400, wrong type 415', async () => {
      const started = await startListening([API_EXAMPLE, '--host', '127.0.0.1', '--port', '0', '--workers', '0']);
      child = started.child;
      const base = `http://127.0.0.1:${started.port}`;
      const json = { 'Content-Type': 'application/json' };
      let r = await fetch(`${base}/users`, {
        method: 'POST',
        headers: json,
        body: '{"name":"Ada","email":"ada@example.org"}',
      });
      expect(r.status).to.equal(201);
      expect(r.headers.get('location')).to.equal('/users/1');
      expect(await r.json()).to.deep.equal({ id: '1', name: 'Ada', email: 'ada@example.org' });
      r = await fetch(`${base}/users/1`);
      expect(await r.json()).to.deep.equal({ id: '1', name: 'Ada', email: 'ada@example.org' });
      r = await fetch(`${base}/users`, { method: 'POST', headers: json, body: '{"name":"","email":"nope"}' });
      expect(r.status).to.equal(422);
      expect(await r.json()).to.deep.equal({
        error: 'invalid user',
        problems: { name: 'is required (a non-empty string)', email: 'must be an e-mail address' },
      });
      r = await fetch(`${base}/users`, { method: 'POST', headers: json, body: '{"name":' });
      expect(r.status).to.equal(400);
      r = await fetch(`${base}/users`, { method: 'POST', body: 'name=Ada' });
      expect(r.status).to.equal(415);
      r = await fetch(`${base}/users?limit=1`);
      expect(await r.json()).to.have.length(1);
      r = await fetch(`${base}/users?limit=abc`);
      expect(r.status).to.equal(400);
      r = await fetch(`${base}/users/1`, { method: 'DELETE' });
      expect(r.status).to.equal(204);
      r = await fetch(`${base}/users/1`);
      expect(r.status).to.equal(404);
      r = await fetch(`${base}/users/1`, { method: 'PUT' });
      expect(r.status).to.equal(405);
      expect(r.headers.get('allow')).to.equal('GET, HEAD, DELETE, OPTIONS');
      expect(started.stderr()).to.equal('');
    });
  });
});
