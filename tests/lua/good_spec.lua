-- umbra.good (GOOD's out-distribution loss): L_CUB against hand values, its gradients against
-- finite differences, the quantile split and the ramps of GOOD's MNIST schedule, the bound pass
-- lowering the certified bound on a small net, and bad arguments named.
local umbra = require "umbra"
local good, certify, nn = umbra.good, umbra.certify, umbra.nn

describe("good losses", function()
  it("give log(1 + m^2/2) at the largest logit difference", function()
    -- logits (2, 0, -1): spread 3, L_CUB(x; 0) = log 5.5
    local v, g = good.spread_loss(umbra.tensor{{2, 0, -1}})
    assert(math.abs(v[1] - 1.7047481) < 1e-6, tostring(v[1]))
    -- d/df: (+1 at the max, -1 at the min) * 3 / 5.5
    local c = 3 / 5.5
    assert(math.abs(g[1][1] - c) < 1e-6 and math.abs(g[1][2]) < 1e-7 and math.abs(g[1][3] + c) < 1e-6)
    local ud = umbra.tensor{{{0, 2, 3}, {-2, 0, 1}, {-3, -1, 0}}}
    local bv, m, gud = good.bound_loss(ud, 2)
    assert(math.abs(bv[1] - 1.7047481) < 1e-6 and m[1] == 3)
    assert(math.abs(gud[1][1][3] - 2 * c) < 1e-6 and math.abs(gud:sum() - 2 * c) < 1e-6)
  end)

  it("have gradients that match finite differences", function()
    local g = umbra.Generator(3)
    local logits = umbra.randn({4, 5}, g)
    local w = umbra.tensor{0.5, 1, 0, 2}
    local _, grad = good.spread_loss(logits, w)
    local function total(t) return (good.spread_loss(t) * w):sum() end
    for i = 1, 4 do
      for k = 1, 5 do
        local v = logits[i][k]
        logits[i][k] = v + 1e-2
        local lp = total(logits)
        logits[i][k] = v - 1e-2
        local lm = total(logits)
        logits[i][k] = v
        assert(math.abs((lp - lm) / 2e-2 - grad[i][k]) < 2e-3, string.format("[%d][%d]", i, k))
      end
    end
  end)

  it("split by quantile and ramp as GOOD's schedule", function()
    local in_bound, n = good.split(umbra.tensor{0.5, 0.1, 0.9, 0.3}, 0.5)
    assert.are.equal(2, n)
    assert.are.same({false, true, false, true}, in_bound)
    assert.are.equal(102, select(2, good.split(umbra.zeros({128}), 0.8)))
    local kappa, eps = good.ramp(0.3, 2, 100), good.ramp(0.3, 10, 120)
    assert(math.abs(kappa(52) - 0.15) < 1e-12 and math.abs(eps(70) - 0.15) < 1e-12)
    assert.are.equal(0, kappa(1))
    assert.are.equal(0, eps(9))
    assert.are.equal(0.3, kappa(500))
    assert.are.equal(0, good.ramp(1, 3, 0)(2))
    assert.are.equal(1, good.ramp(1, 3, 0)(3))
    assert.has_error(function() good.split(umbra.zeros({2}), 1.5) end, "good: quantile must be in [0, 1], got 1.5")
  end)
end)

describe("good.out_pass", function()
  local function net(g)
    return nn.Sequential{nn.Conv2d(1, 4, 3, {padding = "same", generator = g}), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 16, {generator = g}), nn.ReLU(),
                         nn.Linear(16, 3, {generator = g})}
  end

  it("lowers the certified bound when its gradient is followed", function()
    local g = umbra.Generator(11)
    local model = net(g)
    local z = umbra.rand({8, 1, 8, 8}, g)
    local opt = umbra.optim.SGD(model:parameters(), model:gradients(), {lr = 0.5})
    local function mean_bound() return certify.confidence_bound(model, z, 0.1):mean() end
    local before = mean_bound()
    for _ = 1, 40 do
      model:zero_grad()
      local part = good.out_pass(model, z, {eps = 0.1, weight = 1, clip = true}, 1, 1 / 8)
      assert.are.equal(8, part.n_bound)
      opt:step()
    end
    local after = mean_bound()
    assert(after < before - 0.2, string.format("bound %g -> %g", before, after))
  end)

  it("does nothing before its weight ramps up, and names models it cannot train", function()
    local g = umbra.Generator(1)
    local model = net(g)
    local part = good.out_pass(model, umbra.rand({2, 1, 8, 8}, g), {eps = 0.1, weight = good.ramp(1, 2, 0)}, 1, 1)
    assert.are.equal(0, part.weight)
    assert.is_nil(part.bound_mask)
    local bn = nn.Sequential{nn.Conv2d(1, 2, 3, {padding = "same", generator = g}), nn.BatchNorm2d(2), nn.Flatten(),
                             nn.Linear(2 * 8 * 8, 3, {generator = g})}
    local ok, err = pcall(good.out_pass, bn, umbra.rand({2, 1, 8, 8}, g), {eps = 0.1, weight = 1}, 1, 1)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("BatchNorm2d", 1, true), tostring(err))
  end)
end)

describe("train.Procedure with good settings", function()
  it("trains on CE plus the bound and spread losses, with the quantile split", function()
    local g = umbra.Generator(4)
    local model = nn.Sequential{nn.Flatten(), nn.Linear(16, 12, {generator = g}), nn.ReLU(),
                                nn.Linear(12, 3, {generator = g})}
    local opt = umbra.optim.SGD(model:parameters(), model:gradients(), {lr = 0.1})
    local proc = umbra.train.Procedure(model, opt, {at_frac = 1, generator = g,
      good = {eps = 0.1, weight = 0.5, quantile = 0.5},
      noise_schedule = function(ctx) return umbra.rand({ctx.n, 1, 4, 4}, ctx.generator) end})
    local x, y = umbra.rand({8, 1, 4, 4}, g), umbra.tensor({1, 2, 3, 1, 2, 3, 1, 2}):long()
    local s = proc:step(x, y, 1)
    assert.are.equal(0.5, s.good_bound_share)
    assert.are.equal(0.5, s.good_weight)
    assert(s.loss_out > 0 and s.good_m > 0)
    assert(math.abs(s.loss - (s.loss_clean + s.loss_out + s.reg)) < 1e-9)
    assert.has_error(function()
      umbra.train.Procedure(model, opt, {at_frac = 1, pgd_niter = 5, generator = g, good = {eps = 0.1, weight = 1}})
    end)
  end)
end)
