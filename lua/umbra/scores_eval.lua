-- umbra.scores_eval: the post-hoc scores (umbra.scores) inside recipes/evaluate.lua
-- --scores: parse the list, fit Mahalanobis (on training images, or on a held-out part of
-- the test set where the data set has no training split), and score a batch with every
-- requested score at once as the columns of an (n, S) matrix, so evaluate's batch loops
-- (and their gathering across ranks) carry them like softmax outputs.
local umbra = require "umbra"
local scores = require "umbra.scores"

local scores_eval = {}

--- scores_eval.parse("msp,energy") -> list of score names | nil, message
function scores_eval.parse(list)
  local known = {}
  for _, n in ipairs(scores.names) do known[n] = true end
  local out, seen = {}, {}
  for name in list:gmatch("[^,]+") do
    if not known[name] then
      return nil, string.format("--scores: unknown score '%s' (known: %s)", name, table.concat(scores.names, ","))
    end
    if not seen[name] then out[#out + 1] = name; seen[name] = true end
  end
  if #out == 0 then return nil, "--scores: expected a comma-separated list of " .. table.concat(scores.names, ",") end
  return out
end

--- scores_eval.penultimate(model) -> the path of the input of the model's last layer (a
--- Sequential's last child): the child before it, e.g. "relu3" in LeNet
function scores_eval.penultimate(model)
  local m = umbra.nn.is_module(model) and model or model.core
  local n = #m
  if m:type() ~= "Sequential" or n < 2 then
    error("scores: cannot guess the penultimate layer of a " .. m:type() .. "; pass --mahalanobis_layer", 2)
  end
  return m:child_name(n - 1)
end

-- The first n images and labels of a data set, as one batch on the device.
local function first_images(ds, n, device)
  local xs, ys, got = {}, {}, 0
  for x, y in ds:batches{batch_size = 256, device = device} do
    if got >= n then break end
    local k = math.min(x:size(1), n - got)
    xs[#xs + 1], ys[#ys + 1] = x:narrow(1, 1, k):contiguous(), y:narrow(1, 1, k):contiguous()
    got = got + k
  end
  return umbra.cat(xs, 1), umbra.cat(ys, 1)
end

--- scores_eval.fit(model, opts) -> fit, description. opts: train (a data set or nil), test,
--- n (images to fit on), holdout (test images held out when train is nil), layer,
--- num_classes, device. description says what the fit used; fit.holdout = rows of the test
--- set that were used for the fit (0 when a training set was used).
function scores_eval.fit(model, opts)
  local src, n, what = opts.train, opts.n
  if src then
    n = math.min(n, src:size())
    what = string.format("Mahalanobis fitted on the first %d training images (layer %s)", n, opts.layer)
  else
    src, n = opts.test, math.min(opts.holdout, opts.test:size() - 1)
    what = string.format("Mahalanobis fitted on the first %d test images, held out from every score's "
                         .. "in-distribution set (no training set present; layer %s)", n, opts.layer)
  end
  local x, y = first_images(src, n, opts.device)
  local fit = scores.mahalanobis_fit(model, x, y, {layer = opts.layer, num_classes = opts.num_classes})
  fit.holdout = opts.train and 0 or n
  if fit.ridge > 0 then
    what = what .. string.format("; covariance singular: ridge %g x its mean variance", fit.ridge)
  end
  return fit, what
end

--- scores_eval.scorer(model, names, opts) -> function(x) -> (n, #names) float32, the scores
--- as columns in the order of names. opts: T (energy), odin_T, odin_eps, maha_eps, fit.
function scores_eval.scorer(model, names, opts)
  return function(x)
    model:evaluate()
    local z = model:forward(x)
    local cols = {}
    for i, name in ipairs(names) do
      local s
      if name == "msp" then s = scores.msp(z)
      elseif name == "maxlogit" then s = scores.maxlogit(z)
      elseif name == "energy" then s = scores.energy(z, opts.T)
      elseif name == "odin" then s = scores.odin(model, x, {T = opts.odin_T, eps = opts.odin_eps})
      else s = scores.mahalanobis(model, x, opts.fit, {eps = opts.maha_eps}) end
      cols[i] = s:unsqueeze(2)
    end
    return umbra.cat(cols, 2)
  end
end

--- scores_eval.attacked(model, names, opts) -> function(z) -> (n, #names) float32: column j the
--- score names[j] at its worst point over the opts.ensemble attack on that score itself
--- (umbra.score_attack.worst_case; the clean point included). opts: those of scorer, and
--- ensemble, eps, seed.
function scores_eval.attacked(model, names, opts)
  local score_attack = require "umbra.score_attack"
  return function(z)
    local cols = {}
    for i, name in ipairs(names) do
      cols[i] = score_attack.worst_case(model, name, z, opts):unsqueeze(2)
    end
    return umbra.cat(cols, 2)
  end
end

--- scores_eval.store(put, names, set, matrix [, skip]): column j of matrix (n, S) as
--- scores/<names[j]>/<set>, without its first skip rows (the held-out fit images).
function scores_eval.store(put, names, set, m, skip)
  skip = skip or 0
  for j, name in ipairs(names) do
    local col = m:select(2, j)
    if skip > 0 then col = col:narrow(1, skip + 1, col:size(1) - skip) end
    put("scores/" .. name .. "/" .. set, col:contiguous())
  end
end

return scores_eval
