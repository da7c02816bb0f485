-- Modules written in Lua inside the C module graph (nn.Module:extend): finite-difference
-- gradient checks of input and parameter gradients inside a Sequential and a Residual, PGD
-- through them with a Lua objective, errors from inside Lua code (message and path, no
-- leak), checkpoints, to(device), train/evaluate, and a Lua noise loss in train.Procedure.
local umbra = require "umbra"
local nn = umbra.nn
local attack = require "umbra.attack"
local checkpoint = require "umbra.checkpoint"
local train = require "umbra.train"
local optim = require "umbra.optim"
local h = dofile("tests/lua/helpers.lua")

-- y = x * sigmoid(beta * x), beta a parameter
local Swish = nn.Module:extend("Swish")
function Swish:init(beta) self:register_parameter("beta", umbra.full({1}, beta or 1)) end
function Swish:forward(x)
  local s = 1 / ((x * self.beta:item()):neg():exp() + 1)
  self.s = s
  return x * s
end
function Swish:backward(x, gy, want_input_grad, want_param_grads)
  local b, s = self.beta:item(), self.s
  if want_param_grads then self:grad("beta"):add_((gy * x * x * s * (1 - s)):sum()) end
  if want_input_grad then return gy * (s + x * s * (1 - s) * b) end
end

-- the energy score as a noise loss: per-example logsumexp of the logits (training lowers
-- it on noise); its gradient is the softmax
local Energy = {}
function Energy.forward(_, logits) return (logits - logits:log_softmax(2)):narrow(2, 1, 1):reshape(logits:size(1)) end
function Energy.backward(_, logits) return logits:softmax(2) end

local function scalar_loss(m, x, w)
  return (m:forward(x) * w):sum()
end

-- central differences of sum(f(x) * w) against backward, for every entry of t
local function check_grad(m, x, w, t, analytic, tol)
  local h_ = 1e-2
  local flat = t:view(t:numel())
  local an = analytic:view(analytic:numel())
  local worst = 0
  for i = 1, t:numel() do
    local keep = flat[i]
    flat[i] = keep + h_
    local up = scalar_loss(m, x, w)
    flat[i] = keep - h_
    local down = scalar_loss(m, x, w)
    flat[i] = keep
    local fd = (up - down) / (2 * h_)
    local err = math.abs(fd - an[i]) / math.max(1, math.abs(fd))
    worst = math.max(worst, err)
  end
  assert.is_true(worst < tol, "worst relative error " .. worst)
end

describe("a module written in Lua", function()
  local g = umbra.Generator(7)

  it("passes the gradient check inside a Sequential (input and parameters)", function()
    local m = nn.Sequential{nn.Linear(5, 6, {generator = g}), {"act", Swish(1.3)}, nn.Linear(6, 3, {generator = g})}
    local x = umbra.randn({4, 5}, g)
    local w = umbra.randn({4, 3}, g)
    m:forward(x)
    m:zero_grad()
    local gx = m:backward(x, w):clone()
    local grads = {}
    for _, name in ipairs(m:parameters().names) do grads[name] = m:named_gradients()[name]:clone() end
    check_grad(m, x, w, x, gx, 5e-3)
    for name, p in pairs(m:named_parameters()) do check_grad(m, x, w, p, grads[name], 5e-3) end
    assert.is_truthy(m:named_parameters()["act.beta"])
  end)

  it("passes the gradient check as the main branch of a Residual", function()
    local m = nn.Sequential{nn.Linear(4, 4, {generator = g}), nn.Residual(Swish(0.7)), nn.Linear(4, 2, {generator = g})}
    local x = umbra.randn({3, 4}, g)
    local w = umbra.randn({3, 2}, g)
    m:forward(x)
    m:zero_grad()
    local gx = m:backward(x, w):clone()
    check_grad(m, x, w, x, gx, 5e-3)
    local beta = m:named_parameters()["2.main.beta"]
    check_grad(m, x, w, beta, m:named_gradients()["2.main.beta"]:clone(), 5e-3)
  end)

  it("leaves parameter gradients alone in an input-only backward (PGD)", function()
    local m = nn.Sequential{nn.Linear(4, 3, {generator = g}), {"act", Swish()}}
    local x = umbra.rand({2, 4}, g)
    m:forward(x)
    m:zero_grad()
    m:backward_input(x, umbra.ones(2, 3))
    assert.are.equal(0, m.act:grad("beta"):item())
  end)

  it("is attacked by PGD with a Lua objective, and the attack matches the built-in one", function()
    local m = nn.Sequential{nn.Linear(6, 8, {generator = g}), Swish(), nn.Linear(8, 3, {generator = g})}
    local z = umbra.rand({5, 6}, g)
    local lse, energy = attack.pgd(m, z, {eps = 0.2, steps = 10, objective = function(logits)
      return Energy:forward(logits), Energy:backward(logits)
    end, generator = umbra.Generator(3)})
    local _, start = attack.pgd(m, z, {eps = 0.2, steps = 0, random_start = false,
                                         objective = function(l) return Energy:forward(l), Energy:backward(l) end})
    assert.are.same({5, 6}, lse:size())
    for i = 1, 5 do assert.is_true(energy[i] >= start[i] - 1e-6) end
    -- a Lua max_conf equals the C one, step by step
    local function max_conf(logits)
      local lsm = logits:log_softmax(2)
      local v, arg = lsm:max(2), logits:argmax(2)
      local grad = logits:softmax(2):neg()
      local rows = logits:size(1)
      for r = 1, rows do grad[r][arg[r]] = grad[r][arg[r]] + 1 end
      return v, grad
    end
    local a1, o1 = attack.pgd(m, z, {eps = 0.3, steps = 5, objective = max_conf, generator = umbra.Generator(9)})
    local a2, o2 = attack.pgd(m, z, {eps = 0.3, steps = 5, objective = "max_conf", generator = umbra.Generator(9)})
    assert.is_true((a1 - a2):abs():max() < 1e-5)
    assert.is_true((o1 - o2):abs():max() < 1e-5)
  end)

  it("turns a Lua error into the module's error, with its path, and leaks nothing", function()
    local Broken = nn.Module:extend("Broken")
    function Broken.forward() error("no forward today") end
    function Broken.backward() end
    local Wrong = nn.Module:extend("Wrong")
    function Wrong.forward() return 42 end
    function Wrong.backward() end
    local x = umbra.rand({2, 3}, g)
    local before = h.settle()
    for _ = 1, 3 do
      local m = nn.Sequential{nn.Linear(3, 3, {generator = g}), {"block", nn.Sequential{{"bad", Broken()}}}}
      local ok, err = pcall(m.forward, m, x)
      assert.is_false(ok)
      assert.matches("block.bad: Broken.forward: .*no forward today", err)
      m = nn.Sequential{{"w", Wrong()}}
      ok, err = pcall(m.forward, m, x)
      assert.is_false(ok)
      assert.matches("w: Wrong.forward: Wrong.forward must return a tensor, got number", err)
    end
    assert.are.equal(before, h.settle())
    local ok, err = pcall(nn.Sequential, {{}})
    assert.is_false(ok)
    assert.matches("Lua table, not a module", err)
  end)

  it("says so when a method is missing", function()
    local Half = nn.Module:extend("Half")
    function Half.forward(_, x) return x * 0.5 end
    local m = nn.Sequential{{"half", Half()}}
    local x = umbra.rand({2, 3}, g)
    m:forward(x)
    local ok, err = pcall(m.backward, m, x, umbra.ones(2, 3))
    assert.is_false(ok)
    assert.matches("half: Half.backward: Half.backward is not defined", err)
  end)

  it("does not keep the layers around it from reusing their buffers", function()
    local Pass = nn.Module:extend("Pass")
    function Pass.forward(_, x) return x end
    function Pass.backward(_, _, gy, want_input_grad) if want_input_grad then return gy end end
    -- bytes the core allocates over 5 warm steps with the collector stopped (results handed
    -- to Lua are replaced each step, by design, in both nets)
    local function growth(with_lua)
      local gen = umbra.Generator(2)
      local layers = {nn.Linear(32, 256, {generator = gen}), nn.ReLU(), nn.Linear(256, 8, {generator = gen})}
      local m = nn.Sequential{}
      for _, l in ipairs(layers) do
        m:add(l)
        if with_lua then m:add(Pass()) end
      end
      local x, gy = umbra.rand({16, 32}, gen), umbra.ones(16, 8)
      for _ = 1, 2 do m:forward(x); m:backward(x, gy) end
      collectgarbage("stop")
      local before = umbra.core.live_bytes()
      for _ = 1, 5 do m:forward(x); m:backward(x, gy) end
      local grown = umbra.core.live_bytes() - before
      collectgarbage("restart")
      return grown
    end
    -- the Lua modules add only small tensor headers, no 16x256 buffers (16 KB each)
    local extra = growth(true) - growth(false)
    assert.is_true(extra < 5 * 2048, "the Lua modules made the net allocate " .. extra .. " bytes more")
  end)

  it("is saved and loaded by path, moves with to(), and follows train/evaluate", function()
    local m = nn.Sequential{nn.Linear(3, 2, {generator = g}), {"act", Swish(2.5)}}
    local dir = h.tmpdir("luamod")
    assert.is_true(checkpoint.save(dir .. "/m.h5", {model = m, architecture = "test"}))
    local m2 = nn.Sequential{nn.Linear(3, 2, {generator = umbra.Generator(99)}), {"act", Swish(1)}}
    assert.is_truthy(checkpoint.load(dir .. "/m.h5", {model = m2}))
    assert.are.equal(2.5, m2.act.beta:item())
    local x = umbra.rand({4, 3}, g)
    assert.is_true((m:forward(x) - m2:forward(x)):abs():max() == 0)
    os.execute("rm -rf " .. h.quote(dir))
    m2:to("cpu")
    assert.are.equal(2.5, m2.act.beta:item())
    m2:evaluate()
    assert.is_false(m2.act:is_training())
    m2:train()
    assert.is_true(m2.act:is_training())
    m2.act.note = "fields live in Lua"
    assert.are.equal("fields live in Lua", m2.act.note)
    assert.has_error(function() m2[1].note = 1 end)
  end)

  it("trains LeNet-shaped nets with ACET and a Lua noise loss (train.Procedure out_loss)", function()
    local m = nn.Sequential{nn.Conv2d(1, 4, 5, {padding = "same", generator = g}), Swish(),
                    nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 10, {generator = g})}
    local opt = optim.SGD(m:parameters(), {lr = 0.05, momentum = 0.9})
    local proc = train.Procedure(m, opt, {at_frac = 1, pgd_niter = 3, pgd_eps = 0.3, out_loss = Energy,
                                            generator = umbra.Generator(5)})
    local x = umbra.rand({8, 1, 8, 8}, g)
    local y = umbra.tensor({1, 2, 3, 4, 5, 6, 7, 8}):long()
    local first, last
    for i = 1, 15 do
      local st = proc:step(x, y, 1)
      if i == 1 then first = st.loss end
      last = st.loss
    end
    assert.is_true(last < first, string.format("loss %g -> %g", first, last))
    assert.are_not.equal(1, m[2].beta:item())   -- the Lua module's parameter was trained
  end)
end)
