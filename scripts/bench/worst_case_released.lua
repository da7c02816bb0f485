-- worst3 against the suite against certified bounds on the first N noise points of one released
-- CIFAR-10 model (recipes/paper/RESULTS.md). Usage: build/umbra scripts/bench/worst_case_released.lua CKPT.h5 [N]
-- (data from $UMBRA_DATA; import the model first with scripts/import-tf-checkpoint)
local umbra = require "umbra"
local data = require "umbra.data"
local noise = require "umbra.noise"
local runs = require "umbra.runs"
local attack, certify, eval = umbra.attack, umbra.certify, umbra.eval
umbra.set_num_threads(2)
local ckpt, N = arg[1], tonumber(arg[2] or 16)
local model = assert(runs.load_model(ckpt))
local test = assert(data.load("cifar10", {split = "test", dir = os.getenv("UMBRA_DATA") or "data", limit = 500}))
local g = umbra.Generator(0)
local xs = {}
for x in test:batches{batch_size = 500} do xs[#xs + 1] = x end
model:evaluate()
local conf_in = eval.max_conf(model:forward(xs[1]):softmax(2))
local z = noise.authors(xs[1], g):narrow(1, 1, N):contiguous()
local t0 = umbra.core.clock()
local c3, _, _, r3 = attack.worst_case(model, z, {eps = 0.3, ensemble = "worst3", seed = 0})
local t3 = umbra.core.clock() - t0
local extra = {table.unpack(attack.ensemble_presets{}.suite, 4)}
t0 = umbra.core.clock()
local ce, _, _, re = attack.worst_case(model, z, {eps = 0.3, ensemble = extra, seed = 3})
local te = umbra.core.clock() - t0
local cs = c3:clone()
local stronger, gain, escapes = 0, 0, 0
for i = 1, N do
  if ce[i] > c3[i] then stronger = stronger + 1; gain = math.max(gain, ce[i] - c3[i]); cs[i] = ce[i] end
end
for _, e in pairs(re.escapes) do escapes = escapes + e end
local function share(c) local k = 0 for i = 1, N do if c[i] >= 0.99 then k = k + 1 end end return k / N end
local clean = eval.max_conf(model:forward(z):softmax(2))
t0 = umbra.core.clock()
local b3 = certify.confidence_bound(model, z, 0.3)
local tb = umbra.core.clock() - t0
local b01 = certify.confidence_bound(model, z, 0.01)
local s = eval.sandwich(conf_in, {clean = clean, attack = cs, bound = b3, tol = 1e-5})
print(string.format("%s: N=%d clean MMC %.3f | worst3 MMC %.3f (>=0.99: %.2f) %.0fs | "
  .. "suite MMC %.3f (>=0.99: %.2f) extra %.0fs; suite stronger on %d points, max gain %.3f; escapes %d",
  ckpt:match("[^/]+$"), N, eval.mmc(clean), eval.mmc(c3), share(c3), t3, eval.mmc(cs), share(cs), te,
  stronger, gain, escapes))
print(string.format("  AUC %.3f AAUC %.3f GAUC(0.3) %.3f GAUC(0.01) %.3f | mean bound 0.3: %.3f, 0.01: %.3f "
  .. "| bound %.2fs",
  s.auc, s.aauc, s.gauc, eval.auroc_conservative(conf_in, b01), eval.mmc(b3), eval.mmc(b01), tb))
for _, n in ipairs(re.names) do if re.mean[n] then print("  ", n, re.mean[n], re.escapes[n]) end end
for _, n in ipairs(r3.names) do if r3.mean[n] then print("  ", n, r3.mean[n]) end end
