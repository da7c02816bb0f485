-- Cost of a certified bound against a forward pass (docs/worst-case.md): LeNet and
-- ResNetSmall, batch 128, one thread, best of three. Usage: build/umbra scripts/bench/bench_ibp.lua
local umbra = require "umbra"
umbra.set_num_threads(1)
local g = umbra.Generator(1)
for _, name in ipairs{"lenet", "resnet_small"} do
  local m = require("models." .. name){generator = g}
  local shape = name == "lenet" and {128, 1, 28, 28} or {128, 3, 32, 32}
  local x = umbra.rand(shape, g)
  m:evaluate()
  m:forward(x); umbra.certify.confidence_bound(m, x, 0.01)
  local best_f, best_b = math.huge, math.huge
  for _ = 1, 3 do
    local t0 = os.clock(); m:forward(x); best_f = math.min(best_f, os.clock() - t0)
    t0 = os.clock(); umbra.certify.confidence_bound(m, x, 0.01); best_b = math.min(best_b, os.clock() - t0)
  end
  print(string.format("%s batch 128: forward %.3f s, bound %.3f s, ratio %.2f", name, best_f, best_b, best_b / best_f))
end
