-- umbra.scores: post-hoc OOD scores of a trained classifier (docs/good-and-scores.md), each a
-- float32 vector (n), higher = more in-distribution, on the logits' device:
--   msp(logits), maxlogit(logits), energy(logits [, T = 1]) from logits (n, K);
--   odin(model, x [, {T = 1000, eps = 0.0014}]) and mahalanobis(model, x, fit [, {eps = 0}])
--   from a model and inputs; mahalanobis_fit(model, x, labels, {layer =, num_classes =})
--   fits the class means and shared precision of the features at a named layer.
-- The models run in evaluation mode; their mode is restored.
local core = require "umbra.core"
local nn = require "umbra.nn"

local scores = {}

--- The score names evaluate.lua --scores takes, in its order.
scores.names = {"msp", "maxlogit", "energy", "odin", "mahalanobis"}

local function check_logits(z, fn)
  if not core.is_tensor(z) or z:dim() ~= 2 then
    error(string.format("scores.%s: logits must be a tensor (n, K), got %s", fn,
                        core.is_tensor(z) and z:dim() .. " dimensions" or type(z)), 3)
  end
end

local function positive(v, name, fn)
  if type(v) ~= "number" or v ~= v or v <= 0 then
    error(string.format("scores.%s: %s must be a number > 0, got %s", fn, name, tostring(v)), 3)
  end
  return v
end

--- scores.msp(logits) -> max softmax probability of each row
function scores.msp(z)
  check_logits(z, "msp")
  return z:softmax(2):max(2)
end

--- scores.maxlogit(logits) -> largest logit of each row
function scores.maxlogit(z)
  check_logits(z, "maxlogit")
  return z:max(2)
end

-- T * logsumexp(z / T) of each row, computed around the row maximum.
local function lse(z, T)
  local s = z / T
  local m = s:max(2, true)
  return ((s - m):exp():sum(2, true):log() + m):view({z:size(1)}) * T
end

--- scores.energy(logits [, T = 1]) -> negative energy T * log(sum_k exp(f_k / T)) of each row
function scores.energy(z, T)
  check_logits(z, "energy")
  return lse(z, positive(T or 1, "T", "energy"))
end

local function module_of(model) return nn.is_module(model) and model or model.core end

-- f() with the model in evaluation mode, its mode restored even when f raises.
local function in_eval(m, f)
  local was = m:is_training()
  m:evaluate()
  local ok, a, b = pcall(f)
  m:train(was)
  if not ok then error(a, 0) end
  return a, b
end

-- x - eps * s with s = +1 where g >= 0, -1 elsewhere (the authors' torch.ge sign).
local function step_against(x, g, eps)
  return x - (g:ge(0) * 2 - 1) * eps
end

local function opts_of(opts, fn)
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("scores.%s: options must be a table, got %s", fn, type(opts)), 3)
  end
  return opts or {}
end

--- scores.odin(model, x [, {T = 1000, eps = 0.0014}]) -> max softmax(f(x') / T) with
--- x' = x - eps * sign(grad_x CE(f(x) / T, argmax f(x))) (ODIN's input preprocessing: a step
--- of eps per pixel that raises the predicted class's tempered probability; not clipped).
--- eps = 0 skips the preprocessing.
function scores.odin(model, x, opts)
  opts = opts_of(opts, "odin")
  local T = positive(opts.T or 1000, "T", "odin")
  local eps = opts.eps or 0.0014
  if type(eps) ~= "number" or eps < 0 then error("scores.odin: eps must be a number >= 0, got " .. tostring(eps), 2) end
  local m = module_of(model)
  return in_eval(m, function()
    local _, z = scores.odin_point(m, x, T, eps)
    return (z / T):softmax(2):max(2)
  end)
end

-- ODIN's preprocessed point x' and the logits there (the model's last forward is at x').
function scores.odin_point(m, x, T, eps)
  local z = m:forward(x)
  if eps > 0 then
    local g = nn.CrossEntropy{reduction = "sum"}:backward(z / T, z:argmax(2)) / T
    x = step_against(x, m:backward_input(x, g), eps)
    z = m:forward(x)
  end
  return x, z
end

-- ---- Mahalanobis ---------------------------------------------------------------------

-- Features (n, D) at the layer: its output, averaged over space when it is (n, C, H, W).
local function features_at(m, layer)
  local out = m:find(layer):output()
  if out:dim() == 4 then
    local s = out:size()
    return out:reshape({s[1], s[2], s[3] * s[4]}):mean(3), s
  end
  if out:dim() ~= 2 then
    error(string.format("scores.mahalanobis: the output of '%s' has %d dimensions; features must be "
                        .. "(n, D) or (n, C, H, W)", layer, out:dim()), 4)
  end
  return out, out:size()
end

--- scores.mahalanobis_fit(model, x, labels, {layer = "relu3", num_classes = K, batch = 500})
--- -> fit = {layer =, means = (K, D), precision = (D, D), ridge =, n =}: class means and the
--- inverse of the shared maximum-likelihood covariance of the features at layer (a path
--- as m:find takes: the penultimate features, or a convolutional block's output averaged
--- over space), fitted on x (n, ...) with labels (n, int64 1..K), batch by batch.
--- ridge > 0: the covariance was singular and ridge * its mean variance was added to its diagonal.
function scores.mahalanobis_fit(model, x, labels, opts)
  opts = opts_of(opts, "mahalanobis_fit")
  local layer, K = opts.layer, opts.num_classes
  if type(layer) ~= "string" then
    error("scores.mahalanobis_fit: opts.layer (the path of the features) is required", 2)
  end
  if math.type(K) ~= "integer" or K < 1 then
    error("scores.mahalanobis_fit: opts.num_classes must be an integer >= 1, got " .. tostring(K), 2)
  end
  local m = module_of(model)
  local n, batch = x:size(1), opts.batch or 500
  local parts = {}
  in_eval(m, function()
    for start = 1, n, batch do
      local len = math.min(batch, n - start + 1)
      m:forward(x:narrow(1, start, len))
      parts[#parts + 1] = features_at(m, layer):to("cpu")
    end
  end)
  local f = #parts == 1 and parts[1] or core.cat(parts, 1)
  local means, precision, ridge = core.gaussian_fit(f, labels:to("cpu"), K)
  local dev = x:device()
  return {layer = layer, means = means:to(dev), precision = precision:to(dev), ridge = ridge, n = n}
end

-- M (n, K): M_c = -0.5 (phi - mu_c)' P (phi - mu_c) for each feature row phi.
local function class_terms(phi, fit)
  local mu, P = fit.means, fit.precision
  local phiP = phi:matmul(P)
  local a = (phiP * phi):sum(2, true)
  local c = (mu:matmul(P) * mu):sum(2):view({1, mu:size(1)})
  return (a - phiP:matmul(mu:t()) * 2 + c) * -0.5
end

-- The gradient of the input from the gradient g of the output of the module at path: back
-- through the Sequentials on the way, each child from its kept input and output.
local function back_to_input(m, x, path, g)
  local steps = {}
  for step in (path .. "."):gmatch("([^.]*)%.") do steps[#steps + 1] = step end
  local chain, node = {}, m   -- chain[d] = {container, index of the child on the path}
  for _, step in ipairs(steps) do
    if node:type() ~= "Sequential" then
      error(string.format("scores.mahalanobis: input preprocessing needs Sequential containers on the "
                          .. "path to '%s', got a %s", path, node:type()), 4)
    end
    local idx
    for i = 1, #node do if node:child_name(i) == step then idx = i end end
    if idx == nil then node:find(step) end   -- raises, naming the children
    chain[#chain + 1] = {node, idx}
    node = node[idx]
  end
  local inputs = {x}   -- inputs[d]: the input of chain[d]'s Sequential
  for d = 1, #chain - 1 do
    local seq, idx = chain[d][1], chain[d][2]
    inputs[d + 1] = idx > 1 and seq[idx - 1]:output() or inputs[d]
  end
  for d = #chain, 1, -1 do
    local seq, idx = chain[d][1], chain[d][2]
    for j = idx, 1, -1 do
      g = seq[j]:backward_input(j > 1 and seq[j - 1]:output() or inputs[d], g)
    end
  end
  return g
end

--- scores.mahalanobis(model, x, fit [, {eps = 0}]) -> max_c -0.5 (phi(x') - mu_c)' P (phi(x') - mu_c):
--- phi the features at fit.layer; eps > 0: x' = x - eps * sign(grad_x of 0.5 (phi - mu_c)' P (phi - mu_c))
--- for the closest class c (the authors' preprocessing; the layers on the path must be in
--- Sequential containers), else x' = x.
function scores.mahalanobis(model, x, fit, opts)
  opts = opts_of(opts, "mahalanobis")
  if type(fit) ~= "table" or not fit.means then
    error("scores.mahalanobis: fit must come from scores.mahalanobis_fit", 2)
  end
  local eps = opts.eps or 0
  if type(eps) ~= "number" or eps < 0 then
    error("scores.mahalanobis: eps must be a number >= 0, got " .. tostring(eps), 2)
  end
  local m = module_of(model)
  return in_eval(m, function()
    local _, M = scores.mahalanobis_point(m, x, fit, eps)
    return M:max(2)
  end)
end

-- The gradient (n, D) of each row's distance to its closest class, 0.5 (phi - mu_c)' P (phi - mu_c),
-- with respect to phi (a tie between classes: their average).
local function distance_grad(phi, M, fit)
  local closest = M:eq(M:max(2, true))
  closest = closest / closest:sum(2, true)
  return (phi - closest:matmul(fit.means)):matmul(fit.precision)
end

-- The input gradient from the gradient g (n, D) of the features of the model's last forward at x.
function scores.features_to_input(m, x, fit, shape, g)
  if #shape == 4 then   -- back through the spatial mean
    g = (g:view({shape[1], shape[2], 1, 1}) + core.zeros(shape):to(x:device())) / (shape[3] * shape[4])
  end
  return back_to_input(m, x, fit.layer, g)
end

-- Mahalanobis' preprocessed point x' (x itself when eps = 0) and there the class terms M (n, K),
-- the features (n, D), their layer's output shape and, with want_grad, the gradient (n, D) of
-- max_c M_c with respect to the features (the model's last forward is at x').
function scores.mahalanobis_point(m, x, fit, eps, want_grad)
  m:forward(x)
  local phi, shape = features_at(m, fit.layer)
  local M = class_terms(phi, fit)
  if eps > 0 then
    x = step_against(x, scores.features_to_input(m, x, fit, shape, distance_grad(phi, M, fit)), eps)
    m:forward(x)
    phi, shape = features_at(m, fit.layer)
    M = class_terms(phi, fit)
  end
  return x, M, phi, shape, want_grad and distance_grad(phi, M, fit) * -1 or nil
end

return scores
