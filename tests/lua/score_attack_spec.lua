-- Attacks on the post-hoc scores themselves (umbra.score_attack): each score's input gradient
-- against central differences (MSP, MaxLogit, Energy at two temperatures, ODIN with and
-- without its preprocessing, Mahalanobis on flat and on spatially averaged features), PGD on
-- the energy score raises it at least as much as PGD on the max softmax does, APGD, MPGD and
-- the worst case take the score as their objective, and bad settings are named.
local umbra = require "umbra"
local nn = umbra.nn
local attack = require "umbra.attack"
local scores = require "umbra.scores"
local score_attack = require "umbra.score_attack"

local g = umbra.Generator(11)
-- features without dead units (a Linear's output, a convolution's), so that the fitted
-- covariance needs no ridge and the scores keep a scale float32 differences can resolve
local mlp = nn.Sequential{nn.Linear(6, 12, {generator = g}), nn.ReLU(), {"feat", nn.Linear(12, 5, {generator = g})},
                          nn.ReLU(), nn.Linear(5, 4, {generator = g})}
local conv = nn.Sequential{{"feat", nn.Conv2d(1, 3, 3, {generator = g})}, nn.ReLU(), nn.Flatten(),
                           nn.Linear(3 * 4 * 4, 3, {generator = g})}

local function fit_of(model, x, K)
  local y = umbra.tensor((function()
    local t = {}
    for i = 1, x:size(1) do t[i] = (i - 1) % K + 1 end
    return t
  end)()):long()
  return scores.mahalanobis_fit(model, x, y, {layer = "feat", num_classes = K})
end

-- the largest relative error of backward's input gradient of sum(score) against central
-- differences over every input entry
local function worst_error(head, x)
  local n = x:size(1)
  head:forward(x)
  local gx = head:backward(x, umbra.ones({n, 1})):clone():view(x:numel())
  local flat = x:view(x:numel())
  local h, worst = 1e-3, 0
  for i = 1, x:numel() do
    local keep = flat[i]
    flat[i] = keep + h
    local up = head:forward(x):sum()
    flat[i] = keep - h
    local down = head:forward(x):sum()
    flat[i] = keep
    local fd = (up - down) / (2 * h)
    worst = math.max(worst, math.abs(fd - gx[i]) / math.max(1, math.abs(fd)))
  end
  return worst
end

describe("score_attack", function()
  local x = umbra.rand({5, 6}, g)
  local xc = umbra.rand({4, 1, 6, 6}, g)
  local fit = fit_of(mlp, umbra.rand({40, 6}, g), 4)
  local fit_conv = fit_of(conv, umbra.rand({30, 1, 6, 6}, g), 3)

  it("gives each score's input gradient (central differences)", function()
    assert.are.equal(0, fit.ridge)
    assert.are.equal(0, fit_conv.ridge)
    local cases = {
      {"msp", {}}, {"maxlogit", {}}, {"energy", {T = 1}}, {"energy", {T = 3}},
      {"odin", {odin_T = 2, odin_eps = 0}}, {"odin", {odin_T = 1000, odin_eps = 0.0014}},
      {"mahalanobis", {fit = fit}}, {"mahalanobis", {fit = fit, maha_eps = 0.001}},
    }
    for _, c in ipairs(cases) do
      local err = worst_error(score_attack.head(mlp, c[1], c[2]), x:clone())
      assert.is_true(err < 2e-2, string.format("%s: worst relative error %g", c[1], err))
    end
    local err = worst_error(score_attack.head(conv, "mahalanobis", {fit = fit_conv}), xc:clone())
    assert.is_true(err < 2e-2, "mahalanobis on averaged conv features: worst relative error " .. err)
  end)

  it("outputs the score of umbra.scores", function()
    local z = mlp:forward(x)
    local pairs_ = {{"msp", {}, scores.msp(z)}, {"maxlogit", {}, scores.maxlogit(z)},
                    {"energy", {T = 2}, scores.energy(z, 2)},
                    {"odin", {odin_T = 10, odin_eps = 0.01}, scores.odin(mlp, x, {T = 10, eps = 0.01})},
                    {"mahalanobis", {fit = fit, maha_eps = 0.01}, scores.mahalanobis(mlp, x, fit, {eps = 0.01})}}
    for _, p in ipairs(pairs_) do
      local got = score_attack.head(mlp, p[1], p[2]):forward(x):view(x:size(1))
      assert.is_true((got - p[3]):abs():max() < 1e-5, p[1])
    end
  end)

  it("raises the energy score attacking it at least as much as attacking the max softmax", function()
    local z = umbra.rand({32, 6}, g)
    local head = score_attack.head(mlp, "energy")
    local o = {eps = 0.3, steps = 40, step = 0.02}
    o.generator = umbra.Generator(3)
    local on_msp = attack.pgd(mlp, z, o)
    o.generator, o.objective = umbra.Generator(3), score_attack.objective
    local on_energy = attack.pgd(head, z, o)
    local e_clean = scores.energy(mlp:forward(z)):mean()
    local e_msp = scores.energy(mlp:forward(on_msp)):mean()
    local e_energy = scores.energy(mlp:forward(on_energy)):mean()
    assert.is_true(e_energy > e_clean, string.format("energy %g at clean, %g attacked", e_clean, e_energy))
    assert.is_true(e_energy >= e_msp, string.format("energy %g attacking MSP, %g attacking energy", e_msp, e_energy))
    assert.is_true((on_energy - z):abs():max() <= 0.3 + 1e-6)
  end)

  it("drives APGD, MPGD and the worst case with the score as objective", function()
    local z = umbra.rand({8, 6}, g)
    for _, name in ipairs{"maxlogit", "mahalanobis"} do
      local head = score_attack.head(mlp, name, {fit = fit})
      local clean = head:forward(z):view(8):clone()
      local xa, va = attack.apgd(head, z, {eps = 0.2, steps = 20, objective = score_attack.objective,
                                          generator = umbra.Generator(1)})
      local xm, vm = attack.mpgd(head, z, {eps = 0.2, steps = 20, objective = score_attack.objective,
                                          start = "clean"})
      assert.is_true((head:forward(xa):view(8) - va):abs():max() < 1e-4, name)
      assert.is_true((head:forward(xm):view(8) - vm):abs():max() < 1e-4, name)
      assert.is_true((vm - clean):min() >= -1e-5, name .. ": MPGD from the clean point never ends lower")
      local best, pts, winner, report = score_attack.worst_case(mlp, name, z,
                                                                {eps = 0.2, ensemble = "paper", fit = fit})
      assert.is_true((best - clean):min() >= 0, name)
      assert.is_true((head:forward(pts):view(8) - best):abs():max() < 1e-4, name)
      assert.are.same({"clean", "pgd 80x0.02"}, report.names)
      assert.is_true(winner:max() <= 2)
      assert.is_true(best:mean() > clean:mean(), name .. ": the attack raised nothing")
    end
  end)

  it("names bad settings", function()
    assert.has_error(function() score_attack.head(mlp, "nope") end,
      "score_attack.head: unknown score 'nope' (known: msp,maxlogit,energy,odin,mahalanobis)")
    assert.has_error(function() score_attack.head(mlp, "mahalanobis") end,
      "score_attack.head: mahalanobis needs opts.fit (scores.mahalanobis_fit)")
    assert.has_error(function()
      attack.apgd(mlp, x, {objective = function() return umbra.zeros({2}) end, generator = umbra.Generator(1)})
    end)
  end)
end)
