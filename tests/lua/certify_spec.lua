-- umbra.certify from Lua: at eps = 0 the bound is the confidence; on LeNet it is never below
-- what PGD finds; a list of eps gives a list of bounds; bad arguments are named.
local umbra = require "umbra"
local certify, attack, eval = umbra.certify, umbra.attack, umbra.eval

describe("certify.confidence_bound", function()
  local g = umbra.Generator(5)
  local model = require("models.lenet"){generator = g}
  local z = umbra.rand({3, 1, 28, 28}, g)

  it("equals the confidence at eps = 0 and bounds PGD above", function()
    model:evaluate()
    local conf = eval.max_conf(model:forward(z):softmax(2))
    local b0, ud = certify.confidence_bound(model, z, 0)
    assert.are.same({3, 10, 10}, ud:size())
    for i = 1, 3 do assert(math.abs(b0[i] - conf[i]) < 1e-5, string.format("%g vs %g", b0[i], conf[i])) end
    model:train()
    local _, obj = attack.pgd(model, z, {eps = 0.05, steps = 10, generator = g})
    local bounds = certify.confidence_bound(model, z, {0.05, 0.01})
    assert.are.equal(2, #bounds)
    for i = 1, 3 do
      assert(math.exp(obj[i]) <= bounds[1][i] + 1e-5)
      assert(bounds[2][i] <= bounds[1][i] + 1e-6)   -- a smaller ball: a smaller bound
    end
    assert.is_true(model:is_training())
  end)

  it("names bad arguments", function()
    assert.has_error(function() certify.confidence_bound(model, z, -1) end,
      "certify.confidence_bound: eps must be a number >= 0, got -1")
  end)
end)
