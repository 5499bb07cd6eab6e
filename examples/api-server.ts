/**
 * A small JSON API on `router()`: users kept in memory (per worker — each worker process has its
 * own map; run `--workers 0` for one shared store).
 *
 *   GET    /users          list them (?limit=N, at most 100)
 *   GET    /users/:id      one user, or 404
 *   POST   /users          create one from a JSON body {"name": "…", "email": "…"}: 201 with it and
 *                          a Location, 422 with the problems when a field is missing or wrong,
 *                          400 for malformed JSON, 415 for a body that is not JSON
 *   DELETE /users/:id      204, or 404
 *
 *   node dist/examples/api-server.js [--host 0.0.0.0] [--port 8080] [--workers N]
 *
 * Prints `listening on HOST:PORT` once every worker is ready. docs/http.md walks through it.
 */
import { availableParallelism } from 'node:os';
import { HttpError, http, router } from '../src/index.js';
import { announce, cli, listenOrExit } from './cli.js';

const USAGE = `
usage: node dist/examples/api-server.js [--host 0.0.0.0] [--port 8080] [--workers N]

A JSON API: GET /users, GET /users/:id, POST /users, DELETE /users/:id. --workers defaults to one
per CPU; 0 serves in this process.
`;

const values = cli(USAGE, {
  host: { type: 'string', default: '0.0.0.0' },
  port: { type: 'string', default: '8080' },
  workers: { type: 'string', default: String(availableParallelism()) },
});

interface User {
  readonly id: string;
  readonly name: string;
  readonly email: string;
}

const users = new Map<string, User>();
let nextId = 1;

/** The problems with a would-be user, as `{ field: message }` (empty when there are none). */
function validate(body: unknown): Record<string, string> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { body: 'must be a JSON object' };
  const { name, email } = body as { name?: unknown; email?: unknown };
  const problems: Record<string, string> = {};
  if (typeof name !== 'string' || name.trim() === '') problems.name = 'is required (a non-empty string)';
  else if (name.length > 100) problems.name = 'must be at most 100 characters';
  if (typeof email !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(email)) problems.email = 'must be an e-mail address';
  return problems;
}

const app = router();

app.get('/users', (req, res) => {
  const raw = req.query.limit;
  const limit = raw === undefined ? 100 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
    throw new HttpError(400, 'limit must be an integer from 1 to 100');
  }
  res.json([...users.values()].slice(0, limit));
});

app.get('/users/:id', (req, res) => {
  const user = users.get(req.params.id as string);
  if (user === undefined) res.status(404).json({ error: 'no such user' });
  else res.json(user);
});

app.post('/users', async (req, res) => {
  // 415 for another Content-Type, 400 for malformed JSON, 413 past 16 KiB: answered by the server.
  const body = await req.json({ limit: 16 * 1024 });
  const problems = validate(body);
  if (Object.keys(problems).length > 0) {
    res.status(422).json({ error: 'invalid user', problems });
    return;
  }
  const { name, email } = body as { name: string; email: string };
  const user: User = { id: String(nextId++), name: name.trim(), email };
  users.set(user.id, user);
  res.status(201).setHeader('Location', `/users/${user.id}`).json(user);
});

app.delete('/users/:id', (req, res) => {
  if (users.delete(req.params.id as string)) res.status(204).end();
  else res.status(404).json({ error: 'no such user' });
});

const server = await listenOrExit('api-server', {
  host: values.host,
  port: Number(values.port),
  workers: Number(values.workers),
  pipeline: http(app),
});

announce(server);
