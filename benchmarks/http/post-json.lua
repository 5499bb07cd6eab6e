-- POST /echo with a 1 KiB JSON document (an order with items; benchmarks/http/requests.ts makes the
-- same body for the micro benchmark): the server parses it and answers how many items it had.
local items = {}
local body = ""
for i = 0, 100 do
  items[#items + 1] = string.format('{"sku":"SKU-%d","name":"Item number %d","quantity":%d,"price":%.2f}', 10000 + i, i, 1 + i % 5, 9.99 + i)
  local next = '{"customer":"c-42","currency":"EUR","items":[' .. table.concat(items, ",") .. "]}"
  if #next > 1024 then break end
  body = next
end
body = body .. string.rep(" ", 1024 - #body)
wrk.method = "POST"
wrk.path = "/echo"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
