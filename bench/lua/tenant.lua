-- One event per request on the tenant ingest face (the same body bench/payloads.py builds).
-- Env: BENCH_KEY, BENCH_TENANT, BENCH_DEVICES (how many devices dev-0..), BENCH_BASE_MS.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
require("common")

local key = os.getenv("BENCH_KEY")
local tenant = os.getenv("BENCH_TENANT")
local devices = tonumber(os.getenv("BENCH_DEVICES"))
local base = tonumber(os.getenv("BENCH_BASE_MS"))
local threads = 0
local n = 0
local slot = 0

function setup(thread)
  thread:set("first", threads)
  threads = threads + 1
end

function init(args)
  slot = first or 0  -- up to 64 wrk threads never send the same (device, timestamp)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = key

function request()
  n = n + 1
  local i = n
  local body = string.format(
    '{"typeId":"temperature","description":"cold room probe reading","appId":"bench-agent",' ..
    '"severity":3,"data":{"value":%d.%d,"updateTime":"2024-05-01T12:00:01Z","samples":[{"value":21.5,' ..
    '"sampleTime":"2024-05-01T12:00:00Z"}]},"timestamp":%d}',
    i % 40, i % 10, base + n * 64 + slot)
  return wrk.format(nil, "/rest/v1/api/tenants/" .. tenant .. "/devices/dev-" .. (i % devices) .. "/events", nil, body)
end

done = bench_done
