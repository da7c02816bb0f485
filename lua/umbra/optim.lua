-- umbra.optim: SGD with momentum and Adam in TensorFlow's forms (fused C steps, see
-- core/nn/optim.h), the paper's weight decay, and learning-rate schedules. An optimiser
-- takes the list from model:parameters() (which carries .grads), so
--   local opt = optim.SGD(model:parameters(), {lr = 0.1, momentum = 0.9})
--   model:zero_grad(); ...backward...; optim.weight_decay(decayed, 5e-4); opt:step()
-- opt.lr may be changed between steps (opt.lr = schedule(opt:steps())).
local core = require "umbra.core"

local C = core.optim_core
local optim = {}

local Optimizer = {}
Optimizer.__index = function(self, key)
  if key == "lr" then return self._c:get().lr end
  return Optimizer[key]
end
Optimizer.__newindex = function(self, key, value)
  if key == "lr" then
    if type(value) ~= "number" or value < 0 then error("lr must be a non-negative number", 2) end
    self._c:set{lr = value}
    return
  end
  rawset(self, key, value)
end
Optimizer.__tostring = function(self)
  local g = self._c:get()
  if g.kind == "sgd" then
    return string.format("optim.SGD(lr = %g, momentum = %g, nesterov = %s; %d parameters, %d steps)", g.lr,
                         g.momentum, tostring(g.nesterov), g.n, g.step)
  end
  return string.format("optim.Adam(lr = %g, beta1 = %g, beta2 = %g, eps = %g; %d parameters, %d steps)", g.lr,
                       g.beta1, g.beta2, g.eps, g.n, g.step)
end

local function grads_of(params, who)
  if type(params) ~= "table" then error(who .. ": expected the list from model:parameters()", 3) end
  if type(params.grads) ~= "table" or #params.grads ~= #params then
    error(who .. ": the parameter list has no matching .grads (pass model:parameters(), or a table "
          .. "{p1, p2, ..., grads = {g1, g2, ...}})", 3)
  end
  return params.grads
end

local nn = require "umbra.nn"

local function new(c, params)
  return setmetatable({_c = c, params = params, _backwards = nn.backward_count()}, Optimizer)
end

--- optim.SGD(params, {lr = 0.01, momentum = 0, nesterov = false}) (TF MomentumOptimizer:
--- v = m v + g; w -= lr v; Nesterov: w -= lr (g + m v))
function optim.SGD(params, opts)
  opts = opts or {}
  return new(C.sgd(params, grads_of(params, "optim.SGD"), opts.lr or 0.01, opts.momentum or 0,
                   opts.nesterov or false), params)
end

--- optim.Adam(params, {lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-8}) (TF AdamOptimizer)
function optim.Adam(params, opts)
  opts = opts or {}
  return new(C.adam(params, grads_of(params, "optim.Adam"), opts.lr or 0.001, opts.beta1 or 0.9,
                    opts.beta2 or 0.999, opts.eps or 1e-8), params)
end

--- opt:step() applies one update with the current gradients. A step with no
--- model:backward since the last one (or since the optimiser was made) warns once: the
--- gradients it applies are stale or zero. A gradient holding NaN or infinity is an
--- error naming the parameter and the count, raised before any parameter is changed.
function Optimizer:step()
  local count = nn.backward_count()
  if count == self._backwards and not self._warned then
    rawset(self, "_warned", true)
    io.stderr:write("umbra: warning: opt:step() with no model:backward() since the last step; it applies "
               .. "the same (or zero) gradients again. Each step: model:zero_grad(), forward, "
               .. "criterion backward, model:backward(x, grad), opt:step()\n")
  end
  rawset(self, "_backwards", count)
  local ok, err = pcall(self._c.step, self._c)
  if not ok then
    -- a non-finite gradient: name the parameter when the list carries names
    local bad = self._c:get().bad_param
    local name = bad > 0 and type(self.params.names) == "table" and self.params.names[bad]
    if name then err = tostring(err):gsub("gradient %d+ of %d+", "the gradient of " .. name, 1) end
    error(err, 2)
  end
end

--- opt:steps() -> number of steps taken (TF's global step for this optimiser)
function Optimizer:steps() return self._c:get().step end

--- opt:state() -> {kind=, lr=, step=, slots = {name = {tensor per parameter}}} (copies)
function Optimizer:state()
  local g = self._c:get()
  local st = {kind = g.kind, lr = g.lr, step = g.step, slots = {}}
  for _, name in ipairs(g.slots) do
    local list = {}
    for i = 1, g.n do list[i] = self._c:slot(name, i) end
    st.slots[name] = list
  end
  return st
end

--- opt:set_state(st): restore what opt:state() returned (same parameters, same shapes)
function Optimizer:set_state(st)
  local g = self._c:get()
  if st.kind and st.kind ~= g.kind then
    error(string.format("set_state: state of a %s optimizer given to a %s one", st.kind, g.kind), 2)
  end
  for _, name in ipairs(g.slots) do
    local list = st.slots and st.slots[name]
    if list == nil then error("set_state: slot '" .. name .. "' is missing", 2) end
    if #list ~= g.n then
      error(string.format("set_state: slot '%s' has %d tensors for %d parameters", name, #list, g.n), 2)
    end
    for i = 1, g.n do self._c:set_slot(name, i, list[i]) end
  end
  self._c:set{lr = st.lr, step = st.step}
  return self
end

--- optim.weight_decay(params, lambda) -> penalty: adds 2 lambda w to each gradient of
--- params (a list with .grads, e.g. model:parameters(filter)) and returns lambda * sum w^2,
--- the paper's penalty (no 1/2), to be added to the reported loss.
function optim.weight_decay(params, lambda)
  return C.weight_decay(params, grads_of(params, "optim.weight_decay"), lambda)
end

--- optim.piecewise_constant(boundaries, values) -> function(step) -> value, as TF's
--- piecewise_constant: values[1] while step <= boundaries[1], values[2] while step <=
--- boundaries[2], ..., values[#boundaries + 1] after the last boundary.
function optim.piecewise_constant(boundaries, values)
  if #values ~= #boundaries + 1 then
    error(string.format("piecewise_constant: %d boundaries need %d values, got %d", #boundaries,
                        #boundaries + 1, #values), 2)
  end
  for i = 2, #boundaries do
    if boundaries[i] < boundaries[i - 1] then error("piecewise_constant: boundaries must increase", 2) end
  end
  return function(step)
    for i, b in ipairs(boundaries) do
      if step <= b then return values[i] end
    end
    return values[#values]
  end
end

--- optim.paper_schedule(lr, total_steps): the authors' schedule, lr times 0.1 after 50 %,
--- 75 % and 90 % of the steps (boundaries floor(0.5 T), floor(0.75 T), floor(0.9 T)).
function optim.paper_schedule(lr, total_steps)
  local b = {math.floor(0.5 * total_steps), math.floor(0.75 * total_steps), math.floor(0.9 * total_steps)}
  return optim.piecewise_constant(b, {lr, lr / 10, lr / 100, lr / 1000}), b
end

return optim
