-- GET one page of 100 events of a random device, newest first.
-- Env: BENCH_KEY, BENCH_TENANT, BENCH_DEVICES.
package.path = os.getenv("BENCH_LUA") .. "/?.lua;" .. package.path
require("common")

local key = os.getenv("BENCH_KEY")
local tenant = os.getenv("BENCH_TENANT")
local devices = tonumber(os.getenv("BENCH_DEVICES"))

function init(args)
  math.randomseed(os.time() + (first or 0))
end

wrk.headers["Authorization"] = "Bearer " .. key

function request()
  local d = math.random(0, devices - 1)
  return wrk.format("GET", "/v1/tenants/" .. tenant .. "/events?device=dev-" .. d .. "&limit=100")
end

done = bench_done
