-- 16 requests per write, as TechEmpower's plaintext test (toolset/wrk/pipeline.lua) does:
-- wrk counts each of the 16 responses.
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do r[i] = wrk.format() end
  req = table.concat(r)
end
request = function() return req end
