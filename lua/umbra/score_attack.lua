-- umbra.score_attack: attacks on a post-hoc score itself (docs/good-and-scores.md). A score
-- becomes a module whose output (n, 1) is the score and whose backward is its input gradient,
-- so PGD, APGD, MPGD and attack.worst_case maximise it through their Lua objective:
--   score_attack.head(model, name, opts) -> that module; score_attack.objective (its objective);
--   score_attack.worst_case(model, name, z, opts) -> the per-point highest score over an ensemble.
-- ODIN and Mahalanobis with eps > 0 are attacked through their input preprocessing: the step
-- eps * sign(g) is constant in x wherever no sign flips, so the input gradient of the score is
-- the gradient of the plain score at the preprocessed point (exact almost everywhere).
local umbra = require "umbra"
local nn = require "umbra.nn"
local scores = require "umbra.scores"
local attack = require "umbra.attack"

local score_attack = {}

local function module_of(model) return nn.is_module(model) and model or model.core end

-- The gradient of max_k p_k, p = softmax(z / T), with respect to z (a tie: the average of the
-- tied classes' gradients).
local function msp_grad(z, T)
  local p = (z / T):softmax(2)
  local top = p:max(2, true)
  local onehot = p:eq(top)
  onehot = onehot / onehot:sum(2, true)
  return (onehot - p) * top / T, top
end

local ScoreHead = nn.Module:extend("ScoreHead")

function ScoreHead:init(model, name, opts)
  self.inner_model, self.score_name, self.score_opts = model, name, opts
end

-- The score of each row (n, 1); keeps the point where the model last ran and the gradient
-- of the score there, with respect to the logits (or, for Mahalanobis, the features).
function ScoreHead:forward(x)
  local m, o, name = self.inner_model, self.score_opts, self.score_name
  m:evaluate()
  local n = x:size(1)
  if name == "mahalanobis" then
    local at, M, _, shape, g = scores.mahalanobis_point(m, x, o.fit, o.maha_eps or 0, true)
    self.at_point, self.feature_shape, self.dscore = at, shape, g
    return M:max(2):view({n, 1})
  end
  local at, z = x
  if name == "odin" then at, z = scores.odin_point(m, x, o.odin_T or 1000, o.odin_eps or 0.0014)
  else z = m:forward(x) end
  self.at_point = at
  local s
  if name == "msp" then self.dscore, s = msp_grad(z, 1)
  elseif name == "odin" then self.dscore, s = msp_grad(z, o.odin_T or 1000)
  elseif name == "maxlogit" then
    s = z:max(2, true)
    local onehot = z:eq(s)
    self.dscore = onehot / onehot:sum(2, true)
  elseif name == "energy" then
    local T = o.T or 1
    s = scores.energy(z, T):view({n, 1})
    self.dscore = (z / T):softmax(2)
  else
    error("score_attack: unknown score '" .. tostring(name) .. "' (known: " .. table.concat(scores.names, ",") .. ")")
  end
  return s:view({n, 1})
end

function ScoreHead:backward(_, gy, want_input_grad)
  if not want_input_grad then return nil end
  local m, g = self.inner_model, self.dscore * gy
  if self.score_name == "mahalanobis" then
    return scores.features_to_input(m, self.at_point, self.score_opts.fit, self.feature_shape, g)
  end
  return m:backward_input(self.at_point, g)
end

--- score_attack.head(model, name [, opts]) -> a module whose output (n, 1) is the score name
--- (msp, maxlogit, energy, odin, mahalanobis) of model at its input, with the score's input
--- gradient as its backward. opts: T (Energy), odin_T, odin_eps, fit (Mahalanobis, from
--- scores.mahalanobis_fit), maha_eps. The model runs in evaluation mode.
function score_attack.head(model, name, opts)
  opts = opts or {}
  local known = false
  for _, n in ipairs(scores.names) do known = known or n == name end
  if not known then
    error(string.format("score_attack.head: unknown score '%s' (known: %s)", tostring(name),
                        table.concat(scores.names, ",")), 2)
  end
  if name == "mahalanobis" and (type(opts.fit) ~= "table" or not opts.fit.means) then
    error("score_attack.head: mahalanobis needs opts.fit (scores.mahalanobis_fit)", 2)
  end
  return ScoreHead(module_of(model), name, opts)
end

--- score_attack.objective(out) -> values (n), gradient (n, 1) of their sum: the attacks'
--- objective for a head, the score itself.
function score_attack.objective(out)
  local n = out:size(1)
  local ones = umbra.ones({n, 1})
  return out:reshape({n}), out:device() == "cpu" and ones or ones:to(out:device())
end

-- the score of each row of x (host vector), the head's mode restored
local function value(head, x)
  return head:forward(x):reshape({x:size(1)}):to("cpu"):clone()
end

--- score_attack.worst_case(model, name, z, opts) -> values (n), points, winner (n), report:
--- attack.worst_case with the score as the objective of every member and as the value
--- compared: per point the highest score over the clean point and the ensemble's results.
--- opts: those of attack.worst_case (eps, ensemble, seed, ...) and of score_attack.head.
function score_attack.worst_case(model, name, z, opts)
  opts = opts or {}
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.objective, o.value = score_attack.objective, value
  return attack.worst_case(score_attack.head(model, name, opts), z, o)
end

return score_attack
