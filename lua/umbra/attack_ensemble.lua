-- APGD, Monotone PGD and the worst case over an ensemble of attacks, added to umbra.attack
-- (core/ood/apgd.c, mpgd.c; docs/worst-case.md).
--   attack.apgd(model, x, opts) -> x_best, values, stats {escapes, forwards}
--     opts: eps (0.3), norm ("inf" | 2), steps (100), restarts (1), rho (0.75),
--     momentum (0.75), objective ("max_conf", "uniform_conf", "ce" or a function of the
--     model's output, as attack.pgd's), labels (for "ce"), escape_after (0: off),
--     generator (required: the uniform starts).
--   attack.mpgd(model, x, opts) -> x_best, values, stats
--     opts: eps (0.3), norm, steps (200), step (0.1), momentum (0.9), start ("uniform" |
--     "gaussian" | "contrast" | "clean"), sigma (1e-4), objective, labels, escape_after,
--     generator.
--   attack.worst_case(model, z, opts) -> conf (n), points, winner (n), report
--     The per-example most confident point over an ensemble (clean z included): conf is the
--     max softmax confidence at the returned point, recomputed by a forward pass; winner[i]
--     indexes report.names (1 = "clean"); report.escapes[name] counts the zero-gradient
--     escapes of each member, report.conf[name] holds its values (n: confidences, or opts.value's)
--     and report.mean[name] their mean. opts: eps (0.3), ensemble ("paper" | "worst3" | "suite" | a
--     list of member specs {kind = "pgd" | "apgd" | "mpgd", name = ..., <its opts>}), seed
--     (0: member i draws from umbra.Generator(seed + i), so a preset that extends another
--     repeats its members' results exactly), escape_after (10, for APGD and MPGD members),
--     apgd_steps (100), apgd_restarts (1), mpgd_steps (200), objective (every member's, default
--     "max_conf"; a member's own wins), value (function(model, x) -> per-example values on the
--     host, compared in place of the max softmax confidence; lua/umbra/score_attack.lua).
local umbra = require "umbra"
local core = require "umbra.core"
local nn = require "umbra.nn"
local eval = require "umbra.eval"

local function module_of(model) return nn.is_module(model) and model or model.core end

local function norm_code(norm, who)
  if norm == nil or norm == "inf" or norm == math.huge then return 0 end
  if norm == 2 then return 2 end
  error(who .. ": norm must be 'inf' or 2, got " .. tostring(norm), 3)
end

local function need_generator(opts, who)
  if not opts.generator then error(who .. ": needs opts.generator (umbra.Generator(seed))", 3) end
end

return function(attack)
  function attack.apgd(model, x, opts)
    opts = opts or {}
    need_generator(opts, "attack.apgd")
    return core.apgd(module_of(model), x, {
      objective = opts.objective or "max_conf", eps = opts.eps or 0.3, norm = norm_code(opts.norm, "attack.apgd"),
      steps = opts.steps or 100, restarts = opts.restarts or 1, rho = opts.rho or 0.75,
      momentum = opts.momentum or 0.75, escape_after = opts.escape_after or 0,
      generator = opts.generator, labels = opts.labels,
    })
  end

  function attack.mpgd(model, x, opts)
    opts = opts or {}
    local start = opts.start or "uniform"
    if start == "uniform" or start == "gaussian" or (opts.escape_after or 0) > 0 then
      need_generator(opts, "attack.mpgd")
    end
    return core.mpgd(module_of(model), x, {
      objective = opts.objective or "max_conf", eps = opts.eps or 0.3, norm = norm_code(opts.norm, "attack.mpgd"),
      steps = opts.steps or 200, step = opts.step or 0.1, momentum = opts.momentum or 0.9, start = start,
      sigma = opts.sigma or 1e-4, escape_after = opts.escape_after or 0,
      generator = opts.generator, labels = opts.labels,
    })
  end

  --- The preset ensembles {paper, worst3, suite} as member lists (opts: apgd_steps,
  --- apgd_restarts, mpgd_steps); the suite's first three members are worst3's.
  function attack.ensemble_presets(opts)
    local paper = {{kind = "pgd", name = "pgd 80x0.02", steps = 80, step = 0.02}}
    local worst3 = {paper[1], {kind = "pgd", name = "pgd 200x0.0375", steps = 200, step = 0.0375},
                    {kind = "pgd", name = "pgd 500x0.0006", steps = 500, step = 0.0006}}
    local suite = {worst3[1], worst3[2], worst3[3],
      {kind = "apgd", name = "apgd", steps = opts.apgd_steps or 100, restarts = opts.apgd_restarts or 1},
      {kind = "mpgd", name = "mpgd contrast", start = "contrast", steps = opts.mpgd_steps or 200},
      {kind = "mpgd", name = "mpgd uniform", start = "uniform", steps = opts.mpgd_steps or 200},
      {kind = "mpgd", name = "mpgd gaussian", start = "gaussian", steps = opts.mpgd_steps or 200}}
    return {paper = paper, worst3 = worst3, suite = suite}
  end

  -- max softmax confidence of each row of x, in evaluation mode (the mode restored)
  local function confidence(model, x)
    local was = model:is_training()
    model:evaluate()
    local ok, p = pcall(function() return eval.max_conf(model:forward(x):softmax(2)) end)
    if was then model:train() end
    if not ok then error(p, 0) end
    return p
  end

  function attack.worst_case(model, z, opts)
    opts = opts or {}
    local members = opts.ensemble or "suite"
    if type(members) == "string" then
      local p = attack.ensemble_presets(opts)[members]
      if not p then
        error("attack.worst_case: ensemble must be 'paper', 'worst3', 'suite' or a list, got " .. members, 2)
      end
      members = p
    end
    local eps, seed = opts.eps or 0.3, opts.seed or 0
    local n = z:size(1)
    local value = opts.value or confidence
    local best = value(model, z):clone()
    local points = z:clone()
    local winner = umbra.ones({n}, "int64")
    local report = {names = {"clean"}, escapes = {}, mean = {}, conf = {}}
    for i, m in ipairs(members) do
      local name = m.name or (m.kind .. " " .. i)
      report.names[#report.names + 1] = name
      local o = {}
      for k, v in pairs(m) do o[k] = v end
      o.kind, o.name = nil, nil
      o.eps, o.generator = o.eps or eps, umbra.Generator(seed + i)
      o.objective = o.objective or opts.objective or "max_conf"
      local x, stats
      if m.kind == "pgd" then
        x = attack.pgd(model, z, o)
      elseif m.kind == "apgd" or m.kind == "mpgd" then
        o.escape_after = o.escape_after or opts.escape_after or 10
        local _
        x, _, stats = attack[m.kind](model, z, o)
      else
        error(string.format("attack.worst_case: member %d has kind %s, expected pgd, apgd or mpgd",
                            i, tostring(m.kind)), 2)
      end
      report.escapes[name] = stats and stats.escapes or 0
      local c = value(model, x)
      report.mean[name] = opts.value and c:mean() or eval.mmc(c)
      report.conf[name] = c
      local host_x = x:device() == "cpu" and x or x:to("cpu")
      for k = 1, n do
        if c[k] > best[k] then   -- strictly: an earlier member keeps a tie
          best[k] = c[k]
          winner[k] = #report.names
          points[k]:copy_(host_x[k])
        end
      end
    end
    return best, points, winner, report
  end
end
