-- The GPU from Lua: umbra.cuda, t:cuda() / t:cpu() / t:to(), model:to("cuda"), and a
-- forward pass, a training step, a PGD attack and the post-hoc scores with their input
-- gradients on the GPU against the same on the CPU.
-- Without a CUDA device the device tests are pending ("no CUDA device (<reason>)", the
-- reason naming the CUDA error), or one test fails with that reason when
-- UMBRA_REQUIRE_CUDA=1 (scripts/gpu-check sets it where nvidia-smi lists a GPU); what must
-- hold everywhere (the API answers, clear errors) runs always.
local umbra = require "umbra"
local nn, optim, attack = umbra.nn, umbra.optim, umbra.attack
local cuda = umbra.cuda

local function max_rel_diff(a, b)
  local d = (a:cpu() - b:cpu()):abs():max()   -- max() and mean() of everything are numbers
  local scale = a:cpu():abs():mean()
  return d / math.max(scale, 1e-12)
end

local function small_net(seed)
  local g = umbra.Generator(seed)
  return nn.Sequential{
    {"conv1", nn.Conv2d(1, 4, 3, {stride = 2, padding = "same", bias = true, generator = g})},
    {"bn1", nn.BatchNorm2d(4)},
    {"relu1", nn.ReLU()},
    {"pool1", nn.MaxPool2d(2, {stride = 2, padding = "same"})},
    {"flatten", nn.Flatten()},
    {"fc", nn.Linear(4 * 4 * 4, 3, {generator = g})},
  }
end

describe("umbra.cuda everywhere", function()
  it("answers whether a device is there", function()
    assert.is_boolean(cuda.is_available())
    assert.is_true(math.type(cuda.device_count()) == "integer")
    assert.are.equal(cuda.is_available(), cuda.device_count() > 0)
    cuda.synchronize()   -- a no-op without a device
    local m = cuda.memory()
    assert.is_true(m.in_use >= 0 and m.cached >= 0 and m.peak >= 0)
    assert.are.equal("cpu", cuda.device("cpu"))
    assert.has_error(function() cuda.device("tpu") end)
  end)

  it("keeps CPU tensors where they are with t:cpu()", function()
    local t = umbra.ones({2, 3})
    assert.are.equal(t, t:cpu())
    assert.are.equal("cpu", t:to("cpu"):device())
  end)

  it("says clearly when there is no device", function()
    if cuda.is_available() then return end
    local t = umbra.ones({2})
    local ok, msg = pcall(t.cuda, t)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("no CUDA device", 1, true))
    local why = cuda.why_unavailable()
    assert.is_string(why)
    assert.truthy(tostring(msg):find(why, 1, true))
    ok, msg = pcall(t.to, t, "cuda")
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("no CUDA device (" .. why .. ")", 1, true))
    local net = small_net(1)
    ok, msg = pcall(net.to, net, "cuda")
    assert.is_false(ok)
    assert.truthy(tostring(msg):find(why, 1, true))
    ok, msg = pcall(cuda.device, "cuda")
    assert.is_false(ok)
    assert.truthy(tostring(msg):find(why, 1, true))
  end)

  -- The CUDA library (cuBLAS, cuDNN: ~220 MB resident) is loaded only when "cuda" is
  -- asked for; checked in a fresh process, since this one may have asked already.
  it("loads the CUDA library only when asked, and says why it cannot", function()
    local exe = (os.getenv("UMBRA_BUILD") or "build") .. "/umbra"
    local probe = [[
         local umbra = require "umbra"
         local function loaded()
            local f = assert(io.open("/proc/self/maps"))
            local maps = f:read("a")
            f:close()
            return maps:find("libumbra_cuda.so", 1, true) ~= nil
         end
         local m = require("models.lenet"){generator = umbra.Generator(1)}
         m:forward(umbra.rand({2, 1, 28, 28}, umbra.Generator(2)))
         io.write(tostring(loaded()), " ")
         umbra.cuda.is_available()
         io.write(tostring(loaded()), " ", tostring(umbra.cuda.why_unavailable()))]]
    local p = io.popen(exe .. " -e '" .. probe .. "' 2>&1")
    local out = p:read("a")
    p:close()
    local before, after = out:match("^(%a+) (%a+) ")
    assert.are.equal("false", before, out)
    -- loaded afterwards exactly when the build has the library (it may still find no device)
    local built = not tostring(cuda.why_unavailable()):find("built without CUDA", 1, true)
    assert.are.equal(tostring(built), after, out)
    p = io.popen("UMBRA_CUDA_LIB=/no/such/lib.so " .. exe ..
                 " -e 'print(require(\"umbra\").cuda.why_unavailable())' 2>&1")
    out = p:read("a")
    p:close()
    assert.are.equal("UMBRA_CUDA_LIB=/no/such/lib.so: no such file\n", out)
  end)
end)

describe("umbra.cuda on a device", function()
  if not cuda.is_available() then
    local why = "no CUDA device (" .. tostring(cuda.why_unavailable()) .. ")"
    local required = os.getenv("UMBRA_REQUIRE_CUDA")
    if required and required ~= "" and required ~= "0" then
      it("has the device UMBRA_REQUIRE_CUDA=1 asks for", function() error("UMBRA_REQUIRE_CUDA=1, but " .. why, 0) end)
    else
      pending(why)
    end
    return
  end

  it("moves tensors both ways", function()
    local g = umbra.Generator(1)
    local t = umbra.rand({3, 4}, g)
    local d = t:cuda()
    assert.are.equal("cuda", d:device())
    assert.are.equal(d, d:cuda())
    assert.are.same(t:to_table(), d:cpu():to_table())
    assert.are.same(t:to_table(), d:to("cpu"):to_table())
    assert.are.equal(t[2][3], d[2][3])
  end)

  it("computes ops on the device as on the CPU", function()
    local g = umbra.Generator(2)
    local a, b = umbra.rand({5, 7}, g), umbra.rand({7, 3}, g)
    local da, db = a:cuda(), b:cuda()
    assert.is_true(max_rel_diff(a:matmul(b), da:matmul(db)) < 1e-4)
    assert.is_true(max_rel_diff((a * 2 + 1):exp(), (da * 2 + 1):exp()) < 1e-4)
    assert.is_true(max_rel_diff(a:sum(1), da:sum(1)) < 1e-4)
    assert.is_true(max_rel_diff(a:softmax(2), da:softmax(2)) < 1e-4)
  end)

  it("refuses to mix devices", function()
    local a = umbra.ones({2})
    local ok, msg = pcall(function() return a + a:cuda() end)
    assert.is_false(ok)
    assert.truthy(tostring(msg):find("different devices", 1, true))
  end)

  it("trains and attacks a model moved with model:to('cuda')", function()
    local cpu_net, gpu_net = small_net(3), small_net(3)
    assert.are.equal(gpu_net, gpu_net:to("cuda"))
    local g = umbra.Generator(4)
    local x = umbra.rand({6, 1, 16, 16}, g)
    local y = umbra.tensor({1, 2, 3, 1, 2, 3}, "int64")
    local dx = x:cuda()   -- labels stay on the CPU, where the data loader makes them
    local ce = nn.CrossEntropy()
    local function step(net, xx, yy)
      local opt = optim.SGD(net:parameters(), {lr = 0.1, momentum = 0.9})
      for _ = 1, 2 do
        net:zero_grad()
        local logits = net:forward(xx)
        net:backward(xx, ce:backward(logits, yy))
        opt:step()
      end
      return net:forward(xx)
    end
    local out_cpu, out_gpu = step(cpu_net, x, y), step(gpu_net, dx, y)
    assert.are.equal("cuda", out_gpu:device())
    assert.is_true(max_rel_diff(out_cpu, out_gpu) < 1e-3)
    local a1 = attack.pgd(cpu_net, x, {eps = 0.1, steps = 3, generator = umbra.Generator(5)})
    local a2 = attack.pgd(gpu_net, dx, {eps = 0.1, steps = 3, generator = umbra.Generator(5)})
    assert.are.equal("cuda", a2:device())
    assert.is_true((a1 - a2:cpu()):abs():max() <= 0.2 + 1e-6)
    cuda.synchronize()
    assert.is_true(cuda.memory().in_use > 0)
  end)
  -- Whole models at batch 128, against the same on the CPU. A training step: the loss to
  -- 1e-4 relative, every trained weight to 1e-3 (max difference over mean magnitude: the
  -- step sums 128 examples' gradients in another order, batch norm in double on both). A
  -- 10-step PGD run: iterates follow sign(gradient), so a coordinate may take the other
  -- sign where a gradient is within rounding of zero; at most 1% of them may differ, each
  -- by at most 2 eps.
  for _, name in ipairs{"lenet", "resnet_small"} do
    it(name .. " at batch 128: a training step and a PGD run as on the CPU", function()
      local shape = name == "lenet" and {128, 1, 28, 28} or {128, 3, 32, 32}
      local cpu_net = require("models." .. name){generator = umbra.Generator(7)}
      local gpu_net = require("models." .. name){generator = umbra.Generator(7)}
      gpu_net:to("cuda")
      local x = umbra.rand(shape, umbra.Generator(8))
      local labels = {}
      for i = 1, 128 do labels[i] = (i * 7) % 10 + 1 end
      local y = umbra.tensor(labels, "int64")
      local ce = nn.CrossEntropy()
      local losses = {}
      for k, net in ipairs{cpu_net, gpu_net} do
        local xx = k == 1 and x or x:cuda()
        local opt = optim.SGD(net:parameters(), {lr = 0.05, momentum = 0.9})
        net:zero_grad()
        local logits = net:forward(xx)
        losses[k] = ce:forward(logits, y)
        net:backward(xx, ce:backward(logits, y))
        opt:step()
      end
      assert.is_true(math.abs(losses[1] - losses[2]) <= 1e-4 * math.abs(losses[1]), losses[1] .. " vs " .. losses[2])
      local pc, pg = cpu_net:parameters(), gpu_net:parameters()
      assert.are.equal(#pc, #pg)
      for i = 1, #pc do assert.is_true(max_rel_diff(pc[i], pg[i]) < 1e-3, "parameter " .. i) end
      local opts = {eps = 0.3, step = 0.05, steps = 10, objective = "max_conf"}
      opts.generator = umbra.Generator(9)
      local a1 = attack.pgd(cpu_net, x, opts)
      opts.generator = umbra.Generator(9)
      local a2 = attack.pgd(gpu_net, x:cuda(), opts):cpu()
      local d = (a1 - a2):abs()
      assert.is_true(d:max() <= 2 * 0.3 + 1e-6)
      local off = (d:gt(1e-5)):sum()
      assert.is_true(off <= 0.01 * d:numel(), off .. " of " .. d:numel() .. " coordinates differ")
    end)
  end

  -- The post-hoc scores are compositions of tensor ops (softmax, max, exp, matmul, eq, ...)
  -- and module passes that have CUDA paths; the Mahalanobis fit runs on the CPU (LAPACK) and
  -- its means and precision move to the model's device. Each score and its input gradient
  -- (umbra.score_attack's head) on the device against the CPU, and an attack on a score.
  it("computes every post-hoc score and its input gradient as on the CPU", function()
    local scores, score_attack = require "umbra.scores", require "umbra.score_attack"
    local cpu_net, gpu_net = small_net(11), small_net(11)
    gpu_net:to("cuda")
    cpu_net:evaluate()
    gpu_net:evaluate()
    local g = umbra.Generator(12)
    local xf = umbra.rand({60, 1, 16, 16}, g)
    local labels = {}
    for i = 1, 60 do labels[i] = i % 3 + 1 end
    local yf = umbra.tensor(labels, "int64")
    local fit_opts = {layer = "flatten", num_classes = 3}
    local fits = {scores.mahalanobis_fit(cpu_net, xf, yf, fit_opts),
                  scores.mahalanobis_fit(gpu_net, xf:cuda(), yf, fit_opts)}
    assert.are.equal("cuda", fits[2].means:device())
    local x = umbra.rand({8, 1, 16, 16}, g)
    for _, name in ipairs(scores.names) do
      local out, grad = {}, {}
      for k, net in ipairs{cpu_net, gpu_net} do
        local xx = k == 1 and x or x:cuda()
        local head = score_attack.head(net, name, {T = 2, odin_T = 100, odin_eps = 0.001, fit = fits[k],
                                                   maha_eps = 0.001})
        out[k] = head:forward(xx):clone()
        grad[k] = head:backward(xx, select(2, score_attack.objective(out[k])))
      end
      assert.are.equal("cuda", out[2]:device())
      assert.is_true(max_rel_diff(out[1], out[2]) < 1e-3, name .. ": scores differ")
      assert.is_true(max_rel_diff(grad[1], grad[2]) < 1e-2, name .. ": input gradients differ")
    end
    local head = score_attack.head(gpu_net, "energy", {T = 1})
    local z = umbra.rand({8, 1, 16, 16}, g):cuda()
    local adv = attack.pgd(head, z, {eps = 0.1, steps = 5, objective = score_attack.objective,
                                     generator = umbra.Generator(13)})
    assert.are.equal("cuda", adv:device())
    assert.is_true(head:forward(adv):mean() >= head:forward(z):mean())
  end)
end)
