-- A JSON array of BENCH_BATCH events per request on the native face (durable batch ingest).
-- Env: BENCH_KEY, BENCH_TENANT, BENCH_DEVICES, BENCH_BASE_MS, BENCH_BATCH; BENCH_POOL=N sends N
-- prebuilt bodies over and over (for the bare endpoint, so that building bodies in Lua is not
-- what limits the floor).
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
require("common")

local key = os.getenv("BENCH_KEY")
local tenant = os.getenv("BENCH_TENANT")
local devices = tonumber(os.getenv("BENCH_DEVICES"))
local base = tonumber(os.getenv("BENCH_BASE_MS"))
local size = tonumber(os.getenv("BENCH_BATCH"))
local pool_size = tonumber(os.getenv("BENCH_POOL") or "0")  -- > 0: cycle through prebuilt bodies
local pool = {}
local threads = 0
local n = 0

function setup(thread)
  thread:set("first", threads)
  threads = threads + 1
end

function init(args)
  n = (first or 0) * 1000000000
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key
local path = "/v1/tenants/" .. tenant .. "/events"

local function body()
  local parts = {}
  for j = 1, size do
    n = n + 1
    parts[j] = string.format(
      '{"type":"temperature","device":"dev-%d","description":"cold room probe reading",' ..
      '"app_id":"bench-agent","severity":3,"data":{"value":%d.%d,"updateTime":"2024-05-01T12:00:01Z","samples":' ..
      '[{"value":21.5,"sampleTime":"2024-05-01T12:00:00Z"}]},"time":%d}',
      n % devices, n % 40, n % 10, base + n)
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

function request()
  if pool_size > 0 then
    if #pool < pool_size then
      table.insert(pool, wrk.format(nil, path, nil, body()))
      return pool[#pool]
    end
    n = n + 1
    return pool[(n % pool_size) + 1]
  end
  return wrk.format(nil, path, nil, body())
end

done = bench_done
