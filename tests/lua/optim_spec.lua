-- umbra.optim from Lua: SGD (momentum, Nesterov) and Adam steps against hand-computed
-- values in TensorFlow's forms, the lr property, state()/set_state() round trips, the
-- paper's weight decay, and the learning-rate schedules with the authors' boundaries.
local umbra = require "umbra"
local nn, optim = umbra.nn, umbra.optim

local function close(expected, got, tol)
  tol = tol or 1e-6
  assert(math.abs(expected - got) <= tol, string.format("expected %.9g, got %.9g", expected, got))
end

local function expect_error(text, f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  assert(tostring(msg):find(text, 1, true), "error '" .. tostring(msg) .. "' does not contain '" .. text .. "'")
end

-- one parameter w = {1, 1} whose gradient is set by hand
local function single(gvalue)
  local w, g = umbra.full({2}, 1), umbra.full({2}, gvalue)
  return {w, grads = {g}}, w, g
end

describe("optim.SGD", function()
  it("takes momentum steps as TF: v = m v + g; w -= lr v", function()
    local params, w = single(0.5)
    local opt = optim.SGD(params, {lr = 0.1, momentum = 0.9})
    opt:step()
    close(0.95, w[1])
    opt:step()
    close(0.855, w[2])
    assert.are.equal(2, opt:steps())
    opt.lr = 0.01
    close(0.01, opt.lr)
    opt:step()
    close(0.855 - 0.01355, w[1])
  end)

  it("takes Nesterov steps as TF: w -= lr (g + m v)", function()
    local params, w = single(0.5)
    local opt = optim.SGD(params, {lr = 0.1, momentum = 0.9, nesterov = true})
    opt:step()
    close(1 - 0.1 * (0.5 + 0.45), w[1])
    assert.truthy(tostring(opt):find("nesterov = true", 1, true))
  end)

  it("saves and restores its state", function()
    local params, w = single(0.5)
    local opt = optim.SGD(params, {lr = 0.1, momentum = 0.9})
    opt:step()
    local st = opt:state()
    assert.are.equal(1, st.step)
    close(0.5, st.slots.momentum[1][1])
    opt:step()
    local params2, w2 = single(0.5)
    w2:copy_(w)
    local opt2 = optim.SGD(params2, {lr = 0.5, momentum = 0.9}):set_state(opt:state())
    close(0.1, opt2.lr)
    opt:step()
    opt2:step()
    close(w[1], w2[1])
    assert.are.equal(3, opt2:steps())
    expect_error("state of a sgd optimizer given to a adam one", function()
      return optim.Adam(params2):set_state(st)
    end)
    st.slots.momentum[1] = umbra.zeros(3)
    expect_error("set_slot", function() return opt2:set_state(st) end)
  end)
end)

describe("optim.Adam", function()
  it("takes steps as TF, bias correction folded into lr_t", function()
    local params, w, g = single(0.5)
    local opt = optim.Adam(params, {lr = 1e-3})
    opt:step()
    close(0.99900000063, w[1], 1e-7)
    g:fill_(-0.25)
    opt:step()
    close(0.99873366374, w[2], 2e-7)
    local st = opt:state()
    close(0.02, st.slots.m[1][1], 1e-7)
    close(3.1225e-4, st.slots.v[1][1], 1e-9)
  end)

  it("needs parameters with gradients", function()
    expect_error("no matching .grads", optim.Adam, {umbra.zeros(2)})
    expect_error("parameter 1 is 2 but its gradient is 3", optim.SGD, {umbra.zeros(2), grads = {umbra.zeros(3)}})
    expect_error("lr must be a non-negative number", function()
      local opt = optim.SGD(single(1))
      opt.lr = -1
    end)
  end)

  it("trains a model's parameters in place", function()
    local g = umbra.Generator(5)
    local lin = nn.Linear(3, 2, g)
    local x, y = umbra.rand({8, 3}, g), umbra.tensor({1, 2, 1, 2, 1, 2, 1, 2}, "int64")
    local opt = optim.Adam(lin:parameters(), {lr = 0.05})
    local ce = nn.CrossEntropy()
    local first
    for i = 1, 50 do
      lin:zero_grad()
      local z = lin:forward(x)
      if i == 1 then first = ce:forward(z, y) end
      lin:backward(x, ce:backward(z, y))
      opt:step()
    end
    assert.is_true(ce:forward(lin:forward(x), y) < first)
  end)
end)

describe("optim.weight_decay", function()
  it("adds 2 lambda w to the gradients and returns lambda sum w^2", function()
    local w1, w2 = umbra.tensor{1, -2}, umbra.tensor{3}
    local g1, g2 = umbra.zeros(2), umbra.full({1}, 0.5)
    local pen = optim.weight_decay({w1, w2, grads = {g1, g2}}, 5e-4)
    close(5e-4 * (1 + 4 + 9), pen, 1e-12)
    close(2 * 5e-4 * -2, g1[2], 1e-9)
    close(0.5 + 2 * 5e-4 * 3, g2[1], 1e-7)
  end)

  it("covers the chosen subset of a model", function()
    local net = require("models.resnet_small"){seed = 1}
    local decayed = net:parameters(function(path) return path:find("conv") or path:find("fc") end)
    assert.are.equal(21, #decayed)   -- 19 conv kernels, fc weight and bias (PAPER 2.3)
    net:zero_grad()
    local pen = optim.weight_decay(decayed, 5e-4)
    assert.is_true(pen > 0)
    assert.are.equal(0, net:named_gradients()["unit_last.bn.weight"]:abs():sum())
  end)
end)

describe("optim schedules", function()
  it("are piecewise constant as TF (values[i] while step <= boundaries[i])", function()
    local f = optim.piecewise_constant({10, 20}, {1, 0.5, 0.25})
    assert.are.equal(1, f(0))
    assert.are.equal(1, f(10))
    assert.are.equal(0.5, f(11))
    assert.are.equal(0.25, f(21))
    expect_error("2 boundaries need 3 values", optim.piecewise_constant, {1, 2}, {1, 2})
    expect_error("must increase", optim.piecewise_constant, {5, 2}, {1, 2, 3})
  end)

  it("reproduce the authors' boundaries (PAPER 2.2)", function()
    local function bounds(total)
      local _, b = optim.paper_schedule(0.1, total)
      return b
    end
    assert.are.same({23400, 35100, 42120}, bounds(468 * 100))   -- MNIST
    assert.are.same({19500, 29250, 35100}, bounds(390 * 100))   -- CIFAR
    assert.are.same({28600, 42900, 51480}, bounds(572 * 100))   -- SVHN
    local f = optim.paper_schedule(0.1, 39000)
    close(0.1, f(19500), 0)
    close(0.01, f(19501), 1e-15)
    close(0.001, f(29251), 1e-15)
    close(0.0001, f(38999), 1e-15)
  end)
end)
