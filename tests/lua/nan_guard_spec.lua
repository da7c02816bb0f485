-- The NaN guard of training (issue "trust under faults", item 6): a NaN pixel reaches the
-- loss through ReLU and max-pool instead of vanishing, a NaN gradient is refused by the
-- optimiser naming the parameter and the count, and Procedure:step names the step; in
-- every case no parameter is changed.
local umbra = require "umbra"
local train = require "umbra.train"

local function setup()
  local g = umbra.Generator(4)
  local model = require("models.mlp"){sizes = {4, 8, 3}, generator = g}
  local opt = umbra.optim.SGD(model:parameters(), {lr = 0.1})
  local x = umbra.rand({5, 4}, g)
  local y = umbra.tensor({1, 2, 3, 1, 2}):long()
  return g, model, opt, x, y
end

local function snapshot(model)
  local out = {}
  for path, t in pairs(model:named_parameters()) do out[path] = t:clone() end
  return out
end

local function unchanged(model, before)
  for path, t in pairs(model:named_parameters()) do
    assert.are.equal(0, (t - before[path]):abs():max(), path)
  end
end

describe("the NaN guard", function()
  it("lets a NaN pixel reach the loss and stops the step", function()
    local g, model, opt, x, y = setup()
    local proc = train.Procedure(model, opt, {generator = g})
    local before = snapshot(model)
    x[2][3] = 0 / 0
    local ok, err = pcall(proc.step, proc, x, y, 1)
    assert.is_false(ok)
    assert.matches("^step 1: .*NaN", err)
    unchanged(model, before)
  end)

  it("refuses a non-finite gradient, naming the step, the parameter and the count", function()
    local g, model, opt, x, y = setup()
    local nan_backward = {forward = function(_, logits) return logits:sum(2):mul(0) end,
                          backward = function(_, logits) return logits:mul(0 / 0) end}
    local proc = train.Procedure(model, opt, {generator = g, at_frac = 1, out_loss = nan_backward,
                                              noise_schedule = function(a)
                                                return umbra.rand({a.n, 4}, a.generator)
                                              end})
    local before = snapshot(model)
    local ok, err = pcall(proc.step, proc, x, y, 1)
    assert.is_false(ok)
    assert.matches("step 1: .*the gradient of fc%d%.%a+ has %d+ non%-finite values", err)
    unchanged(model, before)
  end)

  it("makes opt:step() name the parameter", function()
    local _, model, opt = setup()
    local before = snapshot(model)
    model:named_gradients()["fc2.bias"]:fill_(1 / 0)
    local ok, err = pcall(opt.step, opt)
    assert.is_false(ok)
    assert.matches("the gradient of fc2.bias has 3 non-finite values (NaN or infinite) of 3", err, 1, true)
    unchanged(model, before)
  end)
end)
