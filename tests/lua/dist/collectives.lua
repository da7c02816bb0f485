-- Run by tests/lua/dist_spec.lua under mpirun: each collective of umbra.dist on every
-- rank, checked against what the ranks' contributions must give; prints "rank r ok".
-- With COLLECTIVES_DEVICE=1 it first sets up the device collectives (dist_nccl_spec runs it
-- on a stand-in NCCL) and prints how they run.
local umbra = require "umbra"
local dist = require "umbra.dist"
local rank, size = dist.init()
assert(dist.init() == rank, "init is idempotent")
if os.getenv("COLLECTIVES_DEVICE") == "1" then print(string.format("rank %d: %s", rank, dist.device_collectives())) end
local function check(cond, what) if not cond then error(string.format("rank %d: %s", rank, what), 0) end end

local t = umbra.full({5}, rank + 1)
dist.allreduce(t, "sum")
check(t[5] == size * (size + 1) / 2, "sum " .. t[5])
t = umbra.full({5}, rank + 1)
dist.allreduce(t, "mean")
check(math.abs(t[1] - (size + 1) / 2) < 1e-6, "mean " .. t[1])
t = umbra.full({2, 2}, rank * 10)
dist.allreduce(t, "max")
check(t[2][2] == (size - 1) * 10, "max")
local i = umbra.full({3}, rank + 1, "int64")
dist.allreduce(i, "sum")
check(i[3] == size * (size + 1) // 2, "int64 sum")

local b = umbra.full({4}, rank + 7)
dist.broadcast(b, size - 1)
check(b[1] == size - 1 + 7, "broadcast from the last rank")

local g = dist.allgather(umbra.full({rank + 1, 3}, rank))
check(g:size(1) == size * (size + 1) // 2 and g:size(2) == 3, "allgather shape")
check(g[g:size(1)][1] == size - 1, "allgather order")

-- a model's gradients in one call: each rank's grads hold its rank, the sum is known
local model = require("models.mlp"){sizes = {4, 3, 2}, generator = umbra.Generator(rank + 1)}
dist.broadcast_module(model)
for _, gr in ipairs(model:gradients()) do gr:fill_(rank + 1) end
dist.allreduce_grads(model)
for _, gr in ipairs(model:gradients()) do check(gr:max() == size * (size + 1) / 2, "allreduce_grads") end
-- broadcast_module gave every rank rank 0's weights (each rank seeded its own)
local w = model:parameters()[1]:contiguous():view(1, -1)
local all = dist.allgather(w)
for r = 2, size do check((all[r] - all[1]):abs():max() == 0, "weights of rank " .. (r - 1) .. " differ") end

-- a bad argument is an error on the rank that made it, naming the call
local ok, err = pcall(dist.allreduce, t, "min")
check(not ok and err:find("'sum', 'mean' or 'max'", 1, true), "bad op: " .. tostring(err))
dist.barrier()
print(string.format("rank %d of %d ok", rank, size))
