-- Model benchmarks through umbra (run by scripts/bench/run-all, paired with
-- bench_models_torch.py): LeNet (batch 128, 1x28x28) and ResNetSmall (batch 128, 3x32x32).
-- Per model: forward (training mode), a training step (forward, cross-entropy, backward,
-- SGD with momentum), forward + input gradient in evaluation mode (one PGD iteration),
-- backward alone against backward_input alone, images/s, and the peak RSS of a process
-- that runs only that model (each model runs in a child process).
-- Prints "name value" lines. Usage: umbra scripts/bench/bench_models.lua THREADS [MODEL]
local umbra = require "umbra"
local nn, optim = umbra.nn, umbra.optim

local threads = tonumber(arg[1] or "1")
local only = arg[2]
local models = {"lenet", "resnet_small"}

if not only then
  -- one child per model, so that each peak RSS belongs to one model
  local exe = arg[-1] or "umbra"
  for _, name in ipairs(models) do
    local cmd = string.format("%q %q %d %s", exe, arg[0], threads, name)
    local p = assert(io.popen(cmd))
    io.write(p:read("a"))
    local ok = p:close()
    if not ok then error("bench_models: child for " .. name .. " failed") end
  end
  return
end

umbra.set_num_threads(threads)
local g = umbra.Generator(1)
local batch = 128
local model, x
if only == "lenet" then
  model = require("models.lenet"){generator = g}
  x = umbra.rand({batch, 1, 28, 28}, g)
else
  model = require("models.resnet_small"){generator = g}
  x = umbra.rand({batch, 3, 32, 32}, g)
end
local labels = {}
for i = 1, batch do labels[i] = (i - 1) % 10 + 1 end
local y = umbra.tensor(labels, "int64")
local ce = nn.CrossEntropy()
local opt = optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})

local best_of = dofile("scripts/bench/best_of.lua")
local function best_ms(reps, fn) return 1000 * best_of(reps, fn) end

local reps = only == "lenet" and 10 or 6
local function out(key, value, fmt) print(string.format("%s_%s " .. (fmt or "%.1f"), only, key, value)) end

model:train()
out("forward_ms", best_ms(reps, function() model:forward(x) end))
local step = best_ms(reps, function()
  model:zero_grad()
  local z = model:forward(x)
  model:backward(x, ce:backward(z, y), {input_grad = false})
  opt:step()
end)
out("train_step_ms", step)
out("train_img_per_s", batch / step * 1000, "%.0f")

model:evaluate()
local pgd = best_ms(reps, function()
  local z = model:forward(x)
  model:backward_input(x, ce:backward(z, y))
end)
out("fwd_input_grad_ms", pgd)
out("fwd_input_grad_img_per_s", batch / pgd * 1000, "%.0f")

-- backward alone (parameter and input gradients) against backward_input alone, after
-- one forward in training mode (a backward may be repeated for the same forward)
model:train()
local gz = ce:backward(model:forward(x), y)
local full = best_ms(reps, function() model:backward(x, gz) end)
local input_only = best_ms(reps, function() model:backward_input(x, gz) end)
out("backward_ms", full)
out("backward_input_ms", input_only)
out("backward_over_backward_input", full / input_only, "%.2f")

local rss = 0
for line in io.lines("/proc/self/status") do
  local kb = line:match("^VmHWM:%s+(%d+)")
  if kb then rss = tonumber(kb) / 1024 end
end
out("peak_rss_MB", rss, "%.0f")
