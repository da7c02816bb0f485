-- umbra.train: one training step shared by every recipe (docs/method.md §2.5, §11.1-11.3).
-- Plain, CEDA and ACET are settings of the same procedure, as in the authors' train.py:
--   at_frac    noise examples per clean example (0 = plain)
--   pgd_niter  PGD iterations on the noise (0 = CEDA, > 0 = ACET), step pgd_eps/pgd_niter
--   loss       the noise loss: "max_conf" (log max softmax) or "uniform_conf"
-- The step: noise from the schedule, PGD on it for ACET (model in evaluation mode), one
-- forward in training mode on [noise; clean], loss (Σ CE + Σ L_out)/(n_clean + n_noise)
-- + λ Σ w² (or, with noise_weight set, mean CE + noise_weight · mean L_out + λ Σ w²),
-- backward, optimiser step.
local umbra = require "umbra"
local nn = require "umbra.nn"
local optim = require "umbra.optim"
local attack = require "umbra.attack"
local noise_mod = require "umbra.noise"

local train = {}

local Procedure = {}
Procedure.__index = Procedure

local function check_settings(s)
  assert(type(s.at_frac) == "number" and s.at_frac >= 0, "train: at_frac must be a number >= 0")
  assert(math.type(s.pgd_niter) == "integer" and s.pgd_niter >= 0, "train: pgd_niter must be an integer >= 0")
  assert(s.loss == "max_conf" or s.loss == "uniform_conf",
         "train: loss must be 'max_conf' or 'uniform_conf', got " .. tostring(s.loss))
end

--- procedure = train.Procedure(model, optimiser, settings)
--- settings: at_frac, pgd_niter, pgd_eps, pgd_step (default pgd_eps/pgd_niter), loss,
--- lmbd (weight decay λ), decay_params (list of tensors; default all parameters),
--- noise_schedule (function(ctx) -> noise; default the authors'), noise_weight (nil = the
--- code's form), generator (required), out_loss (a criterion of your own replacing loss:
--- out_loss:forward(logits) -> per-example values (n), out_loss:backward(logits) -> the
--- gradient of their sum; ACET's PGD then maximises those values).
function train.Procedure(model, optimiser, settings)
  local s = {}
  for k, v in pairs(settings or {}) do s[k] = v end
  s.at_frac = s.at_frac or 0
  s.pgd_niter = s.pgd_niter or 0
  s.pgd_eps = s.pgd_eps or 0.3
  s.loss = s.loss or "max_conf"
  s.lmbd = s.lmbd or 0
  check_settings(s)
  assert(s.generator, "train: settings.generator is required (umbra.Generator(seed))")
  local self = setmetatable({
    model = model, optimiser = optimiser, settings = s,
    schedule = s.noise_schedule or noise_mod.schedule.authors(s.noise_opts),
    decay_params = s.decay_params or model:parameters(),
    ce = nn.CrossEntropy{reduction = "sum"},
    out_loss = s.out_loss or (s.loss == "max_conf" and nn.MaxConf or nn.UniformConf){reduction = "sum"},
    step_count = 0,
  }, Procedure)
  return self
end

local function max_conf_sum(logits)
  local p = logits:softmax(2)
  return p:max(2):sum()
end

--- stats = procedure:step(x, y [, epoch]): one optimiser step on the clean batch (x, y).
--- Returns {loss=, loss_clean=, loss_out=, reg=, err=, conf_clean=, conf_noise=, n_noise=}.
function Procedure:step(x, y, epoch)
  local s, model = self.settings, self.model
  local n_clean = x:size(1)
  local n_noise = math.floor(s.at_frac * n_clean)
  self.step_count = self.step_count + 1
  local z
  if n_noise > 0 then
    z = self.schedule{step = self.step_count, epoch = epoch, clean = x, n = n_noise, generator = s.generator}
    if s.pgd_niter > 0 then
      local objective = s.loss
      if s.out_loss then
        local out = s.out_loss
        objective = function(logits) return out:forward(logits), out:backward(logits) end
      end
      z = attack.pgd(model, z, {eps = s.pgd_eps, step = s.pgd_step or s.pgd_eps / s.pgd_niter,
                                steps = s.pgd_niter, objective = objective, generator = s.generator})
    end
  end
  model:train()
  local input = z and umbra.cat({z, x}, 1) or x
  local logits = model:forward(input)
  local total = n_clean + n_noise
  local lc, gc, lo, go
  local logits_clean = n_noise > 0 and logits:narrow(1, n_noise + 1, n_clean) or logits
  lc = self.ce:forward(logits_clean, y)
  gc = self.ce:backward(logits_clean, y)
  local scale_clean, scale_noise = 1 / total, 1 / total
  if s.noise_weight then scale_clean, scale_noise = 1 / n_clean, s.noise_weight / math.max(n_noise, 1) end
  gc:mul_(scale_clean)
  local grad = gc
  lo = 0
  if n_noise > 0 then
    local logits_noise = logits:narrow(1, 1, n_noise)
    lo = self.out_loss:forward(logits_noise)
    if type(lo) ~= "number" then lo = lo:sum() end   -- a criterion of the user's: per-example values
    go = self.out_loss:backward(logits_noise)
    go:mul_(scale_noise)
    grad = umbra.cat({go, gc}, 1)
  end
  model:zero_grad()
  model:backward(input, grad, {input_grad = false})   -- the input gradient is not needed
  local reg = 0
  if s.lmbd > 0 then reg = optim.weight_decay(self.decay_params, s.lmbd) end
  self.optimiser:step()
  local loss_clean = lc * scale_clean
  local loss_out = lo * scale_noise
  local pred = logits_clean:argmax(2)
  local wrong = pred:float():ne(y:float()):sum()
  return {
    loss = loss_clean + loss_out + reg, loss_clean = loss_clean, loss_out = loss_out, reg = reg,
    err = wrong / n_clean, conf_clean = max_conf_sum(logits_clean) / n_clean,
    conf_noise = n_noise > 0 and max_conf_sum(logits:narrow(1, 1, n_noise)) / n_noise or nil,
    n_noise = n_noise,
  }
end

train.settings = {
  plain = {at_frac = 0, pgd_niter = 0},
  ceda = {at_frac = 1, pgd_niter = 0, loss = "max_conf"},
  acet = {at_frac = 1, pgd_niter = 40, pgd_eps = 0.3, loss = "max_conf"},
}

return train
