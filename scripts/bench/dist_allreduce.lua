-- Cost of one gradient allreduce (umbra.dist.allreduce_grads: one flat buffer, one
-- MPI_Allreduce) for LeNet (3.27 M parameters) and ResNetSmall (0.27 M), and of one
-- ACET training step's compute for the scaling model (docs/scaling.md). Run under mpirun
-- by scripts/bench/run-dist; rank 0 prints "name value" lines.
--   mpirun -np N build/umbra scripts/bench/dist_allreduce.lua [reps] [acet_steps] [threads]
local umbra = require "umbra"
local dist = require "umbra.dist"
local rank, size = dist.init()
local reps = math.tointeger(tonumber(arg[1] or "20"))
local acet_steps = math.tointeger(tonumber(arg[2] or "0"))
umbra.set_num_threads(math.tointeger(tonumber(arg[3] or "1")))

local function time_allreduce(name, model)
  local grads = model:gradients()
  for _, gr in ipairs(grads) do gr:fill_(rank + 1) end
  dist.allreduce_grads(grads)   -- warm: connections, buffers
  dist.barrier()
  local t0 = umbra.core.clock()
  for _ = 1, reps do dist.allreduce_grads(grads) end
  dist.barrier()
  local ms = (umbra.core.clock() - t0) * 1000 / reps
  if rank == 0 then
    print(string.format("%s_params %d", name, model:num_parameters()))
    print(string.format("%s_allreduce_ms %.3f", name, ms))
    print(string.format("%s_allreduce_GBps %.3f", name, model:num_parameters() * 4 / ms / 1e6))
  end
end

time_allreduce("lenet", require("models.lenet"){})
time_allreduce("resnet_small", require("models.resnet_small"){})

-- the ACET step of ResNetSmall on this rank's share of 128 clean + 128 noise, 40 PGD
-- steps (the authors' CIFAR settings), timed without and with its gradient allreduce
if acet_steps > 0 then
  local train = require "umbra.train"
  local optim = require "umbra.optim"
  local g = umbra.Generator(1)
  local model = require("models.resnet_small"){generator = g}
  local proc = train.Procedure(model, optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9}),
                               {at_frac = 1, pgd_niter = 40, pgd_eps = 0.3, generator = g,
                                dist = size > 1 and {noise = "rank"} or nil})
  local x = umbra.rand({128, 3, 32, 32}, g)
  local y = umbra.full({128}, 1, "int64")
  proc:step(x, y, 1)
  dist.barrier()
  local t0 = umbra.core.clock()
  for _ = 1, acet_steps do proc:step(x, y, 1) end
  dist.barrier()
  if rank == 0 then
    print(string.format("acet_step_%dranks_x%dthreads_s %.3f", size, umbra.get_num_threads(),
                        (umbra.core.clock() - t0) / acet_steps))
  end
end
