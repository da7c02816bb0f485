-- umbra.attack's APGD, Monotone PGD and worst case from Lua: the suite contains worst-of-three
-- (same seeds, same results) so it is at least as strong on every point; winners name a
-- member; confidences are those of the returned points; stats and errors.
local umbra = require "umbra"
local attack, eval = umbra.attack, umbra.eval

describe("attack.worst_case", function()
  local g = umbra.Generator(3)
  local model = require("models.lenet"){generator = g}
  local z = umbra.rand({4, 1, 28, 28}, g)

  it("is at least worst-of-three on every point, and reports the winner", function()
    local members = {{kind = "pgd", name = "a", steps = 5, step = 0.01},
                     {kind = "pgd", name = "b", steps = 3, step = 0.02}}
    local o3 = {eps = 0.05, seed = 7, ensemble = members}
    local c3 = attack.worst_case(model, z, o3)
    local more = {members[1], members[2], {kind = "apgd", name = "apgd", steps = 6},
                  {kind = "mpgd", name = "m", steps = 6}}
    local cs, pts, win, rep = attack.worst_case(model, z, {eps = 0.05, seed = 7, ensemble = more})
    assert.are.same({"clean", "a", "b", "apgd", "m"}, rep.names)
    model:evaluate()
    local again = eval.max_conf(model:forward(pts):softmax(2))
    model:train()
    for i = 1, 4 do
      assert(cs[i] >= c3[i], string.format("point %d: suite %g below worst-of-two %g", i, cs[i], c3[i]))
      assert(win[i] >= 1 and win[i] <= 5)
      assert(math.abs(again[i] - cs[i]) < 1e-6)
      local d = (pts[i] - z[i]):abs():max()
      assert((type(d) == "number" and d or d:item()) <= 0.05 + 1e-6)
    end
    assert.is_number(rep.escapes.apgd)
  end)

  it("runs the presets and names bad ensembles", function()
    local c = attack.worst_case(model, z:narrow(1, 1, 1), {eps = 0.05, ensemble = "paper"})
    assert.are.same({1}, c:size())
    assert.has_error(function() attack.worst_case(model, z, {ensemble = "best"}) end,
      "attack.worst_case: ensemble must be 'paper', 'worst3', 'suite' or a list, got best")
    local p = attack.ensemble_presets{}
    assert.are.equal(3, #p.worst3)
    for i = 1, 3 do assert.are.equal(p.worst3[i], p.suite[i]) end   -- the suite contains worst-of-three
    assert.are.equal(7, #p.suite)
  end)
end)

describe("attack.apgd and attack.mpgd", function()
  it("return points, values and statistics, and need a generator", function()
    local g = umbra.Generator(4)
    local model = require("models.lenet"){generator = g}
    local z = umbra.rand({2, 1, 28, 28}, g)
    local x, v, st = attack.apgd(model, z, {eps = 0.1, steps = 5, generator = g})
    assert.are.same(z:size(), x:size())
    assert.are.same({2}, v:size())
    assert.are.equal(6, st.forwards)
    local _, _, st2 = attack.mpgd(model, z, {eps = 0.1, steps = 4, start = "contrast"})
    assert.are.equal(5, st2.forwards)
    assert.has_error(function() attack.apgd(model, z, {}) end,
      "attack.apgd: needs opts.generator (umbra.Generator(seed))")
  end)
end)
