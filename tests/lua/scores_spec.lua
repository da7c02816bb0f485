-- umbra.scores against values computed by hand: MSP, MaxLogit and Energy on fixed logits,
-- ODIN on an identity model (the step's sign and the tempered softmax), Mahalanobis on a
-- model whose features are its inputs (means, precision, score, preprocessing through a
-- nested Sequential); m:find / m:output; bad arguments named.
local umbra = require "umbra"
local nn, scores = umbra.nn, umbra.scores

local function near(a, b, tol, what)
  assert(math.abs(a - b) <= (tol or 1e-5) * math.max(1, math.abs(b)),
         string.format("%s: %.8g vs %.8g", what or "value", a, b))
end

-- A Linear layer with given weights (out, in) and bias.
local function linear(w, b)
  local l = nn.Linear(#w[1], #w, {seed = 1})
  l.weight:copy_(umbra.tensor(w))
  l.bias:copy_(umbra.tensor(b))
  return l
end

describe("scores from logits", function()
  local z = umbra.tensor({{1, 2, 3}, {0, 0, 0}})
  it("msp, maxlogit, energy", function()
    local msp, ml, e1, e1000 = scores.msp(z), scores.maxlogit(z), scores.energy(z), scores.energy(z, 1000)
    near(msp[1], math.exp(3) / (math.exp(1) + math.exp(2) + math.exp(3)), 1e-6, "msp")
    near(msp[2], 1 / 3, 1e-6, "msp uniform")
    near(ml[1], 3, 0, "maxlogit")
    near(e1[1], 3.4076060, 1e-6, "energy T=1")
    near(e1000[1], 1100.6126, 1e-6, "energy T=1000")
    near(e1[2], math.log(3), 1e-6, "energy of zeros")
  end)
  it("names bad arguments", function()
    assert.has_error(function() scores.energy(z, 0) end, "scores.energy: T must be a number > 0, got 0")
    assert.has_error(function() scores.msp(umbra.tensor({1, 2})) end,
      "scores.msp: logits must be a tensor (n, K), got 1 dimensions")
  end)
end)

describe("scores.odin", function()
  it("steps eps against the gradient of the tempered cross-entropy", function()
    local model = nn.Sequential{{"id", linear({{1, 0}, {0, 1}}, {0, 0})}}
    local x = umbra.tensor({{0.3, 0.1}})
    -- predicted class 1: x' = (0.3 + eps, 0.1 - eps) = (0.35, 0.05); softmax(x' / 10)
    local s = scores.odin(model, x, {T = 10, eps = 0.05})
    near(s[1], 1 / (1 + math.exp(-0.03)), 1e-6, "odin")
    near(scores.odin(model, x, {T = 10, eps = 0})[1], 1 / (1 + math.exp(-0.02)), 1e-6, "odin without step")
    assert.is_true(model:is_training())
  end)
end)

describe("scores.mahalanobis", function()
  -- features = body.relu's output = the input (weights I, inputs >= 0)
  local model = nn.Sequential{
    {"body", nn.Sequential{{"lin", linear({{1, 0}, {0, 1}}, {0, 0})}, {"relu", nn.ReLU()}}},
    {"head", linear({{1, 1}, {1, -1}}, {0, 0})}}
  local x = umbra.tensor({{0, 0}, {2, 2}, {4, 0}, {4, 2}})
  local y = umbra.tensor({1, 1, 2, 2}, "int64")
  local fit = scores.mahalanobis_fit(model, x, y, {layer = "body.relu", num_classes = 2, batch = 3})

  it("fits means and the precision of the pooled covariance", function()
    -- means (1, 1), (4, 1); covariance [[0.5, 0.5], [0.5, 1]]; precision [[4, -2], [-2, 2]]
    local want_mu, want_p = {{1, 1}, {4, 1}}, {{4, -2}, {-2, 2}}
    for i = 1, 2 do
      for j = 1, 2 do
        near(fit.means[i][j], want_mu[i][j], 1e-6, "mean")
        near(fit.precision[i][j], want_p[i][j], 1e-5, "precision")
      end
    end
    assert.are.equal(0, fit.ridge)
    assert.are.equal(4, fit.n)
  end)

  it("scores max_c -0.5 d'Pd, with and without preprocessing", function()
    local t = umbra.tensor({{1, 2}})
    near(scores.mahalanobis(model, t, fit)[1], -1, 1e-5, "score")   -- class 1: d = (0, 1)
    -- gradient P d = (-2, 2): x' = (1.1, 1.9), d = (0.1, 0.9), d'Pd = 1.30
    near(scores.mahalanobis(model, t, fit, {eps = 0.1})[1], -0.65, 1e-5, "preprocessed score")
  end)

  it("reads features through find and output", function()
    model:forward(umbra.tensor({{3, 5}}))
    local f = model:find("body.relu"):output()
    near(f[1][2], 5, 0, "feature")
    near(model:find("body.1"):output()[1][1], 3, 0, "unnamed step by index")
    assert.has_error(function() model:find("body.nope") end,
      "find: no child 'nope' in 'body' (Sequential); its children: lin, relu")
    assert.is_nil(nn.ReLU():output())
  end)

  it("names bad fits", function()
    assert.has_error(function()
      scores.mahalanobis_fit(model, x, umbra.tensor({1, 1, 1, 1}, "int64"), {layer = "body.relu", num_classes = 2})
    end, "scores.mahalanobis_fit: gaussian_fit: class 2 has no example (every class needs one)")
    assert.has_error(function() scores.mahalanobis_fit(model, x, y, {num_classes = 2}) end,
      "scores.mahalanobis_fit: opts.layer (the path of the features) is required")
    -- a constant feature: singular covariance, a ridge keeps it invertible
    local r = scores.mahalanobis_fit(model, umbra.tensor({{0, 1}, {2, 1}, {4, 1}, {5, 1}}), y,
                                     {layer = "body.relu", num_classes = 2})
    assert.is_true(r.ridge > 0)
  end)
end)
