-- wrk script for bench/load.sh: POST enforce requests, then print the run's
-- numbers as one JSON line (prefixed "RESULT ") for the script to read.
--
--   wrk ... -s bench/enforce.lua URL -- many   a new random session id per request
--   wrk ... -s bench/enforce.lua URL -- hot    every request in one session
--
-- The request is the README's example: a read of a file under /tmp, which the
-- default policy allows (until the hot session reaches its 1,000-action limit;
-- from then on it is denied, still decided and recorded the same way).

local mode = "many"
local fixed -- the one request of "hot" mode, formatted once

local function body(session_id)
   return '{"tool_name":"read_file","tool_args":{"path":"/tmp/a.txt"},"session_id":"'
      .. session_id .. '"}'
end

function init(args)
   mode = args[1] or "many"
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   -- Each wrk thread has its own Lua state: seed each one differently.
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
   if mode == "hot" then
      fixed = wrk.format(nil, nil, nil, body("bench-hot"))
   elseif mode ~= "many" then
      error("mode must be many or hot, not " .. tostring(mode))
   end
end

local counter = 0

function request()
   if fixed then
      return fixed
   end
   counter = counter + 1
   -- Random prefix plus a counter: random, and never repeated within a thread.
   local id = string.format("bench-%08x%08x-%d",
      math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), counter)
   return wrk.format(nil, nil, nil, body(id))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"mean":%.1f,"max":%d}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max))
end
