/**
 * Requests that look like production, for the micro benchmark and the tests: browser-like heads
 * that differ on every request (what `varied-heads.lua` makes wrk send), and the 1 KiB JSON body
 * of the POST scenario (what `post-json.lua` sends).
 */
import { Buffer } from 'node:buffer';

const AGENTS = [
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
];
const ACCEPTS = [
  'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8',
  'application/json, text/plain, */*',
  '*/*',
];
const LANGUAGES = ['en-US,en;q=0.9', 'de-DE,de;q=0.9,en;q=0.8', 'fr-FR,fr;q=0.8,en-US;q=0.5,en;q=0.3'];

/** A small seeded generator (LCG): the same heads on every run. */
function generator(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/**
 * `n` browser-like GET heads, ~500–650 bytes each, every one different: a path and query string
 * that change, a user agent, accept headers, a session cookie, a request id and a W3C
 * `traceparent` that change per request. `GET /api/…`: what the benchmark servers answer with the
 * plaintext body.
 */
export function browserHeads(n: number, seed = 1, host = '127.0.0.1:8080'): string[] {
  const rnd = generator(seed);
  const hex = (k: number) => {
    let o = '';
    for (let i = 0; i < k; i++) o += '0123456789abcdef'[Math.floor(rnd() * 16)];
    return o;
  };
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      `GET /api/items/${Math.floor(rnd() * 100000)}?page=${Math.floor(rnd() * 50)}&sort=desc&q=${hex(6)} HTTP/1.1\r\n` +
        `Host: ${host}\r\n` +
        `User-Agent: ${pick(AGENTS)}\r\n` +
        `Accept: ${pick(ACCEPTS)}\r\n` +
        `Accept-Language: ${pick(LANGUAGES)}\r\n` +
        'Accept-Encoding: gzip, deflate, br\r\n' +
        'Connection: keep-alive\r\n' +
        `Cookie: session=${hex(32)}; theme=dark; _ga=GA1.2.${Math.floor(rnd() * 1e9)}.${Math.floor(rnd() * 1e9)}\r\n` +
        `X-Request-Id: ${hex(8)}-${hex(4)}-${hex(4)}-${hex(4)}-${hex(12)}\r\n` +
        `traceparent: 00-${hex(32)}-${hex(16)}-01\r\n\r\n`,
    );
  }
  return out;
}

/** A 1 KiB JSON document (an order with items), as the POST scenario sends it. */
export const JSON_BODY_1K: Buffer = (() => {
  const items: Array<{ sku: string; name: string; quantity: number; price: number }> = [];
  let body = '';
  for (let i = 0; ; i++) {
    items.push({ sku: `SKU-${10000 + i}`, name: `Item number ${i}`, quantity: 1 + (i % 5), price: 9.99 + i });
    const next = JSON.stringify({ customer: 'c-42', currency: 'EUR', items });
    if (next.length > 1024) break;
    body = next;
  }
  return Buffer.from(body.padEnd(1024, ' '), 'utf8');
})();
