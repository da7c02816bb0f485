-- Tensor benchmarks through umbra (run by scripts/bench/run-all): matmul GFLOP/s at
-- sizes 256..2048, elementwise add GB/s, and the cost of one small op called from Lua.
-- Prints "name value" lines. Usage: umbra scripts/bench/bench_tensor.lua THREADS
local umbra = require "umbra"
local threads = tonumber(arg[1] or "1")
umbra.set_num_threads(threads)
local clock = os.clock
local g = umbra.Generator(1)

local best_of = dofile("scripts/bench/best_of.lua")

for _, n in ipairs{256, 512, 1024, 2048} do
  local a, b = umbra.rand({n, n}, g), umbra.rand({n, n}, g)
  local reps = n <= 512 and 20 or (n <= 1024 and 5 or 2)
  local inner = n <= 256 and 20 or 1
  local dt = best_of(reps, function() for _ = 1, inner do local c = a:matmul(b); c:free() end end) / inner
  print(string.format("matmul_%d %.2f", n, 2 * n * n * n / dt / 1e9))
end

local n = 16 * 1024 * 1024
local x, y = umbra.rand({n}, g), umbra.rand({n}, g)
local out = x:clone()
local dt = best_of(10, function() out:copy_(x); out:add_(y) end)
-- copy: read+write, add_: 2 reads + 1 write; 5 floats moved per element
print(string.format("add_GBps %.2f", 5 * 4 * n / dt / 1e9))

local small = umbra.ones(4)
local iters = 200000
local t0 = clock()
for _ = 1, iters do small:add_(1) end
print(string.format("small_op_us %.3f", (clock() - t0) / iters * 1e6))
