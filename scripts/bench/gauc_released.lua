-- Certified bounds only: GAUC of released CIFAR-10 models on 500 noise points at eps 0.3 and 0.01
-- (recipes/paper/RESULTS.md). Usage: build/umbra scripts/bench/gauc_released.lua CKPT.h5 ...
local umbra = require "umbra"
local data = require "umbra.data"
local noise = require "umbra.noise"
local runs = require "umbra.runs"
local certify, eval = umbra.certify, umbra.eval
umbra.set_num_threads(2)
local test = assert(data.load("cifar10", {split = "test", dir = os.getenv("UMBRA_DATA") or "data", limit = 500}))
local x
for b in test:batches{batch_size = 500} do x = b end
for _, name in ipairs(arg) do
  local model = assert(runs.load_model(name))
  model:evaluate()
  local conf_in = eval.max_conf(model:forward(x):softmax(2))
  local z = noise.authors(x, umbra.Generator(0))
  local clean = eval.max_conf(model:forward(z):softmax(2))
  local t0 = umbra.core.clock()
  local b3 = certify.confidence_bound(model, z, 0.3)
  local t = umbra.core.clock() - t0
  local b01 = certify.confidence_bound(model, z, 0.01)
  local b0 = certify.confidence_bound(model, z, 0.0)
  local maxdiff = 0
  for i = 1, 500 do maxdiff = math.max(maxdiff, math.abs(b0[i] - clean[i])) end
  print(string.format("%s: AUC %.3f, GAUC(0.3) %.3f, GAUC(0.01) %.3f, mean bound 0.3 %.4f, 0.01 %.4f; "
    .. "min bound 0.01 %.4f; |bound(eps 0) - conf| <= %.1e; bound of 500 points %.2f s", name:match("[^/]+$"),
    eval.auroc_conservative(conf_in, clean), eval.auroc_conservative(conf_in, b3),
    eval.auroc_conservative(conf_in, b01),
    eval.mmc(b3), eval.mmc(b01), b01:min(), maxdiff, t))
end
