-- CEDA against ACET where the paper's argument lives: in many dimensions, noise that
-- trained a model to low confidence (CEDA) has nearby points, inside a small l-inf ball,
-- where the model is confident again; ACET trains on those worst points. Two Gaussian
-- blobs in [0,1]^100, a 100-100-100-2 ReLU net, Plain, CEDA and ACET from the same seed.
local umbra = require "umbra"
local train = require "umbra.train"
local optim = require "umbra.optim"
local noise = require "umbra.noise"
local attack = require "umbra.attack"

local D, N = 100, 500

local function blobs(g)
  local x = umbra.randn({N, D}, g) * 0.05
  local y = {}
  local shift = {}
  for i = 1, N do
    y[i] = (i - 1) % 2 + 1
    local row = {}
    for _ = 1, D do row[#row + 1] = y[i] == 1 and 0.3 or 0.7 end
    shift[i] = row
  end
  return (x + umbra.tensor(shift)):clamp(0, 1), umbra.tensor(y, "int64")
end

local function fit(settings, X, Y)
  local g = umbra.Generator(5)
  local model = require("models.mlp"){sizes = {D, 100, 100, 2}, generator = g}
  local s = {generator = g, noise_schedule = noise.schedule.uniform(), noise_weight = 1}
  for k, v in pairs(settings) do s[k] = v end
  local proc = train.Procedure(model, optim.Adam(model:parameters(), {lr = 0.005}), s)
  for _ = 1, 600 do proc:step(X, Y) end
  model:evaluate()
  return model
end

local function mmc(model, x) return model:forward(x):softmax(2):max(2):mean() end

describe("ACET in 100 dimensions", function()
  it("is less confident than CEDA on adversarial noise, and confident on the data", function()
    umbra.set_num_threads(1)
    local X, Y = blobs(umbra.Generator(4))
    local plain = fit({at_frac = 0}, X, Y)
    local ceda = fit({at_frac = 1, loss = "max_conf"}, X, Y)
    local acet = fit({at_frac = 1, loss = "max_conf", pgd_niter = 10, pgd_eps = 0.3, pgd_step = 0.05}, X, Y)
    local z = umbra.rand({1000, D}, umbra.Generator(6))
    local function adv(model)
      return mmc(model, (attack.pgd(model, z, {eps = 0.3, steps = 30, step = 0.03, generator = umbra.Generator(7)})))
    end
    local r = {}
    for name, m in pairs{plain = plain, ceda = ceda, acet = acet} do
      r[name] = {data = mmc(m, X), noise = mmc(m, z), adv = adv(m)}
    end
    local text = string.format("plain %.3f/%.3f/%.3f ceda %.3f/%.3f/%.3f acet %.3f/%.3f/%.3f (data/noise/adv)",
      r.plain.data, r.plain.noise, r.plain.adv, r.ceda.data, r.ceda.noise, r.ceda.adv,
      r.acet.data, r.acet.noise, r.acet.adv)
    print(text)
    assert.is_true(r.ceda.noise < 0.6 and r.acet.noise < 0.6, text)
    assert.is_true(r.acet.adv < r.ceda.adv - 0.03, text)
    assert.is_true(r.acet.data > 0.9 and r.ceda.data > 0.9, text)
  end)
end)
