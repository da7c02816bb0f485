-- One ACET training step through umbra (docs/method.md §2.5): LeNet, 128 clean MNIST-shaped
-- images + 128 noise images (the authors' noise recipe), 40 PGD steps of 0.0075 in the
-- eps = 0.3 ball, then one training step on [noise; clean] with Adam and weight decay.
-- Paired with bench_acet_torch.py. Prints "name value" lines. Usage: THREADS
local umbra = require "umbra"
local train = require "umbra.train"
local optim = require "umbra.optim"
local noise = require "umbra.noise"
local now = umbra.core.clock
local threads = tonumber(arg[1] or "1")
umbra.set_num_threads(threads)
local g = umbra.Generator(1)
local model = require("models.lenet"){generator = g}
local x = umbra.rand({128, 1, 28, 28}, g)
local labels = {}
for i = 1, 128 do labels[i] = (i - 1) % 10 + 1 end
local y = umbra.tensor(labels, "int64")
local proc = train.Procedure(model, optim.Adam(model:parameters(), {lr = 1e-3}), {
  at_frac = 1, pgd_niter = 40, pgd_eps = 0.3, loss = "max_conf", lmbd = 5e-4, generator = g,
  noise_schedule = noise.schedule.authors{frac_perm = 0.5}})
proc:step(x, y)
local best = math.huge
for _ = 1, 3 do
  local t0 = now()
  proc:step(x, y)
  best = math.min(best, now() - t0)
end
print(string.format("acet_step_s %.3f", best))
