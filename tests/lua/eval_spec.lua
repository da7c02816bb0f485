-- umbra.eval from Lua: the metrics on hand-computed cases (ties, all-equal scores, perfect and
-- reversed separation), NumPy percentiles, the authors' FPR at 95 % TPR, ROC points,
-- resistance with 1..K labels and the selection of the points an attack fooled.
local umbra = require "umbra"
local eval = require "umbra.eval"

local function close(expected, got, tol)
  tol = tol or 1e-12
  assert(math.abs(expected - got) <= tol, string.format("expected %.15g, got %.15g", expected, got))
end

local function expect_error(text, f, ...)
  local ok, msg = pcall(f, ...)
  assert.is_false(ok, "expected an error")
  assert(tostring(msg):find(text, 1, true), "error '" .. tostring(msg) .. "' does not contain '" .. text .. "'")
end

describe("eval.max_conf and eval.mmc", function()
  it("takes the row maxima of a probability matrix", function()
    local c = eval.max_conf(umbra.tensor{{0.1, 0.7, 0.2}, {0.5, 0.25, 0.25}})
    assert.are.same({2}, c:size())
    close(0.7, c[1], 1e-7)
    close(0.5, c[2], 0)
  end)

  it("averages confidences, or the maxima of probabilities", function()
    close(0.75, eval.mmc{0.5, 1.0, 0.75})
    close(0.6, eval.mmc(umbra.tensor{{0.1, 0.7, 0.2}, {0.5, 0.25, 0.25}}), 1e-7)
  end)
end)

describe("eval.auroc", function()
  it("is 1 for perfect separation, 0 reversed, 0.5 when all scores are equal", function()
    close(1, eval.auroc({0.9, 0.8}, {0.1, 0.2}))
    close(0, eval.auroc({0.1, 0.2}, {0.9, 0.8}))
    close(0.5, eval.auroc({0.5, 0.5, 0.5}, {0.5, 0.5}))
  end)

  it("counts tied pairs as one half (sklearn's roc_auc_score)", function()
    close(5 / 6, eval.auroc({0.9, 0.5, 0.5}, {0.5, 0.1}))
    close(7.5 / 12, eval.auroc(umbra.tensor{0.3, 0.7, 0.7, 0.2}, umbra.tensor{0.7, 0.1, 0.3}))
  end)

  it("says which set is empty or wrong", function()
    expect_error("eval.auroc: auroc: conf_out is empty", eval.auroc, {0.5}, umbra.zeros(0))
    expect_error("eval: conf_in must be a tensor or an array of numbers, got string", eval.auroc, "x", {1})
  end)
end)

describe("eval.percentile and eval.fpr_at_tpr", function()
  it("interpolates linearly as np.percentile", function()
    close(2.5, eval.percentile({4, 1, 3, 2}, 50))
    close(1.15, eval.percentile({4, 1, 3, 2}, 5))
    close(1.75, eval.percentile({4, 1, 3, 2}, 25))
    close(7, eval.percentile({7}, 5))
  end)

  it("thresholds at the 5th percentile of the clean confidences; ties count as positives", function()
    local clean = {}
    for i = 0, 20 do clean[#clean + 1] = i / 20 end
    local fpr, tau = eval.fpr_at_tpr(clean, {0.0, 0.04, 0.05, 0.06, 1.0}, 0.95)
    close(0.05, tau, 1e-7)
    close(0.6, fpr)
    fpr, tau = eval.fpr_at_tpr({1.0, 0.8, 0.6, 0.4, 0.2}, {0.23, 0.25, 0.1, 0.9})
    close(0.24, tau, 1e-7)
    close(0.5, fpr)
  end)
end)

describe("eval.roc", function()
  it("gives one point per distinct score, from (0,0) to (1,1)", function()
    local fpr, tpr, th = eval.roc({0.9, 0.5, 0.5}, {0.5, 0.1})
    local f, t, h = fpr:to_table(), tpr:to_table(), th:to_table()
    assert.are.equal(4, #f)
    for i, v in ipairs{0, 0, 0.5, 1} do close(v, f[i], 1e-7) end
    for i, v in ipairs{0, 1 / 3, 1, 1} do close(v, t[i], 1e-7) end
    assert.are.equal(math.huge, h[1])
    close(0.5, h[3], 0)
  end)
end)

describe("eval.resistance", function()
  local probs = umbra.tensor{{0.8, 0.1, 0.1}, {0.1, 0.8, 0.1}, {0.34, 0.33, 0.33},
                             {0.335, 0.333, 0.332}, {0.5, 0.5, 0.0}, {1 / 3, 1 / 3, 1 / 3}}
  local labels = umbra.tensor({1, 1, 1, 1, 2, 3}, "int64")

  it("resists only when the label beats every class and the 1.01/K guard", function()
    local frac, fooled = eval.resistance(probs, labels)
    close(2 / 6, frac)
    assert.are.same({0, 1, 0, 1, 1, 1}, fooled:to_table())
    local adv = eval.select_rows(probs, fooled)
    assert.are.same({4, 3}, adv:size())
    close(0.1, adv[1][1], 1e-7)
  end)

  it("takes labels 1..K and names a label outside", function()
    expect_error("eval.resistance: resistance: labels[6] = 4 is not a class in 1..3",
                 eval.resistance, probs, {1, 1, 1, 1, 2, 4})
  end)
end)

describe("eval.set_metrics", function()
  it("gives MMC, AUROC and FPR@95 of a set against the clean one", function()
    local r = eval.set_metrics({0.9, 0.8, 0.7}, {0.1, 0.95})
    close(0.525, r.mmc, 1e-7)
    close(3 / 6, r.auroc)
    assert.are.equal(2, r.n)
  end)

  it("gives NaN for an empty set", function()
    local r = eval.set_metrics({0.9}, umbra.zeros(0))
    assert.are.equal(0, r.n)
    assert.is_true(r.mmc ~= r.mmc and r.auroc ~= r.auroc and r.fpr ~= r.fpr)
  end)
end)
