-- umbra.worst_eval: the worst-case part of recipes/evaluate.lua (docs/worst-case.md): on the
-- first n noise points, the per-point most confident point of an attack ensemble (--attack)
-- and certified upper bounds on the confidence for each --certify eps, stored in eval.h5 as
--   /noise_worst/{probs, labels, winner, clean_conf}   (winner indexes attr worst_names)
--   /noise_bound_<k>/{bound, labels}                     (k = 1, 2, ...; attr bound_eps_<k>)
-- with the check that no attacked point exceeds its bound at the attack's eps.
-- Under mpirun the batches are dealt out (batch b to rank (b - 1) mod N) and the results
-- gathered in batch order: each batch's attacks draw from generators of their own (seed +
-- member) and the bounds draw nothing, so every rank ends with the one-process numbers.
local umbra = require "umbra"
local attack = require "umbra.attack"
local certify = require "umbra.certify"
local eval = require "umbra.eval"
local dist = require "umbra.dist"

local worst_eval = {}

-- the attacks and bounds of one batch z into parts; returns the ensemble's member names
local function run_batch(model, z, opts, parts)
  local names
  model:evaluate()
  parts.clean[#parts.clean + 1] = eval.max_conf(model:forward(z):softmax(2))
  if opts.attack then
    local _, pts, win, rep = attack.worst_case(model, z, {eps = opts.eps, ensemble = opts.attack, seed = opts.seed})
    model:evaluate()
    parts.probs[#parts.probs + 1] = model:forward(pts:to(z:device())):softmax(2):to("cpu")
    parts.winner[#parts.winner + 1] = win
    names = rep.names
    for _, e in pairs(rep.escapes) do parts.escapes = parts.escapes + e end
  end
  for k, eps in ipairs(opts.certify) do
    parts.bounds[k][#parts.bounds[k] + 1] = (certify.confidence_bound(model, z, eps)):to("cpu")
  end
  return names
end

--- worst_eval.run(model, batches, opts, store, attrs): batches, a list of noise batches (the
--- first opts.n points are used); opts: attack (preset name or nil), certify (list of eps),
--- eps, seed, conf_in (clean test confidences, for the sandwich check), classes (the model's
--- outputs), progress(name, done, total). store(group, field, tensor) records a tensor;
--- attrs receives the attributes. Returns the number of points and how many of them this
--- rank attacked and bounded (all of them in one process).
function worst_eval.run(model, batches, opts, store, attrs)
  local zs, done = {}, 0
  for _, z in ipairs(batches) do
    if done >= opts.n then break end
    if done + z:size(1) > opts.n then z = z:narrow(1, 1, opts.n - done):contiguous() end
    zs[#zs + 1] = z
    done = done + z:size(1)
  end
  local n = done
  local parts = {probs = {}, winner = {}, clean = {}, bounds = {}, escapes = 0}
  local names, mine, here = nil, {}, 0
  for k = 1, #opts.certify do parts.bounds[k] = {} end
  done = 0
  for b, z in ipairs(zs) do
    if dist.owns(b) then
      names = run_batch(model, z, opts, parts) or names
      mine[#mine + 1], here = b, here + z:size(1)
    end
    done = done + z:size(1)
    if opts.progress and dist.is_main() then opts.progress("worst case", done, n) end
  end
  local function gather(list, tail) return dist.gather_batches(list, mine, tail) end
  local clean = gather(parts.clean, {})
  local zeros = umbra.zeros({n}, "int64")
  local attacked
  if opts.attack then
    local classes = opts.classes or (parts.probs[1] and parts.probs[1]:size(2))
    local probs = gather(parts.probs, {assert(classes, "worst_eval.run: opts.classes is needed on this rank")})
    store("noise_worst", "probs", probs)
    store("noise_worst", "labels", zeros)
    store("noise_worst", "winner", gather(parts.winner, {}))
    store("noise_worst", "clean_conf", clean)
    attrs.worst_attack = opts.attack
    attrs.worst_names = names and table.concat(names, ",") or ""   -- rank 0, which writes, has batch 1
    attrs.worst_escapes = math.tointeger(dist.sum_numbers({parts.escapes})[1]) or parts.escapes
    attacked = eval.max_conf(probs)
  end
  for k, eps in ipairs(opts.certify) do
    local bound = gather(parts.bounds[k], {})
    store("noise_bound_" .. k, "bound", bound)
    store("noise_bound_" .. k, "labels", zeros)
    attrs["bound_eps_" .. k] = eps
    if attacked and math.abs(eps - opts.eps) < 1e-12 then
      -- every attacked point at or below its bound (float32 rounding allowed), else an error
      eval.sandwich(opts.conf_in, {clean = clean, attack = attacked, bound = bound, tol = 1e-5})
    end
  end
  attrs.worst_n = n
  return n, here
end

return worst_eval
