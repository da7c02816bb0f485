-- The cost of modules written in Lua inside the C graph: a LeNet training step (batch
-- 128, forward, cross-entropy, backward, SGD with momentum) as shipped, and with a Lua
-- pass-through module after each of its 10 layers (forward returns x, backward returns
-- gy: only the calls into Lua and back), alternated in rounds; best of each.
-- Prints "name value" lines. Usage: umbra scripts/bench/bench_lua_module.lua [THREADS [ROUNDS]]
local umbra = require "umbra"
local nn, optim = umbra.nn, umbra.optim
local now = umbra.core.clock

local threads = tonumber(arg[1] or "1")
local rounds = tonumber(arg[2] or "5")
umbra.set_num_threads(threads)

local Pass = nn.Module:extend("Pass")
function Pass.forward(_, x) return x end
function Pass.backward(_, _, gy, want_input_grad) if want_input_grad then return gy end end

-- models/lenet.lua's layers, each followed by a Pass when with_lua
local function lenet(with_lua)
  local g = umbra.Generator(1)
  local function conv(c_in, c_out) return nn.Conv2d(c_in, c_out, 5, {padding = "same", generator = g}) end
  local function pool() return nn.MaxPool2d(2, {stride = 2, padding = "same"}) end
  local layers = {conv(1, 32), nn.ReLU(), pool(), conv(32, 64), nn.ReLU(), pool(), nn.Flatten(),
                  nn.Linear(3136, 1024, {generator = g}), nn.ReLU(), nn.Linear(1024, 10, {generator = g})}
  local seq = nn.Sequential{}
  for _, layer in ipairs(layers) do
    seq:add(layer)
    if with_lua then seq:add(Pass()) end
  end
  return seq
end

local batch = 128
local g = umbra.Generator(2)
local x = umbra.rand({batch, 1, 28, 28}, g)
local labels = {}
for i = 1, batch do labels[i] = (i - 1) % 10 + 1 end
local y = umbra.tensor(labels, "int64")
local ce = nn.CrossEntropy()

local function stepper(model)
  local opt = optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
  return function()
    model:zero_grad()
    local z = model:forward(x)
    model:backward(x, ce:backward(z, y), {input_grad = false})
    opt:step()
  end
end

local steps = {stepper(lenet(false)), stepper(lenet(true))}
local best = {math.huge, math.huge}
for _, f in ipairs(steps) do f() end   -- warm-up
for _ = 1, rounds do
  for k, f in ipairs(steps) do
    local t0 = now()
    f()
    best[k] = math.min(best[k], now() - t0)
  end
end
print(string.format("lenet_train_step_ms %.2f", best[1] * 1000))
print(string.format("lenet_with_10_lua_modules_train_step_ms %.2f", best[2] * 1000))
print(string.format("lua_module_overhead_per_module_us %.1f", (best[2] - best[1]) / 10 * 1e6))
print(string.format("lua_module_overhead_ratio %.4f", best[2] / best[1]))
