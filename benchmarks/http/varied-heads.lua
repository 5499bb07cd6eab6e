-- Browser-like heads that differ on every request (benchmarks/http/requests.ts makes the same kind
-- for the micro benchmark): a path and query string, a session cookie, a request id and a W3C
-- traceparent that change per request; user agent, accept headers as browsers send them. ~500-650
-- bytes. With an argument N (e.g. `-- 16`), N such requests per write (pipelining).
local agents = {
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
}
local accepts = {
  "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
  "application/json, text/plain, */*",
  "*/*",
}
local languages = { "en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.8,en-US;q=0.5,en;q=0.3" }
local depth = 1
local n = 0

local function hex(k)
  local t = {}
  for i = 1, k do t[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(t)
end

local function head()
  n = n + 1
  local path = string.format("/api/items/%d?page=%d&sort=desc&q=%s", math.random(0, 99999), n % 50, hex(6))
  return wrk.format("GET", path, {
    ["User-Agent"] = agents[n % #agents + 1],
    ["Accept"] = accepts[n % #accepts + 1],
    ["Accept-Language"] = languages[n % #languages + 1],
    ["Accept-Encoding"] = "gzip, deflate, br",
    ["Connection"] = "keep-alive",
    ["Cookie"] = string.format("session=%s; theme=dark; _ga=GA1.2.%d.%d", hex(32), math.random(1, 999999999), math.random(1, 999999999)),
    ["X-Request-Id"] = string.format("%s-%s-%s-%s-%s", hex(8), hex(4), hex(4), hex(4), hex(12)),
    ["traceparent"] = string.format("00-%s-%s-01", hex(32), hex(16)),
  })
end

init = function(args)
  depth = tonumber(args[1]) or 1
  math.randomseed(os.time())
end

request = function()
  if depth == 1 then return head() end
  local r = {}
  for i = 1, depth do r[i] = head() end
  return table.concat(r)
end
