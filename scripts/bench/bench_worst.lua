-- Cost of the worst-case tools (docs/worst-case.md): seconds per 1,000 points of each attack
-- (the paper's PGD, worst of three, APGD 500 x 5, MPGD 200 from three starts, the suite with
-- those settings) and of the IBP bound, on LeNet with MNIST-shaped and ResNetSmall with
-- CIFAR-shaped inputs, and the bound's cost in forward passes. Prints "name value" lines
-- for scripts/bench/run-all (`run-all worst`). Usage: build/umbra scripts/bench/bench_worst.lua [THREADS]
-- Sizes: BENCH_WORST_N_LENET (128) and BENCH_WORST_N_RESNET (32) points per attack, scaled
-- to 1,000; BENCH_WORST_STEPS (1) multiplies every attack's iterations (below 1 only to
-- check that the script works: the times are then not the attacks').
local umbra = require "umbra"
local attack, certify = umbra.attack, umbra.certify
local clock = umbra.core.clock

local threads = math.tointeger(tonumber(arg[1] or "1"))
umbra.set_num_threads(threads)
local scale = tonumber(os.getenv("BENCH_WORST_STEPS") or "1")
local function steps(k) return math.max(1, math.floor(k * scale + 0.5)) end

-- the ensembles timed, each as attack.worst_case members (the suite with ProoD's settings)
local presets = attack.ensemble_presets{apgd_steps = steps(500), apgd_restarts = 5, mpgd_steps = steps(200)}
for _, list in pairs(presets) do
  for i, m in ipairs(list) do
    local c = {}
    for k, v in pairs(m) do c[k] = v end
    if m.kind == "pgd" then c.steps = steps(m.steps) end
    list[i] = c
  end
end
local ensembles = {
  {"paper", presets.paper}, {"worst3", presets.worst3},
  {"apgd", {presets.suite[4]}}, {"mpgd", {presets.suite[5], presets.suite[6], presets.suite[7]}},
  {"suite", presets.suite},
}

local function out(name, value) print(string.format("%s %.4g", name, value)) end

local g = umbra.Generator(1)
for _, spec in ipairs{{"lenet", {1, 28, 28}, "BENCH_WORST_N_LENET", 128},
                      {"resnet_small", {3, 32, 32}, "BENCH_WORST_N_RESNET", 32}} do
  local name, shape = spec[1], spec[2]
  local n = math.tointeger(tonumber(os.getenv(spec[3]) or spec[4]))
  local model = require("models." .. name){generator = g}
  model:evaluate()
  local z = umbra.rand({n, table.unpack(shape)}, g)
  for _, e in ipairs(ensembles) do
    attack.worst_case(model, z:narrow(1, 1, math.min(n, 2)):contiguous(), {eps = 0.3, ensemble = {e[2][1]}})
    local t0 = clock()
    attack.worst_case(model, z, {eps = 0.3, ensemble = e[2], seed = 0})
    out(string.format("%s_%s_per1000_s", name, e[1]), (clock() - t0) * 1000 / n)
  end
  -- the bound against a forward pass on one batch of 128, best of three
  local x = umbra.rand({128, table.unpack(shape)}, g)
  model:forward(x); certify.confidence_bound(model, x, 0.01)
  local best_f, best_b = math.huge, math.huge
  for _ = 1, 3 do
    local t0 = clock(); model:forward(x); best_f = math.min(best_f, clock() - t0)
    t0 = clock(); certify.confidence_bound(model, x, 0.01); best_b = math.min(best_b, clock() - t0)
  end
  out(name .. "_forward_ms", 1000 * best_f)
  out(name .. "_ibp_ms", 1000 * best_b)
  out(name .. "_ibp_per1000_s", best_b * 1000 / 128)
  out(name .. "_ibp_over_forward", best_b / best_f)
end
