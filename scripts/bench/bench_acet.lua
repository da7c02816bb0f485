-- One ACET training step through umbra (docs/method.md §2.5) with the authors' settings:
-- 128 clean images + 128 noise images (the authors' noise recipe, frac_perm 0.5), 40 PGD
-- steps of 0.0075 in the eps = 0.3 ball maximising the max confidence, then one training
-- step on [noise; clean] with weight decay 5e-4: LeNet (MNIST-shaped, Adam 1e-3) and
-- ResNetSmall (CIFAR-shaped, SGD 0.1 with momentum 0.9, decay on all but batch norm).
-- Paired with bench_acet_torch.py. Prints "name value" lines.
-- Usage: umbra scripts/bench/bench_acet.lua THREADS [MODEL]
-- BENCH_SMOKE=1: 8 + 8 images, 2 PGD steps, one timed step (checks that it runs; no timing).
local umbra = require "umbra"
local train = require "umbra.train"
local optim = require "umbra.optim"
local noise = require "umbra.noise"
local now = umbra.core.clock
local threads = tonumber(arg[1] or "1")
local only = arg[2]
local smoke = os.getenv("BENCH_SMOKE") == "1"
umbra.set_num_threads(threads)

local shapes = {lenet = {1, 28, 28}, resnet_small = {3, 32, 32}}
local function step_seconds(name)
  local g = umbra.Generator(1)
  local model = require("models." .. name){generator = g}
  local batch, niter = smoke and 8 or 128, smoke and 2 or 40
  local s = shapes[name]
  local x = umbra.rand({batch, s[1], s[2], s[3]}, g)
  local labels = {}
  for i = 1, batch do labels[i] = (i - 1) % 10 + 1 end
  local y = umbra.tensor(labels, "int64")
  local opt, decay
  if name == "lenet" then
    opt = optim.Adam(model:parameters(), {lr = 1e-3})
  else   -- as recipes/train.lua: momentum SGD, no decay on batch norm
    opt = optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9})
    decay = model:parameters(function(path) return not path:find("bn") end)
  end
  local proc = train.Procedure(model, opt, {
    at_frac = 1, pgd_niter = niter, pgd_eps = 0.3, pgd_step = 0.0075, loss = "max_conf", lmbd = 5e-4,
    decay_params = decay, generator = g, noise_schedule = noise.schedule.authors{frac_perm = 0.5}})
  proc:step(x, y)
  local best = math.huge
  for _ = 1, smoke and 1 or 3 do
    local t0 = now()
    proc:step(x, y)
    best = math.min(best, now() - t0)
  end
  return best
end

for _, name in ipairs{"lenet", "resnet_small"} do
  if not only or only == name then print(string.format("%s_acet_step_s %.3f", name, step_seconds(name))) end
end
