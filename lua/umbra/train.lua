-- umbra.train: one training step shared by every recipe (docs/method.md §2.5, §11.1-11.3).
-- Plain, CEDA and ACET are settings of the same procedure, as in the authors' train.py:
--   at_frac    noise examples per clean example (0 = plain)
--   pgd_niter  PGD iterations on the noise (0 = CEDA, > 0 = ACET), step pgd_eps/pgd_niter
--   loss       the noise loss: "max_conf" (log max softmax) or "uniform_conf"
-- The step: noise from the schedule, PGD on it for ACET (model in evaluation mode), one
-- forward in training mode on [noise; clean], loss (Σ CE + Σ L_out)/(n_clean + n_noise)
-- + λ Σ w² (or, with noise_weight set, mean CE + noise_weight · mean L_out + λ Σ w²),
-- backward, optimiser step.
-- GOOD (settings.good, umbra.good): the noise's loss is L_CUB on the interval bound of the
-- logit differences over an eps-ball (the smallest-bound share `quantile` of the noise) and on
-- the clean logit spread (the rest), weighted mean CE + kappa_e * mean L_out, with eps_e and
-- kappa_e ramped per epoch.
-- Data parallel (settings.dist, docs/distributed.md): every rank gets the same global
-- batch and keeps its block; losses are scaled by the global counts and the gradients
-- summed over ranks in one call, so the step is the one-process step.
local umbra = require "umbra"
local nn = require "umbra.nn"
local optim = require "umbra.optim"
local attack = require "umbra.attack"
local noise_mod = require "umbra.noise"
local dist = require "umbra.dist"
local good = require "umbra.good"

local train = {}

local Procedure = {}
Procedure.__index = Procedure

local function check_settings(s)
  assert(type(s.at_frac) == "number" and s.at_frac >= 0, "train: at_frac must be a number >= 0")
  assert(math.type(s.pgd_niter) == "integer" and s.pgd_niter >= 0, "train: pgd_niter must be an integer >= 0")
  assert(s.loss == "max_conf" or s.loss == "uniform_conf",
         "train: loss must be 'max_conf' or 'uniform_conf', got " .. tostring(s.loss))
  if s.good then
    assert(type(s.good) == "table", "train: good must be a table {eps =, weight =, quantile =}")
    for _, k in ipairs{"eps", "weight"} do
      local v = s.good[k]
      assert(type(v) == "function" or (type(v) == "number" and v >= 0),
             "train: good." .. k .. " must be a number >= 0 or a function of the epoch, got " .. tostring(v))
    end
    local q = s.good.quantile or 1
    assert(type(q) == "number" and q >= 0 and q <= 1, "train: good.quantile must be in [0, 1], got " .. tostring(q))
    assert(s.pgd_niter == 0, "train: GOOD bounds the noise's ball itself; pgd_niter must be 0, got " .. s.pgd_niter)
    assert(s.at_frac > 0, "train: GOOD needs out-distribution points (at_frac > 0)")
  end
end

--- procedure = train.Procedure(model, optimiser, settings)
--- settings: at_frac, pgd_niter, pgd_eps, pgd_step (default pgd_eps/pgd_niter), loss,
--- good ({eps =, weight =, quantile = 1, clip = false}: GOOD's loss on the noise, eps and weight
--- numbers or functions of GOOD's 0-based epoch such as umbra.good.ramp; see umbra.good),
--- lmbd (weight decay λ), decay_params (list of tensors; default all parameters),
--- noise_schedule (function(ctx) -> noise; default the authors'), noise_weight (nil = the
--- code's form), generator (required), out_loss (a criterion of your own replacing loss:
--- out_loss:forward(logits) -> per-example values (n), out_loss:backward(logits) -> the
--- gradient of their sum; ACET's PGD then maximises those values), dist (nil, or
--- {noise = "rank" | "global", sync_bn =, bucket_mb =} after dist.init() with more than one rank: "rank"
--- draws each rank's noise and PGD starts from its own stream (seed, rank, step); "global"
--- makes the whole batch's noise on every rank from the shared generator, as one process
--- would, and keeps the rank's block; bucket_mb: with a number > 0, the gradients are
--- summed in buckets of that many MB started during the backward (dist.buckets, CPU), else
--- in one flat allreduce after it).
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
  if s.dist and dist.size() > 1 then
    assert(s.dist.noise == "rank" or s.dist.noise == "global",
           "train: dist.noise must be 'rank' or 'global', got " .. tostring(s.dist.noise))
    self.dist = s.dist
    self:init_dist()
  end
  return self
end

local function max_conf_sum(logits)
  local p = logits:softmax(2)
  return p:max(2):sum()
end

-- The rank's own noise stream for this step: the shared generator's key with a counter
-- block of 2^24 per step in a range of 2^52 per rank, so that it needs no saving to resume.
function Procedure:rank_generator()
  local g = self.rank_g or umbra.Generator(0)
  self.rank_g = g
  g:set_state{seed = self.settings.generator:state().seed,
              counter = (dist.rank() + 1) * (1 << 52) + self.step_count * (1 << 24)}
  return g
end

-- n noise images from the clean images, with PGD for ACET, drawn from generator g
function Procedure:noise_for(clean, n, g, epoch)
  local s = self.settings
  local z = self.schedule{step = self.step_count, epoch = epoch, clean = clean, n = n, generator = g}
  if s.pgd_niter > 0 then
    local objective = s.loss
    if s.out_loss then
      local out = s.out_loss
      objective = function(logits) return out:forward(logits), out:backward(logits) end
    end
    z = attack.pgd(self.model, z, {eps = s.pgd_eps, step = s.pgd_step or s.pgd_eps / s.pgd_niter,
                                   steps = s.pgd_niter, objective = objective, generator = g})
  end
  return z
end

-- This process's noise: all of it (one process), its block of the batch's noise (dist,
-- "global") or n_noise of its own (dist, "rank"). nil when there is none.
function Procedure:make_noise(x, x_local, n_noise_all, n_noise, epoch)
  if n_noise_all <= 0 then return nil end
  local d, g = self.dist, self.settings.generator
  if not d then return self:noise_for(x, n_noise_all, g, epoch) end
  if d.noise == "global" then
    local z = self:noise_for(x, n_noise_all, g, epoch)
    local first, count = dist.split(n_noise_all)
    return count > 0 and z:narrow(1, first, count):contiguous() or nil
  end
  return n_noise > 0 and self:noise_for(x_local, n_noise, self:rank_generator(), epoch) or nil
end

-- what every step reduces in one call: the gradients, and the running statistics of the
-- batch norms (buffers) pre-scaled by 1/size, so the replicas stay equal in everything
function Procedure:init_dist()
  local list = {}
  for _, gr in ipairs(self.model:gradients()) do list[#list + 1] = gr end
  -- synchronised batch norms compute the same statistics everywhere already
  self.buffers = self.dist.sync_bn and {} or dist.module_buffers(self.model)
  local mb = self.dist.bucket_mb
  if mb and mb > 0 then
    -- reduced during the backward, bucket by bucket
    self.buckets = dist.buckets(self.model:gradients(), self.buffers, mb)
    return
  end
  for _, b in ipairs(self.buffers) do list[#list + 1] = b end
  self.reduce_list = list
end

--- stats = procedure:step(x, y [, epoch]): one optimiser step on the clean batch (x, y)
--- (the global batch: with settings.dist each rank passes the same one and trains on its block).
--- Returns {loss=, loss_clean=, loss_out=, reg=, err=, conf_clean=, conf_noise=, n_noise=}.
local step_body

--- Any error of a step (a non-finite loss or gradient included, raised before the optimiser
--- writes anything) names the step: "step 12: ...".
function Procedure:step(x, y, epoch)
  local ok, r = pcall(step_body, self, x, y, epoch)
  if not ok then
    local msg = tostring(r)
    if not msg:find("at step %d+") and not msg:find("^step %d+:") then
      msg = string.format("step %d: %s", self.step_count, msg)
    end
    error(msg, 2)
  end
  return r
end

step_body = function(self, x, y, epoch)
  local s, model, d = self.settings, self.model, self.dist
  local n_clean_all = x:size(1)
  local n_noise_all = math.floor(s.at_frac * n_clean_all)
  local n_clean, n_noise = n_clean_all, n_noise_all
  self.step_count = self.step_count + 1
  if d then
    local first
    first, n_clean = dist.split(n_clean_all)
    n_noise = select(2, dist.split(n_noise_all))
    x, y = x:narrow(1, first, n_clean), y:narrow(1, first, n_clean)
  end
  local z = self:make_noise(x, x, n_noise_all, n_noise, epoch)
  n_noise = z and z:size(1) or 0
  model:train()
  local part
  if s.good and n_noise > 0 then
    -- the bound pass first: it reuses the modules' forward buffers, and adds gradients
    model:zero_grad()
    part = good.out_pass(model, z, s.good, epoch, 1 / n_noise_all)
  end
  local input = z and umbra.cat({z, x}, 1) or x
  local logits = model:forward(input)
  local total = n_clean_all + n_noise_all
  local lc, gc, lo, go
  local logits_clean = n_noise > 0 and logits:narrow(1, n_noise + 1, n_clean) or logits
  lc = self.ce:forward(logits_clean, y)
  gc = self.ce:backward(logits_clean, y)
  local scale_clean, scale_noise = 1 / total, 1 / total
  if s.noise_weight then scale_clean, scale_noise = 1 / n_clean_all, s.noise_weight / math.max(n_noise_all, 1) end
  if part then scale_clean, scale_noise = 1 / n_clean_all, part.weight / math.max(n_noise_all, 1) end
  gc:mul_(scale_clean)
  local grad = gc
  lo = 0
  if part then
    -- the spread loss on the noise outside the bound part (all of it while eps_e is 0)
    local logits_noise = logits:narrow(1, 1, n_noise)
    local rest = part.bound_mask and (1 - part.bound_mask) or umbra.ones({n_noise}):to(logits:device())
    local values, go_ = good.spread_loss(logits_noise, rest * scale_noise)
    lo = (values * rest):sum() + part.loss_bound
    grad = umbra.cat({go_, gc}, 1)
  elseif n_noise > 0 then
    local logits_noise = logits:narrow(1, 1, n_noise)
    lo = self.out_loss:forward(logits_noise)
    if type(lo) ~= "number" then lo = lo:sum() end   -- a criterion of the user's: per-example values
    go = self.out_loss:backward(logits_noise)
    go:mul_(scale_noise)
    grad = umbra.cat({go, gc}, 1)
  end
  -- a non-finite loss or gradient stops the step before the optimiser writes anything (with
  -- dist, the reduced gradients carry it to every rank's optimiser check instead, so that no
  -- rank stops alone while the others wait in the reduction)
  local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end
  if not d and (not finite(lc) or not finite(lo)) then
    error(string.format("the loss is %s at step %d (non-finite: %s clean, %s noise); no parameter was changed",
                        tostring(finite(lc) and lo or lc), self.step_count, tostring(lc), tostring(lo)), 2)
  end
  if not part then model:zero_grad() end   -- GOOD's bound pass zeroed them and added its part
  if d then for _, b in ipairs(self.buffers) do b:mul_(1 / dist.size()) end end
  if self.buckets then self.buckets:arm() end
  model:backward(input, grad, {input_grad = false})   -- the input gradient is not needed
  if self.buckets then
    self.buckets_early = self.buckets:finish()
  elseif d then
    dist.allreduce_grads(self.reduce_list)
  end
  local reg = 0
  if s.lmbd > 0 then reg = optim.weight_decay(self.decay_params, s.lmbd) end
  self.optimiser:step()
  local pred = logits_clean:argmax(2)
  local sums = {lc, lo, pred:float():ne(y:float()):sum(), max_conf_sum(logits_clean),
                n_noise > 0 and max_conf_sum(logits:narrow(1, 1, n_noise)) or 0}
  if d then sums = dist.sum_numbers(sums) end
  local loss_clean = sums[1] * scale_clean
  local loss_out = sums[2] * scale_noise
  return {
    loss = loss_clean + loss_out + reg, loss_clean = loss_clean, loss_out = loss_out, reg = reg,
    err = sums[3] / n_clean_all, conf_clean = sums[4] / n_clean_all,
    conf_noise = n_noise_all > 0 and sums[5] / n_noise_all or nil,
    n_noise = n_noise_all,
    good_eps = part and part.eps, good_weight = part and part.weight,
    good_bound_share = part and part.n_bound / n_noise, good_m = part and part.m_mean,
  }
end

train.settings = {
  plain = {at_frac = 0, pgd_niter = 0},
  ceda = {at_frac = 1, pgd_niter = 0, loss = "max_conf"},
  acet = {at_frac = 1, pgd_niter = 40, pgd_eps = 0.3, loss = "max_conf"},
  -- GOOD_100 on MNIST (GOOD's schedule: kappa 0.3 ramped over epochs 2-102, eps 0.3 over 10-130)
  good = {at_frac = 1, pgd_niter = 0, good = {eps = good.ramp(0.3, 10, 120), weight = good.ramp(0.3, 2, 100),
                                               quantile = 1}},
}

return train
