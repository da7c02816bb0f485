-- Run by tests/lua/dist_spec.lua as one process and under mpirun: trains a model for a
-- few steps on fixed random global batches with umbra.train's procedure and writes rank
-- 0's parameters to OUT (a checkpoint), or checks that the replicas are identical.
--   build/umbra tests/lua/dist/equivalence.lua CASE STEPS OUT
-- CASE: plain (LeNet, SGD, no weight decay), acet_global (LeNet, ACET noise from the
-- global stream), good_global (LeNet, GOOD's bound loss on noise from the global stream), bn_sync (ResNetSmall, CEDA noise from the global stream, synchronised
-- batch norm), replicas (a small conv net with batch norm, ACET with per-rank noise:
-- prints the largest difference between rank 0's parameters and buffers and the others').
-- acet_global on several ranks also runs in lockstep: before each step rank 0 copies the
-- replica's parameters and the shared generator into a one-process shadow, which takes the
-- same step; it prints whether the noise of every step was the shadow's bit for bit and the
-- largest relative difference of the parameters after one step.
-- EQ_BUCKET_MB=x sums the gradients in buckets of x MB during the backward (dist.buckets)
-- and prints how many buckets there are and how many started during the last backward.
-- EQ_DEVICE=cuda trains on the GPUs (one per rank); EQ_DEVICE_COLLECTIVES=1 sets up the
-- device collectives (NCCL, or its stand-in in the tests) on the CPU as well.
local umbra = require "umbra"
local optim = require "umbra.optim"
local nn = require "umbra.nn"
local train = require "umbra.train"
local noise = require "umbra.noise"
local checkpoint = require "umbra.checkpoint"
local dist = require "umbra.dist"

local case, steps, out = arg[1], math.tointeger(tonumber(arg[2])), arg[3]
local rank, size = dist.init()
local device = os.getenv("EQ_DEVICE") or "cpu"
if device == "cuda" and size > 1 then dist.pick_local_gpu() end   -- before CUDA loads
umbra.set_num_threads(tonumber(os.getenv("EQ_THREADS") or "1"))
local g = umbra.Generator(7)

local model, shape, batch, settings
if case == "plain" or case == "acet_global" then
  model, shape, batch = require("models.lenet"){generator = g}, {1, 28, 28}, 128
  settings = case == "plain" and {at_frac = 0} or {at_frac = 1, pgd_niter = 2, pgd_eps = 0.3}
  settings.dist = {noise = "global"}
elseif case == "good_global" then
  -- GOOD (quantile 1: every noise point takes the bound loss; eps and weight fixed)
  model, shape, batch = require("models.lenet"){generator = g}, {1, 28, 28}, 64
  settings = {at_frac = 1, pgd_niter = 0, good = {eps = 0.3, weight = 0.3, quantile = 1}, dist = {noise = "global"}}
elseif case == "bn_sync" then
  model, shape, batch = require("models.resnet_small"){generator = g}, {3, 32, 32}, 32
  settings = {at_frac = 1, pgd_niter = 0, dist = {noise = "global", sync_bn = true}}
  dist.sync_batchnorm(true)
elseif case == "replicas" then
  model = nn.Sequential{nn.Conv2d(1, 4, 3, {padding = 1, generator = g}), nn.BatchNorm2d(4), nn.ReLU(),
                        nn.Flatten(), nn.Linear(4 * 16 * 16, 10, {generator = g})}
  shape, batch = {1, 16, 16}, 16
  settings = {at_frac = 1, pgd_niter = 1, pgd_eps = 0.3, dist = {noise = "rank"}}
else
  error("equivalence.lua: CASE must be plain, acet_global, good_global, bn_sync or replicas, got " .. tostring(case))
end
model:to(device)
if size > 1 and (device ~= "cpu" or os.getenv("EQ_DEVICE_COLLECTIVES") == "1") then
  local how = dist.device_collectives()
  if rank == 0 then print("collectives: " .. how) end
end
dist.broadcast_module(model)
settings.generator = g
if settings.dist and os.getenv("EQ_BUCKET_MB") then settings.dist.bucket_mb = tonumber(os.getenv("EQ_BUCKET_MB")) end
settings.noise_schedule = noise.schedule.authors{}
local params = model:parameters()
local proc = train.Procedure(model, optim.SGD(params, {lr = tonumber(os.getenv("EQ_LR") or "0.01")}), settings)

-- a learnable task (class c: a bright vertical band at columns proportional to c, plus
-- noise), so that training is smooth: on random labels LeNet memorises, and ReLU and
-- max-pool kinks amplify float rounding differences between any two ways of summing
local data_g = umbra.Generator(11)
local pool_n = 4 * batch
local pool = umbra.rand({pool_n, table.unpack(shape)}, data_g) * 0.3
local labels = {}
local width = shape[3]
for i = 1, pool_n do
  local c = data_g:random(10)
  labels[i] = c
  local first = (c - 1) * width // 10
  pool[i]:narrow(3, first + 1, math.max(width // 10, 1)):add_(0.6)
end
local pool_y = umbra.tensor(labels, "int64"):to(device)
pool = pool:to(device)

-- The one-process shadow of rank 0 (acet_global on several ranks): the noise each step
-- made is kept, the whole batch's, to compare bit for bit.
local shadow
local function keep_noise(p)
  local make = getmetatable(p).noise_for
  p.noise_for = function(self, ...)
    self.last_noise = make(self, ...)
    return self.last_noise
  end
end
if case == "acet_global" and size > 1 and rank == 0 then
  local m = require("models.lenet"){generator = umbra.Generator(99)}
  local sg = umbra.Generator(0)
  local s1 = {}
  for k, v in pairs(settings) do s1[k] = v end
  s1.dist, s1.generator = nil, sg
  shadow = {model = m, params = m:parameters(), generator = sg, identical = 0, worst = 0}
  shadow.proc = train.Procedure(m, optim.SGD(shadow.params, {lr = tonumber(os.getenv("EQ_LR") or "0.01")}), s1)
  keep_noise(shadow.proc)
  keep_noise(proc)
end

local function relative_difference(a, b)
  local d2, n2 = 0, 0
  for i, t in ipairs(a) do
    local d = t - b[i]
    d2, n2 = d2 + (d * d):sum(), n2 + (t * t):sum()
  end
  return math.sqrt(d2 / n2)
end

local t0 = umbra.core.clock()
for s = 1, steps do
  local at = ((s - 1) % 4) * batch + 1
  local x, y = pool:narrow(1, at, batch), pool_y:narrow(1, at, batch)
  if shadow then
    for i, p in ipairs(params) do shadow.params[i]:copy_(p) end
    shadow.generator:set_state(g:state())
    shadow.proc.step_count = proc.step_count
    shadow.proc:step(x, y, 1)
  end
  local st = proc:step(x, y, 1)
  if shadow then
    local a, b = shadow.proc.last_noise, proc.last_noise
    if a:numel() == b:numel() and (a - b):abs():max() == 0 then shadow.identical = shadow.identical + 1 end
    shadow.worst = math.max(shadow.worst, relative_difference(shadow.params, params))
  end
  if os.getenv("EQ_DEBUG") then print(rank, st.loss, st.err) end
end
if proc.buckets and rank == 0 then
  print(string.format("buckets: %d, %d started during the backward", proc.buckets:count(), proc.buckets_early))
end
if shadow then
  print(string.format("lockstep: noise identical in %d of %d steps, largest one-step difference %.3g",
                      shadow.identical, steps, shadow.worst))
end

if case == "replicas" then
  local worst = 0
  local tensors = {}
  for _, p in ipairs(params) do tensors[#tensors + 1] = p end
  for _, b in ipairs(dist.module_buffers(model)) do tensors[#tensors + 1] = b end
  for _, t in ipairs(tensors) do
    local all = dist.allgather(t:contiguous():view(1, -1))
    for r = 2, size do worst = math.max(worst, (all[r] - all[1]):abs():max()) end
  end
  if rank == 0 then print(string.format("replicas: largest difference %g after %d steps", worst, steps)) end
elseif rank == 0 then
  assert(checkpoint.save(out, {model = model}))
end
if rank == 0 then print(string.format("%s: %d steps on %d ranks in %.1f s", case, steps, size, umbra.core.clock() - t0)) end
