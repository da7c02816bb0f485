-- umbra.good: GOOD's out-distribution loss (Bitterwolf, Meinke, Hein 2020; docs/good-and-scores.md):
-- certified low confidence on an l-inf ball around out-distribution points, trained on the
-- interval bound of the logit differences.
--   good.bound_loss(ud [, weights]) -> values (n), m (n), gud: m_i = max_{k,l} ud[i,k,l] (>= 0, the
--     diagonal is 0), values log(1 + m^2/2) (L_CUB), gud the gradient of sum_i w_i values_i over ud
--   good.spread_loss(logits [, weights]) -> values (n), grad: log(1 + s^2/2) with s = max_k f_k -
--     min_k f_k (L_CUB at eps = 0), grad of sum_i w_i values_i over the logits
--   good.split(m, q) -> in_bound (table of booleans), n_bound: the floor(n q) examples with the
--     smallest m take the bound loss, the others the spread loss (GOOD_q; q = 1 is GOOD_100)
--   good.ramp(value, start, length) -> function(e): value * clamp((e - start) / length, 0, 1), or
--     value * [e >= start] when length is 0; e counts epochs from 0 as GOOD's code does
--   good.out_pass(model, z, opts, epoch) -> the bound part of a training step (see train.lua)
local umbra = require "umbra"
local core = require "umbra.core"
local nn = require "umbra.nn"

local good = {}

local function module_of(model) return nn.is_module(model) and model or model.core end

-- per-example coefficients (n, 1) as a tensor on the device of `like`
local function weights_of(w, n, like)
  if w == nil then w = 1 end
  if type(w) == "number" then return umbra.full({n, 1}, w):to(like:device()) end
  assert(w:numel() == n, "good: expected " .. n .. " weights, got " .. w:numel())
  return w:view(n, 1)
end

-- the rows' maxima (n, 1) and the unit gradient of each row's max: 1/ties at the arg-max
local function row_max_grad(t)
  local mx = t:max(2, true)
  local mask = t:eq(mx)
  return mx, mask / mask:sum(2, true)
end

-- log(1 + v^2/2) and its derivative v / (1 + v^2/2)
local function cub(v)
  local q = v:square() * 0.5 + 1
  return q:log(), v / q
end

function good.bound_loss(ud, weights)
  assert(ud:dim() == 3 and ud:size(2) == ud:size(3), "good.bound_loss: expected ud (n, K, K)")
  local n, k = ud:size(1), ud:size(2)
  local flat = ud:contiguous():view(n, k * k)
  local m, unit = row_max_grad(flat)
  local values, dv = cub(m)
  local gud = (unit * (dv * weights_of(weights, n, ud))):view(n, k, k)
  return values:view(n), m:view(n), gud
end

function good.spread_loss(logits, weights)
  assert(logits:dim() == 2, "good.spread_loss: expected logits (n, K)")
  local n = logits:size(1)
  local hi, ghi = row_max_grad(logits)
  local lo, glo = row_max_grad(-logits)   -- min f = -max(-f); d(min)/df = glo
  local values, dv = cub(hi + lo)
  return values:view(n), (ghi - glo) * (dv * weights_of(weights, n, logits))
end

function good.split(m, q)
  assert(type(q) == "number" and q >= 0 and q <= 1, "good: quantile must be in [0, 1], got " .. tostring(q))
  local v = m:to_table()
  local order = {}
  for i = 1, #v do order[i] = i end
  table.sort(order, function(a, b) return v[a] < v[b] or (v[a] == v[b] and a < b) end)
  local n_bound = math.floor(#v * q + 1e-9)
  local in_bound = {}
  for i = 1, #v do in_bound[i] = false end
  for r = 1, n_bound do in_bound[order[r]] = true end
  return in_bound, n_bound
end

function good.ramp(value, start, length)
  assert(type(value) == "number" and type(start) == "number" and type(length) == "number" and length >= 0,
         "good.ramp: expected value, start and length >= 0 as numbers")
  return function(e)
    if length == 0 then return e >= start and value or 0 end
    return value * math.min(math.max(e - start, 0) / length, 1)
  end
end

local function at(v, e) return type(v) == "function" and v(e) or v end

--- part = good.out_pass(model, z, opts, epoch, scale): the bound half of GOOD's out loss on the
--- noise z, run before the step's forward (it adds parameter gradients: zero them first).
--- opts: eps, weight (numbers or functions of GOOD's 0-based epoch e), quantile (1), clip
--- (false: GOOD trains on the unclipped box), epoch_progress (when set, the fractional 0-based
--- epoch the ramps are read at instead of epoch - 1: ramps per step rather than GOOD's per
--- epoch). scale multiplies the weight (1 / the global noise count). Returns {weight =, eps =,
--- loss_bound = sum of L_CUB over the bound part, bound_mask = (n) 1 where the bound loss
--- applies, n_bound =, m_mean =}.
function good.out_pass(model, z, opts, epoch, scale)
  local e = opts.epoch_progress or (epoch or 1) - 1
  local weight, eps = at(opts.weight, e), at(opts.eps, e)
  local n = z:size(1)
  local part = {weight = weight, eps = eps, loss_bound = 0, n_bound = 0}
  if weight <= 0 then return part end
  if eps > 0 then
    local tape, ud = core.bound_tape(module_of(model), z, eps, opts.clip or false)
    local k = ud:size(2)
    local m = ud:view(n, k * k):max(2)   -- the split needs only the bounds; the loss is taken once
    local in_bound, n_bound = good.split(m, opts.quantile or 1)
    local w = {}
    for i = 1, n do w[i] = in_bound[i] and weight * scale or 0 end
    local values, _, gud = good.bound_loss(ud, umbra.tensor(w):to(z:device()))
    if n_bound > 0 then
      tape:backward(gud)
      nn.note_backward()
    end
    tape:free()
    local mask = {}
    for i = 1, n do mask[i] = in_bound[i] and 1 or 0 end
    part.bound_mask = umbra.tensor(mask):to(z:device())
    part.loss_bound = (values * part.bound_mask):sum()
    part.n_bound = n_bound
    part.m_mean = m:mean()
  end
  return part
end

return good
