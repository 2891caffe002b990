-- Per-request latency beside wrk's own percentiles.
--   wrk -tN -cN -d6s --latency -s bench/latency.lua URL     (as many threads as connections)
-- wrk 4.1 corrects its latency histogram for coordinated omission: a request slower than the mean
-- interval adds synthetic samples for the requests an open-loop client would have sent meanwhile,
-- so one rare stall can move its p99 by orders of magnitude. With one connection per thread,
-- request() and response() alternate, and the wall time between them is exactly one request's
-- latency: this prints the percentiles of those, next to wrk's corrected p99.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } dfd_timespec;
int clock_gettime(int clock, dfd_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("dfd_timespec")
local function now_us()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) sent_at, lats, n = 0, {}, 0 end
function request() sent_at = now_us(); return wrk.format() end
function response(status, headers, body) n = n + 1; lats[n] = now_us() - sent_at end

function done(summary, latency, requests)
    local all = {}
    for _, t in ipairs(threads) do
        local l, k = t:get("lats"), t:get("n")
        for i = 1, k do all[#all + 1] = l[i] end
    end
    if #all == 0 then io.write("per-request: no response\n"); return end
    table.sort(all)
    local function pct(q) return all[math.min(#all, math.floor(#all * q) + 1)] / 1000 end
    local slow = 0
    for i = 1, #all do if all[i] > 100000 then slow = slow + 1 end end
    io.write(string.format("per-request: n=%d p50=%.2f ms p99=%.2f ms p99.9=%.2f ms max=%.2f ms, %d over 100 ms; wrk's corrected p99=%.2f ms\n",
        #all, pct(0.5), pct(0.99), pct(0.999), all[#all] / 1000, slow, latency:percentile(99) / 1000))
end
