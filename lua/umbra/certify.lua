-- umbra.certify: certified upper bounds on a model's confidence over an l-inf ball
-- (interval bound propagation, core/ood/ibp.c; docs/worst-case.md).
--   certify.confidence_bound(model, z, eps) -> bound (n), logit_diff (n, K, K)
-- bound[i] >= the max softmax confidence of every x with |x - z_i|_inf <= eps, x in [0,1]^d;
-- logit_diff[i][k][j] >= logit k - logit j over the same set (0 on the diagonal). eps may also
-- be a list: the result is then a list of bounds and a list of logit differences, one per eps.
-- The model runs in evaluation mode (its mode is restored) and must end in a Linear layer;
-- a module without a bound rule is named in the error.
local core = require "umbra.core"
local nn = require "umbra.nn"

local certify = {}

local function one(module, z, eps)
  if type(eps) ~= "number" or eps < 0 then
    error("certify.confidence_bound: eps must be a number >= 0, got " .. tostring(eps), 3)
  end
  return core.certify_confidence(module, z, eps)
end

function certify.confidence_bound(model, z, eps)
  -- a C module, or a Lua table that wraps one as .core
  local module = nn.is_module(model) and model or model.core
  if type(eps) ~= "table" then return one(module, z, eps) end
  local bounds, diffs = {}, {}
  for i, e in ipairs(eps) do bounds[i], diffs[i] = one(module, z, e) end
  return bounds, diffs
end

return certify
