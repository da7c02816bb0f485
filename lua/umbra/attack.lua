-- umbra.attack: projected gradient ascent on the input (core/ood/pgd.c, docs/method.md §5).
--   attack.pgd(model, x, opts) -> x_adv, objective (per-example values at x_adv)
-- opts: eps (0.3), step (eps/steps), steps (40), objective ("max_conf" | "uniform_conf" |
-- "ce" | a function), labels (class labels 1..K, for "ce"), norm ("inf" | 2), random_start
-- (true), generator (needed for the random start). These are PGD's defaults, here and
-- nowhere else. The whole attack runs in C with the model in evaluation mode; the model's
-- mode, parameters, gradients and statistics are unchanged. A function objective is
-- called as objective(logits) and returns the per-example values (n) and the gradient of
-- their sum with respect to the logits (n, k): the attack maximises each value.
local core = require "umbra.core"
local nn = require "umbra.nn"

local attack = {}

local objectives = {max_conf = true, uniform_conf = true, ce = true}

function attack.pgd(model, x, opts)
  opts = opts or {}
  local objective = opts.objective or "max_conf"
  if type(objective) ~= "function" and not objectives[objective] then
    error("attack.pgd: objective must be 'max_conf', 'uniform_conf', 'ce' or a function, got "
          .. tostring(objective), 2)
  end
  local steps = opts.steps or 40
  if math.type(steps) ~= "integer" or steps < 0 then error("attack.pgd: steps must be an integer >= 0", 2) end
  local eps = opts.eps or 0.3
  if type(eps) ~= "number" then error("attack.pgd: eps must be a number", 2) end
  local step = opts.step or (steps > 0 and eps / steps or 0)
  if type(step) ~= "number" then error("attack.pgd: step must be a number", 2) end
  local norm = opts.norm or "inf"
  if norm ~= "inf" and norm ~= 2 and norm ~= math.huge then error("attack.pgd: norm must be 'inf' or 2", 2) end
  local random_start = opts.random_start ~= false
  if objective == "ce" and not opts.labels then error("attack.pgd: the 'ce' objective needs opts.labels", 2) end
  if random_start and not opts.generator then
    error("attack.pgd: the random start needs opts.generator (umbra.Generator(seed)), or random_start = false", 2)
  end
  -- a C module, or a Lua table that wraps one as .core
  local module = nn.is_module(model) and model or model.core
  return core.pgd(module, x, {
    objective = objective, eps = eps, step = step, steps = steps,
    norm = (norm == 2) and 2 or 0, random_start = random_start,
    labels = opts.labels, generator = opts.generator,
  })
end

-- APGD, Monotone PGD and attack.worst_case (lua/umbra/attack_ensemble.lua)
require("umbra.attack_ensemble")(attack)

return attack
