-- umbra.eval's detection metrics from Lua on the worked example of docs/worst-case.md
-- (in = 0.9, 0.8, 0.5; out = 0.5, 0.1): both AUROCs, AUPR-In/Out, FPR@95 in both
-- conventions, detection error, seeded bootstrap intervals and the AUC/AAUC/GAUC sandwich.
local umbra = require "umbra"
local eval = require "umbra.eval"

local function close(expected, got, tol)
  tol = tol or 1e-12
  assert(math.abs(expected - got) <= tol, string.format("expected %.15g, got %.15g", expected, got))
end

local conf_in, conf_out = {0.9, 0.8, 0.5}, {0.5, 0.1}

describe("eval.detection_metrics", function()
  it("labels each convention", function()
    local m = eval.detection_metrics(conf_in, conf_out)
    close(5.5 / 6, m.auroc)
    close(5 / 6, m.auroc_conservative)
    close(11 / 12, m.aupr_in)
    close(5 / 6, m.aupr_out)
    close(0, m.fpr95_in_positive)
    close(1 / 3, m.fpr95_ood_positive)
    close(1 / 6, m.detection_error)
    close(1 / 3, eval.fpr_at_tpr_ood_positive(conf_in, conf_out))
  end)
end)

describe("eval.bootstrap_*", function()
  it("is reproducible from the seed and brackets the estimate", function()
    local a = umbra.rand({200}, umbra.Generator(1))
    local b = umbra.rand({150}, umbra.Generator(2)) * 0.8
    local lo1, hi1 = eval.bootstrap_auroc(a, b, {generator = umbra.Generator(9), n_boot = 200})
    local lo2, hi2 = eval.bootstrap_auroc(a, b, {generator = umbra.Generator(9), n_boot = 200})
    assert.are.equal(lo1, lo2)
    assert.are.equal(hi1, hi2)
    local auc = eval.auroc(a, b)
    assert(lo1 < auc and auc < hi1, string.format("%g not in [%g, %g]", auc, lo1, hi1))
    local mlo, mhi = eval.bootstrap_mmc(a, {generator = umbra.Generator(4), n_boot = 200})
    local m = eval.mmc(a)
    assert(mlo < m and m < mhi)
    assert.has_error(function() eval.bootstrap_mmc(a) end,
      "eval.bootstrap_mmc: needs opts.generator (umbra.Generator(seed))")
  end)
end)

describe("eval.sandwich", function()
  it("gives AUC >= AAUC >= GAUC and refuses a point above its bound", function()
    local s = eval.sandwich(conf_in, {clean = conf_out, attack = {0.85, 0.6}, bound = {1, 0.95}})
    close(5 / 6, s.auc)
    close(0.5, s.aauc)
    close(0, s.gauc)
    local ok, msg = pcall(eval.sandwich, conf_in, {clean = conf_out, attack = {0.85, 0.6}, bound = {1, 0.55}})
    assert.is_false(ok)
    assert(msg:find("point 2 of 2: the attack's confidence", 1, true), msg)
  end)
end)
