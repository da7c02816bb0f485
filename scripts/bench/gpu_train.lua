-- Training throughput of umbra on one device, in images per second: a plain training step
-- (forward, cross-entropy, backward, SGD with momentum) and an ACET step (the authors'
-- noise from the clean batch, 40 PGD steps of max_conf on it with the model in evaluation
-- mode, one training forward/backward on [noise; clean], SGD) for LeNet (MNIST shapes)
-- and ResNetSmall (CIFAR shapes), batch 128; images = clean images. Weight decay is left
-- out (its penalty is a value the host waits for). Targets are one-hot rows on the
-- device. Each result is the best of a few timed rounds after warm-up, with the device
-- synchronised around every round. scripts/bench/gpu_train_torch.py is the same in
-- PyTorch. Output: one line per benchmark, "BENCH <name> <images/s>".
-- usage: umbra scripts/bench/gpu_train.lua [cuda|cpu] [seconds per benchmark (3)] [only]
local umbra = require "umbra"
local nn, optim, attack, noise = umbra.nn, umbra.optim, umbra.attack, umbra.noise
local cuda = umbra.cuda

local device = cuda.device(arg[1] or "cuda")
local budget = tonumber(arg[2] or "3")
local only = arg[3]
local batch, classes = 128, 10

local function one_hot(n, g)
  local t = umbra.zeros({n, classes})
  for i = 1, n do t[i][1 + math.floor(g:uniform() * classes) % classes] = 1 end
  return t:to(device)
end

local function sync() cuda.synchronize() end

local ce = nn.CrossEntropy{reduction = "mean"}
local out_loss = nn.MaxConf{reduction = "sum"}

local function plain_step(model, opt, x, t)
  model:zero_grad()
  local logits = model:forward(x)
  model:backward(x, ce:backward(logits, t), {input_grad = false})
  opt:step()
end

local function acet_step(model, opt, x, t, g)
  local z = noise.authors(x, g)
  z = attack.pgd(model, z, {eps = 0.3, steps = 40, step = 0.3 / 40, objective = "max_conf", generator = g})
  model:train()
  local input = umbra.cat({z, x}, 1)
  local logits = model:forward(input)
  local n = x:size(1)
  local total = 2 * n
  local gc = ce:backward(logits:narrow(1, n + 1, n), t, n / total)
  local go = out_loss:backward(logits:narrow(1, 1, n), nil, 1 / total)
  model:zero_grad()
  model:backward(input, umbra.cat({go, gc}, 1), {input_grad = false})
  opt:step()
end

-- Images per second: warm-up, then rounds of k steps until the budget is spent; the best round.
local function measure(step)
  step(); step(); sync()
  local t0 = umbra.clock()
  step(); sync()
  local one = math.max(umbra.clock() - t0, 1e-4)
  local k = math.max(1, math.floor(budget / 4 / one))
  local best, spent = math.huge, 0
  while spent < budget do
    local t1 = umbra.clock()
    for _ = 1, k do step() end
    sync()
    local dt = umbra.clock() - t1
    spent = spent + dt
    best = math.min(best, dt / k)
  end
  return batch / best
end

local models = {
  {name = "lenet", build = require "models.lenet", shape = {batch, 1, 28, 28}},
  {name = "resnet_small", build = require "models.resnet_small", shape = {batch, 3, 32, 32}},
}

print(string.format("# umbra %s on %s%s, batch %d, %g s per benchmark", umbra.version or "?", device,
                    device == "cuda" and (" (" .. tostring(cuda.device_name()) .. ")") or "", batch, budget))
for _, m in ipairs(models) do
  for _, kind in ipairs{"train", "acet"} do
    local name = m.name .. "_" .. kind
    if not only or name:find(only, 1, true) then
      local g = umbra.Generator(1)
      local model = m.build{generator = g}:to(device)
      local opt = optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
      local x = umbra.rand(m.shape, g):to(device)
      local t = one_hot(batch, g)
      local ips
      if kind == "train" then
        ips = measure(function() plain_step(model, opt, x, t) end)
      else
        ips = measure(function() acet_step(model, opt, x, t, g) end)
      end
      print(string.format("BENCH %s %.1f", name, ips))
      io.stdout:flush()
    end
  end
end
