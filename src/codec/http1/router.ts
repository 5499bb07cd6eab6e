/**
 * Routing for `http()`: methods and paths with parameters to handlers, on find-my-way (fastify's
 * radix-tree router, a well-kept library; this module only adapts it to `(req, res)`).
 *
 * ```ts
 * const app = router();
 * app.get('/users/:id', (req, res) => res.json(users.get(req.params.id)));
 * app.post('/users', async (req, res) => res.status(201).json(create(await req.json())));
 * await Server.listen({ port: 8080, pipeline: http(app) });
 * ```
 *
 * What it answers itself: `404 Not Found` for a path no route has (or `notFound`), `405 Method
 * Not Allowed` with `Allow` (RFC 9110 §15.5.6) for a path that has routes for other methods, a
 * `HEAD` with the `GET` route of its path (the server sends the GET's headers without the body,
 * RFC 9110 §9.3.2) unless a HEAD route is declared, and `OPTIONS` with `204` and `Allow` unless
 * an OPTIONS route is declared. Paths are matched without the query string; parameters come
 * percent-decoded in `req.params`.
 */
import findMyWay from 'find-my-way';
import { InvalidOptionError } from '../../common/errors.js';
import { bool, checkOptions, type OptionKeys, optionalInt } from '../../common/options.js';
import type { HttpRequest } from './request.js';
import type { HttpResponse } from './response.js';

/** A route's handler: the server's `(req, res)`, with `req.params` set. */
export type RouteHandler = (req: HttpRequest, res: HttpResponse) => unknown;

/** How {@link router} matches paths, and what answers a path no route has. */
export interface RouterOptions {
  /** `/users/` matches `/users` (and the reverse). Default false. */
  readonly ignoreTrailingSlash?: boolean;
  /** `//users///42` matches `/users/42`. Default false. */
  readonly ignoreDuplicateSlashes?: boolean;
  /** Static path parts match case-sensitively. Default true. */
  readonly caseSensitive?: boolean;
  /** Longest value of one parameter; a longer one does not match (404). Default 100 (find-my-way's). */
  readonly maxParamLength?: number;
  /** Answers requests no route matches, instead of the default `404 Not Found`. */
  readonly notFound?: RouteHandler;
}

/** The keys of `RouterOptions` (common/options.ts: kept in step with the interface by `tsc`). */
const ROUTER_OPTIONS = {
  ignoreTrailingSlash: true,
  ignoreDuplicateSlashes: true,
  caseSensitive: true,
  maxParamLength: true,
  notFound: true,
} as const satisfies OptionKeys<RouterOptions>;

/** find-my-way's instance, as this module uses it (its own types are written for node:http). */
interface Tree {
  on(method: string, path: string, handler: RouteHandler): void;
  /** Generates the lookup code of each method's tree (find-my-way ≥ 9.10); a changed tree is compiled again on its next lookup. */
  compile?(): void;
  find(method: string, path: string): { handler: RouteHandler; params: Record<string, string | undefined> } | null;
}

/** The methods find-my-way routes (its lib/http-methods.js: llhttp's, RTSP's and PRI aside). */
const METHODS = new Set<string>(
  'ACL BIND CHECKOUT CONNECT COPY DELETE GET HEAD LINK LOCK M-SEARCH MERGE MKACTIVITY MKCALENDAR MKCOL MOVE NOTIFY OPTIONS PATCH POST PROPFIND PROPPATCH PURGE PUT QUERY REBIND REPORT SEARCH SOURCE SUBSCRIBE TRACE UNBIND UNLINK UNLOCK UNSUBSCRIBE'.split(
    ' ',
  ),
);

type Adder = (path: string, handler: RouteHandler) => Router;

/** Methods and paths to handlers; pass it to `http(app)`. */
export class Router {
  private readonly tree: Tree;
  /** Every method some route was declared for, in order (for `Allow`). */
  private readonly methods: string[] = [];
  private readonly notFound: RouteHandler | undefined;
  /** Routes were declared since the trees were last compiled. */
  private dirty = true;
  /** `(req, res) => …` for `http()`: routes `req` (bound to this router). */
  readonly handle: (req: HttpRequest, res: HttpResponse) => unknown;

  constructor(options: RouterOptions = {}) {
    checkOptions('router', options, ROUTER_OPTIONS);
    for (const key of ['ignoreTrailingSlash', 'ignoreDuplicateSlashes', 'caseSensitive'] as const) {
      bool(key, options[key], false);
    }
    optionalInt('maxParamLength', options.maxParamLength, 100, 1);
    if (options.notFound !== undefined && typeof options.notFound !== 'function') {
      throw new InvalidOptionError('notFound', 'must be a function (req, res) => …');
    }
    this.notFound = options.notFound;
    this.tree = findMyWay({
      ignoreTrailingSlash: options.ignoreTrailingSlash ?? false,
      ignoreDuplicateSlashes: options.ignoreDuplicateSlashes ?? false,
      caseSensitive: options.caseSensitive ?? true,
      maxParamLength: options.maxParamLength ?? 100,
    }) as unknown as Tree;
    this.handle = (req, res) => this.route(req, res);
  }

  /**
   * Declares `handler` for `method` (or each of `methods`) on `path`: static parts, `:name`
   * parameters, `*` for the rest (`req.params['*']`), as find-my-way reads them. Throws for a
   * method HTTP/1.1 servers do not know, or a route declared twice.
   */
  on(method: string | readonly string[], path: string, handler: RouteHandler): this {
    if (typeof handler !== 'function')
      throw new TypeError('router: a route handler must be a function (req, res) => …');
    for (const m of typeof method === 'string' ? [method] : method) {
      if (!METHODS.has(m)) throw new TypeError(`router: unknown method ${JSON.stringify(m)}`);
      this.tree.on(m, path, handler);
      this.dirty = true;
      if (!this.methods.includes(m)) this.methods.push(m);
    }
    return this;
  }

  readonly get: Adder = (path, handler) => this.on('GET', path, handler);
  readonly post: Adder = (path, handler) => this.on('POST', path, handler);
  readonly put: Adder = (path, handler) => this.on('PUT', path, handler);
  readonly patch: Adder = (path, handler) => this.on('PATCH', path, handler);
  readonly delete: Adder = (path, handler) => this.on('DELETE', path, handler);
  readonly head: Adder = (path, handler) => this.on('HEAD', path, handler);
  readonly options: Adder = (path, handler) => this.on('OPTIONS', path, handler);

  /** Routes one request: its handler's result (a promise, for the server to watch), or the router's own answer. */
  route(req: HttpRequest, res: HttpResponse): unknown {
    const path = req.path;
    const tree = this.tree;
    if (this.dirty) {
      // Lookups by generated code rather than a walk of the tree, from the first request on.
      this.dirty = false;
      tree.compile?.();
    }
    let found = tree.find(req.method, path);
    // RFC 9110 §9.3.2: HEAD is GET without the body; the server already drops a HEAD's body.
    if (found === null && req.method === 'HEAD') found = tree.find('GET', path);
    if (found !== null) {
      req.params = found.params;
      return found.handler(req, res);
    }
    const allowed = this.allowed(path);
    if (allowed.length === 0) {
      if (this.notFound !== undefined) return this.notFound(req, res);
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('404 Not Found\n');
      return undefined;
    }
    const allow = allowed.join(', ');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { Allow: allow }).end();
      return undefined;
    }
    // RFC 9110 §15.5.6: a 405 lists the methods the target does support.
    res.writeHead(405, { Allow: allow, 'Content-Type': 'text/plain; charset=utf-8' }).end('405 Method Not Allowed\n');
    return undefined;
  }

  /** The methods `path` has routes for (HEAD with GET, OPTIONS always): only on a miss. */
  private allowed(path: string): string[] {
    const out: string[] = [];
    for (const m of this.methods) if (this.tree.find(m, path) !== null) out.push(m);
    if (out.length === 0) return out;
    if (out.includes('GET') && !out.includes('HEAD')) out.splice(out.indexOf('GET') + 1, 0, 'HEAD');
    if (!out.includes('OPTIONS')) out.push('OPTIONS');
    return out;
  }
}

/**
 * A new router: declare routes, then `http(app)`. Paths take `:name` parameters (percent-decoded
 * in `req.params`) and a trailing `*`; the query string is not part of the match (`req.query`).
 * The router answers what no route does: 404 (or `notFound`), 405 with `Allow` for a path known
 * under other methods, HEAD from the GET route, OPTIONS with `Allow`. Declaring a route twice,
 * or for a method HTTP/1.1 servers do not know, throws. See docs/http.md, "Routing".
 *
 * @example
 * ```ts
 * import { http, router, Server } from 'multireactor';
 *
 * const users = new Map<string, { name: string }>([['1', { name: 'Ada' }]]);
 * const app = router({ ignoreTrailingSlash: true });
 * app.get('/users/:id', (req, res) => {
 *   const user = users.get(req.params.id ?? '');
 *   if (user === undefined) res.status(404).json({ error: 'no such user' });
 *   else res.json(user);
 * });
 * app.post('/users', async (req, res) => {
 *   const body = await req.json<{ name: string }>();
 *   users.set(String(users.size + 1), body);
 *   res.status(201).json(body);
 * });
 * await Server.listen({ port: 8080, pipeline: http(app) });
 * ```
 */
export function router(options: RouterOptions = {}): Router {
  return new Router(options);
}
