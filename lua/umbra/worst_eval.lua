-- umbra.worst_eval: the worst-case part of recipes/evaluate.lua (docs/worst-case.md): on the
-- first n noise points, the per-point most confident point of an attack ensemble (--attack)
-- and certified upper bounds on the confidence for each --certify eps, stored in eval.h5 as
--   /noise_worst/{probs, labels, winner, clean_conf}   (winner indexes attr worst_names)
--   /noise_bound_<k>/{bound, labels}                     (k = 1, 2, ...; attr bound_eps_<k>)
-- with the check that no attacked point exceeds its bound at the attack's eps.
local umbra = require "umbra"
local attack = require "umbra.attack"
local certify = require "umbra.certify"
local eval = require "umbra.eval"

local worst_eval = {}

--- worst_eval.run(model, batches, opts, store, attrs): batches, a list of noise batches (the
--- first opts.n points are used); opts: attack (preset name or nil), certify (list of eps),
--- eps, seed, conf_in (clean test confidences, for the sandwich check), progress(name, done,
--- total). store(group, field, tensor) records a tensor; attrs receives the attributes.
function worst_eval.run(model, batches, opts, store, attrs)
  local zs, done = {}, 0
  for _, z in ipairs(batches) do
    if done >= opts.n then break end
    if done + z:size(1) > opts.n then z = z:narrow(1, 1, opts.n - done):contiguous() end
    zs[#zs + 1] = z
    done = done + z:size(1)
  end
  local n = done
  local parts = {probs = {}, winner = {}, clean = {}, bounds = {}}
  local escapes, names = 0, nil
  for k = 1, #opts.certify do parts.bounds[k] = {} end
  done = 0
  for _, z in ipairs(zs) do
    model:evaluate()
    parts.clean[#parts.clean + 1] = eval.max_conf(model:forward(z):softmax(2))
    if opts.attack then
      local _, pts, win, rep = attack.worst_case(model, z, {eps = opts.eps, ensemble = opts.attack, seed = opts.seed})
      model:evaluate()
      parts.probs[#parts.probs + 1] = model:forward(pts:to(z:device())):softmax(2):to("cpu")
      parts.winner[#parts.winner + 1] = win
      names = rep.names
      for _, e in pairs(rep.escapes) do escapes = escapes + e end
    end
    for k, eps in ipairs(opts.certify) do
      parts.bounds[k][#parts.bounds[k] + 1] = (certify.confidence_bound(model, z, eps)):to("cpu")
    end
    done = done + z:size(1)
    if opts.progress then opts.progress("worst case", done, n) end
  end
  local clean = umbra.cat(parts.clean, 1)
  local zeros = umbra.zeros({n}, "int64")
  local attacked
  if opts.attack then
    local probs = umbra.cat(parts.probs, 1)
    store("noise_worst", "probs", probs)
    store("noise_worst", "labels", zeros)
    store("noise_worst", "winner", umbra.cat(parts.winner, 1))
    store("noise_worst", "clean_conf", clean)
    attrs.worst_attack = opts.attack
    attrs.worst_names = table.concat(names, ",")
    attrs.worst_escapes = escapes
    attacked = eval.max_conf(probs)
  end
  for k, eps in ipairs(opts.certify) do
    local bound = umbra.cat(parts.bounds[k], 1)
    store("noise_bound_" .. k, "bound", bound)
    store("noise_bound_" .. k, "labels", zeros)
    attrs["bound_eps_" .. k] = eps
    if attacked and math.abs(eps - opts.eps) < 1e-12 then
      -- every attacked point at or below its bound (float32 rounding allowed), else an error
      eval.sandwich(opts.conf_in, {clean = clean, attack = attacked, bound = bound, tol = 1e-5})
    end
  end
  attrs.worst_n = n
  return n
end

return worst_eval
